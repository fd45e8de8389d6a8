"""Each endpoint failure row of the API error table, end to end: event -> handler -> boto3 -> HTTP -> server.

The server answers as SageMaker Runtime does, so these exercise botocore's real error parsing.
"""

import base64
import json
import socket

import pytest

from tests.conftest import ENDPOINT_NAME, load_event, response_json
from tests.support.models import CANNED_BREEDS, FAULTS, FaultyModel

JPEG_EVENT = "predict-jpeg.json"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("model-415", 415, "UnsupportedMediaType"),
        ("model-413", 413, "PayloadTooLarge"),
        ("model-422", 422, "UndecodableImage"),
        ("model-500", 502, "ModelError"),
        ("internal-failure", 502, "ModelError"),
        ("throttled", 429, "Throttled"),
        ("not-ready", 503, "EndpointUnavailable"),
    ],
)
def test_endpoint_failure_maps_to_its_row(fault, status, code, endpoint_server, predict_function):
    # Given an endpoint that fails in one way
    endpoint_server.serve(ENDPOINT_NAME, FaultyModel(FAULTS[fault]))
    # When a valid image is posted
    with predict_function() as function:
        response = function.invoke(load_event(JPEG_EVENT))
    body = response_json(response)
    # Then the caller gets the table's status and code, and none of the endpoint's own words
    assert (response["statusCode"], body["error"]["code"]) == (status, code)
    assert FAULTS[fault].message.split("\n")[0] not in body["error"]["message"]
    assert "Traceback" not in response["body"]


def test_endpoint_answer_that_is_not_predictions_is_a_model_error(endpoint_server, predict_function):
    endpoint_server.serve(ENDPOINT_NAME, FaultyModel(answer=b"[0.1, 0.2, 0.7]"))
    with predict_function() as function:
        response = function.invoke(load_event(JPEG_EVENT))
    assert (response["statusCode"], response_json(response)["error"]["code"]) == (502, "ModelError")


def test_the_answer_is_sorted_and_cut_to_top_k_whatever_the_endpoint_sends(endpoint_server, predict_function):
    # Given an endpoint that ignores top_k and answers all its predictions, worst first
    unsorted = [
        {"breed": breed, "class_index": index, "probability": probability}
        for breed, index, probability in sorted(CANNED_BREEDS, key=lambda row: row[2])
    ]
    endpoint_server.serve(ENDPOINT_NAME, FaultyModel(answer=json.dumps({"predictions": unsorted}).encode()))
    # When a request asks for the top 3
    with predict_function() as function:
        response = function.invoke(load_event(JPEG_EVENT))  # top_k=3
    # Then the caller gets the 3 most probable, best first
    predictions = response_json(response)["predictions"]
    assert [p["breed"] for p in predictions] == [breed for breed, _, _ in CANNED_BREEDS[:3]]


def test_missing_endpoint_is_unavailable(endpoint_server, predict_function):
    # Given no endpoint of the configured name (the runtime answers ValidationError "... not found")
    endpoint_server.remove(ENDPOINT_NAME)
    with predict_function() as function:
        response = function.invoke(load_event(JPEG_EVENT))
    assert (response["statusCode"], response_json(response)["error"]["code"]) == (503, "EndpointUnavailable")


def test_unreachable_runtime_is_unavailable(predict_function):
    # Given a runtime URL where nothing listens (a port bound and closed at once)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with predict_function(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=dead_url) as function:
        response = function.invoke(load_event(JPEG_EVENT))
    assert (response["statusCode"], response_json(response)["error"]["code"]) == (503, "EndpointUnavailable")


def test_slow_endpoint_times_out_after_bounded_retries(endpoint_server, predict_function):
    # Given an endpoint slower than the read timeout
    endpoint_server.serve(ENDPOINT_NAME, FaultyModel(delay_seconds=1.5))
    with predict_function(ENDPOINT_READ_TIMEOUT_SECONDS="0.3", ENDPOINT_MAX_ATTEMPTS="2") as function:
        response = function.invoke(load_event(JPEG_EVENT))
    # Then the caller gets 504 after exactly the configured attempts (not an open-ended wait)
    assert (response["statusCode"], response_json(response)["error"]["code"]) == (504, "EndpointTimeout")
    assert endpoint_server.invocations == 2


def test_unexpected_failure_is_a_plain_500(endpoint_server, predict_function, monkeypatch):
    # Given a defect inside the function (simulated: the logic raises something unforeseen)
    with predict_function() as function:

        def broken(request):
            raise RuntimeError("secret detail")

        monkeypatch.setattr(function.module, "predict_breeds", broken)
        response = function.invoke(load_event(JPEG_EVENT))
    body = response_json(response)
    # Then the caller sees a fixed message, never the exception's text
    assert (response["statusCode"], body["error"]["code"]) == (500, "InternalError")
    assert "secret" not in response["body"]


def test_two_invocations_share_one_runtime_client(endpoint_server, predict_function):
    # Given one execution environment (one cold start)
    with predict_function() as function:
        client_before = function.module.predict_breeds.endpoint.client
        # When it serves two requests
        first = function.invoke(load_event(JPEG_EVENT))
        second = function.invoke(load_event("predict-png.json"))
        client_after = function.module.predict_breeds.endpoint.client
    # Then both went through the one client created at cold start, over one kept-alive connection
    assert first["statusCode"] == second["statusCode"] == 200
    assert client_before is client_after
    assert len(set(endpoint_server.client_addresses)) == 1
    assert endpoint_server.invocations == 2


def test_image_reaches_endpoint_as_sent(endpoint_server, predict_function):
    event = load_event("predict-png.json")
    with predict_function() as function:
        function.invoke(event)
    model = endpoint_server.models[ENDPOINT_NAME]
    body, content_type, attributes = model.requests[0]
    assert body == base64.b64decode(event["body"])
    assert content_type == "image/png"
    assert attributes == "top_k=5"


def _emf_blobs(text: str) -> list[dict]:
    blobs = []
    for line in text.splitlines():
        if line.startswith('{"_aws"'):
            blobs.append(json.loads(line))
    return blobs


def test_metrics_record_latency_outcome_by_code_and_breed(endpoint_server, predict_function, capsys):
    with predict_function() as function:
        function.invoke(load_event(JPEG_EVENT))
        endpoint_server.serve(ENDPOINT_NAME, FaultyModel(FAULTS["throttled"]))
        function.invoke(load_event(JPEG_EVENT))
    blobs = _emf_blobs(capsys.readouterr().out)
    outcomes = [b["Outcome"] for b in blobs if "Requests" in b]
    assert outcomes == ["Success", "Throttled"]
    assert [b["Breed"] for b in blobs if "PredictedBreed" in b] == ["Labrador retriever"]
    assert sum("Latency" in b for b in blobs) == 2
    assert all(b["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DogBreedClassifier" for b in blobs)
