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
import ssl
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.task import ErrorTask

from offline_stack.aws_rules.iam import (
    BAD_SIGNATURE,
    HOST_NOT_SIGNED,
    authorization_header,
    credential_scope,
    signature_matches,
    signed_headers,
)

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


class _BoundedLengthParser(HTTPRequestParser):
    """Waitress's parser, refusing a ``Content-Length`` of more digits than any body has before converting it
    (Python's ``int`` raises on more than 4,300 digits, and waitress then drops the connection unanswered)."""

    def parse_header(self, header_plus: bytes) -> None:
        for line in header_plus.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and len(value.strip().lstrip(b"0")) > 18:
                raise ParsingError("Content-Length is invalid")
        super().parse_header(header_plus)


class JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask
    parser_class = _BoundedLengthParser


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
        if "host" not in signed_headers(headers):
            return Refusal(403, HOST_NOT_SIGNED)
        if not signature_matches(caller, method, path, headers, body):
            return Refusal(403, BAD_SIGNATURE)
        arn = self.route_arn(route)
        if not caller.may_invoke(arn):
            return Refusal(
                403, f"User: {caller.arn} is not authorized to perform: execute-api:Invoke on resource: {arn}"
            )
        return None


# "Check the token's algorithm and signature by using the public key that is fetched from the issuer's jwks_uri.
# Currently, only RSA-based algorithms are supported." (API Gateway developer guide, "Control access to HTTP APIs
# with JWT authorizers"). Which RSA algorithms is not listed: the RSASSA-PKCS1-v1_5 family is taken (an inference).
RSA_ALGORITHMS = ["RS256", "RS384", "RS512"]


class JwtAuthorization:
    """``AuthorizationType: JWT``: a token of ``issuer`` for one of ``audiences``, verified with the issuer's JWKS,
    carrying one of the route's ``scopes`` when it has any.

    Scopes: "The token must include at least one of the scopes in the route's authorizationScopes" (``scope``, or
    ``scp``), and "Unless you require ID tokens for API authorization, we recommend that you configure your routes to
    require authorization scopes" (same page). A token without them is refused 403 ``insufficient_scope``: the HTTP
    API page does not state the status; the REST API JWT page does ("A valid token that carries none of the method's
    scopes receives a 403 Forbidden response"), as RFC 6750 section 3.1 does. ``aud`` is evaluated when present,
    else ``client_id`` ("API Gateway validates client_id only if aud is not present", troubleshooting page); a
    claim of another JSON type matches no audience."""

    def __init__(
        self,
        issuer: str,
        audiences: list[str],
        scopes: list[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not issuer.startswith("https://"):  # the template's JwtIssuer AllowedPattern, the project's rule
            raise ValueError(f"JwtIssuer {issuer[:80]!r} is not an https:// URL: the issuer's keys are fetched from it")
        self.issuer, self.audiences = issuer.rstrip("/"), [a for a in audiences if a]
        self.scopes = [s for s in scopes or [] if s]
        self._context = ssl_context or ssl.create_default_context()
        self._keys: jwt.PyJWKClient | None = None

    def _signing_key(self, token: str):
        if self._keys is None:
            discovery = f"{self.issuer}/.well-known/openid-configuration"
            with urllib.request.urlopen(discovery, timeout=10, context=self._context) as answer:  # noqa: S310 (https, checked above)
                jwks_uri = json.loads(answer.read())["jwks_uri"]
            if not jwks_uri.startswith("https://"):
                raise ValueError(f"the issuer's jwks_uri {jwks_uri[:80]!r} is not https")
            self._keys = jwt.PyJWKClient(jwks_uri, cache_keys=True, timeout=10, ssl_context=self._context)
        return self._keys.get_signing_key_from_jwt(token)

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes, route: str) -> Refusal | None:
        token = _header(headers, "authorization").removeprefix("Bearer ").strip()
        if not token:
            return _unauthorized("the request has no token")
        try:
            claims = jwt.decode(
                token,
                self._signing_key(token).key,
                algorithms=RSA_ALGORITHMS,
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except (jwt.PyJWTError, KeyError, OSError, ValueError) as invalid:
            return _unauthorized(str(invalid) or type(invalid).__name__)
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a in self.audiences for a in audiences):
            return _unauthorized("the token does not have a valid audience")
        if self.scopes and not _scopes_of(claims) & set(self.scopes):
            return _insufficient_scope(self.scopes)
        return None


def _scopes_of(claims: Mapping) -> set[str]:
    """A token's scopes: ``scope`` (space-separated, RFC 6749 section 3.3) or ``scp`` (a list, or the same string)."""
    granted = claims.get("scope", claims.get("scp", ""))
    if isinstance(granted, str):
        return set(granted.split())
    return {item for item in granted if isinstance(item, str)} if isinstance(granted, list) else set()


def _insufficient_scope(scopes: list[str]) -> Refusal:
    wanted = " ".join(scopes).replace('"', "'")[:200]
    challenge = f'Bearer scope="{wanted}" error="insufficient_scope" error_description="expected one of the scopes"'
    return Refusal(403, "Forbidden", (("www-authenticate", challenge),))


def _unauthorized(why: str) -> Refusal:
    description = why.replace('"', "'")[:200]
    challenge = f'Bearer scope="" error="invalid_token" error_description="{description}"'
    return Refusal(401, "Unauthorized", (("www-authenticate", challenge),))


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((value for key, value in headers.items() if key.lower() == name), "")
