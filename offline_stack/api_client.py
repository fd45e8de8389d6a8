"""A client of the prediction API as docs/api.md asks clients to be: it signs as the API's ``AuthMode`` asks, and
backs off and retries after a 429."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime

# How a request is made acceptable to the API: (method, url, body, headers) -> the headers to send
Signer = Callable[[str, str, bytes, dict[str, str]], dict[str, str]]


def sigv4(credentials: Mapping[str, str], region: str, signed_at: datetime | None = None) -> Signer:
    """``AuthMode=IAM``: SigV4 for ``execute-api`` with these credentials (AWS_ACCESS_KEY_ID, ... as in the
    environment), signed anew for each attempt (a signature is valid for 5 minutes). ``signed_at``: sign as of
    that moment instead of now (how a test makes an expired signature)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    frozen = Credentials(
        credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"], credentials.get("AWS_SESSION_TOKEN")
    )

    def sign(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        auth = SigV4Auth(frozen, "execute-api", region)
        if signed_at is None:
            auth.add_auth(request)
        else:  # add_auth's own steps, with the given clock
            request.context["timestamp"] = signed_at.strftime("%Y%m%dT%H%M%SZ")
            auth._modify_request_before_signing(request)
            signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
            auth._inject_signature_to_request(request, signature)
        return dict(request.headers)

    return sign


def bearer(token: str) -> Signer:
    """``AuthMode=JWT``: the token in the ``Authorization`` header."""
    return lambda method, url, body, headers: {**headers, "Authorization": f"Bearer {token}"}


def request(method: str, url: str, body: bytes, headers: dict[str, str], sign: Signer | None) -> urllib.request.Request:
    """An HTTP request to the API, signed when ``sign`` is given."""
    sent = sign(method, url, body, dict(headers)) if sign else dict(headers)
    return urllib.request.Request(url, data=body or None, headers=sent, method=method)  # noqa: S310 (the API's URL)


def post_image(
    api_url: str, image: bytes, content_type: str, top_k: int = 3, retries: int = 6, sign: Signer | None = None
) -> tuple[int, dict]:
    """POST an image as a well-behaved client does: signed by ``sign``; a 429 (the route throttle) is retried with
    backoff."""
    url = f"{api_url.rstrip('/')}/predictions?top_k={top_k}"
    for attempt in range(retries + 1):
        try:
            prepared = request("POST", url, image, {"Content-Type": content_type}, sign)
            with urllib.request.urlopen(prepared, timeout=60) as answer:  # noqa: S310 (the API's URL)
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refusal:
            if refusal.code != 429 or attempt == retries:
                return refusal.code, json.loads(refusal.read())
        time.sleep(min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
    raise AssertionError("unreachable")
