"""`make demo`: train -> deploy -> scale -> predict on this machine, with no AWS account.

    python -m offline_stack.demo [--data-dir DIR] [--work-dir .offline/demo] [--serve]

Makes a small generated data set (or uses ``--data-dir`` / ``DATA_DIR``, e.g. a real dogImages folder),
uploads it, and executes the pipeline's own definition (statemachine/pipeline.asl.json) in moto's Step
Functions: StartTrainingFunction, the training job (2 processes as 2 hosts), ReleaseGateFunction (registry
and gate), DeployEndpointFunction, RegisterAutoscalingFunction, printing each state as it is entered.
Then it sends sample images through the local API and prints the answers. ``--serve`` keeps the stack
up and prints curl commands. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from breed_classifier.cli import HYPERPARAMETER_NAMES, add_hyperparameter_arguments
from breed_classifier.labels import breed_name
from offline_stack.sam_template import PROJECT_ROOT
from offline_stack.stack import OfflineStack
from offline_stack.synthetic_images import CLASS_FOLDERS, class_image, encoded_image, write_image_folder

PHOTOS = PROJECT_ROOT / "tests" / "data" / "photos"
STARTER_MODEL_KEY = "starter-model/model.tar.gz"

# Transfer learning as the original course project did it, with real ImageNet weights that work offline: a
# frozen pretrained EfficientNet-Lite0 (packaged weights), only the head trained. About 40 s on 2 CPU cores.
# DEMO_HYPERPARAMETERS (JSON) overrides them, e.g. for real dog photos.
DEMO_HYPERPARAMETERS = {
    "architecture": "efficientnet_lite0",
    "pretrained": True,
    "freeze-backbone": True,
    "epochs": 15,
    "patience": 5,
    "batch-size": 8,
    "learning-rate": 0.003,
    "image-size": 96,
    "num-workers": 0,
}
# The stack's parameters for a demo: endpoint updates bake seconds, not the 10 minutes a deploy uses.
DEMO_STACK_PARAMETERS = {"RolloutBakeSeconds": "3"}
# A small CNN from scratch, for when only the wiring matters (the sam local services, quick tests): 10 s.
QUICK_HYPERPARAMETERS = {
    "architecture": "small_cnn",
    "pretrained": False,
    "freeze-backbone": False,
    "epochs": 6,
    "batch-size": 16,
    "learning-rate": 0.01,
    "image-size": 32,
    "num-workers": 0,
}


@dataclass
class Prediction:
    image: str
    expected: str | None
    status: int
    answer: dict


@dataclass
class DemoResult:
    training_job_name: str
    hosts: int
    model_artifacts: str
    endpoint_action: str
    scaling: dict
    predictions: list[Prediction] = field(default_factory=list)
    seconds: float = 0.0
    gate: str = ""
    generated_data: bool = True


def post_image(api_url: str, image: bytes, content_type: str, top_k: int = 3, retries: int = 6) -> tuple[int, dict]:
    """POST an image as a well-behaved client does: a 429 (the route throttle) is retried with backoff."""
    url = f"{api_url}/predictions?top_k={top_k}"  # the local API front on 127.0.0.1
    request = urllib.request.Request(url, data=image, headers={"Content-Type": content_type}, method="POST")  # noqa: S310
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (loopback)
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refusal:
            if refusal.code != 429 or attempt == retries:
                return refusal.code, json.loads(refusal.read())
        time.sleep(min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
    raise AssertionError("unreachable")


def sample_images(classes: int) -> list[tuple[str, bytes, str, str | None]]:
    """(label, bytes, content type, expected breed) for a fresh image of each generated class."""
    rng = random.Random(2026)
    samples = []
    for index, folder in enumerate(CLASS_FOLDERS[:classes]):
        breed = folder.split(".", 1)[1].replace("_", " ")
        image_format = "PNG" if index % 2 else "JPEG"
        samples.append(
            (
                f"generated {breed.lower()} #{index}",
                encoded_image(class_image(index, rng), image_format),
                f"image/{image_format.lower()}",
                breed,
            )
        )
    return samples


def dataset_samples(data_dir: Path, limit: int = 4) -> list[tuple[str, bytes, str, str | None]]:
    """One held-out image of each of the first ``limit`` classes of a user's data set (test/, else valid/)."""
    split = data_dir / "test" if (data_dir / "test").is_dir() else data_dir / "valid"
    samples = []
    for folder in sorted(p for p in split.iterdir() if p.is_dir())[:limit]:
        image = next((p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")), None)
        if image is not None:
            content_type = "image/png" if image.suffix.lower() == ".png" else "image/jpeg"
            samples.append(
                (f"{split.name}/{folder.name}/{image.name}", image.read_bytes(), content_type, breed_name(folder.name))
            )
    return samples


@dataclass
class TrainedModel:
    training_job_name: str
    hosts: int
    model_artifacts: str
    job_dir: Path


def write_demo_data(stack: OfflineStack, data_dir: Path | None, say=print) -> list[tuple[str, bytes, str, str | None]]:
    """Upload ``data_dir`` (or a small generated data set) to the bucket's data/; return sample images."""
    if data_dir is None:
        say("[1/7] making a small generated data set (4 breeds, 64 x 64 images)")
        data_dir = write_image_folder(
            stack.work_dir / "data", {"train": 30, "valid": 10, "test": 10}, classes=len(CLASS_FOLDERS)
        )
        samples = sample_images(len(CLASS_FOLDERS))
    else:
        say(f"[1/7] using the data set in {data_dir}")
        samples = dataset_samples(data_dir)
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    for path in files:
        stack.s3.upload_file(str(path), stack.bucket, "data/" + path.relative_to(data_dir).as_posix())
    say(f"      uploaded {len(files)} files to s3://{stack.bucket}/data/")
    return samples


def run_pipeline(stack: OfflineStack, hyperparameters: dict, say=print) -> tuple[TrainedModel, dict, dict, str]:
    """The pipeline itself (statemachine/pipeline.asl.json) in moto's Step Functions, its states as they happen."""
    say("[2/7] the pipeline: train (2 processes as 2 hosts) -> register -> gate -> deploy -> scale")
    execution = stack.pipeline.run({"training": {"hyperparameters": hyperparameters, "instance_count": 2}}, say=say)
    output = execution.output or {}
    if execution.status != "SUCCEEDED":
        raise RuntimeError(f"the pipeline ended {execution.status}: {execution.error}: {execution.cause}")
    job_name = output["started"]["training_job_name"]
    job = stack.sagemaker.describe_training_job(TrainingJobName=job_name)
    say(f"[3/7] {output['candidate']['reason']}")
    say(f"      registered as {output['candidate']['model_package_arn']}")
    deployment, scaling = output["deployment"], output["autoscaling"]
    say(f"[4/7] endpoint {deployment['endpoint_name']} {deployment['action']} ({deployment['endpoint_config_name']})")
    say(f"      auto-scaling on {scaling['resource_id']} ({scaling['policy_name']})")
    hosts = min(job["ResourceConfig"]["InstanceCount"], stack.executor.max_hosts)
    model = TrainedModel(job_name, hosts, job["ModelArtifacts"]["S3ModelArtifacts"], stack.executor.work_dir / job_name)
    return model, deployment, scaling, output["candidate"]["reason"]


def deploy_starter_model(stack: OfflineStack, say=print) -> dict:
    """Build the starter model (starter_model.py), store it in the bucket, deploy it to the endpoint blue/green."""
    from starter_model import build_starter_artifact, write_model_tarball

    build_starter_artifact(stack.work_dir / "starter-model" / "model")
    tarball = stack.work_dir / "starter-model" / "model.tar.gz"
    write_model_tarball(stack.work_dir / "starter-model" / "model", tarball)
    stack.s3.upload_file(str(tarball), stack.bucket, STARTER_MODEL_KEY)
    deployment = stack.invoke("DeployEndpointFunction", {"model_data_url": f"s3://{stack.bucket}/{STARTER_MODEL_KEY}"})
    stack.settle_endpoints()
    say(f"      endpoint {deployment['endpoint_name']} {deployment['action']} to the starter model, blue/green")
    return deployment


def photo_samples() -> list[tuple[str, bytes, str, str | None]]:
    """The real photos in tests/data/photos (MIT-licensed, see the README there)."""
    shows = {"dog.128.jpg": "a dog", "dog_cat.png": "a dog and a cat", "cat.70.jpg": "a cat"}
    return [
        (
            f"photo {name}",
            (PHOTOS / name).read_bytes(),
            "image/png" if name.endswith(".png") else "image/jpeg",
            shows[name],
        )
        for name in sorted(shows)
    ]


def run_demo(stack: OfflineStack, data_dir: Path | None, hyperparameters: dict, say=print) -> DemoResult:
    started = time.monotonic()
    stack.update_parameters(DEMO_STACK_PARAMETERS)
    samples = write_demo_data(stack, data_dir, say)
    model, deployment, scaling, gate = run_pipeline(stack, hyperparameters, say)

    say("[5/7] POST /predictions through the local API: the trained model, on held-out images")
    api = stack.open_api()
    result = DemoResult(model.training_job_name, model.hosts, model.model_artifacts, deployment["action"], scaling)
    result.gate, result.generated_data = gate, data_dir is None
    for label, image, content_type, expected in samples:
        status, answer = post_image(api.url, image, content_type)
        result.predictions.append(Prediction(label, expected, status, answer))
    say("[6/7] the starter model (ImageNet's dog breeds, real weights) on the same endpoint, then real photos")
    deploy_starter_model(stack, say)
    for label, image, content_type, expected in photo_samples():
        status, answer = post_image(api.url, image, content_type)
        result.predictions.append(Prediction(label, expected, status, answer))
    result.seconds = time.monotonic() - started
    say("[7/7] report")
    write_report(result, model.job_dir, stack.work_dir)
    return result


def write_report(result: DemoResult, job_dir: Path, work_dir: Path) -> None:
    """``report.md``: what was trained and how, per epoch, the test numbers, the plot, and the answers."""
    metrics_file = job_dir / "algo-1/output/data/metrics.json"
    curves = job_dir / "algo-1/output/data/training_curves.png"
    if curves.exists():
        shutil.copy2(curves, work_dir / "training_curves.png")
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    test, best = metrics.get("test", {}), metrics.get("best_epoch")
    lines = ["# Offline demo report", ""]
    if result.generated_data:
        lines += [
            "> **Generated data.** The images are synthetic (4 classes of coloured shapes named after breeds), so",
            "> the accuracy below says the pipeline works end to end, not how well a model tells dogs apart. Run",
            "> `DATA_DIR=~/dogImages make demo` for numbers that mean that.",
            "",
        ]
    ended = f"stopped early after epoch {metrics['history'][-1]['epoch']}" if metrics.get("stopped_early") else "ran"
    lines += [
        f"- training job `{result.training_job_name}` on {result.hosts} local hosts; {ended}; best epoch {best}",
        f"- test accuracy **{test.get('test_accuracy', float('nan')):.4f}**, "
        f"test loss **{test.get('test_loss', float('nan')):.4f}** (the best epoch's weights, on the test split)",
        f"- release gate: {result.gate}",
        f"- model `{result.model_artifacts}`; endpoint {result.endpoint_action}; "
        f"auto-scaling on `{result.scaling['resource_id']}`",
        f"- wall time {result.seconds:.0f} s",
        "",
        "## Hyperparameters",
        "",
        "| name | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in metrics.get("hyperparameters", {}).items()),
        "",
        "## Per epoch",
        "",
        "![training curves](training_curves.png)",
        "",
        "| epoch | train loss | train accuracy | valid loss | valid accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in metrics.get("history", []):
        mark = " (best)" if row["epoch"] == best else ""
        lines.append(
            f"| {row['epoch']}{mark} | {row['train_loss']:.4f} | {row['train_accuracy']:.4f} "
            f"| {row['valid_loss']:.4f} | {row['valid_accuracy']:.4f} |"
        )
    lines += ["", "## Predictions", "", "| image | expected | top prediction | probability |", "|---|---|---|---|"]
    for prediction in result.predictions:
        top = prediction.answer.get("predictions", [{}])[0]
        probability = f"{top['probability']:.2f}" if "probability" in top else f"HTTP {prediction.status}"
        lines.append(f"| {prediction.image} | {prediction.expected or ''} | {top.get('breed', '')} | {probability} |")
    (work_dir / "report.md").write_text("\n".join(lines) + "\n")


def read_demo_hyperparameters(text: str) -> dict:
    """``DEMO_HYPERPARAMETERS`` over the defaults; a ValueError that says what is wrong and what is accepted."""
    try:
        given = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"DEMO_HYPERPARAMETERS is not JSON ({exc.msg}); give an object such as '{{\"epochs\": 5}}'"
        ) from None
    if not isinstance(given, dict):
        raise ValueError("DEMO_HYPERPARAMETERS must be a JSON object such as '{\"epochs\": 5}'")
    merged = {**DEMO_HYPERPARAMETERS, **given}
    parser = _RefusingParser(prog="DEMO_HYPERPARAMETERS", add_help=False)
    add_hyperparameter_arguments(parser)
    accepted = sorted(HYPERPARAMETER_NAMES)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"DEMO_HYPERPARAMETERS: unknown hyperparameter(s) {unknown}; accepted: {accepted}")
    arguments = [
        item
        for name, value in merged.items()
        for item in (f"--{name}", str(value).lower() if isinstance(value, bool) else str(value))
    ]
    parser.parse_args(arguments)
    return merged


class _RefusingParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ValueError(f"DEMO_HYPERPARAMETERS: {message}")


def print_predictions(result: DemoResult, say=print) -> None:
    say("")
    say(f"{'image':32} {'expected':20} predictions (breed: probability)")
    for prediction in result.predictions:
        if prediction.status != 200:
            say(f"{prediction.image:32} {prediction.expected or '':20} HTTP {prediction.status}: {prediction.answer}")
            continue
        shown = ", ".join(f"{p['breed']}: {p['probability']:.2f}" for p in prediction.answer["predictions"])
        say(f"{prediction.image:32} {prediction.expected or '':20} {shown}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ["DATA_DIR"]) if os.environ.get("DATA_DIR") else None
    )
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / ".offline" / "demo")
    parser.add_argument("--serve", action="store_true", help="keep the stack up after the demo")
    args = parser.parse_args(argv)
    if args.data_dir and not all((args.data_dir / split).is_dir() for split in ("train", "valid")):
        print(
            f"error: {args.data_dir} needs train/ and valid/ folders of class folders (test/ optional), "
            "as in dogImages",
            file=sys.stderr,
        )
        return 2
    try:
        hyperparameters = read_demo_hyperparameters(os.environ.get("DEMO_HYPERPARAMETERS", ""))
    except ValueError as exc:  # one line, and the previous run's report stays where it is
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C and `kill` both end in the same clean shutdown (SIGINT is ignored when started in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    args.work_dir.mkdir(parents=True)
    try:
        log = lambda line: print(f"      {line}", flush=True)  # noqa: E731
        with OfflineStack(args.work_dir, log=log, quiet_functions=True) as stack:
            result = run_demo(stack, args.data_dir, hyperparameters, say=lambda line: print(line, flush=True))
            print_predictions(result)
            print(
                f"\nDone in {result.seconds:.0f} s. Report: {args.work_dir / 'report.md'}; training curves: "
                f"{args.work_dir / 'training_curves.png'}; jobs: {args.work_dir / 'jobs'}"
            )
            if args.serve:
                serve_forever(stack)
    except KeyboardInterrupt:
        print("\nstopped; every server and process it started is stopped too")
    return 0


def serve_forever(stack: OfflineStack) -> None:
    sample = PHOTOS / "dog.128.jpg"
    url = stack.api.url
    print(
        f"""
The API is up at {url}/predictions (Ctrl-C to stop), serving the starter model (ImageNet's dog breeds).
Open {url}/ in a browser to try it with a photo; its contract is at {url}/openapi.json.
Try it with a photo of your own dog, or:

  curl -s -X POST '{url}/predictions?top_k=3' -H 'Content-Type: image/jpeg' --data-binary @{sample}
  curl -s -X POST '{url}/predictions' -H 'Content-Type: application/json' -d '{{"image": "'$(base64 -w0 {sample})'"}}'
  curl -s -X POST '{url}/predictions' -H 'Content-Type: image/gif' --data-binary @{sample}   # 415

(SageMaker Runtime: {stack.runtime.url}; control plane (moto): {stack.control_plane.url})
""",
        flush=True,
    )
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
