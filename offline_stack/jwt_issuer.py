"""A token issuer on loopback, for ``AuthMode=JWT`` offline: what Cognito or any OpenID Connect provider publishes.

It serves ``/.well-known/openid-configuration`` (whose ``jwks_uri`` API Gateway's JWT authorizer follows) and
the JWKS with its RSA public key over **https** (the template accepts only an ``https://`` issuer: keys fetched over
plain HTTP could be swapped on the way), and mints RS256 access tokens for an audience. ``foreign_token`` signs the
same claims with a key the issuer does not publish: what a forged or wrong-issuer token looks like to the API.

Its certificate comes from a CA made for it (``trustme``); ``loopback_trust(issuer)`` gives the offline API front a
context that trusts exactly that CA for that issuer. Nothing else trusts it.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
import uuid

import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa

from offline_stack.loopback_server import LOOPBACK

# The client contexts of the issuers running in this process, by issuer URL (offline_stack.stack reads them)
_RUNNING: dict[str, ssl.SSLContext] = {}


def loopback_trust(issuer: str) -> ssl.SSLContext | None:
    """A context trusting the CA of the loopback issuer ``issuer`` if one runs in this process; else None."""
    return _RUNNING.get(issuer.rstrip("/"))


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalJwtIssuer:
    def __init__(self, port: int = 0) -> None:
        self._key, self._kid = _new_key(), uuid.uuid4().hex
        self._ca = trustme.CA()
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(LOOPBACK).configure_cert(server_context)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                status, document = outer._document(self.path)
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._server.daemon_threads = True
        self._server.socket = server_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="jwt-issuer", daemon=True)

    @property
    def issuer(self) -> str:
        return f"https://{LOOPBACK}:{self._server.server_address[1]}"

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this issuer's CA (and nothing else)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def start(self) -> LocalJwtIssuer:
        self._thread.start()
        _RUNNING[self.issuer] = self.client_context()
        return self

    def stop(self) -> None:
        _RUNNING.pop(self.issuer, None)
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalJwtIssuer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def token(self, audience: str | None, expires_in: int = 300, key: rsa.RSAPrivateKey | None = None, **claims) -> str:
        """An access token for ``audience`` (None: no ``aud`` claim, as Cognito's access tokens, which carry
        ``client_id``) valid for ``expires_in`` seconds (negative: already expired); ``claims`` add or replace."""
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": audience, "sub": "offline-user", "iat": now, "exp": now + expires_in}
        payload = {name: value for name, value in (payload | claims).items() if value is not None}
        return jwt.encode(payload, key or self._key, algorithm="RS256", headers={"kid": self._kid})

    def foreign_token(self, audience: str) -> str:
        """The same claims, signed by a key this issuer never published."""
        return self.token(audience, key=_new_key())

    def _document(self, path: str) -> tuple[int, dict]:
        if path == "/.well-known/openid-configuration":
            return 200, {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/.well-known/jwks.json"}
        if path == "/.well-known/jwks.json":
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
            return 200, {"keys": [public | {"kid": self._kid, "use": "sig", "alg": "RS256"}]}
        return 404, {"message": "Not Found"}
