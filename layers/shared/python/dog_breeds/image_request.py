"""Decode a ``POST /predictions`` request into what the model needs, refusing bad input cheaply.

Everything here runs before the endpoint is called: sizes are computed from lengths before
anything is decoded, image types are told by their first bytes, JSON is checked field by field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from dog_breeds.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    UndecodableImageError,
    UnsupportedMediaTypeError,
    excerpt,
)
from dog_breeds.settings import DEFAULT_TOP_K, MAX_TOP_K

IMAGE_SIGNATURES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
ACCEPTED_MEDIA_TYPES = ("image/jpeg", "image/png", "application/json")
JSON_FIELDS = ("image", "url")
# Fewer bytes than this are no JPEG or PNG (a PNG's signature alone is 8); base64 of 16 characters or more decodes to
# at least this many, of 12 or fewer to fewer: openapi.json's minLength of "image" is 16
MIN_IMAGE_BYTES = 10
# Room for the JSON around a base64 image.
_JSON_OVERHEAD_BYTES = 1024
# An accepted body is one flat object; more objects and arrays than this is refused before parsing,
# which also bounds the nesting depth (json.loads recurses once per level).
MAX_JSON_CONTAINERS = 32
MAX_URL_LENGTH = 2048
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


@dataclass(frozen=True)
class ImageRequest:
    image: bytes
    content_type: str
    top_k: int


@dataclass(frozen=True)
class ImageUrl:
    """An https URL, parsed once and checked: what the downloader connects to and asks for."""

    host: str
    port: int
    target: str  # path and query, as sent in the request line


@dataclass(frozen=True)
class UrlRequest:
    url: ImageUrl
    top_k: int


def read_prediction_request(
    body: str | None,
    is_base64_encoded: bool,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    max_image_bytes: int,
    url_input_enabled: bool = False,
) -> ImageRequest | UrlRequest:
    """Turn the HTTP pieces of an API Gateway request into an ``ImageRequest`` or ``UrlRequest``.

    ``headers`` must have lower-case names (API Gateway HTTP APIs deliver them so). Every refusal is
    one of the project's client errors; nothing a client sends can raise anything else.
    """
    top_k = read_top_k(query.get("top_k"))
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        shown = excerpt(media_type or "none")
        raise UnsupportedMediaTypeError(
            f"Content-Type {shown} is not accepted; send one of {', '.join(ACCEPTED_MEDIA_TYPES)}."
        )
    body = body or ""
    if media_type == "application/json":
        limit = _base64_length(max_image_bytes) + _JSON_OVERHEAD_BYTES
        _refuse_declared_size(headers, limit)
        # surrogatepass: a lone surrogate reaches json.loads as invalid UTF-8 and is refused there.
        text = _base64_decode(body, "body") if is_base64_encoded else body.encode("utf-8", "surrogatepass")
        return _read_json_request(text, top_k, max_image_bytes, url_input_enabled)
    _refuse_declared_size(headers, max_image_bytes)
    if is_base64_encoded:
        _refuse_encoded_size(body, max_image_bytes)
        image = _base64_decode(body, "body")
    else:
        image = body.encode("latin-1", errors="replace")
    return ImageRequest(image=_checked_image(image, max_image_bytes), content_type=sniff_image_type(image), top_k=top_k)


def read_top_k(raw: str | None) -> int:
    """``top_k`` from the query string: ASCII digits only, given once (API Gateway joins repeats with commas)."""
    if raw is None:
        return DEFAULT_TOP_K
    if "," in raw:
        raise MalformedRequestError("top_k was given more than once; give it once.")
    # isdigit alone would take other scripts' digits ("٣", "５"); int() would also take "+5" and "1_0".
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2 and 1 <= int(raw) <= MAX_TOP_K):
        raise MalformedRequestError(f"top_k must be a whole number from 1 to {MAX_TOP_K}; got {raw[:20]!r}.")
    return int(raw)


def sniff_image_type(image: bytes) -> str:
    """Return ``image/jpeg`` or ``image/png`` from the first bytes, or refuse the image."""
    for signature, content_type in IMAGE_SIGNATURES.items():
        if image.startswith(signature):
            return content_type
    raise UndecodableImageError("The body is not a JPEG or PNG image (judged by its first bytes).")


def _read_json_request(
    text: bytes, top_k: int, max_image_bytes: int, url_input_enabled: bool
) -> ImageRequest | UrlRequest:
    if _containers(text) > MAX_JSON_CONTAINERS and _containers(_JSON_STRING.sub(b"", text)) > MAX_JSON_CONTAINERS:
        raise MalformedRequestError('The JSON body is nested too deeply; send {"image": "<base64 JPEG or PNG>"}.')
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedRequestError('The body is not valid JSON; send {"image": "<base64 JPEG or PNG>"}.') from None
    if not isinstance(document, dict):
        raise MalformedRequestError('The JSON body must be an object: {"image": "<base64 JPEG or PNG>"}.')
    given = set(document)
    unknown = sorted(given - set(JSON_FIELDS))
    if unknown or len(given) != 1:
        named = ", ".join(excerpt(name, 20) for name in unknown[:3]) + (
            f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        )
        detail = f"unknown field(s) {named}" if unknown else "exactly one field is needed"
        raise MalformedRequestError(f"{detail}; send exactly one of {list(JSON_FIELDS)}.")
    if "url" in document:
        if not url_input_enabled:
            raise MalformedRequestError(
                'URL input is disabled on this deployment; send the image bytes, or {"image": "<base64>"}.'
            )
        return UrlRequest(url=parse_image_url(document["url"]), top_k=top_k)
    encoded = document["image"]
    if not isinstance(encoded, str) or not encoded:
        raise MalformedRequestError('"image" must be a non-empty base64 string.')
    _refuse_encoded_size(encoded, max_image_bytes)
    image = _base64_decode(encoded, '"image"')
    return ImageRequest(image=_checked_image(image, max_image_bytes), content_type=sniff_image_type(image), top_k=top_k)


def _containers(text: bytes) -> int:
    """Opening brackets in ``text``. Counted on the raw body first: that count is never below the count
    outside strings, so the strings (a base64 image: megabytes) are stripped only when it is over the bound."""
    return text.count(b"[") + text.count(b"{")


def parse_image_url(url) -> ImageUrl:
    """Parse and check an image URL: ASCII, https, a host name, no credentials, a valid port."""
    accepted = f"an https URL of at most {MAX_URL_LENGTH} ASCII characters (host names in punycode)"
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH or not url.isascii():
        raise MalformedRequestError(f'"url" must be {accepted}.')
    if not url.isprintable() or " " in url:
        raise MalformedRequestError(f'"url" must be {accepted}, with no spaces or control characters.')
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:  # an unbalanced [ ], a port that is not a number or is out of range
        raise MalformedRequestError(f'"url" is not a well-formed URL; send {accepted}.') from None
    if parts.scheme != "https" or not parts.hostname:
        raise MalformedRequestError('"url" must be an https URL with a host name.')
    if parts.username is not None or parts.password is not None:
        raise MalformedRequestError('"url" must not carry a user name or password.')
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return ImageUrl(host=parts.hostname.lower(), port=port, target=target)


def _checked_image(image: bytes, max_image_bytes: int) -> bytes:
    if not image:
        raise UndecodableImageError("The image is empty; send the bytes of a JPEG or PNG image.")
    if len(image) < MIN_IMAGE_BYTES:
        raise UndecodableImageError(f"The image is {len(image)} bytes; no JPEG or PNG is under {MIN_IMAGE_BYTES}.")
    if len(image) > max_image_bytes:
        raise _too_large(max_image_bytes)
    return image


def _refuse_declared_size(headers: Mapping[str, str], limit: int) -> None:
    if declares_more_than(headers.get("content-length", ""), limit):
        raise _too_large(limit)


def declares_more_than(content_length: str, limit: int) -> bool:
    """Whether a ``Content-Length`` value declares more than ``limit`` bytes.

    HTTP's grammar is ``Content-Length = 1*DIGIT`` (RFC 9110, section 8.6), ASCII digits only: anything else (``²``
    and ``٣`` pass ``str.isdigit``, and ``int("²")`` raises) declares nothing, and the body's own length is judged
    instead. A value with more significant digits than the limit exceeds it without being converted (``int`` refuses
    strings of more than 4,300 digits)."""
    digits = content_length.strip()
    if not (digits.isascii() and digits.isdigit()):
        return False
    significant = digits.lstrip("0")
    return len(significant) > len(str(limit)) or int(significant or "0") > limit


def _refuse_encoded_size(encoded: str, max_image_bytes: int) -> None:
    # The decoded size, from the encoded length alone: nothing is decoded before this check.
    if len(encoded) * 3 // 4 - encoded[-2:].count("=") > max_image_bytes:
        raise _too_large(max_image_bytes)


def _base64_decode(encoded: str, what: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequestError(f"{what} is not valid base64.") from None


def _base64_length(size: int) -> int:
    return (size + 2) // 3 * 4


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"The image is larger than {limit} bytes; send a smaller JPEG or PNG.")
