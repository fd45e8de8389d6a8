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
from dog_breeds.image_request import ImageRequest, ImageUrl, UrlRequest, read_prediction_request

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60
LIMIT = 1000


def read(body: bytes | str, content_type: str, query=None, base64_encoded=True, headers=None, url_input=True):
    raw = body if isinstance(body, bytes) else body.encode()
    text = base64.b64encode(raw).decode() if base64_encoded else raw.decode()
    return read_prediction_request(
        text, base64_encoded, {"content-type": content_type, **(headers or {})}, query or {}, LIMIT, url_input
    )


def test_binary_jpeg_and_png_bodies_are_accepted_with_the_type_their_bytes_show():
    assert read(JPEG, "image/jpeg") == ImageRequest(JPEG, "image/jpeg", 5)
    assert read(PNG, "image/png", {"top_k": "20"}) == ImageRequest(PNG, "image/png", 20)
    # A mislabelled image is sent as what it is
    assert read(PNG, "image/jpeg").content_type == "image/png"


def test_json_base64_image_is_accepted_with_charset_parameter():
    body = json.dumps({"image": base64.b64encode(JPEG).decode()})
    assert read(body, "application/json; charset=utf-8", base64_encoded=False) == ImageRequest(JPEG, "image/jpeg", 5)


@pytest.mark.parametrize(
    "top_k", ["0", "21", "-1", "three", "1.5", "", "５", "٣", "+5", "1_0", " 5", "5 ", "005", "9" * 5000]
)
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


def test_a_repeated_top_k_is_refused():
    # API Gateway joins a repeated query parameter's values with commas
    with pytest.raises(MalformedRequestError, match="more than once"):
        read(JPEG, "image/jpeg", {"top_k": "3,4"})


def test_url_form_is_parsed_for_the_fetcher_to_judge():
    body = '{"url": "https://Images.example.com:8443/dogs/lab.jpg?size=large#top"}'
    assert read(body, "application/json", {"top_k": "2"}, base64_encoded=False) == UrlRequest(
        ImageUrl("images.example.com", 8443, "/dogs/lab.jpg?size=large"), 2
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/",
        "https://127.0.0.1:99999/",
        "https://]/",
        "https://host:port/",
        "https://exa\uff0fmple.com/",  # a fullwidth solidus that NFKC turns into a "/"
        "https://bücher.example/dog.jpg",
        "https://user:secret@images.example.com/dog.jpg",
        "https://images.example.com/a b.jpg",
        "https://images.example.com/\u0000.jpg",
        "https:///dog.jpg",
        "ftp://images.example.com/dog.jpg",
        "x" * 3000,
        12,
        None,
    ],
)
def test_every_malformed_url_is_a_400(url):
    body = json.dumps({"url": url})
    with pytest.raises(MalformedRequestError):
        read(body, "application/json", base64_encoded=False)


def test_url_input_switched_off_is_refused_before_the_url_is_read():
    with pytest.raises(MalformedRequestError, match="disabled"):
        read(json.dumps({"url": "https://[::1/"}), "application/json", base64_encoded=False, url_input=False)


@pytest.mark.parametrize(
    "nesting", ["[" * 970 + "]" * 970, '{"image": ' + "[" * 100_000, '{"a": ' * 40 + "1" + "}" * 40]
)
def test_deeply_nested_json_is_a_400_not_a_crash(nesting):
    with pytest.raises(MalformedRequestError):
        read(nesting, "application/json", base64_encoded=False)


def test_brackets_inside_strings_do_not_count_as_nesting():
    body = json.dumps({"url": "https://images.example.com/" + "[{" * 100 + ".jpg"})
    assert read(body, "application/json", base64_encoded=False).url.host == "images.example.com"


def test_a_json_body_that_is_not_utf8_is_a_400():
    with pytest.raises(MalformedRequestError):
        read_prediction_request('{"image": "\udcff"}', False, {"content-type": "application/json"}, {}, LIMIT)
    with pytest.raises(MalformedRequestError):
        read(b'{"image": "\xff\xfe"}', "application/json")


@pytest.mark.parametrize("image", [b"", b"GIF89a....", b"hello, world"])
def test_bytes_that_are_not_jpeg_or_png_are_undecodable(image):
    with pytest.raises(UndecodableImageError):
        read(image, "image/jpeg")


