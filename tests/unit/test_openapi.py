"""The API's OpenAPI document is valid and says what the code does (statuses, codes, bodies, top_k)."""

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

import dog_breeds
from dog_breeds.errors import ERROR_TABLE, UNEXPECTED_ERROR
from dog_breeds.http_api import OPENAPI_ROUTE, answer_api_request
from dog_breeds.image_request import ACCEPTED_MEDIA_TYPES
from dog_breeds.settings import DEFAULT_TOP_K, MAX_TOP_K

DOCUMENT = json.loads((Path(dog_breeds.__file__).parent / "openapi.json").read_text())
PREDICT = DOCUMENT["paths"]["/predictions"]["post"]


def test_the_document_is_valid_openapi_3_1():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


@pytest.mark.parametrize("row", [*ERROR_TABLE.values(), UNEXPECTED_ERROR], ids=lambda row: row.code)
def test_every_row_of_the_error_table_is_a_documented_response_with_its_code(row):
    response = PREDICT["responses"][str(row.status)]
    assert row.code in response["description"]
    assert row.code in json.dumps(response["content"]["application/json"]["schema"])


def test_the_request_bodies_and_top_k_are_the_ones_the_code_accepts():
    assert tuple(PREDICT["requestBody"]["content"]) == ACCEPTED_MEDIA_TYPES
    (top_k,) = PREDICT["parameters"]
    assert (top_k["schema"]["maximum"], top_k["schema"]["default"]) == (MAX_TOP_K, DEFAULT_TOP_K)


def test_the_function_serves_the_document_on_its_route():
    answer = answer_api_request({"routeKey": OPENAPI_ROUTE, "requestContext": {}}, None, None, None)
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == DOCUMENT
