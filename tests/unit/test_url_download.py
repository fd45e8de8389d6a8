"""The URL fetcher against a real TLS server on loopback, whose test CA it trusts: tests/unit alone sees each of its
decisions (allow-list, https, no redirects, the size cap while streaming and as declared, one deadline for the
whole download). The test seams only say that the certificate's host name resolves to 127.0.0.1, that loopback
counts as routable here, and which CA to trust. tests/integration/test_url_input.py runs it inside PredictFunction.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from dog_breeds.adapters.image_download import download_image
from dog_breeds.errors import MalformedRequestError, PayloadTooLargeError
from dog_breeds.image_request import parse_image_url
from tests.support.fresh_import import fresh_copy
from tests.support.tls_server import (
    HOST_NAME,
    JPEG,
    TlsImageServer,
    answer,
    drip,
    stream_without_length,
)
from tests.support.tls_server import (
    loopback_only as _loopback_only,
)
from tests.support.tls_server import (
    to_loopback as _to_loopback,
)

ALLOWED = frozenset({HOST_NAME})


def declaring(content_length: str, body: bytes):
    """An answer whose Content-Length header is ``content_length``, whatever the body is; the connection closes."""

    def handle(request) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.send_header("Content-Length", content_length)
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(body)

    return handle


@pytest.fixture(scope="module")
def server():
    routes = {
        "/dog.jpg": answer(JPEG),
        "/moved.jpg": answer(b"", status=302, headers={"Location": "https://169.254.169.254/"}),
        "/huge.jpg": stream_without_length(64 * 1024),
        "/declared-huge.jpg": answer(b"\xff" * 5000),
        "/exactly-1000.jpg": stream_without_length(1000),
        "/declared-1000.jpg": answer(b"\xff" * 1000),
        "/slow.jpg": drip(byte_every_seconds=0.3, total_seconds=6),
        "/superscript-length.jpg": declaring("²", JPEG),
        "/5000-digit-length.jpg": declaring("9" * 5000, JPEG),
    }
    with TlsImageServer(routes) as tls_server:
        yield tls_server


def fetch(
    server: TlsImageServer, path: str, max_bytes: int = 10_000, deadline_seconds: float = 7.0, resolve=_to_loopback
) -> bytes:
    return download_image(
        parse_image_url(server.url(path)),
        ALLOWED,
        max_bytes,
        resolve=resolve,
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
    before = len(server.requests)
    with pytest.raises(MalformedRequestError, match="HTTP 302"):
        fetch(server, "/moved.jpg")
    assert server.requests[before:] == ["/moved.jpg"]  # the Location was not asked for


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


def test_a_body_of_exactly_the_cap_is_accepted_streamed_or_declared(server):
    assert len(fetch(server, "/exactly-1000.jpg", max_bytes=1000)) == 1000
    assert fetch(server, "/declared-1000.jpg", max_bytes=1000) == b"\xff" * 1000
    with pytest.raises(PayloadTooLargeError, match="larger than 999 bytes"):
        fetch(server, "/exactly-1000.jpg", max_bytes=999)
    with pytest.raises(PayloadTooLargeError, match="larger than 999 bytes"):
        fetch(server, "/declared-1000.jpg", max_bytes=999)


def test_an_answer_other_than_200_is_refused_with_its_status(server):
    with pytest.raises(MalformedRequestError, match="answered HTTP 404; it must answer 200 with an image"):
        fetch(server, "/missing.jpg")


def _fetch_from_port(port: int) -> bytes:
    """A download from a loopback port with no test server's CA: what fails there fails before any image."""
    return download_image(
        parse_image_url(f"https://{HOST_NAME}:{port}/dog.jpg"),
        ALLOWED,
        1000,
        resolve=_to_loopback,
        address_allowed=_loopback_only,
        allowed_ports=frozenset({port}),
    )


def test_a_host_that_is_not_listening_is_refused_as_unreachable():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(MalformedRequestError, match=f"The host {HOST_NAME} could not be reached"):
            _fetch_from_port(port)


