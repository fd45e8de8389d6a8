"""The one error table: each project error's status, code and message, and rows that cannot be altered."""

import dataclasses

import pytest

from dog_breeds.deploy_endpoint import read_deploy_event
from dog_breeds.errors import ERROR_TABLE, UNEXPECTED_ERROR, MalformedRequestError, ModelFailedError, http_error
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
    request = read_deploy_event({"training_job_name": "dog-breeds-job"}, EndpointDefaults("ml.m5.large", 1), "bucket")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.instance_count = 3
