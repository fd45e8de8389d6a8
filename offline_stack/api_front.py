"""A local HTTP front for the API: ``POST /predictions`` on loopback, as API Gateway's HTTP API answers it.

Each request becomes an API Gateway HTTP API (payload 2.0) event and is handed to an execution
environment of the prediction function (``ConcurrencyPool``: separate processes, at most the reserved
concurrency at once). What API Gateway does around the function is emulated too:

- the route throttle (a token bucket per route: ``rate`` per second, ``burst`` at once) answers **429**
  ``{"message":"Too Many Requests"}`` before the function is called;
- the route's authorization (``AuthMode``: IAM SigV4, a JWT, or none) answers **403**/**401** before anything else
  is spent on a request it refuses (``aws_rules.api_gateway``: ``IamAuthorization``, ``JwtAuthorization``);
- a method and path that match no route: **404** ``{"message":"Not Found"}``; a request Waitress cannot parse
  gets API Gateway's JSON shape too (``aws_rules.api_gateway`` holds these rules and their sources);
- a request that passes the throttle but finds every execution environment busy is throttled by
  Lambda, which API Gateway reports as an integration failure: **500**
  ``{"message":"Internal Server Error"}`` (the template's throttle defaults are derived so that this
  does not happen; see docs/capacity-and-cost.md, "Concurrency and throttling");
- a function that runs but fails (it raises, crashes, times out, or its cold start fails) or answers in a shape API
  Gateway cannot read: **502** ``{"message":"Internal Server Error"}``. AWS's words for both: "If the Lambda API
  rejects the invocation request, API Gateway returns a 500 error code. If the function runs but returns an error,
  or returns a response in the wrong format, API Gateway returns a 502" (Lambda developer guide, "Handling Lambda
  errors with an API Gateway API").

Binary bodies arrive base64-encoded, as API Gateway delivers them. Waitress closes a connection
that sends nothing for ``channel_timeout`` seconds, so a malformed request cannot hold a thread.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

from offline_stack.aws_rules.api_gateway import JsonErrorChannel, Refusal, message_body
from offline_stack.execution_environments import ConcurrencyPool, ExecutionEnvironmentError, LambdaThrottledError
from offline_stack.http_api_events import http_api_event
from offline_stack.loopback_server import LoopbackServer

_TEXT_TYPES = ("application/json", "text/")
JSON = "application/json"
TOO_MANY_REQUESTS = Response('{"message":"Too Many Requests"}', status=429, content_type=JSON)
INTERNAL_SERVER_ERROR = Response('{"message":"Internal Server Error"}', status=500, content_type=JSON)
BAD_GATEWAY = Response('{"message":"Internal Server Error"}', status=502, content_type=JSON)


# The API's routes (template.yaml): the first integrated with PredictFunction and carrying AuthMode's check, the
# page and the contract with PageFunction (their own function and throttle, so they never take predictions' share)
ROUTES = ("POST /predictions", "GET /openapi.json", "GET /")
AUTHORIZED_ROUTES = ROUTES[:1]
PAGE_ROUTES = ROUTES[1:]

# A route's authorization: (method, path with query, headers, body, route) -> a refusal, or None to let it through
Authorization = Callable[[str, str, Mapping[str, str], bytes, str], Refusal | None]


def event_for(request: Request, route: str = ROUTES[0]) -> dict:
    """The payload 2.0 event API Gateway would deliver for this HTTP request."""
    as_text = request.headers.get("Content-Type", "").startswith(_TEXT_TYPES)
    return http_api_event(
        request.get_data(),
        dict(request.headers),
        _query_parameters(request),
        base64_encoded=not as_text,
        request_id=str(uuid.uuid4()),
        source_ip=request.remote_addr or "",
        epoch_ms=int(time.time() * 1000),
        domain=request.host,
        api_id="offline",
        route=route,
    )


class RouteThrottle:
    """API Gateway's route throttling: a token bucket of ``burst`` tokens refilled at ``rate`` per second."""

    def __init__(self, rate_per_second: float, burst: int) -> None:
        self.rate, self.burst = rate_per_second, burst
        self._tokens, self._last = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


