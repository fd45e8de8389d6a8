"""A bounded load run on loopback, and a blue/green update under that load.

Clients (4 x the reserved concurrency) post images through the offline API as fast as they are
answered, backing off briefly after a 429 as docs/api.md tells clients to. The route throttle is set by
docs/capacity-and-cost.md's formula from the function's p99 duration measured first at the reserved concurrency, so
API Gateway's 429 answers before Lambda would throttle: every answer is a 200 or a 429, but for the few
requests slower than the duration the formula was sized on (see ``LAMBDA_THROTTLE_SHARE``).
"""

from __future__ import annotations

import math
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from offline_stack.api_client import post_image
from offline_stack.api_front import RouteThrottle
from offline_stack.stack import OfflineStack
from reliability.served_stack import deploy_uploaded, upload_artifact, write_artifact

HEADROOM = 2.0  # the p99 used in the formula is the measured one times this (2 cores shared by everything)
# The formula bounds the requests in flight only while each takes at most the duration it was sized on; by the
# p99's definition about one in a hundred takes longer, and while it runs the bucket can admit one request more
# than the reserved executions, which Lambda throttles (API Gateway's 500). So a run may see that many, no more.
LAMBDA_THROTTLE_SHARE = 0.01


@dataclass
class LoadResult:
    requests: int = 0
    clients: int = 0
    statuses: Counter = field(default_factory=Counter)
    lost: int = 0  # no HTTP answer at all (refused connection, timeout)
    latencies_ms: list[float] = field(default_factory=list)  # of the 200s
    seconds: float = 0.0
    lambda_throttles: int = 0  # requests the route admitted and Lambda throttled (API Gateway answered 500)
    route_throttles: int = 0  # requests the route throttle answered 429 before Lambda was called

    @property
    def admitted(self) -> int:
        """The requests that reached Lambda: every answered one the route throttle let through."""
        return sum(self.statuses.values()) - self.route_throttles

    @property
    def lambda_throttles_allowed(self) -> int:
        """1 % of the admitted requests, rounded up: a p99 lets one slow request in fewer than a hundred too."""
        return math.ceil(round(self.admitted * LAMBDA_THROTTLE_SHARE, 9))

    @property
    def failures(self) -> int:
        """Answers that are neither a 200 nor a 429, Lambda's throttles apart (a sizing matter, counted alone)."""
        other = sum(n for status, n in self.statuses.items() if status not in (200, 429))
        return other - self.lambda_throttles

    def percentile(self, fraction: float) -> float:
        """The nearest-rank percentile of the 200s' latencies (ms): the smallest value at least ``fraction`` of
        them do not exceed; 0.0 when there were none."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        rank = math.ceil(round(fraction * len(ordered), 9))
        return round(ordered[min(max(rank, 1), len(ordered)) - 1], 1)


def route_throttle_for(reserved_concurrency: int, p99_seconds: float, burst: int = 1) -> tuple[float, int]:
    """docs/capacity-and-cost.md's formula: burst + rate x p99 duration <= reserved concurrency (with headroom)."""
    burst = max(1, min(burst, reserved_concurrency - 1))
    return round((reserved_concurrency - burst) / (p99_seconds * HEADROOM), 2), burst


def calibrate(stack: OfflineStack, image: bytes, requests: int = 40) -> float:
    """p99 duration (s) of a request at the reserved concurrency, with route throttling off."""
    saved, stack.api.throttle = stack.api.throttle, None
    durations: list[float] = []
    lock = threading.Lock()
    per_client = max(requests // stack.api.pool.reserved_concurrency, 1)

    def client() -> None:
        for _ in range(per_client):
            started = time.perf_counter()
            post_image(stack.api.url, image, "image/jpeg", retries=0, sign=stack.api.sign)
            with lock:
                durations.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(stack.api.pool.reserved_concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stack.api.throttle = saved
    return statistics.quantiles(durations, n=100)[98]


def run_load(
    stack: OfflineStack, image: bytes, total: int, clients: int, stop: threading.Event | None = None
) -> LoadResult:
    result = LoadResult(clients=clients)
    lock = threading.Lock()
    issued = [0]
    counts = stack.api.counts
    throttles_before, route_before = counts.throttled_by_lambda, counts.throttled_by_route
    rng = random.Random(7)

    def client() -> None:
        while not (stop and stop.is_set()):
            with lock:
                if issued[0] >= total:
                    return
                issued[0] += 1
            started = time.perf_counter()
            try:
                status, _ = post_image(stack.api.url, image, "image/jpeg", retries=0, sign=stack.api.sign)
            except OSError:
                with lock:
                    result.lost += 1
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            with lock:
                result.statuses[status] += 1
                if status == 200:
                    result.latencies_ms.append(elapsed_ms)
            if status == 429:
                time.sleep(rng.uniform(0.02, 0.08))

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = round(time.monotonic() - started, 1)
    result.requests = sum(result.statuses.values()) + result.lost
    result.lambda_throttles = counts.throttled_by_lambda - throttles_before
    result.route_throttles = counts.throttled_by_route - route_before
    return result


def blue_green_under_load(stack: OfflineStack, image: bytes, clients: int, work_dir: Path) -> tuple[LoadResult, str]:
    """Deploy a second artifact while clients keep posting; returns their answers and the deploy action.

    The artifact is built and uploaded first, as a training job leaves it: under load runs only what a release
    runs (DeployEndpointFunction, the new fleet's start, the switch)."""
    model_data_url = upload_artifact(
        stack, write_artifact(work_dir / "artifact-b", seed=1), "training-output/model-b/output/model.tar.gz"
    )
    stop = threading.Event()
    result_box: list[LoadResult] = []
    runner = threading.Thread(target=lambda: result_box.append(run_load(stack, image, 10**9, clients, stop)))
    runner.start()
    try:
        time.sleep(1.0)
        deployment = deploy_uploaded(stack, model_data_url)
        time.sleep(1.0)
    finally:
        stop.set()
        runner.join()
    return result_box[0], deployment["action"]


def apply_throttle(stack: OfflineStack, rate: float, burst: int) -> None:
    stack.api.throttle = RouteThrottle(rate, burst)
