"""SageMaker inference handler for the dog-breed classifier (``SAGEMAKER_PROGRAM=inference.py``).

The PyTorch inference toolkit calls ``model_fn`` once, then ``transform_fn`` per request. Accepted:
``image/jpeg``, ``image/png``, ``application/x-image`` bodies, and ``application/json``
``{"image": "<base64>", "top_k": N}``. ``top_k`` (1-20, default 5) may also come as the custom
attribute ``top_k=N`` (``X-Amzn-SageMaker-Custom-Attributes``). The answer is
``{"predictions": [{"breed", "class_index", "probability"}, ...]}``, best first.

Errors are JSON too, ``{"error": {"code", "message"}}`` with status 400, 413, 415, 422 or 500, and
never carry a stack trace. Why ``transform_fn`` and not ``input_fn``/``predict_fn``/``output_fn``: the
toolkit answers every exception those raise (its own ``GenericInferenceToolkitError`` included) with
the message *plus* ``traceback.format_exc()``, which direct endpoint callers (AWS CLI, SDK
``Predictor``) would see. ``transform_fn`` gets the request context, sets the status on it and
returns the error body itself, so the toolkit's error path is never taken.

Work per image is bounded before pixels are allocated (see ``decode_image``): the source size is
read from the header, JPEGs decode at the smallest scale the model needs, and only the central
square that the evaluation transform keeps is converted and resized.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import sys
import warnings
from pathlib import Path

import torch
from PIL import Image

from breed_classifier.artifact import load_artifact
from breed_classifier.fast_path import inference_network
from breed_classifier.preprocessing import crop_to_square, draft_size, eval_transform, to_rgb

logger = logging.getLogger(__name__)

IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image")
JSON_CONTENT_TYPE = "application/json"
# The work budget per request, checked from the header before anything is decompressed.
MAX_SOURCE_PIXELS = 40_000_000  # ~ 7300 x 5500: a 12 MP phone photo fits three times over
MAX_BODY_BYTES = 20 * 1024 * 1024
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG")  # MPO: the multi-picture JPEGs many phone cameras write
DEFAULT_TOP_K, MAX_TOP_K = 5, 20
_REASONS = {400: "Bad Request", 413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity"}
_ERROR_CODES = {
    400: "MalformedRequest",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "UndecodableImage",
    500: "ModelError",
}


class RequestRefusedError(Exception):
    """The request cannot be served; ``status`` and ``message`` are what the caller is told."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Classifier:
    """What ``model_fn`` returns: the network (TorchScript when it checks out, see fast_path), labels, preprocessing."""

    def __init__(self, model_dir: str) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        loaded = load_artifact(Path(model_dir), self.device)
        self.network, self.runtime = inference_network(loaded.network, loaded.config.image_size, self.device)
        self.breeds = loaded.breeds
        self.image_size = loaded.config.image_size
        # fitted at training's end (breed_classifier.calibration); a dog-gated network applies it itself and answers
        # log-probabilities (breed_classifier.model.DogGatedNetwork)
        self.temperature = 1.0 if loaded.config.dog_gate else loaded.config.temperature
        self.not_a_dog = len(self.breeds) - 1 if loaded.config.dog_gate else None  # its class index, when it has one
        self.dog_gate_threshold = loaded.config.dog_gate_threshold
        self.transform = eval_transform(loaded.config.image_size, loaded.config.mean, loaded.config.std)
        logger.info("serving %s with the %s runtime", loaded.config.architecture, self.runtime)


def model_fn(model_dir: str) -> Classifier:
    return Classifier(model_dir)


