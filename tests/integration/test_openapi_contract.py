"""Real answers of the offline API validate against the OpenAPI document it serves at GET /openapi.json."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from offline_stack.offline_api import offline_api
from offline_stack.sam_template import PROJECT_ROOT
from tests.conftest import ENDPOINT_NAME
from tests.support.contract import assert_matches_contract
from tests.support.models import CannedModel

PHOTO = (PROJECT_ROOT / "tests" / "data" / "photos" / "dog.128.jpg").read_bytes()


@pytest.fixture(scope="module")
def api():
    with offline_api(CannedModel()) as (front, server):
        yield front, server


def call(url: str, method: str = "GET", body: bytes | None = None, content_type: str = "") -> tuple[int, dict]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refusal:
        return refusal.code, json.loads(refusal.read())


@pytest.fixture(scope="module")
def contract(api):
    front, _ = api
    status, document = call(f"{front.url}/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.1")
    return document


@pytest.mark.parametrize(
    "query, body, content_type, status",
    [
        ("?top_k=3", PHOTO, "image/jpeg", 200),
        ("", json.dumps({"image": base64.b64encode(PHOTO).decode()}).encode(), "application/json", 200),
        ("?top_k=0", PHOTO, "image/jpeg", 400),
        ("", b"{not json", "application/json", 400),
        ("", PHOTO, "image/gif", 415),
        ("", b"not an image at all", "image/jpeg", 422),
        ("", b"\x00" * (4 * 1024 * 1024 + 1), "image/png", 413),
    ],
)
def test_answers_validate_against_the_served_contract(api, contract, query, body, content_type, status):
    front, _ = api
    answered, answer = call(f"{front.url}/predictions{query}", "POST", body, content_type)
    assert answered == status, answer
    assert_matches_contract(contract, status, answer)


def test_an_unavailable_endpoint_answer_validates_too(api, contract):
    front, server = api
    model = server.models[ENDPOINT_NAME]
    server.remove(ENDPOINT_NAME)
    try:
        status, answer = call(f"{front.url}/predictions", "POST", PHOTO, "image/jpeg")
    finally:
        server.serve(ENDPOINT_NAME, model)
    assert status == 503
    assert_matches_contract(contract, status, answer)


def test_a_body_the_contract_does_not_allow_fails_validation(contract):
    # The check can fail: a prediction without its probability is not what the document promises
    with pytest.raises(Exception, match="probability"):
        assert_matches_contract(
            contract, 200, {"predictions": [{"breed": "Beagle", "class_index": 15}], "request_id": "r"}
        )


def test_an_answer_with_a_field_the_contract_does_not_declare_fails_validation(contract):
    # Clients tolerate additions; the project's own answers still carry only declared fields
    with pytest.raises(Exception, match="model_version"):
        assert_matches_contract(contract, 200, {"predictions": [], "request_id": "r", "model_version": "7"})
