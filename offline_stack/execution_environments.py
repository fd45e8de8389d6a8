"""Lambda execution environments as processes: what lets the offline API serve requests concurrently.

In AWS each concurrent request of a function runs in its own execution environment (a microVM with
its own process and environment variables), up to the function's reserved concurrency; a request
that finds none free is throttled. Here each environment is a process of its own, started with
``spawn``: it sets the template's environment for itself and cold-starts the handler once (through
``LambdaFunction``), then serves one invocation at a time over a pipe. So concurrent handlers never
share ``os.environ`` or module state, as in AWS.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import warnings
from collections.abc import Mapping

from offline_stack.lambda_invoker import LambdaFunction
from offline_stack.sam_template import SamTemplate


class ExecutionEnvironmentError(RuntimeError):
    """The environment's process failed to start, crashed, or ran past the function's timeout."""


class LambdaThrottledError(RuntimeError):
    """Every execution environment is busy: Lambda throttles (TooManyRequestsException)."""


class ExecutionEnvironment:
    """One execution environment of a template function in its own process."""

    def __init__(
        self,
        logical_id: str,
        environment: Mapping[str, str],
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.logical_id = logical_id
        self.environment = dict(environment)
        self.parameter_overrides = dict(parameter_overrides or {})
        template = SamTemplate.load(overrides=parameter_overrides)
        self.timeout_seconds = LambdaFunction(logical_id, template).timeout_seconds
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection = None

    def start(self, startup_timeout_seconds: float = 60.0) -> ExecutionEnvironment:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(self.logical_id, self.environment, self.parameter_overrides, child),
            name=f"lambda-{self.logical_id}",
            daemon=True,
        )
        self._process.start()
        child.close()
        if not self._connection.poll(startup_timeout_seconds):
            self.stop()
            raise ExecutionEnvironmentError(f"{self.logical_id}: the cold start took over {startup_timeout_seconds} s")
        kind, detail = self._connection.recv()
        if kind != "ready":
            self.stop()
            raise ExecutionEnvironmentError(f"{self.logical_id}: the cold start failed: {detail}")
        return self

    def invoke(self, event: dict) -> dict:
        """The handler's answer; a crash or a timeout raises (API Gateway answers those with 5xx)."""
        try:
            self._connection.send(event)
            if not self._connection.poll(self.timeout_seconds):
                raise ExecutionEnvironmentError(f"{self.logical_id}: timed out after {self.timeout_seconds} s")
            kind, detail = self._connection.recv()
        except (EOFError, OSError) as exc:
            raise ExecutionEnvironmentError(f"{self.logical_id}: the execution environment died") from exc
        if kind != "answer":
            raise ExecutionEnvironmentError(f"{self.logical_id}: the handler raised {detail}")
        return detail

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()


class ConcurrencyPool:
    """Up to ``reserved_concurrency`` environments; a request finding none free is throttled.

    Environments start on demand, as Lambda's do, and one that crashed or timed out is replaced
    by a fresh cold start on the next request.
    """

    def __init__(
        self,
        logical_id: str,
        reserved_concurrency: int,
        environment: Mapping[str, str],
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.logical_id, self.reserved_concurrency = logical_id, reserved_concurrency
        self._environment, self._overrides = dict(environment), dict(parameter_overrides or {})
        self._idle: list[ExecutionEnvironment] = []
        self._started: list[ExecutionEnvironment] = []
        self._busy = 0
        self._lock = threading.Lock()

    def invoke(self, event: dict) -> dict:
        environment = self._acquire()
        healthy = False
        try:
            answer = environment.invoke(event)
            healthy = True
            return answer
        finally:
            self._release(environment, healthy)

    def warm(self, count: int = 1) -> None:
        """Cold-start ``count`` environments ahead of traffic (as provisioned concurrency would)."""
        environments = [self._acquire() for _ in range(min(count, self.reserved_concurrency))]
        for environment in environments:
            self._release(environment, True)

    @property
    def environments(self) -> list[ExecutionEnvironment]:
        """The environments started so far and still in use (idle or busy)."""
        with self._lock:
            return list(self._started)

    def close(self) -> None:
        with self._lock:
            started, self._started, self._idle = list(self._started), [], []
        for environment in started:
            environment.stop()

    def _acquire(self) -> ExecutionEnvironment:
        with self._lock:
            if self._busy >= self.reserved_concurrency:
                raise LambdaThrottledError(f"{self.logical_id}: all {self.reserved_concurrency} environments are busy")
            self._busy += 1
            if self._idle:
                return self._idle.pop()
        try:
            environment = ExecutionEnvironment(self.logical_id, self._environment, self._overrides).start()
        except BaseException:
            with self._lock:
                self._busy -= 1
            raise
        with self._lock:
            self._started.append(environment)
        return environment

    def _release(self, environment: ExecutionEnvironment, healthy: bool) -> None:
        with self._lock:
            self._busy -= 1
            if healthy and environment.alive:
                self._idle.append(environment)
                return
            with contextlib.suppress(ValueError):
                self._started.remove(environment)
        environment.stop()


def _serve(logical_id: str, environment: dict, overrides: dict, connection) -> None:
    """The environment's process: cold start once, then answer invocations until the pipe closes."""
    # Quiet functions (metrics disabled) would warn on every invocation that they have none to publish.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    try:
        function = LambdaFunction(logical_id, SamTemplate.load(overrides=overrides), environment).__enter__()
    except BaseException as exc:  # noqa: BLE001 (reported to the parent, which raises it)
        connection.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    connection.send(("ready", None))
    while True:
        try:
            event = connection.recv()
        except (EOFError, OSError):
            return
        try:
            connection.send(("answer", function.invoke(event)))
        except Exception as exc:  # noqa: BLE001 (an unhandled function error: Lambda reports it, API GW answers 502)
            connection.send(("error", type(exc).__name__))
