"""The parent side of a local model container: start and supervise its process, forward invocations to it.

``ContainerProcess`` starts ``python -m offline_stack.model_container`` (the stand-in for the SageMaker PyTorch
inference container) for one artifact and stops it on exit; ``ContainerModel`` is how the endpoint server
forwards an invocation to it over HTTP, with SageMaker's time limit and its answers to an unreachable one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import urllib3

from offline_stack.endpoint_server import ModelFailure, ServiceFault
from offline_stack.loopback_server import free_port


class ContainerModel:
    """An ``InferenceModel`` for the endpoint server that forwards to a container process over HTTP.

    SageMaker's own limit applies: a container that does not answer within 60 s is a timeout; one that
    cannot be reached at all makes the endpoint unavailable (503), as an instance failing its health
    check does.
    """

    def __init__(self, url: str, timeout_seconds: float = 60.0) -> None:
        self.url = url
        self._pool = urllib3.PoolManager(maxsize=8, timeout=urllib3.Timeout(connect=2, read=timeout_seconds))

    def invoke(self, body: bytes, content_type: str, accept: str, custom_attributes: str) -> tuple[bytes, str]:
        headers = {"Content-Type": content_type, "Accept": accept}
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        try:
            response = self._pool.request("POST", f"{self.url}/invocations", body=body, headers=headers, retries=False)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise ModelFailure(504, "the model container did not answer within 60 s") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ServiceFault(503, "ServiceUnavailable", "the model container is not reachable") from exc
        if response.status >= 400:
            raise ModelFailure(response.status, response.data.decode("utf-8", "replace"))
        return response.data, response.headers.get("Content-Type", "application/json")


class ContainerProcess:
    """Start ``python -m offline_stack.model_container`` for one artifact; stop it on exit (no stray process).

    The process sees the artifact's ``code/`` and the project root (for ``offline_stack``) on its path, not
    training_jobs/: what the artifact does not carry, it cannot import.
    """

    def __init__(
        self, model_dir: Path, startup_timeout_seconds: float = 120.0, environment: dict[str, str] | None = None
    ) -> None:
        self.model_dir = Path(model_dir)
        self.environment = environment or {}  # the model's environment (CreateModel's Environment)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout_seconds = startup_timeout_seconds
        self.process: subprocess.Popen | None = None
        # The container's output goes to a file (as CloudWatch receives it), never to a pipe nobody
        # reads: a full pipe would block the container in write and wedge every later request.
        self.log_path = self.model_dir.parent / f"{self.model_dir.name}.container-{self.port}.log"

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def ping(self, timeout_seconds: float = 2.0) -> bool:
        try:
            return urllib3.request("GET", f"{self.url}/ping", timeout=timeout_seconds, retries=False).status == 200
        except urllib3.exceptions.HTTPError:
            return False

    def start(self) -> ContainerProcess:
        project_root = Path(__file__).resolve().parent.parent
        # <model_dir>/code on the path is what the container's start-up does (through PYTHONPATH too).
        code_path = f"{self.model_dir.resolve() / 'code'}{os.pathsep}{project_root}"
        env = {**os.environ, **self.environment, "PYTHONPATH": code_path}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "offline_stack.model_container",
                "--model-dir",
                str(self.model_dir),
                "--port",
                str(self.port),
            ],
            cwd=self.model_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child has its own copy of the descriptor
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the model container for {self.model_dir} exited while loading:\n{self.log_tail()}")
            if self.ping(timeout_seconds=1.0):
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the model container for {self.model_dir} did not answer /ping in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.send_signal(signal.SIGCONT)  # a stopped container must run to take the SIGTERM
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> ContainerProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
