"""Models to put behind the local endpoint server.

``CannedModel`` answers fixed predictions (the real model's handler is used by the tests of
training_jobs/ and the offline stack); ``FaultyModel`` makes the server answer each failure
SageMaker Runtime can send, so the predict function's error mapping is exercised over HTTP.
"""

from __future__ import annotations

import json
import time

from offline_stack.endpoint_server import ModelFailure, ServiceFault

CANNED_BREEDS = [
    ("Labrador retriever", 95, 0.61),
    ("Golden retriever", 76, 0.21),
    ("Chesapeake bay retriever", 44, 0.08),
    ("Flat-coated retriever", 69, 0.04),
    ("Curly-coated retriever", 55, 0.02),
    ("Beagle", 15, 0.01),
    ("Boxer", 29, 0.005),
]


def top_k_from(custom_attributes: str, default: int = 5) -> int:
    for pair in custom_attributes.split(","):
        key, _, value = pair.strip().partition("=")
        if key == "top_k" and value.isdigit():
            return int(value)
    return default


class CannedModel:
    """Answers the same predictions for any image, top_k of them; records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, str, str]] = []

    def invoke(self, body: bytes, content_type: str, accept: str, custom_attributes: str):
        self.requests.append((body, content_type, custom_attributes))
        top = CANNED_BREEDS[: top_k_from(custom_attributes)]
        predictions = [{"breed": b, "class_index": i, "probability": p} for b, i, p in top]
        return json.dumps({"predictions": predictions}).encode(), "application/json"


class FaultyModel:
    """Fails every call in one way: ``ModelFailure``/``ServiceFault`` to raise, or a delay."""

    def __init__(self, fault: Exception | None = None, delay_seconds: float = 0.0, answer: bytes = b"") -> None:
        self.fault, self.delay_seconds, self.answer = fault, delay_seconds, answer

    def invoke(self, body: bytes, content_type: str, accept: str, custom_attributes: str):
        time.sleep(self.delay_seconds)
        if self.fault is not None:
            raise self.fault
        return self.answer, "application/json"


FAULTS = {
    "model-415": ModelFailure(415, "Unsupported content type image/png\nTraceback (most recent call last): ..."),
    "model-413": ModelFailure(413, "Image too large"),
    "model-422": ModelFailure(422, "cannot identify image file"),
    "model-500": ModelFailure(500, "CUDA out of memory\nTraceback (most recent call last): secret internals"),
    "throttled": ServiceFault(400, "ThrottlingException", "Rate exceeded"),
    "not-ready": ServiceFault(429, "ModelNotReadyException", "Model not ready"),
    "internal-failure": ServiceFault(500, "InternalFailure", "An internal error occurred"),
}


class DecodingModel(CannedModel):
    """The canned answers, for images that decode; a damaged one is refused as the real handler refuses it (422)."""

    def invoke(self, body: bytes, content_type: str, accept: str, custom_attributes: str):
        import io

        from PIL import Image

        try:
            with Image.open(io.BytesIO(body)) as image:
                image.load()
        except (OSError, ValueError) as damaged:
            raise ModelFailure(422, f"cannot decode the image: {damaged}") from damaged
        return super().invoke(body, content_type, accept, custom_attributes)
