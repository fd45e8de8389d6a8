"""The offline API checks what API Gateway checks for each AuthMode, and the post-deploy suite notices when it does not.

API Gateway's authorizers are emulated (``offline_stack/aws_rules/api_gateway.py`` cites the rules); the
signatures and tokens are real: SigV4 computed by botocore with the offline credentials, RS256 tokens from a
local issuer whose JWKS the authorizer fetches over loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from offline_stack.api_client import bearer, post_image, sigv4
from offline_stack.aws_rules.iam import Roles
from offline_stack.control_plane import DUMMY_CREDENTIALS
from offline_stack.jwt_issuer import LocalJwtIssuer
from offline_stack.offline_api import offline_api
from offline_stack.sam_template import PROJECT_ROOT, SamTemplate
from tests.support.models import DecodingModel

PHOTO = (PROJECT_ROOT / "tests" / "data" / "photos" / "dog.128.jpg").read_bytes()
AUDIENCE = "app-client-1"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def issuer():
    with LocalJwtIssuer() as local_issuer:
        yield local_issuer


@pytest.fixture(scope="module")
def iam_api():
    roles = Roles.from_template(SamTemplate.load())
    with offline_api(DecodingModel(), concurrency=2, auth={"AuthMode": "IAM"}, roles=roles) as (front, _):
        yield front, roles


@pytest.fixture(scope="module")
def jwt_api(issuer):
    auth = {"AuthMode": "JWT", "JwtIssuer": issuer.issuer, "JwtAudience": f"{AUDIENCE},app-client-2"}
    with offline_api(DecodingModel(), concurrency=2, auth=auth) as (front, _):
        yield front


def predict(front, sign) -> tuple[int, dict]:
    return post_image(front.url, PHOTO, "image/jpeg", retries=3, sign=sign)


def test_iam_answers_a_request_signed_by_a_known_caller(iam_api):
    front, _ = iam_api
    status, answer = predict(front, front.sign)
    assert status == 200 and answer["predictions"], answer


@pytest.mark.parametrize(
    "why, sign, message",
    [
        ("unsigned", None, "Forbidden"),
        ("wrong secret", sigv4({**DUMMY_CREDENTIALS, "AWS_SECRET_ACCESS_KEY": "guess"}, REGION), "signature"),
        ("unknown key", sigv4({"AWS_ACCESS_KEY_ID": "AKIAUNKNOWN", "AWS_SECRET_ACCESS_KEY": "x"}, REGION), "token"),
        (
            "expired",
            sigv4(DUMMY_CREDENTIALS, "us-east-1", signed_at=datetime.now(UTC) - timedelta(minutes=6)),
            "Signature expired",
        ),
        ("for another service", lambda m, u, b, h: _signed_for("sagemaker", m, u, b, h), "execute-api"),
    ],
)
def test_iam_refuses_with_403_what_api_gateway_refuses(iam_api, why, sign, message):
    front, _ = iam_api
    status, answer = predict(front, sign)
    assert status == 403 and message in answer["message"], (why, answer)


def _signed_for(service, method, url, body, headers):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials("testing", "testing", "testing"), service, "us-east-1").add_auth(request)
    return dict(request.headers)


def test_iam_refuses_a_template_role_whose_policy_does_not_allow_invoking_the_api(iam_api):
    # The prediction function's own role is a caller AWS knows, but nothing grants it execute-api:Invoke
    front, roles = iam_api
    role = roles.by_logical_id["PredictFunctionRole"]
    status, answer = predict(front, sigv4(role.environment(), "us-east-1"))
    assert status == 403 and "is not authorized to perform: execute-api:Invoke" in answer["message"], answer


def test_the_page_and_the_contract_stay_open_under_iam(iam_api):
    front, _ = iam_api
    for path in ("/", "/openapi.json"):
        with urllib.request.urlopen(f"{front.url}{path}", timeout=30) as answer:  # noqa: S310 (loopback)
            assert answer.status == 200


def test_jwt_answers_a_token_of_the_issuer_for_an_audience(jwt_api, issuer):
    status, answer = predict(jwt_api, bearer(issuer.token(AUDIENCE)))
    assert status == 200 and answer["predictions"], answer
    # client_id stands in for aud when aud is absent (Cognito's access tokens), and only then
    assert predict(jwt_api, bearer(issuer.token(None, client_id=AUDIENCE)))[0] == 200
    assert predict(jwt_api, bearer(issuer.token("someone-else", client_id=AUDIENCE)))[0] == 401


@pytest.mark.parametrize(
    "why, token",
    [
        ("no token", lambda issuer: ""),
        ("signed by another key", lambda issuer: issuer.foreign_token(AUDIENCE)),
        ("expired", lambda issuer: issuer.token(AUDIENCE, expires_in=-60)),
        ("for another audience", lambda issuer: issuer.token("someone-else")),
        ("from another issuer", lambda issuer: issuer.token(AUDIENCE, iss="https://elsewhere.example.com")),
        ("not yet valid", lambda issuer: issuer.token(AUDIENCE, nbf=int(datetime.now(UTC).timestamp()) + 600)),
        ("not a JWT", lambda issuer: "not.a.token"),
    ],
)
def test_jwt_refuses_with_401_what_api_gateway_refuses(jwt_api, issuer, why, token):
    value = token(issuer)
    status, answer = predict(jwt_api, bearer(value) if value else None)
    assert (status, answer) == (401, {"message": "Unauthorized"}), why


def test_a_jwt_refusal_says_why_in_www_authenticate(jwt_api, issuer):
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{jwt_api.url}/predictions",
        data=PHOTO,
        headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {issuer.token('someone-else')}"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refusal:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert 'error="invalid_token"' in refusal.value.headers["www-authenticate"]
    assert "audience" in refusal.value.headers["www-authenticate"]


def test_none_is_open():
    with offline_api(DecodingModel(), auth={"AuthMode": "NONE"}) as (front, _):
        assert predict(front, None)[0] == 200


# --- The post-deploy suite (tests/deployed), run here as `make integration-test` runs it ---------------------------


def run_suite(tmp_path, outputs: dict, **environment) -> subprocess.CompletedProcess:
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    env = {**os.environ, **DUMMY_CREDENTIALS, "STACK_OUTPUTS_FILE": str(tmp_path / "outputs.json"), **environment}
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/deployed"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_suite_passes_against_an_api_that_enforces_iam(iam_api, tmp_path):
    front, _ = iam_api
    result = run_suite(tmp_path, {"ApiUrl": front.url, "ApiAuthMode": "IAM", "EndpointName": "e"})
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_suite_fails_when_an_iam_api_answers_unsigned_requests(tmp_path):
    # Given an API that claims AuthMode=IAM but checks nothing
    with offline_api(DecodingModel()) as (front, _):
        result = run_suite(tmp_path, {"ApiUrl": front.url, "ApiAuthMode": "IAM", "EndpointName": "e"})
    # Then the suite fails, on the requests that should have been refused
    assert result.returncode == 1
    assert "FAILED tests/deployed/test_stage.py::test_a_request_without_credentials_is_refused" in result.stdout
    assert "FAILED tests/deployed/test_stage.py::test_requests_with_forged_credentials_are_refused" in result.stdout


def test_the_suite_passes_against_an_api_that_enforces_jwt(jwt_api, issuer, tmp_path):
    outputs = {"ApiUrl": jwt_api.url, "ApiAuthMode": "JWT", "EndpointName": "e"}
    result = run_suite(tmp_path, outputs, API_TOKEN=issuer.token(AUDIENCE, expires_in=600))
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_suite_fails_when_a_jwt_api_accepts_a_bad_token(issuer, tmp_path):
    # Given an API that claims AuthMode=JWT but takes any token
    with offline_api(DecodingModel()) as (front, _):
        outputs = {"ApiUrl": front.url, "ApiAuthMode": "JWT", "EndpointName": "e"}
        result = run_suite(tmp_path, outputs, API_TOKEN=issuer.token(AUDIENCE, expires_in=600))
    assert result.returncode == 1
    assert "FAILED tests/deployed/test_stage.py::test_requests_with_forged_credentials_are_refused" in result.stdout


def _make_predict(front, tmp_path, *options: str, profile: dict | None = None) -> subprocess.CompletedProcess:
    """`make predict`'s command against the offline API, its credentials from a profile only (an SSO or profile
    user has no keys in the environment: the README's one signed request must work for them)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "credentials")
    environment["AWS_CONFIG_FILE"] = str(tmp_path / "config")
    (tmp_path / "config").write_text("")
    if profile is not None:
        lines = "".join(f"{key.lower()} = {value}\n" for key, value in profile.items())
        (tmp_path / "credentials").write_text(f"[photos]\n{lines}")
        environment["AWS_PROFILE"] = "photos"
    command = [sys.executable, "-m", "ops.predict", "--image", str(PROJECT_ROOT / "tests/data/photos/dog.128.jpg")]
    return subprocess.run(
        [*command, "--api-url", front.url, "--region", REGION, *options],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_predict_signs_with_a_profiles_credentials_and_shows_the_answer(iam_api, tmp_path):
    front, _ = iam_api
    done = _make_predict(front, tmp_path, "--top-k", "2", profile=DUMMY_CREDENTIALS)
    assert done.returncode == 0, done.stdout + done.stderr
    status_line, _, body = done.stdout.partition("\n")
    assert status_line.startswith("200 (X-Request-Id: ") and status_line != "200 (X-Request-Id: None)"
    assert len(json.loads(body)["predictions"]) == 2


def test_make_predict_without_credentials_says_where_they_come_from_and_unsigned_meets_the_403(iam_api, tmp_path):
    front, _ = iam_api
    missing = _make_predict(front, tmp_path)
    assert missing.returncode != 0 and "no AWS credentials found" in missing.stderr + missing.stdout
    unsigned = _make_predict(front, tmp_path, "--unsigned")
    assert unsigned.returncode == 1 and unsigned.stdout.startswith("403")
