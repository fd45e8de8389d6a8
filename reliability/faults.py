"""Faults through the offline stack: what the API answers while each lasts, and how soon it serves again.

Each drill injects one fault into a served stack (``served_stack``), keeps asking ``POST /predictions``
through the API, then measures the time from the end of the fault (or, for faults the stack heals
itself, from its start) to the first 200 again.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from offline_stack.api_client import post_image
from offline_stack.endpoint_server import ModelFailure, ServiceFault
from offline_stack.stack import OfflineStack
from reliability.leaks import leaks

ENDPOINT = "dog-breed-classifier"
# The function's endpoint timeouts, shortened for the drills: a stopped container costs seconds, not 20 s.
# (Their warnings are expected by the hundred, so the functions log errors only.)
DRILL_FUNCTION_ENVIRONMENT = {
    "ENDPOINT_READ_TIMEOUT_SECONDS": "2",
    "ENDPOINT_MAX_ATTEMPTS": "1",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}
# A route throttle the drills stay under, so that every answer they see is the fault's.
DRILL_PARAMETERS = {"ApiThrottleRateLimit": "50", "ApiThrottleBurstLimit": "10"}


class FaultInjector:
    """Wraps the served model: while ``fault`` is set, every call raises it instead of answering."""

    def __init__(self, model) -> None:
        self.model, self.fault = model, None

    @property
    def healthy(self) -> bool:
        return getattr(self.model, "healthy", True)

    def invoke(self, *arguments):
        if self.fault is not None:
            raise self.fault
        return self.model.invoke(*arguments)


@dataclass
class DrillResult:
    fault: str
    expected: str
    statuses: Counter = field(default_factory=Counter)
    recovery_seconds: float | None = None
    leaks: int = 0
    runtime_ping_failed: bool | None = None  # for container failures: did the runtime's health check say so?

    @property
    def answers(self) -> str:
        return ", ".join(f"{status} x{count}" for status, count in sorted(self.statuses.items()))


def _ask(stack: OfflineStack, image: bytes, result: DrillResult) -> int:
    status, answer = post_image(stack.api.url, image, "image/jpeg", retries=0, sign=stack.api.sign)
    result.statuses[status] += 1
    result.leaks += bool(leaks(str(answer)))
    return status


def _until_served(
    stack: OfflineStack, image: bytes, result: DrillResult, since: float, limit_seconds: float = 60
) -> None:
    while time.monotonic() - since < limit_seconds:
        if result.runtime_ping_failed is False:
            result.runtime_ping_failed = not _runtime_healthy(stack)
        if _ask(stack, image, result) == 200:
            result.recovery_seconds = round(time.monotonic() - since, 2)
            return
        time.sleep(0.1)


def _during(stack: OfflineStack, image: bytes, result: DrillResult, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _ask(stack, image, result)
        if result.runtime_ping_failed is False:
            result.runtime_ping_failed = not _runtime_healthy(stack)
        time.sleep(0.3)  # under the route throttle: every answer here is the fault's


def _runtime_healthy(stack: OfflineStack) -> bool:
    try:
        with urllib.request.urlopen(f"{stack.runtime.url}/ping", timeout=2) as answer:  # noqa: S310 (loopback)
            return answer.status == 200
    except OSError:
        return False


def _injected(
    stack: OfflineStack, fault: Exception, name: str, expected: str, image: bytes, seconds: float
) -> DrillResult:
    result = DrillResult(name, expected)
    injector = FaultInjector(stack.runtime.models[ENDPOINT])
    stack.runtime.serve(ENDPOINT, injector)
    injector.fault = fault
    _during(stack, image, result, seconds)
    injector.fault = None
    cleared = time.monotonic()
    stack.runtime.serve(ENDPOINT, injector.model)
    _until_served(stack, image, result, cleared)
    return result


def _container_signalled(
    stack: OfflineStack, signal_number: int, name: str, expected: str, image, seconds
) -> DrillResult:
    """Signal the endpoint's container and keep asking until it is replaced and serving again."""
    result = DrillResult(name, expected, runtime_ping_failed=False)
    started = time.monotonic()
    os.kill(stack.endpoints.container(ENDPOINT).process.pid, signal_number)
    _during(stack, image, result, seconds)
    _until_served(stack, image, result, started)
    return result


def drill_container_killed(stack: OfflineStack, image: bytes, seconds: float) -> DrillResult:
    return _container_signalled(
        stack, signal.SIGKILL, "model container killed (SIGKILL)", "503 until replaced", image, seconds
    )


def drill_container_stopped(stack: OfflineStack, image: bytes, seconds: float) -> DrillResult:
    return _container_signalled(
        stack, signal.SIGSTOP, "model container stopped (SIGSTOP)", "504 until replaced", image, seconds
    )


def drill_container_slow(stack: OfflineStack, image: bytes, seconds: float) -> DrillResult:
    result = DrillResult(f"model container paused {seconds:g} s (slow)", "504, then 200 without a restart")
    pid = stack.endpoints.container(ENDPOINT).process.pid
    os.kill(pid, signal.SIGSTOP)
    _during(stack, image, result, seconds)
    os.kill(pid, signal.SIGCONT)
    _until_served(stack, image, result, time.monotonic())
    return result


def drill_endpoint_stopped(stack: OfflineStack, image: bytes, seconds: float) -> DrillResult:
    result = DrillResult("endpoint deleted, then back", "503")
    model = stack.runtime.models[ENDPOINT]
    stack.runtime.remove(ENDPOINT)
    _during(stack, image, result, seconds)
    stack.runtime.serve(ENDPOINT, model)
    _until_served(stack, image, result, time.monotonic())
    return result


DRILLS: dict[str, Callable[[OfflineStack, bytes, float], DrillResult]] = {
    "container-killed": drill_container_killed,
    "container-stopped": drill_container_stopped,
    "container-slow": drill_container_slow,
    "endpoint-stopped": drill_endpoint_stopped,
    "endpoint-throttling": lambda stack, image, seconds: _injected(
        stack, ServiceFault(400, "ThrottlingException", "Rate exceeded"), "SageMaker throttles", "429", image, seconds
    ),
    "model-4xx": lambda stack, image, seconds: _injected(
        stack, ModelFailure(422, "cannot identify image file"), "model answers 422", "422", image, seconds
    ),
    "model-5xx": lambda stack, image, seconds: _injected(
        stack,
        ModelFailure(500, "CUDA out of memory\nTraceback (most recent call last): secret"),
        "model answers 500 with a trace",
        "502",
        image,
        seconds,
    ),
}


def run_drills(stack: OfflineStack, image: bytes, names: list[str], seconds: float) -> list[DrillResult]:
    return [DRILLS[name](stack, image, seconds) for name in names]
