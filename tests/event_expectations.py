"""What every file in events/ must produce: one table, used by every runner of the events.

The in-process invoker (tests/integration/test_predict_events.py, test_control_plane.py) and
`sam local invoke` both check it. API rows give the HTTP status and error code (success rows expect
the canned model behind the local endpoint server); direct-invocation rows give the error type the
function must raise, or None for success.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Expectation:
    function: str
    status: int | None = None  # API events: the HTTP status
    error_code: str | None = None  # API events: the error code of a refusal
    top_k: int = 5
    error_type: str | None = None  # direct invocations: the exception the function raises


def api(status: int, error_code: str | None = None, top_k: int = 5) -> Expectation:
    return Expectation("PredictFunction", status, error_code, top_k)


EXPECTATIONS = {
    "predict-jpeg.json": api(200, top_k=3),
    "predict-png.json": api(200),
    "predict-json-base64.json": api(200),
    "predict-url-disabled.json": api(400, "MalformedRequest"),
    "predict-unsupported-media-type.json": api(415, "UnsupportedMediaType"),
    "predict-malformed-json.json": api(400, "MalformedRequest"),
    "predict-bad-top-k.json": api(400, "MalformedRequest"),
    "predict-oversized.json": api(413, "PayloadTooLarge"),
    "predict-not-an-image.json": api(422, "UndecodableImage"),
    "start-training.json": Expectation("StartTrainingFunction"),
    "start-training-spot.json": Expectation("StartTrainingFunction"),
    "start-training-bad.json": Expectation("StartTrainingFunction", error_type="InvalidEventError"),
    "deploy-endpoint-approved.json": Expectation("DeployEndpointFunction"),
    "deploy-endpoint-another-approved-on-c5.json": Expectation("DeployEndpointFunction"),
    "deploy-endpoint-bad.json": Expectation("DeployEndpointFunction", error_type="InvalidEventError"),
    "release-gate-bad.json": Expectation("ReleaseGateFunction", error_type="InvalidEventError"),
    "register-autoscaling.json": Expectation("RegisterAutoscalingFunction"),
    "register-autoscaling-bad.json": Expectation("RegisterAutoscalingFunction", error_type="InvalidEventError"),
}
API_EVENTS = sorted(name for name, row in EXPECTATIONS.items() if row.function == "PredictFunction")
CONTROL_EVENTS = sorted(name for name, row in EXPECTATIONS.items() if row.function != "PredictFunction")
