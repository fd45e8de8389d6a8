"""The SageMaker Runtime adapter in tests/unit: boto3 against the offline endpoint server on loopback (real HTTP,
botocore's real error parsing), each answer read as the project's error or its predictions. The same rows through
PredictFunction, as the caller sees them, are tests/integration/test_endpoint_failures.py."""

from __future__ import annotations

import json
import socket

import boto3
import pytest
from botocore.config import Config

from dog_breeds.adapters.sagemaker_endpoint import SageMakerEndpoint, invoke_endpoint
from dog_breeds.errors import (
    EndpointNotInServiceError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    ModelFailedError,
    PayloadTooLargeError,
    ThrottledError,
    UndecodableImageError,
    UnsupportedMediaTypeError,
)
from offline_stack.endpoint_server import EndpointServer, ModelFailure, ServiceFault
from tests.support.models import CANNED_BREEDS, FAULTS, CannedModel, FaultyModel

ENDPOINT = "dog-breeds"
JPEG = b"\xff\xd8\xff\xe0 not decoded by the canned model"


@pytest.fixture(scope="module")
def server():
    with EndpointServer() as endpoint_server:
        yield endpoint_server


def _client(url: str, read_timeout: float = 5.0):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout, connect_timeout=1),
    )


@pytest.fixture(scope="module")
def client(server):
    return _client(server.url)


def test_the_predictions_come_back_best_first_and_the_request_as_sent(server, client):
    model = CannedModel()
    server.serve(ENDPOINT, model)
    predictions = SageMakerEndpoint(client).predict(ENDPOINT, JPEG, "image/jpeg", 3)
    assert [p["breed"] for p in predictions] == [breed for breed, _, _ in CANNED_BREEDS[:3]]
    assert all(isinstance(p["probability"], float) and isinstance(p["class_index"], int) for p in predictions)
    assert model.requests[-1] == (JPEG, "image/jpeg", "top_k=3")


def test_an_answer_is_sorted_and_cut_to_top_k_whatever_order_and_length_the_endpoint_sends(server, client):
    worst_first = [{"breed": b, "class_index": str(i), "probability": str(p)} for b, i, p in CANNED_BREEDS[::-1]]
    server.serve(ENDPOINT, FaultyModel(answer=json.dumps({"predictions": worst_first}).encode()))
    predictions = invoke_endpoint(client, ENDPOINT, JPEG, "image/jpeg", 2)
    best = sorted(CANNED_BREEDS, key=lambda row: row[2], reverse=True)[:2]
    assert predictions == [{"breed": b, "class_index": i, "probability": p} for b, i, p in best]


@pytest.mark.parametrize(
    "answer",
    [b"[0.1, 0.2, 0.7]", b"not json", b'{"predictions": [{"breed": "x"}]}', b'{"predictions": [{"breed": "x", '
     b'"class_index": "one", "probability": 0.5}]}', b'{"answers": []}'],
)  # fmt: skip
def test_an_answer_that_is_not_the_predictions_document_is_a_model_failure(server, client, answer):
    server.serve(ENDPOINT, FaultyModel(answer=answer))
    with pytest.raises(ModelFailedError, match="not the predictions document"):
        invoke_endpoint(client, ENDPOINT, JPEG, "image/jpeg", 3)


@pytest.mark.parametrize(
    ("fault", "error", "says"),
    [
        (FAULTS["model-415"], UnsupportedMediaTypeError, "does not accept this image type"),
        (FAULTS["model-413"], PayloadTooLargeError, "too large for the model"),
        (FAULTS["model-422"], UndecodableImageError, "could not decode this image"),
        (ModelFailure(400, "bad"), UndecodableImageError, "could not decode this image"),
        (FAULTS["model-500"], ModelFailedError, "model answered with status 500"),
        (ModelFailure(404, "no route"), ModelFailedError, "model answered with status 404"),
        (FAULTS["throttled"], ThrottledError, "SageMaker Runtime answered ThrottlingException"),
        (FAULTS["not-ready"], EndpointUnavailableError, "answered ModelNotReadyException"),
        (ServiceFault(503, "ServiceUnavailable", "down"), EndpointUnavailableError, "answered ServiceUnavailable"),
        (FAULTS["internal-failure"], ModelFailedError, "answered InternalFailure"),
        (ServiceFault(424, "InternalDependencyException", "it failed"), ModelFailedError, "DependencyException"),
        (ServiceFault(400, "SomethingNew", "a new kind of refusal"), ModelFailedError, "answered SomethingNew"),
    ],
)
def test_each_failure_leaves_as_its_project_error_without_the_endpoints_words(server, client, fault, error, says):
    server.serve(ENDPOINT, FaultyModel(fault))
    with pytest.raises(error, match=says) as raised:
        invoke_endpoint(client, ENDPOINT, JPEG, "image/jpeg", 3)
    assert type(raised.value) is error
    assert "Traceback" not in str(raised.value) and fault.message.split("\n")[0] not in str(raised.value)


def test_an_endpoint_that_does_not_exist_is_not_in_service(server, client):
    with pytest.raises(EndpointNotInServiceError, match="answered ValidationError"):
        invoke_endpoint(client, "no-such-endpoint", JPEG, "image/jpeg", 3)


def test_a_slow_endpoint_is_a_timeout_and_an_unreachable_one_unavailable(server):
    server.serve(ENDPOINT, FaultyModel(delay_seconds=1.0, answer=b'{"predictions": []}'))
    with pytest.raises(EndpointTimeoutError, match=f"no answer from endpoint {ENDPOINT}"):
        invoke_endpoint(_client(server.url, read_timeout=0.2), ENDPOINT, JPEG, "image/jpeg", 3)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
        with pytest.raises(EndpointUnavailableError, match=f"cannot reach endpoint {ENDPOINT}"):
            invoke_endpoint(_client(closed), ENDPOINT, JPEG, "image/jpeg", 3)
