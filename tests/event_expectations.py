"""What every file in events/ must produce: one table, used by every runner of the events.

The in-process invoker (tests/integration/test_events.py) and `sam local invoke` both check it.
Success rows expect the canned model's answer behind the local endpoint server.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Expectation:
    function: str
    status: int
    error_code: str | None = None  # None: a 200 with predictions
    top_k: int = 5


EXPECTATIONS = {
    "predict-jpeg.json": Expectation("PredictFunction", 200, top_k=3),
    "predict-png.json": Expectation("PredictFunction", 200),
    "predict-json-base64.json": Expectation("PredictFunction", 200),
    "predict-url-disabled.json": Expectation("PredictFunction", 400, "MalformedRequest"),
    "predict-unsupported-media-type.json": Expectation("PredictFunction", 415, "UnsupportedMediaType"),
    "predict-malformed-json.json": Expectation("PredictFunction", 400, "MalformedRequest"),
    "predict-bad-top-k.json": Expectation("PredictFunction", 400, "MalformedRequest"),
    "predict-oversized.json": Expectation("PredictFunction", 413, "PayloadTooLarge"),
    "predict-not-an-image.json": Expectation("PredictFunction", 422, "UndecodableImage"),
}
