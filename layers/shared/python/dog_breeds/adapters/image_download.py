"""Fetch an image by URL for the ``{"url": ...}`` request form, safely.

Only https, only hosts on the configured allow-list, only public addresses (the name is resolved
once and the connection goes to the address that was checked, so DNS cannot be switched to a
private address in between), no redirects, a size cap and a time cap.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import urllib3

from dog_breeds.errors import MalformedRequestError, PayloadTooLargeError

DOWNLOAD_TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)


def download_image(url: str, allowed_hosts: frozenset[str], max_bytes: int, resolve=socket.getaddrinfo) -> bytes:
    """Return the bytes at ``url`` or raise a project error saying why they were refused."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not allowed_hosts:
        raise MalformedRequestError(
            'URL input is disabled on this deployment; send the image bytes, or {"image": "<base64>"}.'
        )
    if parts.scheme != "https" or host not in allowed_hosts:
        raise MalformedRequestError(f"URLs must be https and on an allowed host: {sorted(allowed_hosts)}.")
    address = _public_address(host, parts.port or 443, resolve)
    pool = urllib3.HTTPSConnectionPool(
        address,
        port=parts.port or 443,
        server_hostname=host,
        assert_hostname=host,
        timeout=DOWNLOAD_TIMEOUT,
        retries=False,
    )
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        response = pool.urlopen("GET", path, headers={"Host": host}, redirect=False, preload_content=False)
        if response.status != 200:
            raise MalformedRequestError(f"The URL answered HTTP {response.status}; it must answer 200 with an image.")
        data = response.read(max_bytes + 1)
    except urllib3.exceptions.TimeoutError as exc:
        raise MalformedRequestError("The image at that URL did not arrive in time (7 s).") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise MalformedRequestError("The image could not be downloaded from that URL.") from exc
    finally:
        pool.close()
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"The image at that URL is larger than {max_bytes} bytes.")
    return data


def _public_address(host: str, port: int, resolve) -> str:
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise MalformedRequestError(f"The host {host} could not be resolved.") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or not all(address.is_global for address in addresses):
        raise MalformedRequestError(f"The host {host} resolves to a private or reserved address; it is refused.")
    return str(addresses[0])
