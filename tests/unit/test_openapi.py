"""The API's OpenAPI document is valid and says what the code does (statuses, codes, bodies, top_k)."""

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

import dog_breeds
from dog_breeds.errors import ERROR_TABLE, UNEXPECTED_ERROR
from dog_breeds.http_api import CORRELATION_ID_PATTERN, OPENAPI_ROUTE, answer_document_request
from dog_breeds.image_request import ACCEPTED_MEDIA_TYPES
from dog_breeds.settings import DEFAULT_TOP_K, MAX_TOP_K
from offline_stack.sam_template import SamTemplate

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
    top_k, correlation = PREDICT["parameters"]
    assert (top_k["schema"]["maximum"], top_k["schema"]["default"]) == (MAX_TOP_K, DEFAULT_TOP_K)
    # the caller's id is echoed exactly when it matches the documented pattern; any other value is accepted (and
    # not echoed), so the request parameter is any string and the answer's header carries the pattern
    pattern = f"^{CORRELATION_ID_PATTERN.pattern}$"
    assert correlation["schema"] == {"type": "string"} and correlation["in"] == "header"
    assert pattern in correlation["description"]
    assert DOCUMENT["components"]["headers"]["X-Correlation-Id"]["schema"]["pattern"] == pattern
    for response in PREDICT["responses"].values():
        assert set(response["headers"]) >= {"X-Request-Id", "X-Correlation-Id"}


def test_the_function_serves_the_document_on_its_route():
    answer = answer_document_request({"routeKey": OPENAPI_ROUTE, "requestContext": {}})
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == DOCUMENT


IMAGE_SCHEMA = DOCUMENT["components"]["schemas"]["ImageJson"]["properties"]["image"]


def _schema_valid(value: str) -> bool:
    from openapi_schema_validator import OAS31Validator

    return OAS31Validator(IMAGE_SCHEMA).is_valid(value)


@pytest.mark.parametrize("refused", ["", "/9j/", "iVBORw0KGgo=", "not base64 at all!!", "/9j/4AAQSkZJRgABAQ"])
def test_an_image_the_api_refuses_for_its_form_is_not_schema_valid_either(refused):
    # Empty, shorter than any JPEG or PNG (the function refuses under MIN_IMAGE_BYTES), not base64, unpadded
    assert not _schema_valid(refused)


def test_the_image_bounds_are_the_functions():
    import base64

    from dog_breeds.image_request import MIN_IMAGE_BYTES
    from dog_breeds.settings import PredictSettings

    photo = (Path(__file__).parents[1] / "data" / "photos" / "dog.128.jpg").read_bytes()
    assert _schema_valid(base64.b64encode(photo).decode())
    # minLength: every base64 string that long decodes to at least MIN_IMAGE_BYTES, and every shorter one to fewer
    shortest = IMAGE_SCHEMA["minLength"]
    assert len(base64.b64decode("A" * (shortest - 2) + "==")) >= MIN_IMAGE_BYTES
    assert len(base64.b64decode("A" * (shortest - 4))) < MIN_IMAGE_BYTES
    # maxLength: the base64 of the default MaxImageBytes
    largest = PredictSettings.__dataclass_fields__["max_image_bytes"].default
    assert IMAGE_SCHEMA["maxLength"] == len(base64.b64encode(b"\0" * largest))


def test_callers_are_told_when_their_photos_are_kept_and_for_how_long():
    import dataclasses

    from dog_breeds.settings import PageSettings

    settings = PageSettings.from_environment({})
    assert settings.data_capture_percent == 0 and settings.capture_notice == ""  # off by default: nothing to say

    def served(route: str, notice: str) -> str:
        return answer_document_request({"routeKey": route, "requestContext": {}}, notice)["body"]

    assert 'id="notice"' not in served("GET /", "")
    on = dataclasses.replace(settings, data_capture_percent=5, data_capture_retention_days=14)
    page, contract = served("GET /", on.capture_notice), json.loads(served(OPENAPI_ROUTE, on.capture_notice))
    assert '<p id="notice" class="notice">Data capture is on: 5 % of the photos' in page and "14 days" in page
    assert contract["info"]["description"].endswith(on.capture_notice)
    # The page's policy still holds: the notice is text, not script or style
    from dog_breeds.http_api import page_content_security_policy

    assert "unsafe-inline" not in page_content_security_policy()


def test_captured_requests_expire_with_their_old_versions():
    from offline_stack.sam_template import SamTemplate

    template = SamTemplate.load()
    assert template.parameters["DataCapturePercent"] == "0"
    (rule,) = template.resource("ArtifactsBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    assert (rule["Prefix"], rule["Status"]) == ("data-capture/", "Enabled")
    assert rule["ExpirationInDays"] == {"Ref": "DataCaptureRetentionDays"}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    from dog_breeds.deploy_endpoint import DATA_CAPTURE_PREFIX

    assert rule["Prefix"] == f"{DATA_CAPTURE_PREFIX}/"


def test_the_page_function_answers_its_two_routes_only():
    answer = answer_document_request({"routeKey": "POST /predictions", "requestContext": {}})
    message = json.loads(answer["body"])["message"]
    assert answer["statusCode"] == 404 and "GET /openapi.json and GET / only, not 'POST /predictions'" in message


@pytest.mark.parametrize(
    ("auth_mode", "security"),
    [("IAM", [{"sigv4": []}]), ("JWT", [{"jwt": []}]), ("NONE", [])],
)
def test_the_served_contract_names_its_stage_and_the_credentials_its_auth_mode_asks_for(auth_mode, security):
    event = {
        "routeKey": "GET /openapi.json",
        "requestContext": {"domainName": "a1b2c3.execute-api.eu-west-3.amazonaws.com"},
    }
    served = json.loads(answer_document_request(event, auth_mode=auth_mode)["body"])
    assert served["servers"] == [
        {
            "url": "https://a1b2c3.execute-api.eu-west-3.amazonaws.com",
            "description": "the stage that served this document",
        }
    ]
    assert served["paths"]["/predictions"]["post"]["security"] == security
    validate(served)


def test_the_contract_declares_sigv4_as_api_gateway_exports_it_and_lists_every_route():
    scheme = DOCUMENT["components"]["securitySchemes"]["sigv4"]
    assert (scheme["type"], scheme["name"], scheme["in"]) == ("apiKey", "Authorization", "header")
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert "security" not in DOCUMENT  # each operation says what it asks for; none is open by default
    template = SamTemplate.load()
    routes = {
        resource["Properties"]["RouteKey"]
        for resource in template.resources.values()
        if resource["Type"] == "AWS::ApiGatewayV2::Route"
    }
    documented = {f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item}
    assert routes == documented


def test_a_contract_asked_for_by_an_unreadable_host_keeps_its_placeholder_server():
    event = {"routeKey": "GET /openapi.json", "requestContext": {"domainName": "evil.example/<script>"}}
    served = json.loads(answer_document_request(event, auth_mode="IAM")["body"])
    assert served["servers"] == DOCUMENT["servers"]


def test_answers_allow_additive_fields_and_requests_stay_strict():
    schemas = DOCUMENT["components"]["schemas"]
    for name in ("Predictions", "Error"):
        assert "additionalProperties" not in schemas[name], f"{name}: a client must tolerate a field added later"
    assert schemas["ImageJson"]["additionalProperties"] is False  # the API answers an unknown field with a 400