def test_requests_are_values_that_cannot_be_changed_after_reading():
    import dataclasses

    request = read(JPEG, "image/jpeg")
    url = read('{"url": "https://images.example.com/dog.jpg"}', "application/json", base64_encoded=False)
    for value, field in ((request, "top_k"), (url, "top_k"), (url.url, "host")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, 1)


def test_url_input_is_off_unless_the_caller_turns_it_on():
    body = '{"url": "https://images.example.com/dog.jpg"}'
    with pytest.raises(MalformedRequestError, match="disabled"):
        read_prediction_request(body, False, {"content-type": "application/json"}, {}, LIMIT)


def test_a_missing_content_type_is_named_as_none():
    with pytest.raises(UnsupportedMediaTypeError, match="'none' is not accepted"):
        read_prediction_request(base64.b64encode(JPEG).decode(), True, {}, {}, LIMIT)


@pytest.mark.parametrize("top_k", ["1", "10", "20"])
def test_top_k_from_1_to_20_is_accepted(top_k):
    assert read(JPEG, "image/jpeg", {"top_k": top_k}).top_k == int(top_k)


def test_declared_lengths_are_judged_against_the_limit_they_would_decode_to():
    # A raw image may declare exactly the limit; a JSON body, the base64 of the limit plus 1024 bytes of JSON
    image = JPEG + b"\x00" * (LIMIT - len(JPEG))
    assert read(image, "image/jpeg", headers={"content-length": str(LIMIT)}).image == image
    body = json.dumps({"image": base64.b64encode(JPEG).decode()})
    json_limit = (LIMIT + 2) // 3 * 4 + 1024
    accepted = read(body, "application/json", base64_encoded=False, headers={"content-length": str(json_limit)})
    assert accepted.image == JPEG
    with pytest.raises(PayloadTooLargeError):
        read(body, "application/json", base64_encoded=False, headers={"content-length": str(json_limit + 1)})
    # With a limit that is not a multiple of 3, the base64 length is still rounded to whole quartets
    headers = {"content-type": "application/json", "content-length": str((1001 + 2) // 3 * 4 + 1025)}
    with pytest.raises(PayloadTooLargeError):
        read_prediction_request(body, False, headers, {}, 1001)


@pytest.mark.parametrize(("containers", "refused_for_depth"), [(32, False), (33, True)])
def test_up_to_32_objects_and_arrays_are_parsed(containers, refused_for_depth):
    # Half arrays, half objects: both kinds count towards the bound
    arrays, objects = containers // 2, containers - containers // 2
    body = '{"a": ' * (objects - 1) + '{"x": ' + "[" * arrays + "1" + "]" * arrays + "}" * objects
    with pytest.raises(MalformedRequestError) as refusal:
        read(body, "application/json", base64_encoded=False)
    assert ("nested too deeply" in refusal.value.message) == refused_for_depth


def test_a_url_of_exactly_2048_characters_is_accepted():
    url = "https://images.example.com/" + "d" * (2048 - len("https://images.example.com/"))
    body = json.dumps({"url": url})
    assert read(body, "application/json", base64_encoded=False).url.target.startswith("/ddd")


def test_a_user_name_alone_is_refused_too():
    with pytest.raises(MalformedRequestError, match="user name or password"):
        read(
            json.dumps({"url": "https://someone@images.example.com/dog.jpg"}), "application/json", base64_encoded=False
        )


def test_base64_with_stray_characters_is_refused_not_cleaned_up():
    # Lenient decoding would drop the "!" and decode "AAAA" to three zero bytes
    with pytest.raises(MalformedRequestError, match="not valid base64"):
        read('{"image": "AAAA!"}', "application/json", base64_encoded=False)


def test_an_image_shorter_than_any_jpeg_or_png_is_refused():
    from dog_breeds.image_request import MIN_IMAGE_BYTES

    with pytest.raises(UndecodableImageError, match=f"no JPEG or PNG is under {MIN_IMAGE_BYTES}"):
        signature_only = base64.b64encode(b"\xff\xd8\xff").decode()
        read_prediction_request(signature_only, True, {"content-type": "image/jpeg"}, {}, 1000)


def test_an_error_answer_stays_small_whatever_the_request_echoes(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "DogBreedClassifierTests")  # its request counts go to stdout
    # Given requests whose refusals would quote what was sent: 100,000 unknown JSON keys of 50 characters (5 MB),
    # a 1 MB Content-Type header, a 1 MB route key
    from dog_breeds.http_api import answer_api_request

    keys = json.dumps({f"{i:050d}": 1 for i in range(100_000)})
    events = [
        {"headers": {"content-type": "application/json"}, "body": keys},
        {"headers": {"content-type": "image/" + "x" * 1_000_000}, "body": "AAAA"},
        {"headers": {"content-type": "image/jpeg"}, "body": "AAAA", "routeKey": "POST /" + "p" * 1_000_000},
    ]
    for event in events:
        base = {"requestContext": {"requestId": "r"}, "isBase64Encoded": False, "routeKey": "POST /predictions"}
        event = base | event
        answer = answer_api_request(event, _Quiet(), _Quiet(), _read)
        # Then each answer is a short client error, far under Lambda's 6 MB response limit
        assert 400 <= answer["statusCode"] < 500 and len(answer["body"]) < 1000, answer["body"][:300]
        assert "characters" in answer["body"] or "more" in answer["body"]


def _read(request) -> dict:
    # From the modules in sys.modules now, as answer_api_request is (an in-process cold start may reload them)
    from dog_breeds.image_request import read_prediction_request

    read_prediction_request(request.body, request.is_base64_encoded, request.headers, request.query, LIMIT)
    return {}


class _Quiet:
    """A logger and metrics that keep nothing (the answer is what this test looks at)."""

    def info(self, *args, **kwargs) -> None: ...

    warning = exception = add_metric = info


def test_brackets_inside_strings_do_not_push_32_containers_over_the_bound():
    # 32 objects and arrays outside strings, one more bracket inside a string: the raw count is 33, the real one 32
    arrays, objects = 16, 16
    body = '{"a": ' * (objects - 1) + '{"x[": ' + "[" * arrays + "1" + "]" * arrays + "}" * objects
    with pytest.raises(MalformedRequestError) as refusal:
        read(body, "application/json", base64_encoded=False)
    assert "nested too deeply" not in refusal.value.message


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (["a", "b", "c"], "unknown field(s) 'a', 'b', 'c';"),
        (["a", "b", "c", "d"], "unknown field(s) 'a', 'b', 'c' and 1 more;"),
        (["a", "b", "c", "d", "e", "f"], "unknown field(s) 'a', 'b', 'c' and 3 more;"),
    ],
)
def test_unknown_fields_are_named_up_to_three_and_the_rest_counted(names, said):
    body = json.dumps(dict.fromkeys(names, 1))
    with pytest.raises(MalformedRequestError) as refusal:
        read(body, "application/json", base64_encoded=False)
    assert said in refusal.value.message


