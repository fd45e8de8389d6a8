"""The measurements behind ``make bench``: the project's code and a course-style baseline, in one process, alternating.

Course-style means what the original course project did: PIL ``open`` -> ``Resize((224, 224))`` -> ``ToTensor``
-> ``Normalize`` -> eager ``no_grad`` forward on the endpoint, and a prediction handler that builds a boto3
client per call. Each pair of timings is taken in alternation (baseline, ours, baseline, ...) so that machine
noise hits both alike; medians and p90 are reported, and ratios are baseline / ours (above 1: ours is faster).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from inference import decode_image
from PIL import Image
from torchvision import transforms

from breed_classifier.fast_path import ReducedPrecision, inference_network
from breed_classifier.model import ModelConfig, build_model
from breed_classifier.preprocessing import eval_transform

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PHOTOS = PROJECT_ROOT / "tests" / "data" / "photos"
RESNET50_GFLOP = 8.175  # multiply-adds x 2 of ResNet-50 + the 133-class head at 224 x 224, per image
IMAGE_SIZE = 224


@dataclass
class Timing:
    median_ms: float
    p90_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        ordered = sorted(seconds)
        return cls(statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] * 1000)


def alternate(*calls: Callable[[], object], rounds: int) -> tuple[Timing, ...]:
    """Time each call ``rounds`` times, in turn (a, b, a, b, ...), after one warm-up call of each."""
    for call in calls:
        call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for index, call in enumerate(calls):
            started = time.perf_counter()
            call()
            times[index].append(time.perf_counter() - started)
    return tuple(Timing.of(seconds) for seconds in times)


def matmul_peak_gflops(seconds: float = 1.0) -> float:
    """What this machine's fp32 matrix multiply reaches with torch's threads (the best of a few sizes)."""
    best = 0.0
    for size in (512, 1024, 2048):
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 3:
            a @ b
            calls += 1
        best = max(best, 2 * size**3 * calls / (time.perf_counter() - started) / 1e9)
    return best


def photo_jpegs() -> dict[str, bytes]:
    """A 500 x 375 JPEG and a 12 MP (4000 x 3000) JPEG made from the real dog photo, as a phone would send."""
    with Image.open(PHOTOS / "dog.128.jpg") as photo:
        photo = photo.convert("RGB").transpose(Image.Transpose.ROTATE_90)  # 500 x 374, landscape
    jpegs = {}
    for name, size in (("500x375", (500, 375)), ("12MP", (4000, 3000))):
        buffer = io.BytesIO()
        photo.resize(size, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
        jpegs[name] = buffer.getvalue()
    return jpegs


def resnet50() -> tuple[torch.nn.Module, ModelConfig]:
    torch.manual_seed(0)
    config = ModelConfig.for_architecture("resnet50", 133, IMAGE_SIZE)
    return build_model(config).eval(), config


def course_style_request(network: torch.nn.Module, config: ModelConfig) -> Callable[[bytes], torch.Tensor]:
    transform = transforms.Compose(
        [
            transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
            transforms.ToTensor(),
            transforms.Normalize(config.mean, config.std),
        ]
    )

    def answer(body: bytes) -> torch.Tensor:
        image = Image.open(io.BytesIO(body)).convert("RGB")
        with torch.no_grad():
            return torch.softmax(network(transform(image).unsqueeze(0)), 1)

    return answer


def project_request(fast: torch.nn.Module, config: ModelConfig) -> Callable[[bytes], torch.Tensor]:
    transform = eval_transform(config.image_size, config.mean, config.std)

    def answer(body: bytes) -> torch.Tensor:
        pixels = transform(decode_image(body, config.image_size)).unsqueeze(0)
        with torch.inference_mode():
            return torch.softmax(fast(pixels), 1)

    return answer


def endpoint_requests(rounds: int) -> list[dict]:
    network, config = resnet50()
    fast, runtime = inference_network(network, IMAGE_SIZE, torch.device("cpu"))
    baseline, ours = course_style_request(network, config), project_request(fast, config)
    rows = []
    for name, body in photo_jpegs().items():
        before, after = alternate(lambda body=body: baseline(body), lambda body=body: ours(body), rounds=rounds)
        rows.append({"image": name, "runtime": runtime, "course_style": before, "project": after})
    return rows


def model_alone(rounds: int) -> dict:
    network, _ = resnet50()
    fast, runtime = inference_network(network, IMAGE_SIZE, torch.device("cpu"))
    pixels = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE)

    def eager():
        with torch.no_grad():
            network(pixels)

    def optimised():
        with torch.inference_mode():
            fast(pixels)

    before, after = alternate(eager, optimised, rounds=rounds)
    return {"runtime": runtime, "eager": before, "project": after, "gflop_per_image": RESNET50_GFLOP}


def batch_1_and_8(first: Callable, second: Callable, rounds: int) -> tuple[Timing, Timing, Timing, Timing]:
    """Two networks on the same random pixels, alternating: batch 1 ``rounds`` times, batch 8 a quarter as often.

    Returns (first at 1, second at 1, first at 8, second at 8).
    """
    one, eight = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE), torch.randn(8, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.inference_mode():
        at_1 = alternate(lambda: first(one), lambda: second(one), rounds=rounds)
        at_8 = alternate(lambda: first(eight), lambda: second(eight), rounds=max(2, rounds // 4))
    return (*at_1, *at_8)


def architectures(rounds: int) -> list[dict]:
    """Latency at batch 1 and images per second at batch 8, eager and as served, for each real backbone."""
    return [_architecture(name, rounds) for name in ("resnet50", "efficientnet_lite0")]


def _architecture(architecture: str, rounds: int) -> dict:
    torch.manual_seed(0)
    network = build_model(ModelConfig.for_architecture(architecture, 133, IMAGE_SIZE)).eval()
    fast, runtime = inference_network(network, IMAGE_SIZE, torch.device("cpu"))
    eager_1, served_1, eager_8, served_8 = batch_1_and_8(network, fast, rounds)
    return {
        "architecture": architecture,
        "runtime": runtime,
        "eager_batch1": eager_1,
        "served_batch1": served_1,
        "served_images_per_second_batch1": 1000 / served_1.median_ms,
        "served_images_per_second_batch8": 8000 / served_8.median_ms,
        "eager_images_per_second_batch8": 8000 / eager_8.median_ms,
    }


def training_steps(rounds: int) -> dict:
    """Images/s of a frozen-backbone ResNet-50 training step (batch 16): default memory format vs channels_last."""
    rates = {}
    for memory_format in (torch.contiguous_format, torch.channels_last):
        torch.manual_seed(0)
        config = ModelConfig.for_architecture("resnet50", 133, IMAGE_SIZE)
        network = build_model(config, freeze_backbone=True).to(memory_format=memory_format).train()
        optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=1e-3)
        images = torch.randn(16, 3, IMAGE_SIZE, IMAGE_SIZE).to(memory_format=memory_format)
        targets = torch.randint(0, 133, (16,))

        def step(network=network, optimizer=optimizer, images=images, targets=targets):
            loss = torch.nn.functional.cross_entropy(network(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()
        started = time.perf_counter()
        for _ in range(rounds):
            step()
        rates[str(memory_format).removeprefix("torch.")] = 16 * rounds / (time.perf_counter() - started)
    return rates


def _ddp_worker(rank: int, world_size: int, port: int, steps: int, results) -> None:
    """One process of a data-parallel training loop (gloo on loopback, one thread), as training.py runs it."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        config = ModelConfig.for_architecture("resnet50", 133, 112)
        network = build_model(config, freeze_backbone=True).to(memory_format=torch.channels_last).train()
        model = DistributedDataParallel(network) if world_size > 1 else network
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        images = torch.randn(8, 3, 112, 112).to(memory_format=torch.channels_last)
        targets = torch.randint(0, 133, (8,))

        def step():
            loss = torch.nn.functional.cross_entropy(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()
        dist.barrier()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        dist.barrier()
        if rank == 0:
            results.put(8 * steps * world_size / (time.perf_counter() - started))
    finally:
        dist.destroy_process_group()


def ddp_efficiency(steps: int) -> dict:
    """Images/s with 2 processes over 2 x images/s with 1 (frozen ResNet-50 at 112 px, one thread per process)."""
    import torch.multiprocessing as mp

    from offline_stack.loopback_server import free_port

    context = mp.get_context("spawn")
    rates = {}
    for world_size in (1, 2):
        results = context.Queue()
        mp.start_processes(
            _ddp_worker, args=(world_size, free_port(), steps, results), nprocs=world_size, start_method="spawn"
        )
        rates[world_size] = results.get(timeout=5)
    return {"images_per_second_1": rates[1], "images_per_second_2": rates[2], "efficiency": rates[2] / (2 * rates[1])}


def fast_path_agreement() -> dict:
    """Top-1 and |delta p| of the served path against eager fp32 (the starter model; real photos, generated images)."""
    import random
    import tempfile

    from starter_model import build_starter_artifact

    from breed_classifier.artifact import load_artifact
    from offline_stack.synthetic_images import class_image, encoded_image

    with tempfile.TemporaryDirectory() as work:
        build_starter_artifact(Path(work) / "model")
        loaded = load_artifact(Path(work) / "model")
    fast, runtime = inference_network(loaded.network, loaded.config.image_size, torch.device("cpu"))
    rng = random.Random(5)
    bodies = [p.read_bytes() for p in sorted(PHOTOS.glob("*.*")) if p.suffix != ".md"]
    bodies += [encoded_image(class_image(i % 4, rng, 96), "JPEG") for i in range(8)]
    transform = eval_transform(loaded.config.image_size, loaded.config.mean, loaded.config.std)
    batch = torch.stack([transform(decode_image(body, loaded.config.image_size)) for body in bodies])
    reduced = ReducedPrecision(loaded.network)
    with torch.inference_mode():
        eager, served = torch.softmax(loaded.network(batch), 1), torch.softmax(fast(batch), 1)
        bf16 = torch.softmax(reduced(batch), 1)
    return {
        "runtime": runtime,
        "images": len(bodies),
        "top1_identical": bool(torch.equal(eager.argmax(1), served.argmax(1))),
        "max_abs_delta_p": float((eager - served).abs().max()),
        "bf16_top1_agreement": float((eager.argmax(1) == bf16.argmax(1)).float().mean()),
        "bf16_max_abs_delta_p": float((eager - bf16).abs().max()),
    }


def reduced_precision_speed(rounds: int) -> dict:
    """ResNet-50 at batch 1 and 8: the served fp32 path against the opt-in bf16 mode."""
    network, _ = resnet50()
    fast, runtime = inference_network(network, IMAGE_SIZE, torch.device("cpu"))
    fp32_1, bf16_1, fp32_8, bf16_8 = batch_1_and_8(fast, ReducedPrecision(network), rounds)
    return {
        "fp32_runtime": runtime,
        "fp32_batch1": fp32_1,
        "bf16_batch1": bf16_1,
        "fp32_images_per_second_batch8": 8000 / fp32_8.median_ms,
        "bf16_images_per_second_batch8": 8000 / bf16_8.median_ms,
    }


def predict_cold_start_environment(layer: Path, handler_dir: Path) -> dict[str, str]:
    """What Lambda sets when it imports the predict handler: the layer on the path, ``LAMBDA_TASK_ROOT`` (the X-Ray
    SDK's Lambda mode), the function's settings, and the role's credentials (without them botocore would ask the
    instance metadata)."""
    return {
        "PYTHONPATH": str(layer),
        "LAMBDA_TASK_ROOT": str(handler_dir),
        "AWS_LAMBDA_FUNCTION_NAME": "dog-breed-classifier-predict",
        "ENDPOINT_NAME": "dog-breed-classifier",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "dog-breed-classifier",
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example",
        "AWS_SESSION_TOKEN": "example",
    }


def cold_start(runs: int) -> dict:
    """Whole processes: importing the predict handler as Lambda does, against `python -c "import boto3"`.

    As in Lambda when ``make build`` has run: the built layer and function (with their compiled bytecode), the
    runtime's Python (python3.12 when on PATH), and ``LAMBDA_TASK_ROOT`` set, which puts the X-Ray SDK in its
    Lambda mode. Otherwise the sources on ``.venv-layer`` (the runtime's Python with the layer's pinned packages
    only, made by ``make setup``), never the dev venv: its extras (awscrt, pyOpenSSL) load with botocore and make
    ``import boto3`` itself slower than in Lambda. A third process is the handler's irreducible floor: ``import
    boto3`` and the ``sagemaker-runtime`` client it creates at init.
    """
    built = PROJECT_ROOT / ".aws-sam" / "build"
    as_built = (built / "SharedLayer" / "python").is_dir() and (built / "PredictFunction").is_dir()
    layer = built / "SharedLayer" / "python" if as_built else PROJECT_ROOT / "layers" / "shared" / "python"
    handler_dir = built / "PredictFunction" if as_built else PROJECT_ROOT / "functions" / "predict"
    layer_venv = PROJECT_ROOT / ".venv-layer" / "bin" / "python"
    python = shutil.which("python3.12") if as_built else (str(layer_venv) if layer_venv.exists() else None)
    environment = {**os.environ, **predict_cold_start_environment(layer, handler_dir)}

    def process(code: str) -> Callable[[], None]:
        command = [python or sys.executable, "-c", code]
        return lambda: subprocess.run(command, cwd=handler_dir, env=environment, check=True)

    client = "import boto3; boto3.client('sagemaker-runtime')"
    boto3_only, with_client, handler = alternate(
        process("import boto3"), process(client), process("import app"), rounds=runs
    )
    packages = "built layer" if as_built else ".venv-layer" if python else "dev venv"
    return {
        "as": f"{'built' if as_built else 'source'}, {packages}, {Path(python or sys.executable).name}",
        "import_boto3": boto3_only,
        "boto3_and_client": with_client,
        "import_handler": handler,
    }


def handler_overhead(rounds: int) -> dict:
    """Time in the predict function beyond the endpoint call, against a course-style handler; the endpoint is local."""
    import boto3

    from offline_stack.control_plane import DUMMY_CREDENTIALS
    from offline_stack.endpoint_server import EndpointServer
    from offline_stack.lambda_invoker import LambdaFunction
    from offline_stack.sample_events import sample_api_event

    class Constant:
        def invoke(self, body, content_type, accept, custom_attributes):
            return b'{"predictions": [{"breed": "Beagle", "class_index": 15, "probability": 0.9}]}', "application/json"

    body = photo_jpegs()["500x375"]
    event = sample_api_event(body, "image/jpeg", {"top_k": "1"})
    with EndpointServer() as runtime:
        runtime.serve("dog-breed-classifier", Constant())
        environment = {
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime.url,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **DUMMY_CREDENTIALS,
        }
        sink = io.StringIO()
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}

        def course_style_handler(event, context=None):
            # As the course project's lambdafunction.py: a new boto3 Session and client on every call, and the
            # context and event type printed (to CloudWatch there; to a sink here, so the terminal stays clean)
            print("Context:::", context, file=sink)
            print("EventType::", type(event), file=sink)
            client = boto3.Session().client("sagemaker-runtime", endpoint_url=runtime.url, **credentials)
            image = base64.b64decode(event["body"])
            answer = client.invoke_endpoint(EndpointName="dog-breed-classifier", ContentType="image/jpeg", Body=image)
            return {"statusCode": 200, "body": json.dumps(json.loads(answer["Body"].read()))}

        client = boto3.client("sagemaker-runtime", endpoint_url=runtime.url, **credentials)

        def endpoint_only():
            client.invoke_endpoint(EndpointName="dog-breed-classifier", ContentType="image/jpeg", Body=body).get(
                "Body"
            ).read()

        with LambdaFunction("PredictFunction", environment=environment) as function:
            answer = function.invoke(event)
            assert answer["statusCode"] == 200, answer
            # The endpoint call alone, in the same rotation: each handler's overhead is its median minus this one
            endpoint, course, project = alternate(
                endpoint_only, lambda: course_style_handler(event), lambda: function.invoke(event), rounds=rounds
            )
    return {
        "endpoint_call": endpoint,
        "course_style_overhead_ms": max(course.median_ms - endpoint.median_ms, 0.001),
        "project_overhead_ms": max(project.median_ms - endpoint.median_ms, 0.001),
    }
