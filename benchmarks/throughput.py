"""Images per second per instance: a bounded load test against local endpoints, one per serving layout.

Each layout is what a SageMaker instance would run: ``workers`` model-server workers (TorchServe's, one
process each, one request at a time), each with ``threads`` intra-op threads, serving the same ResNet-50
artifact through the SageMaker Runtime API on loopback (``offline_stack``'s endpoint server and model
containers), with ``2 x workers`` clients sending a 500x375 JPEG as fast as they are answered. The baseline
serves the same weights with the original course project's handler (``course_style_inference.py``).

Why workers and not TorchServe's batch size: the inference toolkit's handler (``sagemaker_inference``'s
``Transformer.transform``) calls ``transform_fn`` once per request of a batch, so a batch size above 1 only
queues requests; it never runs a batched forward. Workers are what the container lets an instance use.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import torch
from botocore.config import Config

from breed_classifier.artifact import save_artifact
from breed_classifier.model import ModelConfig, build_model
from offline_stack.container_processes import ContainerModel, ContainerProcess
from offline_stack.endpoint_server import EndpointServer

COURSE_STYLE_HANDLER = Path(__file__).with_name("course_style_inference.py")


@dataclass(frozen=True)
class Layout:
    name: str
    workers: int
    threads: int
    runtime: str  # INFERENCE_RUNTIME, or "course-style"


LAYOUTS = (
    Layout("course-style (eager, 1 worker x 2 threads)", 1, 2, "course-style"),
    Layout("fp32, 1 worker x 2 threads", 1, 2, "torchscript"),
    Layout("fp32, 2 workers x 1 thread", 2, 1, "torchscript"),
    Layout("bf16 (opt-in), 2 workers x 1 thread", 2, 1, "bf16"),
)


class Workers:
    """The instance's model server: each request goes to an idle worker, as TorchServe assigns them."""

    def __init__(self, models: list[ContainerModel]) -> None:
        self._idle = list(models)
        self._ready = threading.Condition()

    def invoke(self, body: bytes, content_type: str, accept: str, custom_attributes: str) -> tuple[bytes, str]:
        with self._ready:
            self._ready.wait_for(lambda: self._idle)
            model = self._idle.pop()
        try:
            return model.invoke(body, content_type, accept, custom_attributes)
        finally:
            with self._ready:
                self._idle.append(model)
                self._ready.notify()


def resnet50_artifact(directory: Path, course_style: bool) -> Path:
    torch.manual_seed(0)
    config = ModelConfig.for_architecture("resnet50", 133, 224)
    save_artifact(directory, build_model(config).eval(), config, [f"{i:03d}.breed_{i}" for i in range(1, 134)])
    if course_style:
        shutil.copy2(COURSE_STYLE_HANDLER, directory / "code" / "inference.py")
    return directory


def images_per_second(layout: Layout, artifact: Path, image: bytes, seconds: float) -> float:
    environment = {"OMP_NUM_THREADS": str(layout.threads), "INFERENCE_RUNTIME": layout.runtime}
    processes = [ContainerProcess(artifact, environment=environment) for _ in range(layout.workers)]
    try:
        for process in processes:
            process.start()
        with EndpointServer(threads=4 * layout.workers) as runtime:
            runtime.serve("throughput", Workers([ContainerModel(process.url) for process in processes]))
            client = boto3.client(
                "sagemaker-runtime",
                endpoint_url=runtime.url,
                region_name="us-east-1",
                config=Config(retries={"max_attempts": 1}, max_pool_connections=32),
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 (loopback only)
            )

            def call() -> None:
                client.invoke_endpoint(EndpointName="throughput", ContentType="image/jpeg", Body=image)["Body"].read()

            for _ in range(2 * layout.workers):  # warm every worker
                call()
            answered = [0] * (2 * layout.workers)
            deadline = time.monotonic() + seconds

            def client_loop(index: int) -> None:
                while time.monotonic() < deadline:
                    call()
                    answered[index] += 1

            started = time.monotonic()
            clients = [threading.Thread(target=client_loop, args=(i,)) for i in range(len(answered))]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join()
            return sum(answered) / (time.monotonic() - started)
    finally:
        for process in processes:
            process.stop()


def container_cold_start(rounds: int) -> dict:
    """A model container started until its /ping answers (process, model load, fast path built and warmed), for the
    project's and course-style's ResNet-50 artifacts, alternated: what a serverless request after an idle period
    waits for, beyond AWS's own provisioning (not measurable here)."""
    from benchmarks.measure import Timing

    with tempfile.TemporaryDirectory(prefix="bench-cold-") as work:
        project = resnet50_artifact(Path(work) / "project", course_style=False)
        course = resnet50_artifact(Path(work) / "course", course_style=True)
        seconds: dict[str, list[float]] = {"project": [], "course_style": []}
        for _ in range(rounds):
            for name, artifact in (("course_style", course), ("project", project)):
                started = time.perf_counter()
                with ContainerProcess(artifact, environment={"OMP_NUM_THREADS": "2"}):
                    seconds[name].append(time.perf_counter() - started)
        return {name: Timing.of(values) for name, values in seconds.items()}


def throughput_per_instance(image: bytes, seconds: float) -> list[dict]:
    """Images per second for each layout in ``LAYOUTS``, over ``seconds`` of load each."""
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as work:
        project = resnet50_artifact(Path(work) / "project", course_style=False)
        course = resnet50_artifact(Path(work) / "course", course_style=True)
        return [
            {
                "layout": layout.name,
                "workers": layout.workers,
                "threads": layout.threads,
                "runtime": layout.runtime,
                "images_per_second": images_per_second(
                    layout, course if layout.runtime == "course-style" else project, image, seconds
                ),
            }
            for layout in LAYOUTS
        ]
