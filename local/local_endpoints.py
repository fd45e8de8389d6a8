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

from local.endpoint_server import EndpointServer
from local.model_container import ContainerModel, ContainerProcess


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
class _Served:
    config_name: str
    process: ContainerProcess
    model: _TrackedModel
    failed_pings: int = 0


class LocalEndpoints:
    FAILED_PINGS_BEFORE_REPLACING = 3

    def __init__(
        self,
        sagemaker,
        s3,
        server: EndpointServer,
        work_dir: Path,
        log: Callable[[str], None] = print,
        health_check_seconds: float = 1.0,
    ):
        self.sagemaker, self.s3, self.server, self.work_dir, self.log = sagemaker, s3, server, Path(work_dir), log
        self._served: dict[str, _Served] = {}
        self._lock = threading.RLock()
        self.replacements: list[tuple[str, float]] = []  # (endpoint, seconds from failure seen to serving again)
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

    def container(self, endpoint_name: str) -> ContainerProcess:
        """The container process serving ``endpoint_name`` now (for fault drills)."""
        with self._lock:
            return self._served[endpoint_name].process

    def close(self) -> None:
        self._stopping.set()
        self._supervisor.join(timeout=10)
        with self._lock:
            for name, served in list(self._served.items()):
                self.server.remove(name)
                served.process.stop()
            self._served.clear()

    def _supervise(self, interval_seconds: float) -> None:
        while not self._stopping.wait(interval_seconds):
            with self._lock:
                watched = list(self._served.items())
            for name, served in watched:
                if served.process.alive and served.process.ping():
                    served.failed_pings, served.model.healthy = 0, True
                    continue
                served.failed_pings, served.model.healthy = served.failed_pings + 1, False
                if served.process.alive and served.failed_pings < self.FAILED_PINGS_BEFORE_REPLACING:
                    continue
                if not self._stopping.is_set():
                    self._replace(name, served)

    def _replace(self, name: str, failed: _Served) -> None:
        seen = time.monotonic()
        failed.model.healthy = False
        self.log(f"endpoint {name}: the container for {failed.config_name} failed its health check; replacing it")
        failed.process.stop()
        process = ContainerProcess(failed.process.model_dir).start()
        with self._lock:
            if self._served.get(name) is not failed:  # closed or moved on meanwhile
                process.stop()
                return
            served = _Served(failed.config_name, process, _TrackedModel(ContainerModel(process.url)))
            self.server.serve(name, served.model)
            self._served[name] = served
        self.replacements.append((name, time.monotonic() - seen))
        self.log(f"endpoint {name}: serving {failed.config_name} again from a new container")

    def _switch(self, name: str, config_name: str, current: _Served | None) -> None:
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        model_name = config["ProductionVariants"][0]["ModelName"]
        model_data = self.sagemaker.describe_model(ModelName=model_name)["PrimaryContainer"]["ModelDataUrl"]
        model_dir = self._unpack(model_data, self.work_dir / "endpoints" / config_name)
        self.log(f"endpoint {name}: starting a container for {config_name} ({model_data})")
        process = ContainerProcess(model_dir).start()  # returns once /ping answers
        served = _Served(config_name, process, _TrackedModel(ContainerModel(process.url)))
        self.server.serve(name, served.model)  # traffic moves here, atomically
        self._served[name] = served
        if current:
            current.model.drain()
            current.process.stop()
            self.log(f"endpoint {name}: now serving {config_name}; retired {current.config_name}")
        else:
            self.log(f"endpoint {name}: InService with {config_name}")

    def _unpack(self, uri: str, target: Path) -> Path:
        parts = urlsplit(uri)
        target.mkdir(parents=True, exist_ok=True)
        archive = target.with_suffix(".tar.gz")
        self.s3.download_file(parts.netloc, parts.path.lstrip("/"), str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        return target
