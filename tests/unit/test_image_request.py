"""Decoding POST /predictions requests: what is accepted, and the clear refusals of everything else."""

import base64
import json

import pytest

from dog_breeds.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    UndecodableImageError,
    UnsupportedMediaTypeError,
)
from dog_breeds.image_request import ImageRequest, UrlRequest, read_prediction_request

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60
LIMIT = 1000


def read(body: bytes | str, content_type: str, query=None, base64_encoded=True, headers=None):
    raw = body if isinstance(body, bytes) else body.encode()
    text = base64.b64encode(raw).decode() if base64_encoded else raw.decode()
    return read_prediction_request(
        text, base64_encoded, {"content-type": content_type, **(headers or {})}, query or {}, LIMIT
    )


def test_binary_jpeg_and_png_bodies_are_accepted_with_the_type_their_bytes_show():
    assert read(JPEG, "image/jpeg") == ImageRequest(JPEG, "image/jpeg", 5)
    assert read(PNG, "image/png", {"top_k": "20"}) == ImageRequest(PNG, "image/png", 20)
    # A mislabelled image is sent as what it is
    assert read(PNG, "image/jpeg").content_type == "image/png"


def test_json_base64_image_is_accepted_with_charset_parameter():
    body = json.dumps({"image": base64.b64encode(JPEG).decode()})
    assert read(body, "application/json; charset=utf-8", base64_encoded=False) == ImageRequest(JPEG, "image/jpeg", 5)


@pytest.mark.parametrize("top_k", ["0", "21", "-1", "three", "1.5", ""])
def test_top_k_outside_1_to_20_is_refused_with_the_range(top_k):
    with pytest.raises(MalformedRequestError, match="from 1 to 20"):
        read(JPEG, "image/jpeg", {"top_k": top_k})


@pytest.mark.parametrize("content_type", ["image/gif", "text/plain", "", "application/x-image"])
def test_other_media_types_are_refused_naming_the_accepted_ones(content_type):
    with pytest.raises(UnsupportedMediaTypeError, match="image/jpeg, image/png, application/json"):
        read(JPEG, content_type)


def test_size_is_judged_before_anything_is_decoded():
    # Given a body far over the limit that is not even valid base64
    oversized = "!" * (LIMIT * 2)
    # Then the answer is "too large" (from its length), not a decoding error
    with pytest.raises(PayloadTooLargeError):
        read_prediction_request(oversized, True, {"content-type": "image/jpeg"}, {}, LIMIT)
    with pytest.raises(PayloadTooLargeError):
        read(JPEG, "image/jpeg", headers={"content-length": str(LIMIT + 1)})
    body = json.dumps({"image": "A" * (LIMIT * 2)})
    with pytest.raises(PayloadTooLargeError):
        read(body, "application/json", base64_encoded=False)


def test_an_image_of_exactly_the_limit_is_accepted():
    image = JPEG + b"\x00" * (LIMIT - len(JPEG))
    assert read(image, "image/jpeg").image == image


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('{"image": ', "not valid JSON"),
        ("[1, 2]", "must be an object"),
        ("{}", "exactly one field"),
        ('{"image": "AAAA", "url": "https://a.example/x.jpg"}', "exactly one field"),
        ('{"picture": "AAAA"}', "unknown field"),
        ('{"image": 12}', "non-empty base64 string"),
        ('{"image": "not base64!"}', "not valid base64"),
        ('{"url": "http://images.example.com/dog.jpg"}', "https"),
    ],
)
def test_malformed_json_is_refused_saying_what_is_accepted(body, match):
    with pytest.raises(MalformedRequestError, match=match):
        read(body, "application/json", base64_encoded=False)


def test_url_form_is_read_for_the_fetcher_to_judge():
    body = '{"url": "https://images.example.com/dog.jpg"}'
    assert read(body, "application/json", {"top_k": "2"}, base64_encoded=False) == UrlRequest(
        "https://images.example.com/dog.jpg", 2
    )


@pytest.mark.parametrize("image", [b"", b"GIF89a....", b"hello, world"])
def test_bytes_that_are_not_jpeg_or_png_are_undecodable(image):
    with pytest.raises(UndecodableImageError):
        read(image, "image/jpeg")
