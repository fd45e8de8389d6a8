"""URL input for real: images fetched over TLS from a loopback server whose test CA the fetcher trusts.

The fetcher's production checks all run (allow-list, https, no redirects, the size cap while
streaming, one deadline for the whole download); the test seams only say that the certificate's host
name resolves to 127.0.0.1, that loopback counts as routable here, and which CA to trust.
"""

from __future__ import annotations

import functools
import io
import ipaddress
import json
import socket
import time

import pytest
from PIL import Image

from dog_breeds.adapters.image_download import download_image
from dog_breeds.errors import MalformedRequestError, PayloadTooLargeError
from dog_breeds.image_request import parse_image_url
from tests.conftest import load_event, response_json
from tests.support.tls_server import HOST_NAME, TlsImageServer, answer, drip, stream_without_length

ALLOWED = frozenset({HOST_NAME})


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 80, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


JPEG = _jpeg()


def _to_loopback(host, port, type=None):
    assert host == HOST_NAME
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def _loopback_only(address) -> bool:
    return address == ipaddress.ip_address("127.0.0.1")


@pytest.fixture
def server():
    routes = {
        "/dog.jpg": answer(JPEG),
        "/moved.jpg": answer(b"", status=302, headers={"Location": "https://169.254.169.254/"}),
        "/huge.jpg": stream_without_length(64 * 1024),
        "/declared-huge.jpg": answer(b"\xff" * 5000),
        "/slow.jpg": drip(byte_every_seconds=0.3, total_seconds=6),
    }
    with TlsImageServer(routes) as tls_server:
        yield tls_server


def fetch(server: TlsImageServer, path: str, max_bytes: int = 10_000, deadline_seconds: float = 7.0) -> bytes:
    return download_image(
        parse_image_url(server.url(path)),
        ALLOWED,
        max_bytes,
        resolve=_to_loopback,
        tls_context=server.client_context(),
        address_allowed=_loopback_only,
        deadline_seconds=deadline_seconds,
        allowed_ports=frozenset({server.port}),  # the test server's port; 443 only otherwise
    )


def test_an_image_is_downloaded_over_verified_tls(server):
    assert fetch(server, "/dog.jpg") == JPEG


def test_a_server_the_fetcher_does_not_trust_is_refused(server):
    # Without the test CA the certificate cannot be verified: verification is never turned off
    with pytest.raises(MalformedRequestError, match="could not be verified"):
        download_image(
            parse_image_url(server.url("/dog.jpg")),
            ALLOWED,
            10_000,
            resolve=_to_loopback,
            address_allowed=_loopback_only,
            allowed_ports=frozenset({server.port}),
        )


def test_a_redirect_is_refused_not_followed(server):
    with pytest.raises(MalformedRequestError, match="HTTP 302"):
        fetch(server, "/moved.jpg")
    assert server.requests == ["/moved.jpg"]


def test_a_body_over_the_cap_is_refused_while_streaming(server):
    with pytest.raises(PayloadTooLargeError):
        fetch(server, "/huge.jpg", max_bytes=10_000)
    with pytest.raises(PayloadTooLargeError):
        fetch(server, "/declared-huge.jpg", max_bytes=1_000)


def test_a_slow_server_is_cut_at_the_total_deadline(server):
    # Given a server that sends one byte every 0.3 s: no single read is slow, the whole download is
    started = time.monotonic()
    with pytest.raises(MalformedRequestError, match="did not arrive in time"):
        fetch(server, "/slow.jpg", deadline_seconds=1.5)
    # Then the fetch ends at the deadline, not when the server stops
    assert time.monotonic() - started < 2.5


def test_a_url_request_goes_through_the_predict_function(server, predict_function, endpoint_server):
    # Given PredictFunction with the allow-list on, and the fetcher's seams pointed at the test server
    with predict_function(URL_ALLOWED_HOSTS=HOST_NAME) as function:
        # The function's cold start imported the layer anew: take the fetcher from that import
        from dog_breeds.adapters import image_download

        function.module.predict_breeds.download = functools.partial(
            image_download.download_image,
            resolve=_to_loopback,
            tls_context=server.client_context(),
            address_allowed=_loopback_only,
            allowed_ports=frozenset({server.port}),
        )
        event = load_event("predict-url-disabled.json")
        event["body"] = json.dumps({"url": server.url("/dog.jpg")})
        response = function.invoke(event)
        event["body"] = json.dumps({"url": server.url("/moved.jpg")})
        redirected = function.invoke(event)
    # Then the downloaded bytes are what the endpoint was sent, and the answer is predictions
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["predictions"]
    sent, content_type, _ = endpoint_server.models["dog-breed-classifier"].requests[-1]
    assert (sent, content_type) == (JPEG, "image/jpeg")
    assert redirected["statusCode"] == 400 and "302" in response_json(redirected)["error"]["message"]
