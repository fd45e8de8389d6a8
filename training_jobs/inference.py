"""SageMaker inference handler for the dog-breed classifier (``SAGEMAKER_PROGRAM=inference.py``).

The PyTorch inference toolkit calls ``model_fn`` once, then ``input_fn`` -> ``predict_fn`` ->
``output_fn`` per request. Accepted: ``image/jpeg``, ``image/png``, ``application/x-image`` bodies,
and ``application/json`` ``{"image": "<base64>", "top_k": N}``. ``top_k`` (1-20, default 5) may also
come as the custom attribute ``top_k=N`` (``X-Amzn-SageMaker-Custom-Attributes``). The answer is
``{"predictions": [{"breed", "class_index", "probability"}, ...]}``, best first.

Refusals use the toolkit's ``GenericInferenceToolkitError(status, message)`` so the caller gets 415,
413 or 422 with a clear message instead of a 500 carrying a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
from pathlib import Path

import torch
from PIL import Image

from breed_classifier.artifact import load_artifact
from breed_classifier.preprocessing import eval_transform, to_rgb

try:
    from sagemaker_inference.errors import GenericInferenceToolkitError
except ImportError:  # outside the SageMaker containers

    class GenericInferenceToolkitError(Exception):  # noqa: N818 (the toolkit's name)
        def __init__(self, status_code: int, message: str = "", phrase: str = "") -> None:
            super().__init__(message)
            self.status_code, self.message, self.phrase = status_code, message, phrase or message


logger = logging.getLogger(__name__)

IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image")
JSON_CONTENT_TYPE = "application/json"
MAX_PIXELS = 40_000_000  # ~ 7300 x 5500: larger is refused before any pixel is decoded
MAX_BODY_BYTES = 20 * 1024 * 1024
DEFAULT_TOP_K, MAX_TOP_K = 5, 20


class Classifier:
    """What ``model_fn`` returns: the network, its labels and its preprocessing, loaded once."""

    def __init__(self, model_dir: str) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        loaded = load_artifact(Path(model_dir), self.device)
        self.network, self.breeds = loaded.network, loaded.breeds
        self.transform = eval_transform(loaded.config.image_size, loaded.config.mean, loaded.config.std)


def model_fn(model_dir: str) -> Classifier:
    return Classifier(model_dir)


def input_fn(request_body, content_type: str, context=None) -> tuple[Image.Image, int]:
    """Decode the request into an RGB image and the number of predictions wanted."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    top_k = _custom_attribute_top_k(context)
    if media_type == JSON_CONTENT_TYPE:
        image_bytes, top_k = _read_json(request_body, top_k)
    elif media_type in IMAGE_CONTENT_TYPES:
        image_bytes = bytes(request_body or b"")
    else:
        accepted = ", ".join((*IMAGE_CONTENT_TYPES, JSON_CONTENT_TYPE))
        raise GenericInferenceToolkitError(
            415, f"content type {media_type or 'none'!r} is not accepted; send {accepted}"
        )
    return decode_image(image_bytes), top_k


def predict_fn(data: tuple[Image.Image, int], model: Classifier) -> list[dict]:
    """The ``top_k`` most probable breeds, best first."""
    image, top_k = data
    batch = model.transform(image).unsqueeze(0).to(model.device)
    with torch.inference_mode():
        probabilities = torch.softmax(model.network(batch), dim=1)[0].cpu()
    values, indices = torch.topk(probabilities, k=min(top_k, probabilities.numel()))
    return [
        {"breed": model.breeds[i], "class_index": i, "probability": round(p, 6)}
        for p, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]


def output_fn(predictions: list[dict], accept: str) -> tuple[str, str]:
    """Always JSON, whatever ``accept`` asks for: it is the only answer this endpoint has."""
    return json.dumps({"predictions": predictions}), JSON_CONTENT_TYPE


def decode_image(image_bytes: bytes) -> Image.Image:
    """Decode JPEG/PNG bytes to upright RGB, refusing empty, oversized, bomb-sized and truncated images."""
    if not image_bytes:
        raise GenericInferenceToolkitError(422, "the request body is empty; send a JPEG or PNG image")
    if len(image_bytes) > MAX_BODY_BYTES:
        raise GenericInferenceToolkitError(413, f"the image is larger than {MAX_BODY_BYTES} bytes")
    try:
        image = Image.open(io.BytesIO(image_bytes))
        width, height = image.size  # read from the header: nothing is decompressed yet
        if width * height > MAX_PIXELS:
            raise GenericInferenceToolkitError(
                413, f"the image has {width} x {height} pixels; at most {MAX_PIXELS} pixels are accepted"
            )
        image.load()
        return to_rgb(image)
    except GenericInferenceToolkitError:
        raise
    except Image.DecompressionBombError as exc:
        raise GenericInferenceToolkitError(413, f"the image is too large to decode safely: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's errors for unknown, truncated, corrupt files
        logger.info("refused an undecodable image: %s", exc)
        raise GenericInferenceToolkitError(
            422, "the body is not a decodable JPEG or PNG image (it is corrupt, truncated or another format)"
        ) from exc


def _read_json(request_body, top_k: int) -> tuple[bytes, int]:
    try:
        document = json.loads(request_body)
    except (TypeError, ValueError) as exc:
        raise GenericInferenceToolkitError(400, 'the body is not JSON; send {"image": "<base64>"}') from exc
    encoded = document.get("image") if isinstance(document, dict) else None
    if not isinstance(encoded, str):
        raise GenericInferenceToolkitError(400, 'the JSON body needs "image": a base64 string of a JPEG or PNG')
    try:
        image_bytes = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GenericInferenceToolkitError(400, '"image" is not valid base64') from exc
    return image_bytes, _checked_top_k(document.get("top_k", top_k))


def _custom_attribute_top_k(context) -> int:
    """``top_k=N`` from the ``X-Amzn-SageMaker-Custom-Attributes`` header of the current request."""
    try:
        properties = context.request_processor[0].get_request_properties()
    except (AttributeError, IndexError, TypeError):
        return DEFAULT_TOP_K
    header = next((v for k, v in properties.items() if k.lower() == "x-amzn-sagemaker-custom-attributes"), "")
    if isinstance(header, bytes):
        header = header.decode("utf-8", "replace")
    for pair in header.split(","):
        key, _, value = pair.strip().partition("=")
        if key == "top_k":
            return _checked_top_k(value)
    return DEFAULT_TOP_K


def _checked_top_k(value) -> int:
    try:
        top_k = int(value)
    except (TypeError, ValueError):
        top_k = 0
    if not 1 <= top_k <= MAX_TOP_K:
        raise GenericInferenceToolkitError(400, f"top_k must be a whole number from 1 to {MAX_TOP_K}")
    return top_k
