"""An HTTPS server on loopback with a throwaway CA (trustme), for the URL-input tests.

The fetcher trusts the test CA only because a test hands it an ``ssl.SSLContext`` through its
``tls_context`` seam; product code never turns verification off and never sees this CA.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable

import trustme
from PIL import Image

HOST_NAME = "images.example.com"  # the certificate's name; tests resolve it to 127.0.0.1


class TlsImageServer:
    """Serve ``routes`` (path -> handler(request)) over TLS on ``address`` (a loopback address); use as a context
    manager."""

    def __init__(
        self, routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]], address: str = "127.0.0.1"
    ) -> None:
        self.ca = trustme.CA()
        certificate = self.ca.issue_cert(HOST_NAME)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(server_context)
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.requests.append(self.path)
                routes.get(self.path, _not_found)(self)

            def log_message(self, *args):
                pass

        self.address = address
        self._server = http.server.ThreadingHTTPServer((address, 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = server_context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's CA (and nothing else)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def url(self, path: str) -> str:
        return f"https://{HOST_NAME}:{self.port}{path}"

    def __enter__(self) -> TlsImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


def answer(body: bytes, content_type: str = "image/jpeg", status: int = 200, headers: dict | None = None):
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    return handle


def drip(byte_every_seconds: float, total_seconds: float):
    """Send headers, then one byte every ``byte_every_seconds`` (each read is quick; the whole is not)."""

    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.end_headers()
        with contextlib.suppress(OSError):
            deadline = time.monotonic() + total_seconds
            while time.monotonic() < deadline:
                request.wfile.write(b"\xff")
                request.wfile.flush()
                time.sleep(byte_every_seconds)

    return handle


def stream_without_length(size: int):
    """A body of ``size`` bytes with no Content-Length (the cap must hold while streaming)."""

    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.end_headers()
        with contextlib.suppress(OSError):
            for start in range(0, size, 4096):
                request.wfile.write(b"\xff" * min(4096, size - start))

    return handle


def _not_found(request: http.server.BaseHTTPRequestHandler) -> None:
    answer(b"", status=404)(request)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 80, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


JPEG = _jpeg()  # a small real image the routes serve


def to_loopback(host, port, type=None):  # noqa: A002 (getaddrinfo's keyword)
    """The fetcher's ``resolve`` seam: the certificate's host name resolves to 127.0.0.1."""
    assert host == HOST_NAME
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def loopback_only(address) -> bool:
    """The fetcher's ``address_allowed`` seam: loopback counts as routable here, and nothing else does."""
    return address == ipaddress.ip_address("127.0.0.1")
