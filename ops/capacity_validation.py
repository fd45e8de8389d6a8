"""``make plan ARGS=--validate``: the plan's predictions against the offline API at the planned load.

The offline API front applies the configured route throttle and reserved concurrency in front of real
execution environments of the prediction function; the endpoint serves a model that takes ``model-ms`` per
request. First a few spaced requests measure the function's own duration (p50, p95); the plan is made with
those. Then requests arrive open-loop at the peak rate (each on its own thread, on schedule, whatever the
answers do) and the 429 share and the p95 latency of the answered ones are measured.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace

from offline_stack.api_front import RouteThrottle
from offline_stack.offline_api import offline_api
from offline_stack.sam_template import PROJECT_ROOT
from ops.capacity_plan import UNRESERVED_ACCOUNT_CONCURRENCY, Configuration, Load, Plan, plan

PHOTO = (PROJECT_ROOT / "tests" / "data" / "photos" / "dog.128.jpg").read_bytes()


class _TimedModel:
    """Answers like the model, after ``seconds``: the endpoint's share of each request's time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def invoke(self, body, content_type, accept, custom_attributes):
        time.sleep(self.seconds)
        return b'{"predictions": [{"breed": "Beagle", "class_index": 15, "probability": 0.9}]}', "application/json"


@dataclass(frozen=True)
class Validation:
    planned: Plan
    sent: int
    share_429: float
    p95_seconds: float
    offered_rps: float

    def describe(self) -> str:
        def off_by(measured: float, predicted: float) -> str:
            return f"{(measured - predicted) / predicted:+.0%}" if predicted else "n/a"

        return (
            f"Offline, {self.sent} requests at {self.offered_rps:g}/s (Poisson arrivals):\n"
            f"  429 share:             predicted {self.planned.route_429_share:6.1%}   measured {self.share_429:6.1%}"
            f"   ({off_by(self.share_429, self.planned.route_429_share)})\n"
            f"  p95 of answered (ms):  predicted {self.planned.predicted_p95_seconds * 1000:6.0f}   measured "
            f"{self.p95_seconds * 1000:6.0f}   ({off_by(self.p95_seconds, self.planned.predicted_p95_seconds)})"
        )


def validate(config: Configuration, load: Load, seconds: float = 20.0) -> Validation:
    concurrency = config.reserved_concurrency or UNRESERVED_ACCOUNT_CONCURRENCY
    throttle = RouteThrottle(config.throttle_rate, config.throttle_burst)
    with offline_api(_TimedModel(load.model_seconds), concurrency, throttle) as (front, _):
        url = f"{front.url}/predictions"
        durations = []
        for _ in range(8):  # spaced further apart than the throttle's rate: none is refused
            started = time.perf_counter()
            assert _post(url) == 200
            durations.append(time.perf_counter() - started)
            time.sleep(1.2 / config.throttle_rate)
        ordered = sorted(durations)
        measured = replace(load, function_seconds=statistics.median(ordered), function_p95_seconds=ordered[-1])
        time.sleep(1.0 / config.throttle_rate + config.throttle_burst / config.throttle_rate)  # refill
        outcomes = _open_loop(url, load.peak_rps, seconds)
    answered = sorted(latency for status, latency in outcomes if status == 200)
    p95 = answered[min(len(answered) - 1, int(0.95 * len(answered)))] if answered else float("nan")
    share = sum(status == 429 for status, _ in outcomes) / len(outcomes)
    return Validation(plan(config, measured), len(outcomes), share, p95, load.peak_rps)


def _post(url: str) -> int:
    request = urllib.request.Request(url, data=PHOTO, headers={"Content-Type": "image/jpeg"}, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback)
            answer.read()
            return answer.status
    except urllib.error.HTTPError as refusal:
        return refusal.code


def _open_loop(url: str, rps: float, seconds: float) -> list[tuple[int, float]]:
    outcomes: list[tuple[int, float]] = []
    lock = threading.Lock()

    def one() -> None:
        started = time.perf_counter()
        status = _post(url)
        with lock:
            outcomes.append((status, time.perf_counter() - started))

    generator = random.Random(1)  # noqa: S311 (load generation, not security)
    threads, start, due = [], time.perf_counter(), 0.0
    for _ in range(int(rps * seconds)):
        due += generator.expovariate(rps)  # independent callers: Poisson arrivals, as the plan assumes
        delay = start + due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=one)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return outcomes
