"""A client of the prediction API as the README asks clients to be: it backs off and retries after a 429."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request


def post_image(api_url: str, image: bytes, content_type: str, top_k: int = 3, retries: int = 6) -> tuple[int, dict]:
    """POST an image as a well-behaved client does: a 429 (the route throttle) is retried with backoff."""
    url = f"{api_url}/predictions?top_k={top_k}"  # the local API front on 127.0.0.1
    request = urllib.request.Request(url, data=image, headers={"Content-Type": content_type}, method="POST")  # noqa: S310
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (loopback)
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refusal:
            if refusal.code != 429 or attempt == retries:
                return refusal.code, json.loads(refusal.read())
        time.sleep(min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
    raise AssertionError("unreachable")
