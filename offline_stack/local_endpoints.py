"""Serve the control plane's endpoints locally, and move them blue/green when their config changes.

For each endpoint: endpoint -> endpoint config -> model -> ``ModelDataUrl``; the ``model.tar.gz`` is
downloaded from the bucket, unpacked, and served by a model-container process. When the endpoint's
config changes (UpdateEndpoint), the new container starts and must answer ``/ping`` before traffic
moves to it; the old one is stopped only after its in-flight requests finish, as SageMaker retires the
old fleet after the new one is InService.

Containers are supervised as SageMaker supervises instances: a container whose process died, or that
fails its ``/ping`` health check (stopped, wedged) is marked unhealthy at once (the runtime's ``/ping``
then fails, and calls get 503 or a timeout); after three failed checks in a row it is killed and
replaced by a fresh one on the same artifact.
"""

from __future__ import annotations

import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from offline_stack.aws_rules.cloudwatch import EndpointMetrics
from offline_stack.container_processes import ContainerModel, ContainerProcess
from offline_stack.data_capture import DataCapture
from offline_stack.endpoint_server import EndpointServer
from offline_stack.serverless_capacity import DEFAULT_IDLE_SECONDS, ServerlessCapacity
from offline_stack.supervision import FAILED_PINGS_BEFORE_REPLACING, health_check


class _TrackedModel:
    """A container's model that counts the requests in flight, so it can be retired without cutting one."""

    def __init__(self, model: ContainerModel) -> None:
        self._model, self._in_flight, self._lock = model, 0, threading.Lock()
        self.healthy = True

    def invoke(self, *arguments):
        with self._lock:
            self._in_flight += 1
        try:
            return self._model.invoke(*arguments)
        finally:
            with self._lock:
                self._in_flight -= 1

    def drain(self, timeout_seconds: float = 60.0, grace_seconds: float = 0.5) -> None:
        # A request may have looked this model up just before traffic moved and not be counted yet.
        time.sleep(grace_seconds)
        deadline = time.monotonic() + timeout_seconds
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)


@dataclass
class Rollout:
    endpoint: str
    config_name: str
    canary_started: float  # time.monotonic() when the canary began taking traffic
    ended: float = 0.0  # when all traffic moved, or moved back
    outcome: str = "in progress"  # "completed", or the alarm that rolled it back


class RolledBack(Exception):
    """A rollout's alarm fired: the old fleet serves again."""


class _CanaryRouter:
    """Sends ``share`` of requests to the new fleet (every 1/share-th one, so the split is exact), the rest to the
    old one. What either answers reaches CloudWatch through the endpoint server, as both fleets' answers do in AWS."""

    def __init__(self, old: _TrackedModel, new: _TrackedModel, share: float) -> None:
        self.old, self.new, self.share = old, new, share
        self._credit, self._lock = 0.0, threading.Lock()

    @property
    def healthy(self) -> bool:
        return self.old.healthy and self.new.healthy

    def invoke(self, *arguments):
        with self._lock:
            self._credit += self.share
            to_new = self._credit >= 1.0
            if to_new:
                self._credit -= 1.0
        return (self.new if to_new else self.old).invoke(*arguments)


@dataclass
class _Served:
    config_name: str
    process: ContainerProcess | ServerlessCapacity  # a serverless config's capacity keeps its own containers
    model: _TrackedModel | ServerlessCapacity
    s3: object = None  # S3 as the model's execution role (its artifact was read, its capture is written so)
    capture_config: dict | None = None  # the endpoint config's DataCaptureConfig
    failed_pings: int = 0


