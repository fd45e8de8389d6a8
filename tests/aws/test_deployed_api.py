"""Against a deployed stack: opt in with RUN_AWS_TESTS=1, credentials, and PREDICTIONS_API_URL set.

The same behaviour is covered offline by tests/integration (handler + boto3 + a SageMaker Runtime
server on loopback); this checks what only AWS can: the real API Gateway, IAM and endpoint.
"""

import base64
import json
import os
import urllib.request

import pytest

from tests.conftest import load_event

pytestmark = [
    pytest.mark.aws,
    pytest.mark.skipif(
        os.environ.get("RUN_AWS_TESTS") != "1" or not os.environ.get("PREDICTIONS_API_URL"),
        reason="needs a deployed stack: set RUN_AWS_TESTS=1 and PREDICTIONS_API_URL",
    ),
]


def test_deployed_api_refuses_an_unsupported_media_type_with_json():
    request = urllib.request.Request(
        os.environ["PREDICTIONS_API_URL"], data=b"GIF89a", headers={"Content-Type": "image/gif"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310 (the URL is the user's own API)
    assert answer.value.code == 415
    assert json.loads(answer.value.read())["error"]["code"] == "UnsupportedMediaType"


def test_deployed_api_predicts_a_sample_image():
    event = load_event("predict-jpeg.json")
    request = urllib.request.Request(
        os.environ["PREDICTIONS_API_URL"] + "?top_k=3",
        data=base64.b64decode(event["body"]),
        headers={"Content-Type": "image/jpeg"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        body = json.loads(answer.read())
    assert len(body["predictions"]) == 3
