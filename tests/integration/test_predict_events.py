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
