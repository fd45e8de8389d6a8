"""The HTTP API's envelope in tests/unit: its security headers on every answer, the events it refuses, what each
error class writes to the log, and the web page's policy. The integration suite checks the same over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from dog_breeds.errors import (
    EndpointTimeoutError,
    MalformedRequestError,
    ModelFailedError,
    ThrottledError,
    UnsupportedMediaTypeError,
)
from dog_breeds.http_api import (
    API_SECURITY_HEADERS,
    OPENAPI_ROUTE,
    WEB_PAGE_ROUTE,
    HttpApiRequest,
    answer_api_request,
    answer_document_request,
    error_response,
    page_content_security_policy,
)

EVENT = {
    "routeKey": "POST /predictions",
    "requestContext": {"requestId": "req-7"},
    "headers": {"Content-Type": "image/jpeg", "X-Api-Key": "k"},
    "queryStringParameters": {"top_k": "3"},
    "body": "AAAA",
    "isBase64Encoded": True,
}


@pytest.fixture(autouse=True)
def _metrics_namespace(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "DogBreedClassifierTests")  # request counts go to stdout


class Recorder:
    """A logger and metrics that keep what they are given (the log level is the behaviour looked at)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def _keep(self, level: str):
        return lambda message, *args, extra=None, **kwargs: self.calls.append((level, message, extra or {}))

    def __getattr__(self, level: str):
        if level in ("info", "warning", "exception", "error", "debug"):
            return self._keep(level)
        raise AttributeError(level)

    def add_metric(self, **kwargs) -> None:
        self.calls.append(("metric", kwargs["name"], kwargs))


def test_an_event_is_read_with_its_header_names_in_lower_case_and_base64_only_when_said_so():
    request = HttpApiRequest.from_event(EVENT)
    assert request.request_id == "req-7" and request.body == "AAAA" and request.is_base64_encoded is True
    assert request.headers == {"content-type": "image/jpeg", "x-api-key": "k"}
    assert request.query == {"top_k": "3"}
    # "true" as text is not True: the body is then read as it is
    assert HttpApiRequest.from_event(EVENT | {"isBase64Encoded": "true"}).is_base64_encoded is False
    bare = HttpApiRequest.from_event({"requestContext": {}, "body": None})  # no route key: a direct invocation
    assert (bare.request_id, bare.headers, bare.query, bare.body) == ("", {}, {}, None)


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ("not an event", "payload format 2.0"),
        ({"routeKey": "POST /predictions"}, "with a requestContext"),
        (EVENT | {"requestContext": "r"}, "with a requestContext"),
        (EVENT | {"routeKey": "GET /"}, "POST /predictions only, not 'GET /'"),
        (EVENT | {"headers": {"content-type": 3}}, "must map text to text"),
        (EVENT | {"headers": {3: "x"}}, "must map text to text"),
        (EVENT | {"headers": ["content-type"]}, "must map text to text"),
        (EVENT | {"queryStringParameters": {"top_k": 3}}, "must map text to text"),
        (EVENT | {"body": {"image": "x"}}, "its body be text"),
    ],
)
def test_an_event_that_is_not_an_http_api_request_is_refused_saying_what_is_answered(event, says):
    with pytest.raises(MalformedRequestError, match=re.escape(says)):
        HttpApiRequest.from_event(event)


