"""API Gateway's route authorization as the offline API applies it (``offline_stack/aws_rules/api_gateway.py``):
each refusal, in AWS's words, at its boundary. Requests are really signed (botocore's SigV4) and tokens really
issued (RS256 keys made here); only the issuer's discovery document is skipped (the key is handed over, where
tests/integration/test_api_auth.py fetches it from a local issuer over loopback)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from offline_stack.api_client import sigv4
from offline_stack.aws_rules.api_gateway import Caller, IamAuthorization, JwtAuthorization
from offline_stack.aws_rules.iam import BAD_SIGNATURE, HOST_NOT_SIGNED

KEY, SECRET, TOKEN = "AKIDEXAMPLE", "secret/example", "session-token"
ROUTE_ARN = "arn:aws:execute-api:us-east-1:123456789012:api/$default/POST/predictions"
URL, BODY = "http://127.0.0.1:3000/predictions", b'{"image":"x"}'


def _iam(may_invoke=lambda arn: arn == ROUTE_ARN, token: str | None = TOKEN) -> IamAuthorization:
    caller = Caller(KEY, SECRET, token, may_invoke, "arn:aws:sts::123456789012:assumed-role/client/session")
    return IamAuthorization([caller], lambda route: ROUTE_ARN, "us-east-1")


def _signed(secret: str = SECRET, key: str = KEY, at: datetime | None = None, region: str = "us-east-1") -> dict:
    credentials = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": TOKEN}
    return sigv4(credentials, region, signed_at=at)("POST", URL, BODY, {"Content-Type": "application/json"})


def _check(authorization, headers: dict, body: bytes = BODY):
    return authorization("POST", "/predictions", {**headers, "host": "127.0.0.1:3000"}, body, "POST /predictions")


def test_a_signed_request_of_an_allowed_caller_passes():
    assert _check(_iam(), _signed()) is None


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (lambda: {}, "Forbidden"),
        (lambda: _signed(key="AKIDOTHER"), "The security token included in the request is invalid."),
        (
            lambda: {**_signed(), "X-Amz-Security-Token": "another"},
            "The security token included in the request is invalid.",
        ),
        (lambda: _signed(secret="wrong"), "The request signature we calculated does not match"),
        (lambda: {**_signed(), "X-Amz-Date": "yesterday"}, "Authorization header requires existence of either"),
    ],
)
def test_each_bad_signature_gets_its_403(headers, message):
    refusal = _check(_iam(), headers())
    assert refusal.status == 403 and refusal.message.startswith(message)


def test_a_signature_scoped_to_another_service_is_refused():
    headers = _signed()
    headers["Authorization"] = headers["Authorization"].replace("/execute-api/", "/lambda/")
    assert _check(_iam(), headers).message == "Credential should be scoped to correct service: 'execute-api'."


def test_a_signature_is_good_for_five_minutes_either_way():
    now = datetime.now(UTC)
    assert _check(_iam(), _signed(at=now - timedelta(seconds=290))) is None
    assert _check(_iam(), _signed(at=now + timedelta(seconds=290))) is None
    late = _check(_iam(), _signed(at=now - timedelta(seconds=310)))
    assert late.status == 403 and late.message.startswith("Signature expired: ") and late.message.endswith(" - 5 min.)")
    assert _check(_iam(), _signed(at=now + timedelta(seconds=310))).message.startswith("Signature expired")


def test_a_changed_body_breaks_the_signature():
    assert _check(_iam(), _signed(), body=b'{"image":"y"}').message.startswith("The request signature")


def test_a_caller_without_invoke_on_the_route_is_told_who_and_what():
    refusal = _check(_iam(may_invoke=lambda arn: False), _signed())
    assert refusal.message == (
        "User: arn:aws:sts::123456789012:assumed-role/client/session is not authorized to perform: "
        f"execute-api:Invoke on resource: {ROUTE_ARN}"
    )


def test_a_caller_without_a_session_token_needs_none():
    headers = _signed()
    del headers["X-Amz-Security-Token"]
    assert _check(_iam(token=None), headers).message.startswith("The request signature")  # it was signed with one


ISSUER = "https://issuer.example"
PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _Key:
    key = PRIVATE.public_key()


def _jwt_authorization(audiences=("api-client",)) -> JwtAuthorization:
    authorization = JwtAuthorization(ISSUER + "/", list(audiences))
    authorization._signing_key = lambda token: _Key()  # the JWKS lookup, done over loopback in the integration test
    return authorization


def _token(key=PRIVATE, algorithm="RS256", **claims) -> str:
    now = datetime.now(UTC)
    body = {"iss": ISSUER, "aud": "api-client", "exp": now + timedelta(minutes=5), "iat": now, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


def _bearer(authorization, token: str):
    return authorization("POST", "/predictions", {"Authorization": token}, b"", "POST /predictions")


def test_a_token_of_the_issuer_for_an_audience_passes_with_or_without_bearer():
    assert _bearer(_jwt_authorization(), f"Bearer {_token()}") is None
    assert _bearer(_jwt_authorization(), _token()) is None
    assert _bearer(_jwt_authorization(), _token(aud=["other", "api-client"])) is None
    assert _bearer(_jwt_authorization(), _token(aud=None, client_id="api-client")) is None


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda: "", "the request has no token"),
        (lambda: _token(aud="another-client"), "the token does not have a valid audience"),
        (lambda: _token(aud=None), "the token does not have a valid audience"),
        (lambda: _token(iss="https://elsewhere.example"), "Invalid issuer"),
        (lambda: _token(exp=datetime.now(UTC) - timedelta(seconds=5)), "Signature has expired"),
        (lambda: _token(exp=None), 'Token is missing the "exp" claim'),
        (lambda: _token(key=OTHER), "Signature verification failed"),
        (lambda: _token(key="a-shared-secret-of-32-bytes-or-more", algorithm="HS256"), "alg"),
        (lambda: "not.a.token", "Invalid"),
    ],
)
def test_each_bad_token_gets_401_with_the_reason_in_www_authenticate(token, why):
    refusal = _bearer(_jwt_authorization(), token())
    assert (refusal.status, refusal.message) == (401, "Unauthorized")
    ((name, challenge),) = refusal.headers
    assert name == "www-authenticate" and challenge.startswith('Bearer scope="" error="invalid_token"')
    description = challenge.split('error_description="', 1)[1][:-1]
    assert why.replace('"', "'") in description or why.lower() in description.lower()
    assert '"' not in description and len(description) <= 200


def test_empty_audiences_accept_no_token():
    assert _bearer(_jwt_authorization(audiences=("", "")), _token()).status == 401


def test_the_issuers_keys_are_found_through_its_discovery_document_once():
    from offline_stack.jwt_issuer import LocalJwtIssuer

    with LocalJwtIssuer() as issuer:
        assert issuer.issuer.startswith("https://")
        authorization = JwtAuthorization(issuer.issuer, ["api-client"], ssl_context=issuer.client_context())
        assert _bearer(authorization, f"Bearer {issuer.token('api-client')}") is None
        keys = authorization._keys
        assert _bearer(authorization, issuer.token("api-client")) is None and authorization._keys is keys  # cached
        refusal = _bearer(authorization, issuer.foreign_token("api-client"))
        assert refusal is not None and refusal.status == 401


def test_an_issuer_whose_keys_would_travel_over_plain_http_is_refused():
    with pytest.raises(ValueError, match="is not an https:// URL"):
        JwtAuthorization("http://issuer.example", ["api-client"])


def test_an_issuer_this_process_does_not_trust_gets_no_token_through():
    """The loopback issuer's CA is trusted only where it is handed over: a default context refuses its certificate."""
    from offline_stack.jwt_issuer import LocalJwtIssuer

    with LocalJwtIssuer() as issuer:
        authorization = JwtAuthorization(issuer.issuer, ["api-client"])  # the system's CAs only
        refusal = _bearer(authorization, f"Bearer {issuer.token('api-client')}")
        assert refusal is not None and refusal.status == 401


