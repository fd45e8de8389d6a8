"""A serverless endpoint's emulated limits, decided in tests/unit: payload, concurrency, cold starts, idle release,
memory.

The container process and its model are in-process stand-ins here (a real model container takes seconds to start:
tests/integration/test_serverless_endpoint.py runs those, through the endpoint server); what is under test is
``ServerlessCapacity``'s own bookkeeping, at each limit's edge.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from dog_breeds.settings import SERVERLESS_COLD_START_LIMIT_SECONDS, SERVERLESS_PAYLOAD_LIMIT_BYTES
from offline_stack import serverless_capacity
from offline_stack.endpoint_server import ModelFailure, ServiceFault
from offline_stack.serverless_capacity import DEFAULT_IDLE_SECONDS, ServerlessCapacity

MEGABYTE = 1024 * 1024


class _Container:
    started: list[_Container] = []

    def __init__(self, model_dir, startup_timeout_seconds, environment):
        self.startup_timeout_seconds, self.environment = startup_timeout_seconds, environment
        self.alive, self.url = False, f"http://container-{len(_Container.started)}"
        self.process = SimpleNamespace(pid=4242)

    def start(self):
        self.alive = True
        _Container.started.append(self)
        return self

    def stop(self):
        self.alive = False


class _Model:
    gate: threading.Event | None = None

    def __init__(self, url):
        self.url = url

    def invoke(self, body, *arguments):
        if _Model.gate is not None:
            _Model.gate.wait(5)
        return {"answered_by": self.url, "bytes": len(body)}


@pytest.fixture
def resident(monkeypatch):
    """The container's resident memory, as psutil would read it; set it per test."""
    memory = {"rss": 100 * MEGABYTE}
    monkeypatch.setattr(
        serverless_capacity.psutil,
        "Process",
        lambda pid: SimpleNamespace(memory_info=lambda: SimpleNamespace(rss=memory["rss"])),
    )
    monkeypatch.setattr(serverless_capacity, "ContainerProcess", _Container)
    monkeypatch.setattr(serverless_capacity, "ContainerModel", _Model)
    _Container.started, _Model.gate = [], None
    return memory


def _capacity(tmp_path, **config) -> tuple[ServerlessCapacity, list[float]]:
    told: list[float] = []
    capacity = ServerlessCapacity(
        tmp_path / "model-a",
        {"OMP_NUM_THREADS": "1"},
        {"MaxConcurrency": 2, "MemorySizeInMB": 3072, **config},
        log=lambda line: None,
        on_cold_start=told.append,
    )
    return capacity, told


def test_the_first_request_cold_starts_a_container_and_the_next_ones_reuse_it(resident, tmp_path):
    capacity, told = _capacity(tmp_path)
    capacity.provisioning_seconds = 0.05
    assert not capacity.warm and _Container.started == []  # scaled to zero until asked
    first = capacity.invoke(b"jpeg")
    assert first == {"answered_by": "http://container-0", "bytes": 4}
    assert len(capacity.cold_starts) == 1 and capacity.cold_starts[0] >= 0.05 and told == capacity.cold_starts
    assert capacity.overhead_seconds() >= 0.05  # SageMaker's OverheadLatency, not ModelLatency
    (container,) = _Container.started
    assert container.startup_timeout_seconds == SERVERLESS_COLD_START_LIMIT_SECONDS
    assert container.environment == {"OMP_NUM_THREADS": "1"}
    capacity.invoke(b"jpeg")
    assert len(_Container.started) == 1 and len(capacity.cold_starts) == 1 and capacity.overhead_seconds() < 0.05
    container.alive = False  # the container died: the next request starts another
    assert capacity.invoke(b"x")["answered_by"] == "http://container-1" and len(capacity.cold_starts) == 2


def test_a_payload_over_the_limit_is_refused_before_any_container_starts(resident, tmp_path):
    capacity, _ = _capacity(tmp_path)
    with pytest.raises(ServiceFault) as refused:
        capacity.invoke(b"x" * (SERVERLESS_PAYLOAD_LIMIT_BYTES + 1))
    assert (refused.value.status, refused.value.code) == (400, "ValidationError")
    assert str(SERVERLESS_PAYLOAD_LIMIT_BYTES) in str(refused.value.message)
    assert _Container.started == []
    assert capacity.invoke(b"x" * SERVERLESS_PAYLOAD_LIMIT_BYTES)["bytes"] == SERVERLESS_PAYLOAD_LIMIT_BYTES


def test_one_request_past_max_concurrency_is_throttled_at_once_and_the_slot_comes_back(resident, tmp_path):
    capacity, _ = _capacity(tmp_path, MaxConcurrency=1)
    _Model.gate = threading.Event()
    busy = threading.Thread(target=capacity.invoke, args=(b"a",))
    busy.start()
    deadline = time.monotonic() + 5
    while capacity._in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ServiceFault) as throttled:
        capacity.invoke(b"b")
    assert (throttled.value.status, throttled.value.code) == (400, "ThrottlingException")
    assert "Maximum concurrency (1)" in str(throttled.value.message) and capacity.throttled == 1
    _Model.gate.set()
    busy.join(5)
    capacity.drain(5)
    assert capacity._in_flight == 0
    assert capacity.invoke(b"c")["bytes"] == 1  # the slot is free again


@pytest.mark.parametrize(("over", "killed"), [(0, False), (1, True)])
def test_a_container_past_its_memory_is_killed_with_its_request(resident, tmp_path, over, killed):
    capacity, _ = _capacity(tmp_path, MemorySizeInMB=3072)
    resident["rss"] = 3072 * MEGABYTE + over
    if not killed:
        assert capacity.invoke(b"x")["bytes"] == 1 and capacity.warm
        return
    with pytest.raises(ModelFailure) as failure:
        capacity.invoke(b"x")
    assert failure.value.status == 500 and "3072 MB" in str(failure.value)
    assert not capacity.warm and not _Container.started[0].alive


def test_an_idle_container_is_released_after_the_idle_period_and_not_before(resident, tmp_path):
    capacity, _ = _capacity(tmp_path)
    assert capacity.idle_seconds == DEFAULT_IDLE_SECONDS
    assert capacity.reap_if_idle() is False  # nothing to release
    capacity.invoke(b"x")
    assert capacity.reap_if_idle() is False  # used just now
    capacity.idle_seconds = 0.0
    assert capacity.reap_if_idle() is True and not capacity.warm and not _Container.started[0].alive
    assert capacity.alive and capacity.ping()  # scaled to zero is a state, not a failure


def test_provisioned_concurrency_is_warm_from_the_start_and_never_released(resident, tmp_path):
    capacity, told = _capacity(tmp_path, ProvisionedConcurrency=1)
    assert capacity.warm and len(told) == 1
    capacity.idle_seconds = 0.0
    assert capacity.reap_if_idle() is False and capacity.warm
    capacity.stop()
    assert not capacity.warm
