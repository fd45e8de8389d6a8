"""The prediction function during an endpoint-kind switch, and what a throttled caller is told."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools import Logger

from dog_breeds.errors import (
    EndpointNotInServiceError,
    EndpointStartingError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    MalformedRequestError,
    ModelFailedError,
    ThrottledError,
    http_error,
)
from dog_breeds.http_api import error_response
from dog_breeds.image_request import ImageRequest
from dog_breeds.predict_breeds import PredictBreeds
from dog_breeds.settings import SERVERLESS_RETRY_AFTER_SECONDS, PredictSettings
from offline_stack.sam_template import SamTemplate

ANSWER = [{"breed": "Akita", "class_index": 3, "probability": 0.9}]


class Endpoints:
    """SageMaker Runtime as the function sees it: each endpoint name answers, or raises what it is given."""

    def __init__(self, **outcomes):
        self.outcomes, self.called = outcomes, []

    def predict(self, endpoint_name, image, content_type, top_k):
        self.called.append(endpoint_name)
        outcome = self.outcomes[endpoint_name.replace("-", "_")]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def settings(fallback: str = "dog-breed-classifier") -> PredictSettings:
    environ = {"ENDPOINT_NAME": "dog-breed-classifier-serverless", "FALLBACK_ENDPOINT_NAME": fallback}
    return PredictSettings.from_environment(environ)


REQUEST = ImageRequest(image=b"\xff\xd8\xff", content_type="image/jpeg", top_k=1)


def test_the_old_kind_answers_until_the_new_endpoint_is_in_service():
    endpoints = Endpoints(
        dog_breed_classifier_serverless=EndpointNotInServiceError("not found"), dog_breed_classifier=ANSWER
    )
    assert PredictBreeds(settings(), endpoints)(REQUEST) == ANSWER
    assert endpoints.called == ["dog-breed-classifier-serverless", "dog-breed-classifier"]


def test_once_the_new_endpoint_serves_the_old_one_is_never_called():
    endpoints = Endpoints(dog_breed_classifier_serverless=ANSWER, dog_breed_classifier=AssertionError("not called"))
    assert PredictBreeds(settings(), endpoints)(REQUEST) == ANSWER
    assert endpoints.called == ["dog-breed-classifier-serverless"]


@pytest.mark.parametrize("failure", [ThrottledError("busy"), EndpointUnavailableError("cannot reach")])
def test_only_an_endpoint_not_in_service_falls_back(failure):
    """Throttling or a network failure of the serving endpoint is its answer: the old one would hide it."""
    endpoints = Endpoints(dog_breed_classifier_serverless=failure, dog_breed_classifier=ANSWER)
    with pytest.raises(type(failure)):
        PredictBreeds(settings(), endpoints)(REQUEST)
    assert endpoints.called == ["dog-breed-classifier-serverless"]


def test_without_a_fallback_an_absent_endpoint_is_503():
    endpoints = Endpoints(dog_breed_classifier_serverless=EndpointNotInServiceError("not found"))
    plain = PredictSettings.from_environment({"ENDPOINT_NAME": "dog-breed-classifier-serverless"})
    with pytest.raises(EndpointNotInServiceError) as raised:
        PredictBreeds(plain, endpoints)(REQUEST)
    assert http_error(raised.value).status == 503


def test_every_retryable_answer_says_when_to_retry_and_no_other_has_retry_after():
    answer = error_response(ThrottledError("ThrottlingException"), "req-1", Logger(service="test"))
    assert answer["statusCode"] == 429 and answer["headers"]["Retry-After"] == "1"
    assert json.loads(answer["body"])["error"]["code"] == "Throttled"
    unavailable = error_response(EndpointUnavailableError("x"), "req-2", Logger(service="test"))
    assert unavailable["statusCode"] == 503 and unavailable["headers"]["Retry-After"] == "30"
    # a timeout gets the client's backoff, not a Retry-After (RFC 9110 defines it for 503, 429 and redirects)
    timeout = error_response(EndpointTimeoutError("x"), "req-3", Logger(service="test"))
    assert timeout["statusCode"] == 504 and "Retry-After" not in timeout["headers"]
    for refused in (MalformedRequestError("x"), ModelFailedError("x")):
        assert "Retry-After" not in error_response(refused, "req-4", Logger(service="test"))["headers"]


def test_a_serverless_endpoint_that_does_not_answer_in_time_is_starting_503_with_retry_after():
    serverless = PredictSettings.from_environment(
        {"ENDPOINT_NAME": "dog-breed-classifier-serverless", "ENDPOINT_KIND": "serverless"}
    )
    endpoints = Endpoints(dog_breed_classifier_serverless=EndpointTimeoutError("no answer"))
    with pytest.raises(EndpointStartingError) as raised:
        PredictBreeds(serverless, endpoints)(REQUEST)
    answer = error_response(raised.value, "req-3", Logger(service="test"))
    assert answer["statusCode"] == 503 and answer["headers"]["Retry-After"] == str(SERVERLESS_RETRY_AFTER_SECONDS)
    assert json.loads(answer["body"])["error"]["code"] == "EndpointStarting"
    assert endpoints.called == ["dog-breed-classifier-serverless"]  # one call: no retry queued behind the start
    # an instance endpoint's timeout stays a 504: no cold start explains it
    instances = PredictSettings.from_environment({"ENDPOINT_NAME": "dog-breed-classifier"})
    with pytest.raises(EndpointTimeoutError) as raised:
        PredictBreeds(instances, Endpoints(dog_breed_classifier=EndpointTimeoutError("no answer")))(REQUEST)
    assert http_error(raised.value).status == 504


@pytest.mark.parametrize(
    ("kind", "max_image_bytes", "accepted"),
    [
        ("serverless", 4 * 1024 * 1024, 4_000_000),  # the serverless payload limit caps the template's default
        ("serverless", 1_000_000, 1_000_000),  # a smaller limit stands
        ("instances", 4 * 1024 * 1024, 4 * 1024 * 1024),
    ],
)
def test_a_serverless_stack_accepts_no_image_over_its_4_mb_payload_limit(kind, max_image_bytes, accepted):
    environ = {"ENDPOINT_NAME": "e", "ENDPOINT_KIND": kind, "MAX_IMAGE_BYTES": str(max_image_bytes)}
    assert PredictSettings.from_environment(environ).image_limit_bytes == accepted


@pytest.mark.parametrize("kind", ["instances", "serverless"])
def test_the_predict_functions_waits_fit_its_timeout_and_api_gateways_30_seconds(kind):
    template = SamTemplate.load(overrides={"EndpointKind": kind})
    function = template.function_properties("PredictFunction")
    environment = template.resolve(function["Environment"]["Variables"])
    waits = PredictSettings.from_environment(environment).timeouts
    worst = waits.max_attempts * (waits.connect_seconds + waits.read_seconds)
    assert worst < int(function["Timeout"]) < 30, (kind, worst)
    if kind == "serverless":  # one attempt: a retry would queue behind the cold start or start another
        assert waits.max_attempts == 1 and waits.read_seconds >= 20
