"""Fetch an image by URL for the ``{"url": ...}`` request form, safely.

Only https on port 443, only hosts on the configured allow-list, only globally routable unicast addresses
(the name is resolved once and the connection goes to the address that was checked, so DNS cannot be
switched to a private address in between), no redirects, a size cap while streaming, and one deadline for
the whole download: resolving, connecting, the TLS handshake, the headers and every byte of the body.

Addresses are judged by an allow-list, not a deny-list: an IPv4 address must be outside every block of
IANA's IPv4 Special-Purpose Address Registry and outside multicast and the reserved 240.0.0.0/4; an IPv6
address must be global unicast (``2000::/3``) and outside IANA's IPv6 Special-Purpose Address Registry, or
NAT64 ``64:ff9b::/96`` of an allowed IPv4 address. Any IPv4 address embedded in an IPv6 one (IPv4-mapped,
IPv4-compatible, 6to4, Teredo, NAT64) must itself be allowed. So ``64:ff9b::a9fe:a9fe`` and
``2002:a9fe:a9fe::1``, two spellings of the instance metadata address 169.254.169.254, are refused like
the address itself. Sources: IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
updates); RFC 4291 (global unicast); RFC 6052 (NAT64), RFC 8215 (local-use NAT64).

Name resolution cannot be starved: each lookup runs in a thread of its own (at most ``MAX_PENDING_LOOKUPS``
at once, in the execution environment), and a lookup that outlives its request's deadline holds no other
request up.
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

from dog_breeds.errors import MalformedRequestError, PayloadTooLargeError
from dog_breeds.image_request import ImageUrl, declares_more_than

DOWNLOAD_DEADLINE_SECONDS = 7.0  # resolve + connect + TLS + headers + body, in all
CONNECT_TIMEOUT_SECONDS = 2.0
_CHUNK_BYTES = 64 * 1024
ALLOWED_PORTS = frozenset({443})
MAX_PENDING_LOOKUPS = 8
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
# IANA IPv4 Special-Purpose Address Registry, every block (whatever its "globally reachable" column says: none is
# where a public image lives), plus multicast (224.0.0.0/4) and the reserved 240.0.0.0/4
_IPV4_REFUSED = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
# IANA IPv6 Special-Purpose Address Registry blocks inside 2000::/3 (the rest of it is outside global unicast):
# IETF protocol assignments incl. Teredo (2001::/23), documentation (2001:db8::/32, 3fff::/20), 6to4 (2002::/16,
# allowed only through its embedded IPv4 address, checked separately), AS112 (2620:4f:8000::/48)
_IPV6_REFUSED = tuple(
    ipaddress.ip_network(block) for block in ("2001::/23", "2001:db8::/32", "3fff::/20", "2620:4f:8000::/48")
)
_lookups = threading.BoundedSemaphore(MAX_PENDING_LOOKUPS)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_globally_routable(address: IpAddress) -> bool:
    """True for a global unicast address on the allow-list whose embedded IPv4 address, if any, is allowed too."""
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in block for block in _IPV4_REFUSED)
    embedded = _embedded_ipv4(address)
    if address in _NAT64:
        return all(is_globally_routable(ipv4) for ipv4 in embedded)
    if address not in _GLOBAL_UNICAST or any(address in block for block in _IPV6_REFUSED):
        return False
    return all(is_globally_routable(ipv4) for ipv4 in embedded)


def download_image(
    url: ImageUrl,
    allowed_hosts: frozenset[str],
    max_bytes: int,
    *,
    resolve=socket.getaddrinfo,
    tls_context: ssl.SSLContext | None = None,
    address_allowed: Callable[[IpAddress], bool] = is_globally_routable,
    deadline_seconds: float = DOWNLOAD_DEADLINE_SECONDS,
    allowed_ports: frozenset[int] = ALLOWED_PORTS,
) -> bytes:
    """Return the bytes at ``url`` or raise a project error saying why they were refused.

    ``resolve``, ``tls_context``, ``address_allowed`` and ``allowed_ports`` are seams for tests (a loopback server
    with a test CA); production code passes none of them, so verification always uses the system's CAs.
    """
    if not allowed_hosts:
        raise MalformedRequestError(
            'URL input is disabled on this deployment; send the image bytes, or {"image": "<base64>"}.'
        )
    if url.host not in allowed_hosts:
        raise MalformedRequestError(f"URLs must be https and on an allowed host: {sorted(allowed_hosts)}.")
    if url.port not in allowed_ports:
        raise MalformedRequestError(f"URLs must use the https port {sorted(allowed_ports)[0]}, not {url.port}.")
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
    if declares_more_than(response.getheader("Content-Length", ""), max_bytes):
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
    infos = _resolve_within(resolve, url.host, url.port, deadline)
    try:
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    except ValueError:
        addresses = []
    if not addresses or not all(address_allowed(address) for address in addresses):
        raise MalformedRequestError(f"The host {url.host} resolves to a private or reserved address; it is refused.")
    return str(addresses[0])


def _resolve_within(resolve, host: str, port: int, deadline: float) -> list:
    """``resolve(host, port)`` in a thread of its own, waited for until ``deadline`` at most."""
    if not _lookups.acquire(blocking=False):
        raise MalformedRequestError(f"Too many slow name lookups are pending; the host {host} was not resolved.")
    outcome: dict = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome["infos"] = resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc
        finally:
            _lookups.release()
            done.set()

    threading.Thread(target=lookup, name="resolve", daemon=True).start()
    left = deadline - time.monotonic()  # (the deadline may be spent already: the lookup is then not waited for)
    if left <= 0 or not done.wait(timeout=left):
        raise MalformedRequestError(f"The host {host} could not be resolved in time.")
    if "error" in outcome:
        raise MalformedRequestError(f"The host {host} could not be resolved.") from outcome["error"]
    return outcome["infos"]


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
