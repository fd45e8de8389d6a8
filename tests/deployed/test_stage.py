"""After a deploy: does this stage answer as the contract says, to the callers it should, and only to them?

Every answer is checked against the OpenAPI document the stage itself serves (GET /openapi.json), so a
deployed API and its published contract cannot drift apart unnoticed.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from openapi_spec_validator import validate as validate_spec

from dog_breeds.settings import MAX_TOP_K
from offline_stack.api_client import Signer, request, sigv4
from offline_stack.sam_template import PROJECT_ROOT
from tests.conftest import load_event
from tests.event_expectations import EXPECTATIONS
from tests.support.contract import assert_matches_contract

PHOTOS = PROJECT_ROOT / "tests" / "data" / "photos"
MAX_IMAGE_BYTES = 4 * 1024 * 1024  # the template's MaxImageBytes default
PREDICT_EVENTS = sorted(name for name, expected in EXPECTATIONS.items() if expected.function == "PredictFunction")


def call(
    url: str, method: str = "GET", body: bytes = b"", headers: dict | None = None, sign: Signer | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP exchange; a 429 (the route throttle) is waited out, as docs/api.md asks clients to."""
    for attempt in range(8):
        try:
            with urllib.request.urlopen(request(method, url, body, headers or {}, sign), timeout=60) as answer:  # noqa: S310
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as refusal:
            if refusal.code != 429 or attempt == 7:
                return refusal.code, dict(refusal.headers), refusal.read()
        time.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def contract(stage) -> dict:
    status, _, body = call(f"{stage.api_url}/openapi.json")
    assert status == 200, body[:200]
    return json.loads(body)


def predict(stage, body: bytes, content_type: str, query: dict | None = None, sign: Signer | None = None):
    url = f"{stage.api_url}/predictions" + (f"?{urlencode(query)}" if query else "")
    status, _, answer = call(url, "POST", body, {"Content-Type": content_type}, sign or stage.sign)
    return status, json.loads(answer)


@pytest.fixture(scope="session")
def breeds_known(stage) -> int:
    """How many breeds the served model knows, up to the API's most (a request asks for top_k, and gets that many
    or every breed the model has: 133 for a dogImages model, 4 for the offline rehearsal's generated data)."""
    status, answer = predict(stage, (PHOTOS / "dog.128.jpg").read_bytes(), "image/jpeg", {"top_k": MAX_TOP_K})
    assert status == 200, answer
    return len(answer["predictions"])


def test_the_published_contract_is_a_valid_openapi_document(contract):
    validate_spec(contract)
    assert "/predictions" in contract["paths"]


@pytest.mark.parametrize("name", PREDICT_EVENTS)
def test_each_sample_event_gets_its_documented_answer(stage, contract, breeds_known, name):
    # Given a sample event of events/, sent as the HTTP request it stands for
    event = load_event(name)
    body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event.get("body", "").encode()
    headers = {name.lower(): value for name, value in event.get("headers", {}).items()}
    content_type = headers.get("content-type", "")
    if int(headers.get("content-length", len(body))) > len(body):  # an event that only claims a large body:
        body = b"\0" * (MAX_IMAGE_BYTES + 1)  # send one over the default limit (its base64 fits Lambda's 6 MB)
    # When it is sent, signed as the stage asks
    status, answer = predict(stage, body, content_type, event.get("queryStringParameters"))
    # Then the answer is the one events/ documents, in the contract's shape
    expected = EXPECTATIONS[name]
    assert status == expected.status, answer
    assert_matches_contract(contract, status, answer)
    if status == 200:
        assert len(answer["predictions"]) == min(expected.top_k, breeds_known)
    else:
        assert answer["error"]["code"] == expected.error_code


@pytest.mark.parametrize("photo", ["dog.128.jpg", "dog_cat.png"])
def test_a_real_photo_gets_breeds_ranked_by_probability(stage, contract, photo):
    content_type = "image/png" if photo.endswith(".png") else "image/jpeg"
    status, answer = predict(stage, (PHOTOS / photo).read_bytes(), content_type, {"top_k": 3})
    assert status == 200, answer
    assert_matches_contract(contract, status, answer)
    probabilities = [p["probability"] for p in answer["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
    assert all(p["breed"] for p in answer["predictions"])


def test_a_damaged_image_gets_its_documented_4xx(stage, contract):
    damaged = (PHOTOS / "dog.128.jpg").read_bytes()[:300]  # the header, then nothing
    status, answer = predict(stage, damaged, "image/jpeg")
    assert status == 422 and answer["error"]["code"] == "UndecodableImage", answer
    assert_matches_contract(contract, status, answer)


def test_the_web_page_loads(stage):
    status, headers, page = call(f"{stage.api_url}/")
    assert status == 200 and headers.get("Content-Type", "").startswith("text/html")
    assert b"<title>Dog breed classifier</title>" in page and b'type="file"' in page and b"predictions" in page


def test_a_request_without_credentials_is_refused(stage):
    photo = (PHOTOS / "dog.128.jpg").read_bytes()
    status, answer = predict(stage, photo, "image/jpeg", sign=lambda method, url, body, headers: headers)
    if stage.auth_mode == "NONE":  # open by the stage's own choice: answered
        assert status == 200, answer
    else:
        expected = {"IAM": (403, "Forbidden"), "JWT": (401, "Unauthorized")}[stage.auth_mode]
        assert (status, answer) == (expected[0], {"message": expected[1]})


def _forged(stage) -> list[tuple[str, Signer]]:
    """Credentials that look right and are not: what the API must refuse."""
    if stage.auth_mode == "IAM":
        other_secret = sigv4({**stage.credentials, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}, stage.region)
        unknown = sigv4({"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "x" * 40}, stage.region)
        expired = sigv4(stage.credentials, stage.region, signed_at=datetime.now(UTC) - timedelta(minutes=10))
        return [("a wrong secret", other_secret), ("an unknown key", unknown), ("a signature 10 minutes old", expired)]
    if stage.auth_mode == "JWT":
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        real_token = stage.sign("POST", stage.api_url, b"", {})["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(real_token, options={"verify_signature": False})
        header = jwt.get_unverified_header(real_token)
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": header.get("kid", "")})
        expired = jwt.encode(claims | {"exp": int(time.time()) - 600}, stranger, algorithm="RS256")
        return [
            ("a token signed by another key", lambda m, u, b, h: {**h, "Authorization": f"Bearer {forged}"}),
            ("an expired token of another key", lambda m, u, b, h: {**h, "Authorization": f"Bearer {expired}"}),
            ("a token that is not a JWT", lambda m, u, b, h: {**h, "Authorization": "Bearer not.a.token"}),
        ]
    return []


def test_requests_with_forged_credentials_are_refused(stage):
    if stage.auth_mode == "NONE":
        pytest.skip("AuthMode=NONE: this stage checks no credentials (an explicit opt-out of the template)")
    photo = (PHOTOS / "dog.128.jpg").read_bytes()
    expected = 403 if stage.auth_mode == "IAM" else 401
    answers = {why: predict(stage, photo, "image/jpeg", sign=forger) for why, forger in _forged(stage)}
    assert {why: status for why, (status, _) in answers.items()} == dict.fromkeys(answers, expected), answers