def test_every_answer_carries_the_security_headers():
    assert API_SECURITY_HEADERS == {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
    logger = Recorder()
    answered = answer_api_request(EVENT, logger, Recorder(), lambda request: {"predictions": []})
    refused = answer_api_request("nonsense", logger, Recorder(), lambda request: {})
    contract = answer_document_request({"routeKey": OPENAPI_ROUTE, "requestContext": {}})
    missing = answer_document_request({"routeKey": "GET /admin", "requestContext": {}})
    for answer, status in ((answered, 200), (refused, 400), (contract, 200), (missing, 404)):
        assert answer["statusCode"] == status and answer["isBase64Encoded"] is False
        assert {name: answer["headers"][name] for name in API_SECURITY_HEADERS} == API_SECURITY_HEADERS
    assert answered["headers"]["Content-Type"] == "application/json"
    assert json.loads(answered["body"]) == {"predictions": []}
    assert json.loads(refused["body"])["request_id"] == ""


def test_the_web_page_may_not_be_framed_and_runs_only_its_own_script_and_style():
    page = answer_document_request({"routeKey": WEB_PAGE_ROUTE, "requestContext": {}})
    assert page["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert page["headers"]["X-Frame-Options"] == "DENY" and page["headers"]["X-Content-Type-Options"] == "nosniff"
    policy = page["headers"]["Content-Security-Policy"]
    assert policy == page_content_security_policy()
    for tag in ("script", "style"):
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page["body"], flags=re.DOTALL)
        assert blocks, f"the page has no inline {tag}"
        hashes = " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'" for block in blocks
        )
        assert f"{tag}-src {hashes};" in policy
    for directive in ("default-src 'none'", "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "connect-src 'self'" in policy


@pytest.mark.parametrize(
    ("error", "status", "level"),
    [
        (UnsupportedMediaTypeError("image/gif is not accepted"), 415, "info"),
        (ThrottledError("ThrottlingException"), 429, "warning"),
        (ModelFailedError("model said 500"), 502, "warning"),
        (EndpointTimeoutError("no answer"), 504, "warning"),
        (KeyError("a bug"), 500, "exception"),
    ],
)
def test_each_error_is_logged_at_its_level_and_answered_without_its_details(error, status, level):
    logger = Recorder()
    answer = error_response(error, "req-9", logger)
    assert answer["statusCode"] == status
    ((logged_level, _, extra),) = logger.calls
    body = json.loads(answer["body"])
    assert logged_level == level and extra["error_code"] == body["error"]["code"]
    assert "a bug" not in answer["body"] and body["request_id"] == "req-9"
    assert ("Retry-After" in answer["headers"]) is (status == 429)


def test_a_request_that_fails_inside_the_handler_is_answered_from_the_error_table():
    def fails(request):
        raise ModelFailedError("the model answered 500")

    logger = Recorder()
    answer = answer_api_request(EVENT, logger, Recorder(), fails)
    assert answer["statusCode"] == 502 and json.loads(answer["body"])["request_id"] == "req-7"
    assert [level for level, _, _ in logger.calls] == ["warning"]


def test_each_request_records_its_latency_in_milliseconds():
    import time

    metrics = Recorder()

    def slow(request):
        time.sleep(0.05)
        return {}

    answer_api_request(EVENT, Recorder(), metrics, slow)
    ((kind, name, recorded),) = metrics.calls
    assert (kind, name, recorded["unit"].value) == ("metric", "Latency", "Milliseconds")
    assert 50 <= recorded["value"] < 2000


def test_a_failed_endpoint_call_logs_its_cause_or_itself():
    logger = Recorder()
    error_response(ModelFailedError("model said 500"), "r", logger)
    try:
        raise ModelFailedError("wrapped") from TimeoutError("read timed out")
    except ModelFailedError as chained:
        error_response(chained, "r", logger)
    causes = [extra["cause"] for _, _, extra in logger.calls]
    assert causes == [repr(ModelFailedError("model said 500")), repr(TimeoutError("read timed out"))]


@pytest.mark.parametrize(
    ("given", "echoed"),
    [
        ("checkout-7f3a.retry:2", "checkout-7f3a.retry:2"),
        ("a" * 128, "a" * 128),
        ("a" * 129, None),  # too long: dropped, not cut
        ("two words", None),
        ("x\r\nSet-Cookie: s=1", None),  # nothing but the id's own characters goes back into a header
        ("", None),
    ],
)
def test_every_answer_names_its_request_and_echoes_a_well_formed_caller_id(given, echoed):
    event = {**EVENT, "headers": {**EVENT["headers"], "X-Correlation-Id": given}}
    answered = answer_api_request(event, Recorder(), Recorder(), lambda request: {"predictions": []})

    def fails(request):
        raise ThrottledError("slow down")

    refused = answer_api_request(event, Recorder(), Recorder(), fails)
    for answer in (answered, refused):
        assert answer["headers"]["X-Request-Id"] == "req-7"
        assert answer["headers"].get("X-Correlation-Id") == echoed
    assert json.loads(refused["body"])["request_id"] == "req-7" and "Retry-After" in refused["headers"]
    # An event that is no HTTP API request at all still gets an answer, with no id to name
    assert "X-Request-Id" not in answer_api_request("nonsense", Recorder(), Recorder(), fails)["headers"]


def test_a_browser_app_on_an_allowed_origin_may_send_its_id_and_read_the_ids_and_retry_after():
    from offline_stack.sam_template import SamTemplate

    cors = SamTemplate.load().resource("PredictionsApi")["Properties"]["CorsConfiguration"]["Fn::If"][1]
    assert "x-correlation-id" in cors["AllowHeaders"]
    assert set(cors["ExposeHeaders"]) == {"x-request-id", "x-correlation-id", "retry-after"}
