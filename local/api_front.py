"""A local HTTP front for the API: ``POST /predictions`` on loopback, as API Gateway's HTTP API would.

Each request becomes an API Gateway HTTP API (payload 2.0) event, the prediction function's handler is
called as template.yaml wires it (one execution environment, one request at a time, as one Lambda
instance serves), and its response becomes the HTTP answer. Binary bodies arrive base64-encoded, as
API Gateway delivers them.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid

from werkzeug.wrappers import Request, Response

from local.http_api_events import http_api_event
from local.lambda_invoker import LambdaFunction
from local.loopback_server import LoopbackServer

_TEXT_TYPES = ("application/json", "text/")


def event_for(request: Request) -> dict:
    """The payload 2.0 event API Gateway would deliver for this HTTP request."""
    as_text = request.headers.get("Content-Type", "").startswith(_TEXT_TYPES)
    return http_api_event(
        request.get_data(),
        dict(request.headers),
        dict(request.args),
        base64_encoded=not as_text,
        request_id=str(uuid.uuid4()),
        source_ip=request.remote_addr or "",
        epoch_ms=int(time.time() * 1000),
        domain=request.host,
        api_id="offline",
    )


class ApiFront(LoopbackServer):
    """Serve ``POST /predictions`` through ``function`` (an open ``LambdaFunction``) until ``stop()``."""

    def __init__(self, function: LambdaFunction, port: int = 0) -> None:
        self.function = function
        self.requests = 0
        self._lock = threading.Lock()
        super().__init__(self._app, port=port, threads=4, name="api-front")

    def _app(self, environ, start_response):
        request = Request(environ)
        if request.path != "/predictions":
            response = Response('{"message":"Not Found"}', status=404, content_type="application/json")
        elif request.method != "POST":
            response = Response('{"message":"Method Not Allowed"}', status=405, content_type="application/json")
        else:
            with self._lock:  # one Lambda execution environment serves one request at a time
                self.requests += 1
                answer = self.function.invoke(event_for(request))
            body = answer.get("body", "")
            data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
            response = Response(data, status=answer["statusCode"], headers=answer.get("headers", {}))
        return response(environ, start_response)