def _answer_of_the_front(raw_request: bytes) -> bytes:
    """What a waitress server with the API front's channel answers ``raw_request`` (the socket read to its end)."""
    import socket
    import threading

    from waitress.server import create_server

    from offline_stack.aws_rules.api_gateway import JsonErrorChannel

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = create_server(app, host="127.0.0.1", port=0)
    server.channel_class = JsonErrorChannel
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with socket.create_connection(server.socket.getsockname()[:2], timeout=5) as connection:
            connection.sendall(raw_request)
            answer = b""
            while chunk := connection.recv(4096):
                answer += chunk
    finally:
        server.close()
    return answer


@pytest.mark.parametrize(
    "raw_request",
    [
        b"POST /predictions HTTP/1.1\r\nHost: x\r\nnot a header line\r\n\r\n",
        # more digits than Python's int() converts (4,300): once answered with nothing at all
        b"POST /predictions HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        b"POST /predictions HTTP/1.1\r\nHost: x\r\nContent-Length: \xc2\xb2\r\n\r\n",  # superscript two
    ],
)
def test_a_request_the_server_cannot_parse_is_answered_as_api_gateway_json(raw_request):
    import json

    head, _, body = _answer_of_the_front(raw_request).partition(b"\r\n\r\n")
    assert b" 400 Bad Request\r\n" in head and b"Content-Type: application/json" in head
    assert json.loads(body) == {"message": "Bad Request"}
    assert b"Connection: close" in head


