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

from local.lambda_invoker import LambdaFunction
from local.loopback_server import LoopbackServer
from local.sam_template import PSEUDO_PARAMETERS

_TEXT_TYPES = ("application/json", "text/")


def http_api_event(request: Request) -> dict:
    body = request.get_data()
    content_type = request.headers.get("Content-Type", "")
    as_text = content_type.startswith(_TEXT_TYPES)
    headers = {name.lower(): value for name, value in request.headers.items()}
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": "POST /predictions",
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode(),
        "headers": headers,
        "requestContext": {
            "accountId": PSEUDO_PARAMETERS["AWS::AccountId"],
            "apiId": "offline",
            "domainName": request.host,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.remote_addr or "",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "POST /predictions",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body.decode("utf-8", "replace") if as_text else base64.b64encode(body).decode(),
        "isBase64Encoded": not as_text,
    }
    if request.args:
        event["queryStringParameters"] = dict(request.args)
    return event


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
                answer = self.function.invoke(http_api_event(request))
            body = answer.get("body", "")
            data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
            response = Response(data, status=answer["statusCode"], headers=answer.get("headers", {}))
        return response(environ, start_response)
