"""Against a deployed stack: opt in with RUN_AWS_TESTS=1, credentials, and PREDICTIONS_API_URL set.

The same behaviour is covered offline by tests/integration (handler + boto3 + a SageMaker Runtime
server on loopback); this checks what only AWS can: the real API Gateway, IAM and endpoint. Requests
are signed with SigV4 from the caller's credentials, as `AuthMode=IAM` (the default) requires.
"""

import base64
import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from tests.conftest import load_event

pytestmark = [
    pytest.mark.aws,
    pytest.mark.skipif(
        os.environ.get("RUN_AWS_TESTS") != "1" or not os.environ.get("PREDICTIONS_API_URL"),
        reason="needs a deployed stack: set RUN_AWS_TESTS=1 and PREDICTIONS_API_URL",
    ),
]


def post(url: str, body: bytes, content_type: str, signed: bool = True) -> tuple[int, dict]:
    headers = {"Content-Type": content_type}
    if signed:
        session = boto3.session.Session()
        region = session.region_name or urlsplit(url).hostname.split(".")[2]
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(session.get_credentials().get_frozen_credentials(), "execute-api", region).add_auth(request)
        headers = dict(request.headers)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (the user's API)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refusal:
        return refusal.code, json.loads(refusal.read())


def test_deployed_api_refuses_unsigned_requests_by_default():
    status, _ = post(os.environ["PREDICTIONS_API_URL"], b"GIF89a", "image/gif", signed=False)
    assert status == 403


def test_deployed_api_refuses_an_unsupported_media_type_with_json():
    status, body = post(os.environ["PREDICTIONS_API_URL"], b"GIF89a", "image/gif")
    assert (status, body["error"]["code"]) == (415, "UnsupportedMediaType")


def test_deployed_api_predicts_a_sample_image():
    event = load_event("predict-jpeg.json")
    status, body = post(os.environ["PREDICTIONS_API_URL"] + "?top_k=3", base64.b64decode(event["body"]), "image/jpeg")
    assert status == 200 and len(body["predictions"]) == 3
