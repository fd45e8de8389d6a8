"""A token issuer on loopback, for ``AuthMode=JWT`` offline: what Cognito or any OpenID Connect provider publishes.

It serves ``/.well-known/openid-configuration`` (whose ``jwks_uri`` API Gateway's JWT authorizer follows) and
the JWKS with its RSA public key, and mints RS256 access tokens for an audience. ``foreign_token`` signs the same
claims with a key the issuer does not publish: what a forged or wrong-issuer token looks like to the API.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from offline_stack.loopback_server import LoopbackServer


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalJwtIssuer(LoopbackServer):
    def __init__(self, port: int = 0) -> None:
        self._key, self._kid = _new_key(), uuid.uuid4().hex
        super().__init__(self._app, port=port, threads=2, name="jwt-issuer")

    @property
    def issuer(self) -> str:
        return self.url

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

    def _app(self, environ, start_response):
        path = Request(environ).path
        if path == "/.well-known/openid-configuration":
            document = {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/.well-known/jwks.json"}
        elif path == "/.well-known/jwks.json":
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
            document = {"keys": [public | {"kid": self._kid, "use": "sig", "alg": "RS256"}]}
        else:
            return Response('{"message":"Not Found"}', status=404, content_type="application/json")(
                environ, start_response
            )
        return Response(json.dumps(document), content_type="application/json")(environ, start_response)
