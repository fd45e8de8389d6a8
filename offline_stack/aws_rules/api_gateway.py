"""What an API Gateway HTTP API answers around its integration, where a client can see it.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **Route throttling is per route.** A stage's ``DefaultRouteSettings`` throttle applies to each route on its own
  (a token bucket per route, ``ThrottlingRateLimit`` per second, ``ThrottlingBurstLimit`` at once); a request over
  it is answered 429 ``{"message":"Too Many Requests"}``. So page loads of ``GET /`` do not spend the tokens of
  ``POST /predictions``. Source: API Gateway developer guide, "Throttle requests to your HTTP APIs" (route-level
  throttling).
- **No route, no integration.** A request whose method and path match no route (and no ``$default`` route) is
  answered 404 ``{"message":"Not Found"}``; HTTP APIs have no 405 for a known path with another method. Source:
  API Gateway developer guide, "Create routes for HTTP APIs in API Gateway", "Routing API requests".
- **Errors are JSON.** API Gateway's own answers carry ``{"message": "..."}`` with ``application/json``, malformed
  requests included, never an HTTP server's plain-text page. Source: API Gateway developer guide, "Gateway
  responses" / HTTP API error messages (``{"message":"Internal Server Error"}`` etc.).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from offline_stack.aws_rules.iam import BAD_SIGNATURE, authorization_header, credential_scope, signature_matches

JSON = "application/json"


def message_body(reason: str) -> bytes:
    return json.dumps({"message": reason}, separators=(",", ":")).encode()


class _JsonErrorTask(ErrorTask):
    """Waitress's answer to a request it cannot parse (bad framing, oversized headers), as API Gateway's JSON."""

    def execute(self) -> None:
        status, _, _ = self.request.error.to_response(self.channel.server.adj.ident)
        body = message_body(status.split(" ", 1)[1] if " " in status else status)
        self.status = status
        self.response_headers.append(("Content-Type", JSON))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


# --- Route authorization: what API Gateway answers before the integration is called --------------------------------
#
# - **IAM (``AWS_IAM``).** The request must carry a SigV4 signature for ``execute-api`` made with a key AWS knows
#   and its secret, dated within 5 minutes of now, by a caller whose policy allows ``execute-api:Invoke`` on the
#   route's ARN; anything else is answered **403** with AWS's message (no signature at all: ``{"message":"Forbidden"}``;
#   a key AWS does not know, a bad signature, an expired one: the STS-style messages below). Sources: API Gateway
#   developer guide, "Control access to HTTP APIs with IAM authorization"; IAM user guide, "Signing AWS API
#   requests" (the 5-minute window: "Elements of an AWS API request signature", X-Amz-Date).
# - **JWT.** The ``Authorization`` header must hold a token (``Bearer `` optional) signed RS256 by a key of the
#   issuer's JWKS (found through ``<issuer>/.well-known/openid-configuration``), with ``iss`` equal to the issuer,
#   ``aud`` (or ``client_id`` when there is no ``aud``) one of the audiences, and ``exp``/``nbf``/``iat`` valid now;
#   anything else is answered **401** ``{"message":"Unauthorized"}`` with a ``www-authenticate`` header saying why.
#   Sources: API Gateway developer guide, "Control access to HTTP APIs with JWT authorizers" (validating a JWT) and
#   "Troubleshooting issues with HTTP API JWT authorizers".
# - **NONE.** Open.

SIGNATURE_WINDOW_SECONDS = 5 * 60


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Caller:
    """Credentials API Gateway would recognise: a key, its secret, and what its identity may invoke."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    may_invoke: Callable[[str], bool]  # route ARN -> allowed
    arn: str


class IamAuthorization:
    """``AuthorizationType: AWS_IAM`` on a route: SigV4 from a known caller allowed ``execute-api:Invoke``."""

    def __init__(self, callers: list[Caller], route_arn: Callable[[str], str], region: str) -> None:
        self.callers = {caller.access_key_id: caller for caller in callers}
        self.route_arn, self.region = route_arn, region

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes, route: str) -> Refusal | None:
        if not authorization_header(headers):
            return Refusal(403, "Forbidden")
        scope = credential_scope(headers).split("/")
        caller = self.callers.get(scope[0])
        if caller is None:
            return Refusal(403, "The security token included in the request is invalid.")
        if len(scope) < 4 or scope[3] != "execute-api":
            return Refusal(403, "Credential should be scoped to correct service: 'execute-api'.")
        stamp = _header(headers, "x-amz-date")
        try:
            signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return Refusal(403, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        now = datetime.now(UTC)
        if abs((now - signed_at).total_seconds()) > SIGNATURE_WINDOW_SECONDS:
            return Refusal(
                403,
                f"Signature expired: {stamp} is now earlier than "
                f"{(now - timedelta(seconds=SIGNATURE_WINDOW_SECONDS)).strftime('%Y%m%dT%H%M%SZ')} "
                f"({now.strftime('%Y%m%dT%H%M%SZ')} - 5 min.)",
            )
        if caller.session_token and _header(headers, "x-amz-security-token") != caller.session_token:
            return Refusal(403, "The security token included in the request is invalid.")
        if not signature_matches(caller, method, path, headers, body):
            return Refusal(403, BAD_SIGNATURE)
        arn = self.route_arn(route)
        if not caller.may_invoke(arn):
            return Refusal(
                403, f"User: {caller.arn} is not authorized to perform: execute-api:Invoke on resource: {arn}"
            )
        return None


class JwtAuthorization:
    """``AuthorizationType: JWT``: a token of ``issuer`` for one of ``audiences``, verified with the issuer's JWKS."""

    def __init__(self, issuer: str, audiences: list[str]) -> None:
        self.issuer, self.audiences = issuer.rstrip("/"), [a for a in audiences if a]
        self._keys: jwt.PyJWKClient | None = None

    def _signing_key(self, token: str):
        if self._keys is None:
            with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=10) as answer:  # noqa: S310 (the configured issuer)
                jwks_uri = json.loads(answer.read())["jwks_uri"]
            self._keys = jwt.PyJWKClient(jwks_uri, cache_keys=True, timeout=10)
        return self._keys.get_signing_key_from_jwt(token)

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes, route: str) -> Refusal | None:
        token = _header(headers, "authorization").removeprefix("Bearer ").strip()
        if not token:
            return _unauthorized("the request has no token")
        try:
            claims = jwt.decode(
                token,
                self._signing_key(token).key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except (jwt.PyJWTError, KeyError, OSError, ValueError) as invalid:
            return _unauthorized(str(invalid) or type(invalid).__name__)
        audience = claims.get("aud", claims.get("client_id"))
        audiences = audience if isinstance(audience, list) else [audience]
        if not set(audiences) & set(self.audiences):
            return _unauthorized("the token does not have a valid audience")
        return None


def _unauthorized(why: str) -> Refusal:
    description = why.replace('"', "'")[:200]
    challenge = f'Bearer scope="" error="invalid_token" error_description="{description}"'
    return Refusal(401, "Unauthorized", (("www-authenticate", challenge),))


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((value for key, value in headers.items() if key.lower() == name), "")
