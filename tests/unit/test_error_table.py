"""The one error table: each project error's status, code and message, and rows that cannot be altered."""

import dataclasses

import pytest

from dog_breeds.control_events import from_event, read_event, whole_number
from dog_breeds.deploy_endpoint import read_deploy_event
from dog_breeds.errors import (
    ERROR_TABLE,
    UNEXPECTED_ERROR,
    InvalidEventError,
    MalformedRequestError,
    ModelFailedError,
    http_error,
)
from dog_breeds.settings import EndpointDefaults


def test_client_errors_show_their_own_message_and_server_errors_a_fixed_one():
    assert http_error(MalformedRequestError("top_k must be ...")).message == "top_k must be ..."
    assert http_error(ModelFailedError("CUDA out of memory")).message == "The model failed to answer this request."
    unexpected = http_error(KeyError("secret"))
    assert (unexpected.status, unexpected.code, unexpected.message) == (
        500,
        "InternalError",
        "An internal error occurred.",
    )


def test_the_table_and_its_answers_are_constants():
    row = ERROR_TABLE[MalformedRequestError]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = 200
    with pytest.raises(dataclasses.FrozenInstanceError):
        UNEXPECTED_ERROR.code = "Fine"
    with pytest.raises(dataclasses.FrozenInstanceError):
        http_error(MalformedRequestError("x")).status = 200


def test_a_deploy_request_is_a_value():
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/dog-breed-classifier/1"
    request = read_deploy_event({"model_package_arn": package}, EndpointDefaults("ml.m5.large", 1), "bucket")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.instance_count = 3


def test_an_event_field_with_no_default_anywhere_is_required_by_name():
    @dataclasses.dataclass(frozen=True)
    class Resize:
        instance_count: int = from_event(whole_number(1, 10))

    with pytest.raises(InvalidEventError, match="missing field 'instance_count'"):
        read_event(Resize, {})
    assert read_event(Resize, {"instance_count": 3}).instance_count == 3


def test_a_message_is_cut_only_past_500_characters_and_then_to_500():
    from dog_breeds.errors import MAX_MESSAGE_CHARS, MalformedRequestError, http_error

    assert MAX_MESSAGE_CHARS == 500
    exactly = http_error(MalformedRequestError("m" * 500)).message
    assert exactly == "m" * 500
    cut = http_error(MalformedRequestError("m" * 501)).message
    assert cut == "m" * 497 + "..." and len(cut) == 500


def test_an_excerpt_quotes_at_most_its_limit_and_says_how_long_the_rest_was():
    from dog_breeds.errors import excerpt

    assert excerpt("x" * 40) == repr("x" * 40)
    assert excerpt("x" * 41) == f"{'x' * 40!r}... (41 characters)"
    assert excerpt("abcdef", limit=3) == "'abc'... (6 characters)" and excerpt("abc", limit=3) == "'abc'"
