"""A serverless endpoint as the offline stack serves it: containers on demand, a concurrency limit, a memory limit.

What SageMaker Serverless Inference does that an instance endpoint does not (developer guide, "Deploy models with
Amazon SageMaker Serverless Inference"; the refusals are listed in ``aws_rules/sagemaker.py``):

- **Scales to zero**: after an idle period with no request, the compute is released; the next request waits for a
  **cold start** (a container started and the model loaded) and is answered after it. "The model must download and
  the server must respond successfully to /ping within 3 minutes" (developer guide, "Invoke a serverless endpoint",
  https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html): the container gets 180 s to
  answer ``/ping``. What SageMaker adds before the container starts (compute, the image pull: up to a 10 GB image) is
  published nowhere as a figure; offline it is ``provisioning_seconds``, 0 unless a test sets it, and the prediction
  function is built for the documented worst case (a 503 with Retry-After after one 25 s wait:
  docs/capacity-and-cost.md). AWS does not publish the idle period; offline it is ``idle_seconds`` (60 s unless a
  test sets it). ``ProvisionedConcurrency`` keeps the container warm: it is started with the endpoint and never
  released.
- **At most 4 MB a request** ("The maximum request and response payload size for serverless invocations is 4 MB",
  same page, read as 4,000,000 bytes): a larger body is refused before it reaches the container.
- **At most ``MaxConcurrency`` requests at once**: one more is refused at once, not queued, with the error code
  ``ThrottlingException`` (developer guide, "Serverless Inference": requests past the maximum concurrency are
  throttled). The Runtime API's service model does not list the code; botocore treats it as a throttling error
  and retries it within the client's attempts. HTTP 400, as the offline fault drills answer SageMaker's throttling.
- **``MemorySizeInMB`` is the container's memory**: a container whose resident memory grows past it is killed
  with the request it was answering (a 500 from the model: ``ModelError``); the next request cold-starts.

One container process answers all of an endpoint's concurrent requests here (SageMaker would start several):
the limits, the cold start and the billing-relevant timings are what is emulated, not the fleet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from dog_breeds.settings import SERVERLESS_COLD_START_LIMIT_SECONDS, SERVERLESS_PAYLOAD_LIMIT_BYTES
from offline_stack.container_processes import ContainerModel, ContainerProcess
from offline_stack.endpoint_server import ModelFailure, ServiceFault

DEFAULT_IDLE_SECONDS = 60.0


class ServerlessCapacity:
    """One serverless endpoint config's compute: the endpoint server's model (``invoke``) and its container's
    keeper (``stop``, ``reap_if_idle``, which the endpoint supervisor calls)."""

    def __init__(
        self,
        model_dir: Path,
        environment: dict[str, str],
        serverless_config: dict,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        log: Callable[[str], None] = print,
        on_cold_start: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        """``on_cold_start(seconds)``: told each cold start's time (SageMaker publishes it as ``ModelSetupTime``)."""
        self.model_dir, self.environment, self.log = Path(model_dir), environment, log
        self.on_cold_start = on_cold_start
        self.max_concurrency = int(serverless_config["MaxConcurrency"])
        self.memory_bytes = int(serverless_config["MemorySizeInMB"]) * 1024 * 1024
        self.provisioned = int(serverless_config.get("ProvisionedConcurrency") or 0)
        self.idle_seconds = idle_seconds
        self.provisioning_seconds = 0.0  # SageMaker's part of a cold start, before the container starts
        self.healthy = True
        self.cold_starts: list[float] = []  # seconds each cold start took (container start and model load)
        self.throttled = 0
        self._container: ContainerProcess | None = None
        self._model: ContainerModel | None = None
        self._in_flight, self._last_used = 0, time.monotonic()
        self._count_lock, self._start_lock = threading.Lock(), threading.Lock()
        self._this_request = threading.local()  # the endpoint server answers each request on a thread of its own
        if self.provisioned:  # kept warm from the start
            self._warm()

    # --- the endpoint server's side ---

    def invoke(self, body: bytes, *arguments):
        if len(body) > SERVERLESS_PAYLOAD_LIMIT_BYTES:
            # "The maximum request and response payload size for serverless invocations is 4 MB" (same page); the
            # refusal's code and text are an inference (AWS's answer is not documented)
            raise ServiceFault(
                400,
                "ValidationError",
                f"Request payload of {len(body)} bytes exceeds the {SERVERLESS_PAYLOAD_LIMIT_BYTES} bytes a serverless "
                "endpoint accepts.",
            )
        with self._count_lock:
            if self._in_flight >= self.max_concurrency:
                self.throttled += 1
                raise ServiceFault(
                    400,
                    "ThrottlingException",
                    f"Maximum concurrency ({self.max_concurrency}) of the serverless endpoint reached; retry later.",
                )
            self._in_flight += 1
        self._this_request.overhead_seconds = 0.0
        try:
            waited = time.monotonic()
            model = self._warm()
            self._this_request.overhead_seconds = time.monotonic() - waited
            answer = model.invoke(body, *arguments)
            self._within_memory()
            return answer
        finally:
            with self._count_lock:
                self._in_flight -= 1
                self._last_used = time.monotonic()

    def overhead_seconds(self) -> float:
        """The time the request this thread answers last waited for a container (its cold start, or another's):
        SageMaker counts it in ``OverheadLatency``, not ``ModelLatency`` (``aws_rules/cloudwatch.py``)."""
        return getattr(self._this_request, "overhead_seconds", 0.0)

    def drain(self, timeout_seconds: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_seconds
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)

    # --- the supervisor's side (duck-typed as the served "process") ---

    @property
    def alive(self) -> bool:
        return True  # scaled to zero is a state of a serverless endpoint, not a failure

    def ping(self) -> bool:
        return True

    @property
    def warm(self) -> bool:
        return self._container is not None and self._container.alive

    def reap_if_idle(self) -> bool:
        """Release the container after ``idle_seconds`` without a request (never with provisioned concurrency)."""
        with self._count_lock:
            idle = not self._in_flight and time.monotonic() - self._last_used >= self.idle_seconds
        if self.provisioned or not idle or not self.warm:
            return False
        with self._start_lock:
            self._stop_container()
        self.log(f"serverless {self.model_dir.name}: idle {self.idle_seconds:g} s, scaled to zero")
        return True

    def stop(self) -> None:
        with self._start_lock:
            self._stop_container()

    # --- inside ---

    def _warm(self) -> ContainerModel:
        with self._start_lock:
            if self._container is None or not self._container.alive or self._model is None:
                started = time.monotonic()
                time.sleep(self.provisioning_seconds)
                self._container = ContainerProcess(
                    self.model_dir,
                    startup_timeout_seconds=SERVERLESS_COLD_START_LIMIT_SECONDS,
                    environment=self.environment,
                ).start()
                self._model = ContainerModel(self._container.url)
                self.cold_starts.append(time.monotonic() - started)
                self.log(f"serverless {self.model_dir.name}: cold start, {self.cold_starts[-1]:.1f} s")
                self.on_cold_start(self.cold_starts[-1])
            return self._model

    def _within_memory(self) -> None:
        container = self._container
        if container is None or container.process is None:
            return
        try:
            resident = psutil.Process(container.process.pid).memory_info().rss
        except psutil.NoSuchProcess:
            return
        if resident > self.memory_bytes:
            with self._start_lock:
                self._stop_container()
            megabytes = self.memory_bytes // (1024 * 1024)
            self.log(f"serverless {self.model_dir.name}: {resident >> 20} MB resident > {megabytes} MB; killed")
            raise ModelFailure(500, f"the container used more than its {megabytes} MB (MemorySizeInMB) and was killed")

    def _stop_container(self) -> None:
        if self._container is not None:
            self._container.stop()
        self._container, self._model = None, None
