"""URL input through PredictFunction: an image fetched over TLS from a loopback server whose test CA the fetcher
trusts is what the endpoint is sent, and a redirect is answered 400. The fetcher's own decisions are tested
against the same server in tests/unit/test_url_download.py; this is the wiring.
"""

from __future__ import annotations

import functools
import json

import pytest

from tests.conftest import load_event, response_json
from tests.support.tls_server import HOST_NAME, JPEG, TlsImageServer, answer
from tests.support.tls_server import loopback_only as _loopback_only
from tests.support.tls_server import to_loopback as _to_loopback


@pytest.fixture
def server():
    routes = {
        "/dog.jpg": answer(JPEG),
        "/moved.jpg": answer(b"", status=302, headers={"Location": "https://169.254.169.254/"}),
    }
    with TlsImageServer(routes) as tls_server:
        yield tls_server


def test_a_url_request_goes_through_the_predict_function(server, predict_function, endpoint_server):
    # Given PredictFunction with the allow-list on, and the fetcher's seams pointed at the test server
    with predict_function(URL_ALLOWED_HOSTS=HOST_NAME) as function:
        # The function's cold start imported the layer anew: take the fetcher from that import
        from dog_breeds.adapters import image_download

        function.module.predict_breeds.download = functools.partial(
            image_download.download_image,
            resolve=_to_loopback,
            tls_context=server.client_context(),
            address_allowed=_loopback_only,
            allowed_ports=frozenset({server.port}),
        )
        event = load_event("predict-url-disabled.json")
        event["body"] = json.dumps({"url": server.url("/dog.jpg")})
        response = function.invoke(event)
        event["body"] = json.dumps({"url": server.url("/moved.jpg")})
        redirected = function.invoke(event)
    # Then the downloaded bytes are what the endpoint was sent, and the answer is predictions
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["predictions"]
    sent, content_type, _ = endpoint_server.models["dog-breed-classifier"].requests[-1]
    assert (sent, content_type) == (JPEG, "image/jpeg")
    assert redirected["statusCode"] == 400 and "302" in response_json(redirected)["error"]["message"]