def transform_fn(model: Classifier, request_body, content_type: str, accept: str, context=None) -> tuple[str, str]:
    """One request: decode, predict, answer JSON; refusals and failures answer a JSON error, no trace."""
    try:
        image, top_k = read_request(request_body, content_type, _custom_attributes(context), model.image_size)
        answer, status = {"predictions": predict(model, image, top_k)}, 200
    except RequestRefusedError as refusal:
        logger.info("refused a request: %s %s", refusal.status, refusal.message)
        answer, status = _error_body(refusal.status, refusal.message), refusal.status
    except Exception:  # anything else is the model's failure: logged whole, answered with a fixed message
        logger.exception("prediction failed")
        answer, status = _error_body(500, "the model failed to answer this request"), 500
    if status != 200 and context is not None:
        context.set_response_status(status, _REASONS.get(status, "Internal Server Error"))
    return json.dumps(answer), JSON_CONTENT_TYPE


def read_request(request_body, content_type: str, custom_attributes: str, image_size: int) -> tuple[Image.Image, int]:
    """Decode the request into an RGB image ready for the eval transform, and the number of predictions wanted."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    top_k = top_k_from_custom_attributes(custom_attributes)
    if media_type == JSON_CONTENT_TYPE:
        image_bytes, top_k = _read_json(request_body, top_k)
    elif media_type in IMAGE_CONTENT_TYPES:
        image_bytes = request_body.encode("utf-8") if isinstance(request_body, str) else bytes(request_body or b"")
    else:
        accepted = ", ".join((*IMAGE_CONTENT_TYPES, JSON_CONTENT_TYPE))
        raise RequestRefusedError(415, f"content type {media_type[:60] or 'none'!r} is not accepted; send {accepted}")
    return decode_image(image_bytes, image_size), top_k


def predict(model: Classifier, image: Image.Image, top_k: int) -> list[dict]:
    """The ``top_k`` most probable breeds, best first.

    A dog-gated model (``DogGatedNetwork``) answers "not a dog" first when P(dog) is below its threshold (a quarter);
    otherwise the answer is breeds only (their probabilities are P(dog) x P(breed | dog), so they add up to P(dog)
    and "not a dog" would otherwise outrank a breed that shares the dog's probability with 132 others)."""
    batch = model.transform(image).unsqueeze(0).to(model.device)
    with torch.inference_mode():
        probabilities = torch.softmax(model.network(batch) / model.temperature, dim=1)[0].cpu()
    if model.not_a_dog is not None and probabilities[model.not_a_dog] <= 1.0 - model.dog_gate_threshold:
        probabilities = probabilities.clone()
        probabilities[model.not_a_dog] = -1.0  # a dog: not among the answers
    available = int((probabilities >= 0).sum())
    values, indices = torch.topk(probabilities, k=min(top_k, available))
    return [
        {"breed": model.breeds[i], "class_index": i, "probability": round(p, 6)}
        for p, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]


def decode_image(image_bytes: bytes, image_size: int) -> Image.Image:
    """Decode JPEG/PNG bytes to the upright RGB central square the model needs, within a fixed budget.

    Refused: empty bodies, bodies over ``MAX_BODY_BYTES`` or sources over ``MAX_SOURCE_PIXELS`` (413,
    judged from the header before any pixel is decompressed), and anything Pillow cannot decode, such
    as truncated or foreign files (422). Any aspect ratio is accepted: only the central square is kept.
    """
    if not image_bytes:
        raise RequestRefusedError(422, "the request body is empty; send a JPEG or PNG image")
    if len(image_bytes) > MAX_BODY_BYTES:
        raise RequestRefusedError(413, f"the image is larger than {MAX_BODY_BYTES} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(image_bytes))
            width, height = image.size  # from the header: nothing is decompressed yet
            if width * height > MAX_SOURCE_PIXELS:
                raise RequestRefusedError(
                    413, f"the image has {width} x {height} pixels; at most {MAX_SOURCE_PIXELS} pixels are accepted"
                )
            if image.format not in ACCEPTED_FORMATS:
                raise RequestRefusedError(422, f"the body is a {image.format} image; send a JPEG or PNG")
            if image.format in ("JPEG", "MPO"):
                image.draft("RGB", draft_size(width, height, image_size))  # decode at 1/2, 1/4 or 1/8 scale
            image.load()
        return to_rgb(crop_to_square(image, image_size))
    except RequestRefusedError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestRefusedError(413, "the image is too large to decode safely") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:  # unknown, truncated, corrupt files
        logger.info("refused an undecodable image: %r", exc)
        raise RequestRefusedError(
            422, "the body is not a decodable JPEG or PNG image (it is corrupt, truncated or another format)"
        ) from exc


def top_k_from_custom_attributes(custom_attributes: str) -> int:
    """``top_k=N`` from the ``X-Amzn-SageMaker-Custom-Attributes`` header, or the default."""
    for pair in custom_attributes.split(","):
        key, _, value = pair.strip().partition("=")
        if key == "top_k":
            return _checked_top_k(value)
    return DEFAULT_TOP_K


def _read_json(request_body, top_k: int) -> tuple[bytes, int]:
    try:
        document = json.loads(request_body)
    except (TypeError, ValueError, RecursionError) as exc:
        raise RequestRefusedError(400, 'the body is not JSON; send {"image": "<base64>"}') from exc
    encoded = document.get("image") if isinstance(document, dict) else None
    if not isinstance(encoded, str):
        raise RequestRefusedError(400, 'the JSON body needs "image": a base64 string of a JPEG or PNG')
    try:
        image_bytes = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestRefusedError(400, '"image" is not valid base64') from exc
    return image_bytes, _checked_top_k(document.get("top_k", top_k))


def _custom_attributes(context) -> str:
    """The ``X-Amzn-SageMaker-Custom-Attributes`` header of the current request, or ''."""
    try:
        properties = context.request_processor[0].get_request_properties()
    except (AttributeError, IndexError, TypeError):
        return ""
    header = next((v for k, v in properties.items() if k.lower() == "x-amzn-sagemaker-custom-attributes"), "")
    return header.decode("utf-8", "replace") if isinstance(header, bytes) else str(header)


def _checked_top_k(value) -> int:
    # ASCII digits only: int() would also take "+5", " 5", "1_0" and other scripts' digits.
    text = str(value) if type(value) is int else value  # a JSON number; not a bool, which is an int too
    valid = isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 2
    if not (valid and 1 <= int(text) <= MAX_TOP_K):
        raise RequestRefusedError(400, f"top_k must be a whole number from 1 to {MAX_TOP_K}")
    return int(text)


def _error_body(status: int, message: str) -> dict:
    return {"error": {"code": _ERROR_CODES.get(status, "ModelError"), "message": message}}


def _answer_toolkit_errors_without_a_trace() -> None:
    """Replace the toolkit's error answer (message + traceback) with a JSON error for what fails before us.

    ``transform_fn`` answers everything it is given. What remains is the toolkit's own work before it
    is called: it decodes ``application/json`` bodies as UTF-8 first, so a body that is not UTF-8
    would fail inside the toolkit and be answered with a stack trace. The trace still goes to the log.
    """
    try:
        from sagemaker_inference.transformer import Transformer
    except ImportError:  # outside the SageMaker containers (training, tests of this module alone)
        return

    def handle_error(context, inference_exception, trace):
        logger.error("the inference toolkit failed before transform_fn: %s", trace)
        cause = sys.exc_info()[1]
        if isinstance(cause, UnicodeDecodeError):
            status, message = 400, "the JSON body is not UTF-8 text"
        else:
            status = getattr(inference_exception, "status_code", 500)
            status = status if status in _REASONS else 500
            message = "the request could not be read" if status < 500 else "the model failed to answer this request"
        context.set_response_status(code=status, phrase=_REASONS.get(status, "Internal Server Error"))
        context.set_response_content_type(0, JSON_CONTENT_TYPE)
        return [json.dumps(_error_body(status, message))]

    Transformer.handle_error = staticmethod(handle_error)


_answer_toolkit_errors_without_a_trace()
