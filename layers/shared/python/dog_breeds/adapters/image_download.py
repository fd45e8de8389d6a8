"""Fetch an image by URL for the ``{"url": ...}`` request form, safely.

Only https, only hosts on the configured allow-list, only globally routable addresses (the name is
resolved once and the connection goes to the address that was checked, so DNS cannot be switched to
a private address in between), no redirects, a size cap while streaming, and one deadline for the
whole download: resolving, connecting, the TLS handshake, the headers and every byte of the body.

An address is refused unless it and any IPv4 address embedded in it (IPv4-mapped, IPv4-compatible,
6to4, Teredo, NAT64 ``64:ff9b::/96``) are globally routable; the local-use NAT64 prefix
``64:ff9b:1::/48`` is refused outright. So ``64:ff9b::a9fe:a9fe`` and ``2002:a9fe:a9fe::1``, two
spellings of the instance metadata address 169.254.169.254, are refused like the address itself.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError

from dog_breeds.errors import MalformedRequestError, PayloadTooLargeError
from dog_breeds.image_request import ImageUrl

DOWNLOAD_DEADLINE_SECONDS = 7.0  # resolve + connect + TLS + headers + body, in all
CONNECT_TIMEOUT_SECONDS = 2.0
_CHUNK_BYTES = 64 * 1024
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_resolver: ThreadPoolExecutor | None = None  # created on first use: most requests never fetch a URL

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_globally_routable(address: IpAddress) -> bool:
    """True for a public address whose embedded IPv4 address, if it has one, is public too."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL_USE:
            return False
        if not all(embedded.is_global for embedded in _embedded_ipv4(address)):
            return False
    return address.is_global


def download_image(
    url: ImageUrl,
    allowed_hosts: frozenset[str],
    max_bytes: int,
    *,
    resolve=socket.getaddrinfo,
    tls_context: ssl.SSLContext | None = None,
    address_allowed: Callable[[IpAddress], bool] = is_globally_routable,
    deadline_seconds: float = DOWNLOAD_DEADLINE_SECONDS,
) -> bytes:
    """Return the bytes at ``url`` or raise a project error saying why they were refused.

    ``resolve``, ``tls_context`` and ``address_allowed`` are seams for tests (a loopback server with a
    test CA); production code passes none of them, so verification always uses the system's CAs.
    """
    if not allowed_hosts:
        raise MalformedRequestError(
            'URL input is disabled on this deployment; send the image bytes, or {"image": "<base64>"}.'
        )
    if url.host not in allowed_hosts:
        raise MalformedRequestError(f"URLs must be https and on an allowed host: {sorted(allowed_hosts)}.")
    deadline = time.monotonic() + deadline_seconds
    address = _checked_address(url, resolve, deadline, address_allowed)
    try:
        raw = socket.create_connection((address, url.port), timeout=min(CONNECT_TIMEOUT_SECONDS, _left(deadline)))
    except OSError as exc:
        raise MalformedRequestError(f"The host {url.host} could not be reached.") from exc
    current = [raw]  # the socket the watchdog cuts: the raw one, then the TLS one wrapping it
    watchdog = threading.Timer(_left(deadline), _cut, args=(current,))
    watchdog.daemon = True
    watchdog.start()
    try:
        raw.settimeout(_left(deadline))
        context = tls_context or ssl.create_default_context()
        current[0] = context.wrap_socket(raw, server_hostname=url.host)
        return _get(url, current[0], context, max_bytes, deadline)
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        if isinstance(exc, ssl.SSLCertVerificationError):
            raise MalformedRequestError(f"The TLS certificate of {url.host} could not be verified.") from exc
        if time.monotonic() >= deadline or isinstance(exc, TimeoutError):
            message = f"The image at that URL did not arrive in time ({deadline_seconds:g} s)."
            raise MalformedRequestError(message) from exc
        raise MalformedRequestError("The image could not be downloaded from that URL.") from exc
    finally:
        watchdog.cancel()
        current[0].close()


def _get(url: ImageUrl, sock: socket.socket, context: ssl.SSLContext, max_bytes: int, deadline: float) -> bytes:
    connection = http.client.HTTPSConnection(url.host, url.port, context=context)
    connection.sock = sock  # already connected to the checked address and verified for url.host
    connection.request("GET", url.target, headers={"Accept": "image/jpeg, image/png", "Connection": "close"})
    response = connection.getresponse()
    if response.status != 200:  # redirects included: following one would leave the allow-list's checks behind
        raise MalformedRequestError(f"The URL answered HTTP {response.status}; it must answer 200 with an image.")
    declared = response.getheader("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"The image at that URL is larger than {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        sock.settimeout(max(_left(deadline), 0.001))
        chunk = response.read1(_CHUNK_BYTES)
        if not chunk:
            if time.monotonic() >= deadline:  # the watchdog's shutdown reads as an end of file
                raise TimeoutError("the download deadline passed")
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"The image at that URL is larger than {max_bytes} bytes.")
        chunks.append(chunk)


def _checked_address(url: ImageUrl, resolve, deadline: float, address_allowed) -> str:
    global _resolver
    _resolver = _resolver or ThreadPoolExecutor(max_workers=2, thread_name_prefix="resolve")
    future = _resolver.submit(resolve, url.host, url.port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=_left(deadline))
    except FutureTimeoutError:
        raise MalformedRequestError(f"The host {url.host} could not be resolved in time.") from None
    except (OSError, UnicodeError) as exc:
        raise MalformedRequestError(f"The host {url.host} could not be resolved.") from exc
    try:
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    except ValueError:
        addresses = []
    if not addresses or not all(address_allowed(address) for address in addresses):
        raise MalformedRequestError(f"The host {url.host} resolves to a private or reserved address; it is refused.")
    return str(addresses[0])


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [embedded for embedded in found if embedded is not None]


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the download deadline passed")
    return left


def _cut(current: list[socket.socket]) -> None:
    """At the deadline: shut the socket down, which wakes the read blocked on it."""
    with contextlib.suppress(OSError):  # already closed
        current[0].shutdown(socket.SHUT_RDWR)
