"""Write the sample events in events/: ``python -m local.sample_events``.

API Gateway HTTP API (payload format 2.0) events for ``PredictFunction``, small enough to read.
The same files drive ``sam local invoke -e`` and the tests (see tests/event_expectations.py).
"""

from __future__ import annotations

import base64
import json
import random

from local.sam_template import PROJECT_ROOT
from local.synthetic_images import class_image, encoded_image

EVENTS_DIR = PROJECT_ROOT / "events"


def http_api_event(
    body: bytes,
    content_type: str,
    query: dict[str, str] | None = None,
    declared_length: int | None = None,
    base64_encoded: bool = True,
    request_id: str = "sample-request-id",
) -> dict:
    """An API Gateway HTTP API v2 event for ``POST /predictions`` as API Gateway would deliver it."""
    query = query or {}
    event = {
        "version": "2.0",
        "routeKey": "POST /predictions",
        "rawPath": "/predictions",
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()),
        "headers": {
            "accept": "application/json",
            "content-length": str(len(body) if declared_length is None else declared_length),
            "content-type": content_type,
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": "/predictions",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "curl/8.5.0",
            },
            "requestId": request_id,
            "routeKey": "POST /predictions",
            "stage": "$default",
            "time": "25/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795608000000,
        },
        "body": base64.b64encode(body).decode() if base64_encoded else body.decode(),
        "isBase64Encoded": base64_encoded,
    }
    if query:
        event["queryStringParameters"] = query
    return event


def sample_events() -> dict[str, dict]:
    rng = random.Random(3)
    jpeg = encoded_image(class_image(0, rng, 48), "JPEG")
    png = encoded_image(class_image(2, rng, 32), "PNG")
    json_image = json.dumps({"image": base64.b64encode(jpeg).decode()}).encode()
    return {
        "predict-jpeg.json": http_api_event(jpeg, "image/jpeg", {"top_k": "3"}),
        "predict-png.json": http_api_event(png, "image/png"),
        "predict-json-base64.json": http_api_event(json_image, "application/json", base64_encoded=False),
        "predict-url-disabled.json": http_api_event(
            b'{"url": "https://images.example.com/labrador.jpg"}', "application/json", base64_encoded=False
        ),
        "predict-unsupported-media-type.json": http_api_event(b"GIF89a\x01\x00\x01\x00", "image/gif"),
        "predict-malformed-json.json": http_api_event(b'{"image": ', "application/json", base64_encoded=False),
        "predict-bad-top-k.json": http_api_event(jpeg, "image/jpeg", {"top_k": "50"}),
        "predict-oversized.json": http_api_event(jpeg[:64], "image/jpeg", declared_length=10 * 1024 * 1024),
        "predict-not-an-image.json": http_api_event(b"this is text, not a JPEG", "image/jpeg"),
    }


def main() -> None:
    for name, event in sample_events().items():
        (EVENTS_DIR / name).write_text(json.dumps(event, indent=2) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
