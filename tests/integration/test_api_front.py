"""The offline API front behaves like the deployed API under concurrency, throttling and bad HTTP.

Execution environments are real processes (one per concurrent request, up to the reserved
concurrency); the endpoint is the SageMaker Runtime server on loopback serving a model that takes
its time, so overlapping requests really overlap.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from offline_stack.api_front import ApiFront, RouteThrottle
from offline_stack.control_plane import DUMMY_CREDENTIALS
from offline_stack.endpoint_server import EndpointServer
from offline_stack.execution_environments import ConcurrencyPool
from tests.conftest import ENDPOINT_NAME
from tests.support.models import CannedModel

DELAY_SECONDS = 0.8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


class SlowModel(CannedModel):
    def invoke(self, *arguments):
        time.sleep(DELAY_SECONDS)
        return super().invoke(*arguments)


@pytest.fixture(scope="module")
def pool():
    with EndpointServer() as server:
        server.serve(ENDPOINT_NAME, SlowModel())
        environment = {
            **DUMMY_CREDENTIALS,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url,
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        pool = ConcurrencyPool("PredictFunction", 2, environment)
        pool.warm(2)
        yield pool
        pool.close()


@pytest.fixture(scope="module")
def page_pool():
    environment = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    page_pool = ConcurrencyPool("PageFunction", 2, environment)
    yield page_pool
    page_pool.close()


def post(url: str) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{url}/predictions", data=JPEG, headers={"Content-Type": "image/jpeg"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refusal:
        return refusal.code, json.loads(refusal.read())


def post_together(url: str, count: int) -> list[tuple[int, dict]]:
    answers: list[tuple[int, dict]] = []
    threads = [threading.Thread(target=lambda: answers.append(post(url))) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_requests_run_concurrently_up_to_the_reserved_concurrency(pool):
    with ApiFront(pool, throttle=None) as front:
        started = time.monotonic()
        answers = post_together(front.url, 2)
        elapsed = time.monotonic() - started
    # Two environments answer two requests at once: about one model delay, not two
    assert [status for status, _ in answers] == [200, 200]
    assert elapsed < 2 * DELAY_SECONDS


def test_past_the_reserved_concurrency_lambda_throttles_and_api_gateway_answers_500(pool):
    with ApiFront(pool, throttle=None) as front:
        statuses = sorted(status for status, _ in post_together(front.url, 4))
        counted = front.counts.throttled_by_lambda
    assert statuses == [200, 200, 500, 500] and counted == 2


def test_past_the_route_throttle_api_gateway_answers_429_before_the_function_runs(pool):
    with ApiFront(pool, throttle=RouteThrottle(rate_per_second=0.5, burst=1)) as front:
        answers = post_together(front.url, 3)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 429, 429]
    assert {"message": "Too Many Requests"} in [body for _, body in answers]


def test_a_malformed_request_cannot_hold_the_front(pool):
    with ApiFront(pool, throttle=None) as front:
        host, port = front.url.removeprefix("http://").split(":")
        # Given a client that sends bare-LF line endings and then nothing more
        stuck = socket.create_connection((host, int(port)), timeout=30)
        stuck.sendall(b"POST /predictions HTTP/1.1\nHost: x\nContent-Length: 100\n\n{")
        # Then other requests are still answered
        assert post(front.url)[0] == 200
        # And the stuck connection is closed by the server (its channel timeout), not held for ever
        started = time.monotonic()
        while stuck.recv(4096):
            pass
        assert time.monotonic() - started < 20
        stuck.close()


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (loopback)
            return answer.status
    except urllib.error.HTTPError as refusal:
        return refusal.code


def test_each_route_has_its_own_throttle_bucket_so_page_loads_cannot_spend_the_predictions(pool, page_pool):
    # The stage's default route settings apply to each route on its own (API Gateway, "Throttle requests to your
    # HTTP APIs"); one bucket shared by all routes let GET / starve POST /predictions
    with ApiFront(pool, throttle=RouteThrottle(rate_per_second=0.01, burst=1), page_pool=page_pool) as front:
        pages = [get(f"{front.url}/") for _ in range(3)]
        prediction = post(front.url)
    assert pages == [200, 429, 429]
    assert prediction[0] == 200


def test_page_loads_run_in_the_page_functions_environments_never_in_the_predictions(pool, page_pool):
    # Given both prediction environments busy with slow requests
    with ApiFront(pool, throttle=None, page_pool=page_pool) as front, ThreadPoolExecutor(max_workers=2) as busy:
        slow = [busy.submit(post, front.url) for _ in range(2)]
        time.sleep(0.3)
        # Then the page and the contract are still answered (by PageFunction), while predictions wait
        assert [get(f"{front.url}/"), get(f"{front.url}/openapi.json")] == [200, 200]
        assert all(not future.done() for future in slow)
        assert [future.result()[0] for future in slow] == [200, 200]


def test_the_page_routes_have_a_throttle_of_their_own(pool, page_pool):
    # The stage's RouteSettings (PageThrottle*) for GET / and GET /openapi.json, apart from POST /predictions'
    page_throttle = RouteThrottle(rate_per_second=0.01, burst=2)
    with ApiFront(pool, RouteThrottle(0.01, 1), page_pool=page_pool, page_throttle=page_throttle) as front:
        assert [get(f"{front.url}/") for _ in range(3)] == [200, 200, 429]
        assert [post(front.url)[0] for _ in range(2)] == [200, 429]


@pytest.mark.parametrize(("method", "path"), [("GET", "/predictions"), ("POST", "/"), ("DELETE", "/nowhere")])
def test_a_request_that_matches_no_route_is_404_not_found_as_http_apis_answer(pool, method, path):
    with ApiFront(pool, throttle=None) as front:
        request = urllib.request.Request(f"{front.url}{path}", method=method)  # noqa: S310 (loopback)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert answer.value.code == 404 and json.loads(answer.value.read()) == {"message": "Not Found"}
    assert answer.value.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /predictions HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"POST /predictions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /predictions HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["bad-content-length", "bad-chunk", "two-content-lengths"],
)
def test_malformed_framing_is_answered_with_api_gateways_json_not_a_server_page(pool, raw):
    with ApiFront(pool, throttle=None) as front:
        host, port = front.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as client:
            client.sendall(raw)
            answer = b""
            while chunk := client.recv(4096):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body) == {"message": "Bad Request"}


def test_a_function_that_runs_and_fails_is_a_502_not_a_throttle_500():
    # Given a prediction function whose cold start fails (a setting it refuses at start-up, as a bad deploy would)
    environment = {**DUMMY_CREDENTIALS, "MAX_IMAGE_BYTES": "a lot", "POWERTOOLS_LOG_LEVEL": "ERROR"}
    broken = ConcurrencyPool("PredictFunction", 1, environment)
    try:
        with ApiFront(broken, throttle=None) as front:
            # When a request reaches it, Lambda reports a function error, which API Gateway answers 502
            status, body = post(front.url)
            assert (status, body) == (502, {"message": "Internal Server Error"})
            assert front.counts.function_failures == 1 and front.counts.throttled_by_lambda == 0
    finally:
        broken.close()
