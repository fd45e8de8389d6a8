"""What the HTTP API puts around the logic: the event read, error responses from the one table, request metrics,
and the two documents (the page and the contract) the page function serves.

Each function answers its own routes, and API Gateway sends it nothing else (template.yaml), so neither needs a
router: Powertools' event handler would cost about 100 ms of every cold start (it imports asyncio and every event
class) for a dispatch table of a few lines.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from dog_breeds.errors import UNEXPECTED_ERROR, MalformedRequestError, excerpt, http_error
from dog_breeds.ports import Prediction

JSON = "application/json"
PREDICTIONS_ROUTE = "POST /predictions"
OPENAPI_ROUTE = "GET /openapi.json"  # the API's contract, dog_breeds/openapi.json
WEB_PAGE_ROUTE = "GET /"  # a page to try the API from a browser, dog_breeds/web_page.html
# Read at cold start (this module is imported then), not on every request.
_METRICS_DISABLED = is_metrics_disabled()


@dataclass(frozen=True)
class HttpApiRequest:
    """The parts of an API Gateway HTTP API (payload format 2.0) event that a prediction reads."""

    request_id: str
    body: str | None
    is_base64_encoded: bool
    headers: Mapping[str, str]  # names in lower case, as API Gateway delivers them
    query: Mapping[str, str]

    @classmethod
    def from_event(cls, event: object) -> HttpApiRequest:
        """Read ``event``; anything that is not a payload 2.0 event for ``POST /predictions`` is refused."""
        if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
            raise MalformedRequestError(
                "This function answers API Gateway HTTP API events (payload format 2.0) with a requestContext."
            )
        route = event.get("routeKey", PREDICTIONS_ROUTE)
        if route != PREDICTIONS_ROUTE:
            raise MalformedRequestError(f"This function answers {PREDICTIONS_ROUTE} only, not {excerpt(route)}.")
        headers, query, body = event.get("headers") or {}, event.get("queryStringParameters") or {}, event.get("body")
        if not _is_text_map(headers) or not _is_text_map(query) or not isinstance(body, str | None):
            raise MalformedRequestError("The event's headers and query must map text to text, and its body be text.")
        return cls(
            request_id=str(event["requestContext"].get("requestId", "")),
            body=body,
            is_base64_encoded=event.get("isBase64Encoded") is True,
            headers={name.lower(): value for name, value in headers.items()},
            query=query,
        )


# Headers on every answer: no content sniffing, no referrer, and nothing of the API may be framed or run anything
API_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# A caller's own id for a request, echoed on its answer (docs/api.md, "The prediction API")
CORRELATION_HEADER = "x-correlation-id"
CORRELATION_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def answer_document_request(event: object, notice: str = "", auth_mode: str = "") -> dict:
    """``GET /`` and ``GET /openapi.json`` (the page function): the file, with its headers; ``notice`` is what they
    must tell callers (that a share of their photos is kept). The contract names the stage it is served from as its
    server and the credentials ``auth_mode`` (the stack's ``AuthMode``) asks for as its security, so a client
    generated from it calls this stage as it must. Any other route: 404, as JSON."""
    route = event.get("routeKey") if isinstance(event, dict) else None
    if route not in _DOCUMENTS:
        body = {"message": f"This function answers {' and '.join(_DOCUMENTS)} only, not {excerpt(route)}."}
        return _json_response(404, body)
    content_type, name = _DOCUMENTS[route]
    headers = {"Content-Type": content_type, **API_SECURITY_HEADERS}
    document = _with_notice(name, notice)
    if route == WEB_PAGE_ROUTE:
        headers |= {"Content-Security-Policy": page_content_security_policy(), "X-Frame-Options": "DENY"}
    elif isinstance(event, dict):
        document = _as_served(document, _served_at(event), auth_mode)
    return {"statusCode": 200, "headers": headers, "body": document, "isBase64Encoded": False}


# What POST /predictions asks of a caller under each AuthMode (the document's securitySchemes); NONE: nothing
SECURITY_BY_AUTH_MODE: dict[str, list[dict[str, list[str]]]] = {
    "IAM": [{"sigv4": []}],
    "JWT": [{"jwt": []}],
    "NONE": [],
}


def _served_at(event: dict) -> str | None:
    """The stage's base URL, from the request it was asked by: API Gateway serves HTTPS only; the offline front
    plain HTTP on loopback (an inference from where each listens, not a header API Gateway documents)."""
    domain = (event.get("requestContext") or {}).get("domainName")
    if not isinstance(domain, str) or not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", domain):
        return None
    loopback = domain.split(":")[0] in ("127.0.0.1", "localhost")
    return f"{'http' if loopback else 'https'}://{domain}"


@cache
def _as_served(document: str, server: str | None, auth_mode: str) -> str:
    contract = json.loads(document)
    if server:
        contract["servers"] = [{"url": server, "description": "the stage that served this document"}]
    if auth_mode in SECURITY_BY_AUTH_MODE:
        contract["paths"]["/predictions"]["post"]["security"] = SECURITY_BY_AUTH_MODE[auth_mode]
    return json.dumps(contract, indent=2)


def answer_api_request(
    event: object, logger: Logger, metrics: Metrics, handle: Callable[[HttpApiRequest], dict]
) -> dict:
    """Answer ``event`` with ``handle``'s result as JSON, or with the error table's row for what it raised."""
    started, outcome, request_id = time.perf_counter(), "Success", _request_id(event)
    tracing = _tracing_headers(event, request_id)
    try:
        request = HttpApiRequest.from_event(event)
        response = _json_response(200, handle(request))
    except Exception as exc:
        outcome = http_error(exc).code
        response = error_response(exc, request_id, logger)
    finally:
        if not _METRICS_DISABLED:  # Powertools would still flush every 100 metrics added
            metrics.add_metric(
                name="Latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
            )
        _count("Requests", "Outcome", outcome)
    response["headers"] |= tracing
    return response


def _tracing_headers(event: object, request_id: str) -> dict[str, str]:
    """``X-Request-Id``: API Gateway's id of this request (the body's ``request_id``, and what the logs are keyed by);
    ``X-Correlation-Id``: the caller's own id, echoed when it is one (1-128 of ``A-Za-z0-9._:-``) and dropped
    otherwise, so a header can never carry anything else back."""
    headers = {"X-Request-Id": request_id} if request_id else {}
    raw = event.get("headers") if isinstance(event, dict) else None
    if isinstance(raw, dict):
        given = next((v for k, v in raw.items() if isinstance(k, str) and k.lower() == CORRELATION_HEADER), None)
        if isinstance(given, str) and CORRELATION_ID_PATTERN.fullmatch(given):
            headers["X-Correlation-Id"] = given
    return headers


def error_response(exc: Exception, request_id: str, logger: Logger) -> dict:
    """Answer ``exc`` as the error table says; the details go to the log, never to the caller."""
    error = http_error(exc)
    if error.code == UNEXPECTED_ERROR.code:
        logger.exception("request failed unexpectedly", extra={"error_code": error.code})
    elif error.status >= 500 or error.status == 429:
        logger.warning("endpoint call failed", extra={"error_code": error.code, "cause": repr(exc.__cause__ or exc)})
    else:
        logger.info("request refused", extra={"error_code": error.code, "reason": error.message})
    response = _json_response(error.status, error.body(request_id))
    if error.retry_after_seconds is not None:
        response["headers"]["Retry-After"] = str(error.retry_after_seconds)
    return response


_DOCUMENTS = {
    OPENAPI_ROUTE: (JSON, "openapi.json"),
    WEB_PAGE_ROUTE: ("text/html; charset=utf-8", "web_page.html"),
}


@cache
def _document(name: str) -> str:
    """A file served as it is (read when first asked for, not at cold start)."""
    return (Path(__file__).parent / name).read_text()


NOTICE_PLACEHOLDER = "<!-- notice -->"


@cache
def _with_notice(name: str, notice: str) -> str:
    """The document, telling callers ``notice`` (the page in a paragraph of its own, the contract in its
    description); as it is when there is nothing to tell."""
    text = _document(name)
    if not notice:
        return text
    if name.endswith(".html"):
        paragraph = f'<p id="notice" class="notice">{html.escape(notice)}</p>'
        return text.replace(NOTICE_PLACEHOLDER, paragraph)
    document = json.loads(text)
    document["info"]["description"] += f"\n\n{notice}"
    return json.dumps(document)


def record_predicted_breed(predictions: list[Prediction]) -> None:
    if predictions:
        _count("PredictedBreed", "Breed", predictions[0]["breed"])


def _json_response(status: int, body: dict) -> dict:
    headers = {"Content-Type": JSON, **API_SECURITY_HEADERS}
    return {"statusCode": status, "headers": headers, "body": json.dumps(body), "isBase64Encoded": False}


@cache
def page_content_security_policy() -> str:
    """The web page's policy: its own inline script and style by their SHA-256 (no ``'unsafe-inline'``), photos as
    blob: URLs, requests to its own origin only, no plugins, forms, base rewriting or framing."""
    page = _document("web_page.html")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
        digests = (base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() for block in blocks)
        return " ".join(f"'sha256-{digest}'" for digest in digests)

    return (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; img-src blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _request_id(event: object) -> str:
    context = event.get("requestContext") if isinstance(event, dict) else None
    return str(context.get("requestId", "")) if isinstance(context, dict) else ""


def _is_text_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _count(name: str, dimension: str, value: str) -> None:
    """One count in its own EMF blob, so its dimension does not apply to the request's other metrics."""
    if _METRICS_DISABLED:  # single_metric ignores POWERTOOLS_METRICS_DISABLED on its own
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name=dimension, value=value)