def test_a_name_that_resolves_to_one_refused_address_among_allowed_ones_is_refused(server):
    def mixed(host, port, type=None):
        return _to_loopback(host, port) + [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))]

    before = len(server.requests)
    with pytest.raises(MalformedRequestError, match="resolves to a private or reserved address"):
        fetch(server, "/dog.jpg", resolve=mixed)
    assert len(server.requests) == before  # refused before connecting


def test_a_deadline_spent_while_resolving_is_a_client_error_before_anything_is_sent(server):
    # The deadline runs out during the name lookup (here: before it); the caller gets the API's 400, not a 500
    def slow(host, port, type=None):
        time.sleep(0.2)
        return _to_loopback(host, port)

    before = len(server.requests)
    for deadline_seconds, resolve in ((1e-9, _to_loopback), (0.1, slow)):
        with pytest.raises(MalformedRequestError, match=f"The host {HOST_NAME} could not be resolved in time"):
            fetch(server, "/dog.jpg", deadline_seconds=deadline_seconds, resolve=resolve)
    assert len(server.requests) == before


def test_the_fetcher_connects_to_the_address_it_checked_not_to_the_local_host():
    # A server on another loopback address: connecting anywhere but the checked address would miss it
    with TlsImageServer({"/dog.jpg": answer(JPEG)}, address="127.0.0.2") as elsewhere:

        def to_elsewhere(host, port, type=None):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]

        image = download_image(
            parse_image_url(elsewhere.url("/dog.jpg")),
            ALLOWED,
            10_000,
            resolve=to_elsewhere,
            tls_context=elsewhere.client_context(),
            address_allowed=lambda address: address == ipaddress.ip_address("127.0.0.2"),
            allowed_ports=frozenset({elsewhere.port}),
        )
    assert image == JPEG


def test_a_download_well_within_a_short_deadline_succeeds(server):
    assert fetch(server, "/dog.jpg", deadline_seconds=0.9) == JPEG


def test_a_server_that_hangs_up_is_a_failed_download_not_a_timeout():
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        connection, _ = listener.accept()
        connection.close()  # before the TLS handshake

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(MalformedRequestError, match="The image could not be downloaded from that URL"):
            _fetch_from_port(port)
    finally:
        listener.close()


def test_the_module_as_imported_downloads_and_refuses_as_it_says(server):
    # A fresh copy of the module: its constants (chunk size, refused blocks, ports) run inside this test
    fresh = fresh_copy("dog_breeds.adapters.image_download")
    image = fresh.download_image(
        parse_image_url(server.url("/dog.jpg")),
        ALLOWED,
        10_000,
        resolve=_to_loopback,
        tls_context=server.client_context(),
        address_allowed=_loopback_only,
        allowed_ports=frozenset({server.port}),
    )
    assert image == JPEG
    ports, pending_lookups = fresh.ALLOWED_PORTS, fresh.MAX_PENDING_LOOKUPS
    assert ports == frozenset({443}) and pending_lookups == 8
    assert fresh.is_globally_routable(ipaddress.ip_address("fec0::1")) is False
    assert fresh.is_globally_routable(ipaddress.ip_address("169.254.169.254")) is False
    assert fresh.is_globally_routable(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")) is True


def test_a_deadline_passed_even_by_half_a_second_is_passed():
    # Every wait of a download takes what is left of one deadline; once it has passed, nothing waits any more
    from dog_breeds.adapters.image_download import _left

    with pytest.raises(TimeoutError, match="the download deadline passed"):
        _left(time.monotonic() - 0.5)
    assert 9 < _left(time.monotonic() + 10) <= 10


def test_a_content_length_that_is_not_http_digits_declares_nothing_and_never_raises(server):
    # "²" passes str.isdigit() and int() raises on it; the body itself is within the cap
    assert fetch(server, "/superscript-length.jpg") == JPEG
    # 5,000 digits: more than int() converts, and more than any cap
    with pytest.raises(PayloadTooLargeError, match="larger than 10000 bytes"):
        fetch(server, "/5000-digit-length.jpg")
