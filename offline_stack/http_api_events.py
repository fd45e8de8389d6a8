"""API Gateway HTTP API (payload format 2.0) events for ``POST /predictions``, built in one place.

Used for the sample events in events/ and by the local API front for live requests.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping

from offline_stack.sam_template import PSEUDO_PARAMETERS

ROUTE = "POST /predictions"


def http_api_event(
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    *,
    base64_encoded: bool,
    request_id: str,
    source_ip: str,
    epoch_ms: int,
    domain: str,
    api_id: str,
    route: str = ROUTE,
) -> dict:
    """The event API Gateway delivers: lower-case header names, binary bodies base64-encoded."""
    method, path = route.split(" ", 1)
    headers = {name.lower(): value for name, value in headers.items()}
    user_agent = headers.get("user-agent", "")
    event = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()),
        "headers": headers,
        "requestContext": {
            "accountId": PSEUDO_PARAMETERS["AWS::AccountId"],
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms // 1000)),
            "timeEpoch": epoch_ms,
        },
        "body": base64.b64encode(body).decode() if base64_encoded else body.decode("utf-8", "replace"),
        "isBase64Encoded": base64_encoded,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    return event