def test_a_credential_scope_too_short_to_name_a_service_is_refused():
    headers = _signed()
    headers["Authorization"] = headers["Authorization"].replace("/us-east-1/execute-api/aws4_request", "/us-east-1")
    assert _check(_iam(), headers).message == "Credential should be scoped to correct service: 'execute-api'."


def test_an_expired_signature_is_told_the_earliest_time_still_accepted():
    now = datetime.now(UTC)
    late = _check(_iam(), _signed(at=now - timedelta(seconds=400)))
    stamps = re.findall(r"\d{8}T\d{6}Z", late.message)  # signed at, earliest accepted, now
    signed, earliest, told_now = (datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for s in stamps)
    assert signed < earliest < told_now and (told_now - earliest).total_seconds() == 300


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
def test_every_rsa_algorithm_api_gateway_supports_passes(algorithm):
    # "only RSA-based algorithms are supported" (HTTP API JWT authorizers): not RS256 alone
    assert _bearer(_jwt_authorization(), _token(algorithm=algorithm)) is None


@pytest.mark.parametrize("audience", [{"api-client": True}, [["api-client"]], 7, [None], ""])
def test_an_audience_of_another_json_type_is_no_audience_and_never_a_crash(audience):
    refusal = _bearer(_jwt_authorization(), _token(aud=audience))
    assert (refusal.status, refusal.message) == (401, "Unauthorized")
    assert "the token does not have a valid audience" in refusal.headers[0][1]


def _scoped(scopes=("dog-breeds/predict",)) -> JwtAuthorization:
    authorization = JwtAuthorization(ISSUER, ["api-client"], list(scopes))
    authorization._signing_key = lambda token: _Key()
    return authorization


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": "openid dog-breeds/predict"},  # an access token's space-separated scope
        {"scp": ["dog-breeds/predict", "other"]},  # scp as a list
        {"scp": "dog-breeds/predict"},
    ],
)
def test_a_route_with_scopes_lets_in_a_token_carrying_one(claims):
    assert _bearer(_scoped(), _token(**claims)) is None


@pytest.mark.parametrize(
    "claims",
    [
        {},  # an OpenID Connect ID token of the same client: no scope at all
        {"scope": "openid profile"},
        {"scope": "dog-breeds/predict-not"},
        {"scp": [["dog-breeds/predict"]]},
        {"scope": 42},
    ],
)
def test_a_route_with_scopes_refuses_403_a_token_without_one(claims):
    refusal = _bearer(_scoped(), _token(**claims))
    assert (refusal.status, refusal.message) == (403, "Forbidden")
    ((name, challenge),) = refusal.headers
    assert name == "www-authenticate" and 'error="insufficient_scope"' in challenge
    assert 'scope="dog-breeds/predict"' in challenge


def test_a_route_without_scopes_does_not_look_at_them():
    assert _bearer(_jwt_authorization(), _token(scope="anything")) is None


def test_the_stack_requires_the_templates_jwt_scopes_on_the_route():
    from offline_stack.aws_rules.iam import Roles
    from offline_stack.stack import api_authorization

    parameters = {"AuthMode": "JWT", "JwtIssuer": ISSUER, "JwtAudience": "api-client", "JwtScopes": "a, b"}
    authorization, _ = api_authorization(parameters, Roles([]))
    assert authorization.scopes == ["a", "b"]
    assert api_authorization(parameters | {"JwtScopes": ""}, Roles([]))[0].scopes == []


def _replace_signature(headers: dict, signature: str) -> dict:
    authorization = headers["Authorization"].rsplit("Signature=", 1)[0] + f"Signature={signature}"
    return {**headers, "Authorization": authorization}


@pytest.mark.parametrize("signature", ["é" * 64, "\u0662" * 64, "x", "", "%00" * 10, "\udcff"])
def test_a_hostile_signature_is_a_bad_signature_never_a_crash(signature):
    refusal = _check(_iam(), _replace_signature(_signed(), signature))
    assert (refusal.status, refusal.message) == (403, BAD_SIGNATURE)


@pytest.mark.parametrize("signed", ["content-type;x-amz-date", "", ";;;", "HOST-not"])
def test_signed_headers_without_host_get_awss_refusal(signed):
    headers = _signed()
    before, _, after = headers["Authorization"].partition("SignedHeaders=")
    rest = after.partition(",")[2]
    refusal = _check(_iam(), {**headers, "Authorization": f"{before}SignedHeaders={signed},{rest}"})
    assert (refusal.status, refusal.message) == (403, HOST_NOT_SIGNED)