@dataclass
class FrontCounts:
    requests: int = 0
    refused_by_authorizer: int = 0
    throttled_by_route: int = 0
    throttled_by_lambda: int = 0
    function_failures: int = 0


class ApiFront(LoopbackServer):
    """Serve the API's routes through ``pool`` until ``stop()``; ``throttle`` (the stage's default route settings)
    gives each route a bucket of its own; None turns route throttling off. ``authorization`` checks the
    authorized routes (None: ``AuthMode=NONE``, open); ``sign`` is how a caller the stack knows signs for it."""

    def __init__(
        self,
        pool: ConcurrencyPool,
        throttle: RouteThrottle | None,
        port: int = 0,
        authorization: Authorization | None = None,
        sign: Callable | None = None,
        page_pool: ConcurrencyPool | None = None,
        page_throttle: RouteThrottle | None = None,
    ) -> None:
        """``page_pool``/``page_throttle``: PageFunction's environments and its routes' throttle (the stage's
        RouteSettings); without them the page routes share ``pool`` and ``throttle``'s settings."""
        self.pool, self.page_pool = pool, page_pool or pool
        self._page_settings = page_throttle
        self.throttle = throttle
        self.authorization, self.sign = authorization, sign
        self.counts = FrontCounts()
        self._lock = threading.Lock()
        # More threads than environments: the extra requests must be answered (429/500), not queued.
        super().__init__(self._app, port=port, threads=4 * pool.reserved_concurrency + 4, name="api-front")
        self._server.channel_class = JsonErrorChannel  # malformed requests answered as API Gateway does

    @property
    def throttle(self) -> RouteThrottle | None:
        """The stage's default route throttle (the bucket of ``POST /predictions``)."""
        return self._throttles.get(ROUTES[0]) if self._throttles else None

    @throttle.setter
    def throttle(self, settings: RouteThrottle | None) -> None:
        def bucket(route: str) -> RouteThrottle | None:
            chosen = self._page_settings if route in PAGE_ROUTES and self._page_settings else settings
            return RouteThrottle(chosen.rate, chosen.burst) if chosen else None

        self._throttles = {route: b for route in ROUTES if (b := bucket(route)) is not None}

    @property
    def requests(self) -> int:
        return self.counts.requests

    def _app(self, environ, start_response):
        request = Request(environ)
        route = f"{request.method} {request.path}"
        if route in ROUTES:
            response = self._route(request, route)
        else:  # HTTP APIs match method and path together: no route, no integration
            response = Response('{"message":"Not Found"}', status=404, content_type=JSON)
        return response(environ, start_response)

    def _route(self, request: Request, route: str) -> Response:
        self._count("requests")
        if self.authorization is not None and route in AUTHORIZED_ROUTES:
            path = request.full_path.rstrip("?")
            refusal = self.authorization(request.method, path, dict(request.headers), request.get_data(), route)
            if refusal is not None:
                self._count("refused_by_authorizer")
                return Response(
                    message_body(refusal.message), status=refusal.status, headers=refusal.headers, content_type=JSON
                )
        bucket = self._throttles.get(route)
        if bucket is not None and not bucket.admit():
            self._count("throttled_by_route")
            return TOO_MANY_REQUESTS
        try:
            answer = (self.page_pool if route in PAGE_ROUTES else self.pool).invoke(event_for(request, route))
        except LambdaThrottledError:
            self._count("throttled_by_lambda")
            return INTERNAL_SERVER_ERROR
        except ExecutionEnvironmentError:  # the function ran and failed: Lambda answers a function error
            self._count("function_failures")
            return BAD_GATEWAY
        try:
            body = answer.get("body", "")
            data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
            return Response(data, status=answer["statusCode"], headers=answer.get("headers", {}))
        except (KeyError, TypeError, ValueError, AttributeError):
            return BAD_GATEWAY

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.counts, name, getattr(self.counts, name) + 1)


def _query_parameters(request: Request) -> dict[str, str]:
    """As API Gateway's payload 2.0 gives them: a repeated parameter's values joined with commas."""
    return {name: ",".join(request.args.getlist(name)) for name in request.args}
