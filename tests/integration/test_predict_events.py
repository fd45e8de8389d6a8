"""Every file in events/ through PredictFunction as template.yaml wires it (offline `sam local invoke -e`)."""

import pytest

from tests.conftest import all_event_files, load_event, response_json
from tests.event_expectations import API_EVENTS, EXPECTATIONS
from tests.support.models import CANNED_BREEDS


def test_every_event_file_has_an_expectation():
    # Given the events users run with `sam local invoke -e`
    names = {path.name for path in all_event_files()}
    # Then each is declared in the one expectations table, and the table names no missing file
    assert names == set(EXPECTATIONS)


@pytest.mark.parametrize("event_name", API_EVENTS)
def test_event_gives_the_expected_answer(event_name, predict_function):
    expected = EXPECTATIONS[event_name]
    event = load_event(event_name)
    # When the event is invoked against the function the template defines
    with predict_function() as function:
        response = function.invoke(event)
    body = response_json(response)
    # Then the status, the body shape and the request id are what an API consumer must see
    assert response["statusCode"] == expected.status, body
    assert body["request_id"] == event["requestContext"]["requestId"]
    if expected.error_code is None:
        breeds = [p["breed"] for p in body["predictions"]]
        assert breeds == [name for name, _, _ in CANNED_BREEDS[: expected.top_k]]
        probabilities = [p["probability"] for p in body["predictions"]]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1
    else:
        assert body["error"]["code"] == expected.error_code
        assert "Traceback" not in body["error"]["message"]


@pytest.mark.parametrize(
    "event, what_is_named",
    [
        ({}, "requestContext"),
        ("a string, not an event", "payload format 2.0"),
        ({"requestContext": {"requestId": "r-1"}, "routeKey": "GET /predictions"}, "POST /predictions"),
        ({"requestContext": {"requestId": "r-1"}, "headers": {"content-type": 7}}, "map text to text"),
        ({"requestContext": {"requestId": "r-1"}, "body": {"not": "text"}}, "body be text"),
    ],
)
def test_an_event_that_is_not_a_prediction_request_is_refused_with_what_is_accepted(
    event, what_is_named, predict_function
):
    # Given an event that is not an HTTP API POST /predictions event (a test console, a wrong route, a bad shape)
    with predict_function() as function:
        response = function.invoke(event)
    body = response_json(response)
    # Then the answer is a 400 that says what the function accepts, not a 500 or a stack trace
    assert response["statusCode"] == 400, body
    assert body["error"]["code"] == "MalformedRequest"
    assert what_is_named in body["error"]["message"]