class LocalEndpoints:
    FAILED_PINGS_BEFORE_REPLACING = FAILED_PINGS_BEFORE_REPLACING

    def __init__(
        self,
        sagemaker,
        s3,
        cloudwatch,
        server: EndpointServer,
        work_dir: Path,
        log: Callable[[str], None] = print,
        health_check_seconds: float = 1.0,
        s3_as: Callable[[str], object] | None = None,
        serverless_idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ):
        """``s3_as(role_arn)``: an S3 client acting as that role: the model's ExecutionRoleArn reads the artifact
        and writes data capture, as SageMaker's hosting does (without it, ``s3`` does both)."""
        self.sagemaker, self.s3, self.server, self.work_dir, self.log = sagemaker, s3, server, Path(work_dir), log
        self.s3_as = s3_as
        self.serverless_idle_seconds = serverless_idle_seconds
        # What SageMaker publishes for every invocation (aws_rules.cloudwatch); flushed with the captures
        self.metrics = EndpointMetrics(cloudwatch, overhead=self._serverless_overhead)
        server.invocation_observers.append(self.metrics.record)
        self._served: dict[str, _Served] = {}
        self._lock = threading.RLock()
        self.replacements: list[tuple[str, float]] = []  # (endpoint, seconds from failure seen to serving again)
        self.rollouts: list[Rollout] = []  # guarded updates, as they went
        self._captures: dict[str, DataCapture] = {}
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, args=(health_check_seconds,), name="endpoint-supervisor", daemon=True
        )
        self._supervisor.start()

    def sync(self) -> list[str]:
        """Bring every endpoint in the control plane up to its current config; returns what changed."""
        changed = []
        for summary in self.sagemaker.list_endpoints()["Endpoints"]:
            name = summary["EndpointName"]
            config_name = self.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
            with self._lock:
                current = self._served.get(name)
                if current and current.config_name == config_name:
                    continue
                self._switch(name, config_name, current)
            changed.append(name)
        return changed

    def serve_config(self, name: str, config_name: str) -> None:
        """Serve ``config_name`` on endpoint ``name`` blue/green; raises, serving what it did, if it cannot start."""
        with self._lock:
            current = self._served.get(name)
            if not (current and current.config_name == config_name):
                self._switch(name, config_name, current)

    def serving(self, name: str) -> str | None:
        """The endpoint config whose container answers ``name`` now."""
        with self._lock:
            served = self._served.get(name)
            return served.config_name if served else None

    def roll_out(
        self,
        name: str,
        config_name: str,
        canary_share: float,
        bake_seconds: float,
        tripped: Callable[[], str | None],
    ) -> None:
        """Move ``name`` to ``config_name`` as deployment guardrails do: the canary share of traffic first, for
        ``bake_seconds``, then all of it for as long again; ``tripped`` is checked all along, and an alarm it
        names sends every request back to the old fleet (``RolledBack``). The old fleet retires at the end."""
        with self._lock:
            current = self._served.get(name)
        if current is None or current.config_name == config_name:
            return self.serve_config(name, config_name)
        new = self._start(name, config_name)  # raises, changing nothing, if the container cannot start
        router = _CanaryRouter(current.model, new.model, canary_share)
        rollout = Rollout(name, config_name, time.monotonic())
        self.rollouts.append(rollout)
        for phase_share in (canary_share, 1.0) if canary_share < 1.0 else (1.0,):
            router.share = phase_share
            self.server.serve(name, router)
            self.log(f"endpoint {name}: {phase_share:.0%} of traffic on {config_name}, baking {bake_seconds:g} s")
            deadline = time.monotonic() + bake_seconds
            while time.monotonic() < deadline:
                alarm = tripped()
                if alarm:
                    self.server.serve(name, current.model)
                    rollout.ended, rollout.outcome = time.monotonic(), alarm
                    new.model.drain()
                    new.process.stop()
                    self.log(f"endpoint {name}: {alarm}; rolled back to {current.config_name}")
                    raise RolledBack(alarm)
                time.sleep(0.1)
        with self._lock:
            self._move_traffic(name, new, current)
        rollout.ended, rollout.outcome = time.monotonic(), "completed"
        return None

    def instance_count(self, endpoint_name: str) -> int:
        """The endpoint's instance count now (what a blue/green update's new fleet starts with)."""
        variants = self.sagemaker.describe_endpoint(EndpointName=endpoint_name).get("ProductionVariants", [])
        return int(variants[0].get("CurrentInstanceCount", 1)) if variants else 1

    def container(self, endpoint_name: str) -> ContainerProcess:
        """The container process serving ``endpoint_name`` now (for fault drills)."""
        with self._lock:
            return self._served[endpoint_name].process

    def serverless(self, endpoint_name: str) -> ServerlessCapacity:
        """The serverless capacity serving ``endpoint_name`` (its cold starts, throttled requests)."""
        with self._lock:
            capacity = self._served[endpoint_name].process
        if not isinstance(capacity, ServerlessCapacity):
            raise TypeError(f"endpoint {endpoint_name} is instance-based")
        return capacity

    def _serverless_overhead(self, endpoint_name: str) -> float | None:
        """None for an instance endpoint; for a serverless one, what the request just answered waited for a container
        (read on the thread that answered it). Without ``_lock``: it is held while a container starts, and every
        answer's metrics would wait for it (a dict read is atomic)."""
        served = self._served.get(endpoint_name)
        if served is None or not isinstance(served.process, ServerlessCapacity):
            return None
        return served.process.overhead_seconds()

    def close(self) -> None:
        self._stopping.set()
        self._supervisor.join(timeout=10)
        for capture in list(self._captures.values()):
            capture.flush()
        self.metrics.flush()
        with self._lock:
            for name, served in list(self._served.items()):
                self.server.remove(name)
                served.process.stop()
            self._served.clear()

    def _supervise(self, interval_seconds: float) -> None:
        while not self._stopping.wait(interval_seconds):
            for capture in list(self._captures.values()):
                capture.flush()
            self.metrics.flush()
            with self._lock:
                watched = list(self._served.items())
            for name, served in watched:
                if isinstance(served.process, ServerlessCapacity):
                    served.process.reap_if_idle()  # scale to zero; a dead container is restarted on demand
                    continue
                alive = served.process.alive
                served.failed_pings, replace = health_check(
                    alive, alive and served.process.ping(), served.failed_pings, self.FAILED_PINGS_BEFORE_REPLACING
                )
                served.model.healthy = served.failed_pings == 0
                if replace and not self._stopping.is_set():
                    self._replace(name, served)

    def _replace(self, name: str, failed: _Served) -> None:
        seen = time.monotonic()
        failed.model.healthy = False
        self.log(f"endpoint {name}: the container for {failed.config_name} failed its health check; replacing it")
        failed.process.stop()
        process = ContainerProcess(failed.process.model_dir, environment=failed.process.environment).start()
        with self._lock:
            if self._served.get(name) is not failed:  # closed or moved on meanwhile
                process.stop()
                return
            served = _Served(
                failed.config_name,
                process,
                _TrackedModel(ContainerModel(process.url)),
                s3=failed.s3,
                capture_config=failed.capture_config,
            )
            self.server.serve(name, served.model)
            self._served[name] = served
        self.replacements.append((name, time.monotonic() - seen))
        self.log(f"endpoint {name}: serving {failed.config_name} again from a new container")

    def _start(self, name: str, config_name: str) -> _Served:
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        model_name = config["ProductionVariants"][0]["ModelName"]
        model = self.sagemaker.describe_model(ModelName=model_name)
        container = model["PrimaryContainer"]
        model_data = container["ModelDataUrl"]
        s3 = self._s3_of(model)
        model_dir = self._unpack(s3, model_data, self.work_dir / "endpoints" / config_name)
        self.log(f"endpoint {name}: starting a container for {config_name} ({model_data})")
        # The model's runtime choice applies; its thread setting does not: here one process is the whole
        # instance (one worker), where TorchServe would start one worker per vCPU.
        runtime = {key: value for key, value in container.get("Environment", {}).items() if key == "INFERENCE_RUNTIME"}
        serverless = config["ProductionVariants"][0].get("ServerlessConfig")
        if serverless:  # no container until the first request (or provisioned concurrency)
            capacity = ServerlessCapacity(
                model_dir,
                runtime,
                serverless,
                self.serverless_idle_seconds,
                self.log,
                on_cold_start=lambda seconds: self.metrics.record_model_setup(name, seconds),
            )
            return _Served(config_name, capacity, capacity, s3=s3, capture_config=None)
        process = ContainerProcess(model_dir, environment=runtime).start()  # returns once /ping answers
        tracked = _TrackedModel(ContainerModel(process.url))
        return _Served(config_name, process, tracked, s3=s3, capture_config=config.get("DataCaptureConfig"))

    def _switch(self, name: str, config_name: str, current: _Served | None) -> None:
        self._move_traffic(name, self._start(name, config_name), current)

    def _move_traffic(self, name: str, served: _Served, current: _Served | None) -> None:
        """All of ``name``'s traffic to ``served`` at once; ``current`` retires once its requests finish."""
        self.server.serve(name, served.model)
        self._served[name] = served
        self._capture(name, served)
        if current:
            current.model.drain()
            current.process.stop()
            self.log(f"endpoint {name}: now serving {served.config_name}; retired {current.config_name}")
        else:
            self.log(f"endpoint {name}: InService with {served.config_name}")

    def _capture(self, name: str, served: _Served) -> None:
        """Capture as the served config's DataCaptureConfig says (or stop capturing)."""
        config = served.capture_config
        previous = self._captures.pop(name, None)
        if previous is not None:
            previous.flush()
        if config and config.get("EnableCapture"):
            capture = DataCapture(served.s3, name, "AllTraffic", config)
            self._captures[name] = capture
            self.server.observers[name] = capture
        else:
            self.server.observers.pop(name, None)

    def _s3_of(self, model: dict):
        """S3 as the model's execution role: what SageMaker uses to read the artifact and write capture."""
        return self.s3_as(model["ExecutionRoleArn"]) if self.s3_as else self.s3

    @staticmethod
    def _unpack(s3, uri: str, target: Path) -> Path:
        parts = urlsplit(uri)
        target.mkdir(parents=True, exist_ok=True)
        archive = target.with_suffix(".tar.gz")
        s3.download_file(parts.netloc, parts.path.lstrip("/"), str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        return target