def test_an_image_of_exactly_the_smallest_size_is_read():
    from dog_breeds.image_request import MIN_IMAGE_BYTES

    smallest = JPEG[:MIN_IMAGE_BYTES]
    assert read(smallest, "image/jpeg").image == smallest
    assert read(json.dumps({"image": base64.b64encode(smallest).decode()}), "application/json", False).image == smallest


def test_a_base64_image_of_a_length_no_padding_explains_is_refused_as_invalid_not_as_too_large():
    # 5 characters decode to 3 whole bytes at most: within a 3-byte limit, so the refusal is the encoding's
    body = json.dumps({"image": "AAAAA"})
    with pytest.raises(MalformedRequestError, match="is not valid base64"):
        read_prediction_request(body, False, {"content-type": "application/json"}, {}, 3)


@pytest.mark.parametrize(
    "content_length, refused",
    [
        ("²", False),  # str.isdigit() says yes and int() raises: declares nothing, the body is judged
        ("٣٣٣٣٣٣٣٣٣٣٣٣", False),  # Arabic-Indic digits are not HTTP's DIGIT
        ("9" * 5000, True),  # more digits than int() converts: larger than any limit
        ("0" * 5000 + "5", False),  # leading zeros count for nothing
        (" 12 ", False),
        ("1e9", False),
        (str(LIMIT + 1), True),
    ],
)
def test_a_declared_length_is_read_as_http_defines_it_never_raising(content_length, refused):
    if refused:
        with pytest.raises(PayloadTooLargeError):
            read(JPEG, "image/jpeg", headers={"content-length": content_length})
    else:
        assert read(JPEG, "image/jpeg", headers={"content-length": content_length}).image == JPEG
