"""What an API Gateway HTTP API answers around its integration, where a client can see it.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **Route throttling is per route.** A stage's ``DefaultRouteSettings`` throttle applies to each route on its own
  (a token bucket per route, ``ThrottlingRateLimit`` per second, ``ThrottlingBurstLimit`` at once); a request over
  it is answered 429 ``{"message":"Too Many Requests"}``. So page loads of ``GET /`` do not spend the tokens of
  ``POST /predictions``. Source: API Gateway developer guide, "Throttle requests to your HTTP APIs" (route-level
  throttling).
- **No route, no integration.** A request whose method and path match no route (and no ``$default`` route) is
  answered 404 ``{"message":"Not Found"}``; HTTP APIs have no 405 for a known path with another method. Source:
  API Gateway developer guide, "Create routes for HTTP APIs in API Gateway", "Routing API requests".
- **Errors are JSON.** API Gateway's own answers carry ``{"message": "..."}`` with ``application/json``, malformed
  requests included, never an HTTP server's plain-text page. Source: API Gateway developer guide, "Gateway
  responses" / HTTP API error messages (``{"message":"Internal Server Error"}`` etc.).
"""

from __future__ import annotations

import json

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

JSON = "application/json"


def message_body(reason: str) -> bytes:
    return json.dumps({"message": reason}, separators=(",", ":")).encode()


class _JsonErrorTask(ErrorTask):
    """Waitress's answer to a request it cannot parse (bad framing, oversized headers), as API Gateway's JSON."""

    def execute(self) -> None:
        status, _, _ = self.request.error.to_response(self.channel.server.adj.ident)
        body = message_body(status.split(" ", 1)[1] if " " in status else status)
        self.status = status
        self.response_headers.append(("Content-Type", JSON))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask
