"""The demo's steps: data in, the pipeline executed, the starter model deployed, images through the API.

``offline_stack/demo.py`` is the command that runs them (``make demo``); ``demo_report.py`` writes what they
found. Tests and ``make local-invoke``'s services reuse single steps (``write_demo_data``, ``QUICK_HYPERPARAMETERS``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from launchers.upload_weights import upload_weights

from breed_classifier.cli import HYPERPARAMETER_NAMES, add_hyperparameter_arguments
from breed_classifier.labels import breed_name
from dog_breeds.start_training import DEFAULT_ARCHITECTURE, caches_features, pretrained_weights_file
from offline_stack.api_client import post_image
from offline_stack.aws_rules.step_functions import HISTORY_EVENT_LIMIT
from offline_stack.demo_report import write_report
from offline_stack.sam_template import PROJECT_ROOT
from offline_stack.stack import OfflineStack
from offline_stack.synthetic_images import CLASS_FOLDERS, class_image, encoded_image, write_image_folder

PHOTOS = PROJECT_ROOT / "tests" / "data" / "photos"
# Real labelled dog photos beside the checkout (Oxford-IIIT Pet's dogs, CC BY-SA 4.0, with their licence note);
# SHARED_PHOTOS names another folder that holds oxford-pets-dogs/. Not part of the repository.
OXFORD_PHOTOS = Path(os.environ.get("SHARED_PHOTOS", PROJECT_ROOT.parent / "shared" / "photos")) / "oxford-pets-dogs"


# Transfer learning as the original course project did it, with real ImageNet weights that work offline: a
# frozen pretrained EfficientNet-Lite0 (packaged weights), only the head trained. About 40 s on 2 CPU cores.
# DEMO_HYPERPARAMETERS (JSON) overrides them, e.g. for real dog photos.
DEMO_HYPERPARAMETERS = {
    "architecture": "efficientnet_lite0",
    "pretrained": True,
    "freeze-backbone": True,
    # the generated shapes are no dogs: the ImageNet gate would answer "not a dog" for all (on with DATA_DIR)
    "dog-gate": False,
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
    trials: list = field(default_factory=list)  # the tuning step's jobs (Trial), extraction first
    starter_on_photos: dict | None = None  # the starter model on OXFORD_PHOTOS (make evaluate's figures), if there


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
        say("[1/8] making a small generated data set (4 breeds, 64 x 64 images)")
        data_dir = write_image_folder(
            stack.work_dir / "data", {"train": 30, "valid": 10, "test": 10}, classes=len(CLASS_FOLDERS)
        )
        samples = sample_images(len(CLASS_FOLDERS))
    else:
        say(f"[1/8] using the data set in {data_dir}")
        samples = dataset_samples(data_dir)
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    for path in files:
        stack.s3.upload_file(str(path), stack.bucket, "data/" + path.relative_to(data_dir).as_posix())
    say(f"      uploaded {len(files)} files to s3://{stack.bucket}/data/")
    return samples


def write_imagenet_weights(stack: OfflineStack, hyperparameters: dict, say=print) -> None:
    """What ``make upload-weights`` does: training jobs run isolated, so a pretrained backbone's ImageNet weights
    come as the job's ``pretrained`` channel, read from the bucket's pretrained/."""
    if pretrained_weights_file(hyperparameters) is None:
        return
    uri, _ = upload_weights(stack.s3, stack.bucket, hyperparameters.get("architecture", DEFAULT_ARCHITECTURE))
    say(f"      ImageNet weights for the training job's 'pretrained' channel: {uri}")


def run_pipeline(stack: OfflineStack, hyperparameters: dict, say=print) -> tuple[TrainedModel, dict, dict, str]:
    """The pipeline itself (statemachine/pipeline.asl.json) in moto's Step Functions, its states as they happen."""
    say("[2/8] the pipeline: train (2 processes as 2 hosts) -> register -> gate -> deploy -> scale")
    execution = stack.pipeline.run({"training": {"hyperparameters": hyperparameters, "instance_count": 2}}, say=say)
    output = execution.output or {}
    if execution.status != "SUCCEEDED":
        raise RuntimeError(f"the pipeline ended {execution.status}: {execution.error}: {execution.cause}")
    say(f"      execution history: {len(execution.history)} events (AWS fails one at {HISTORY_EVENT_LIMIT:,})")
    job_name = output["started"]["training_job_name"]
    job = stack.sagemaker.describe_training_job(TrainingJobName=job_name)
    say(f"[3/8] {output['candidate']['reason']}")
    say(f"      registered as {output['candidate']['model_package_arn']}")
    deployment, scaling = output["deployment"], output["autoscaling"]
    say(f"[4/8] endpoint {deployment['endpoint_name']} {deployment['action']} ({deployment['endpoint_config_name']})")
    say(f"      auto-scaling on {scaling['resource_id']} ({scaling['policy_name']})")
    hosts = min(job["ResourceConfig"]["InstanceCount"], stack.executor.max_hosts)
    model = TrainedModel(job_name, hosts, job["ModelArtifacts"]["S3ModelArtifacts"], stack.executor.work_dir / job_name)
    return model, deployment, scaling, output["candidate"]["reason"]


TUNING_LEARNING_RATES = (0.001, 0.003, 0.01, 0.03)


@dataclass
class Trial:
    job_name: str
    learning_rate: float | None  # None: the extraction job
    feature_cache: str  # what the start-training function found: "hit <folder>", "miss <folder>", "extracting ..."
    job_said: str  # the job's own "feature cache ..." line
    valid_loss: float | None = None
    valid_accuracy: float | None = None


def tune(stack: OfflineStack, hyperparameters: dict, say=print, timeout_seconds: float = 900) -> list[Trial]:
    """A small tuning run as a tuner would make it: the frozen backbone's features extracted once into the feature
    cache (an ``extract_features`` job), then one trial per learning rate, each given the cached features as its
    ``features`` channel instead of running the backbone. Every trial's hit or miss is printed from its own log."""
    say(f"      tuning: {len(TUNING_LEARNING_RATES)} learning rates on the frozen backbone's cached features")
    if not caches_features(hyperparameters):
        say("      (skipped: the backbone is fine-tuned or the feature cache is off, so there is nothing to cache)")
        return []
    extraction = stack.invoke(
        "StartTrainingFunction", {"hyperparameters": hyperparameters, "extract_features": True, "instance_count": 1}
    )
    trials = [
        _finished(stack, Trial(extraction["training_job_name"], None, extraction["feature_cache"], ""), timeout_seconds)
    ]
    started = [
        (
            rate,
            stack.invoke(
                "StartTrainingFunction",
                {"hyperparameters": {**hyperparameters, "learning-rate": rate}, "instance_count": 1},
            ),
        )
        for rate in TUNING_LEARNING_RATES
    ]
    trials += [
        _finished(stack, Trial(a["training_job_name"], rate, a["feature_cache"], ""), timeout_seconds)
        for rate, a in started
    ]
    for trial in trials:
        what = "extract features" if trial.learning_rate is None else f"learning rate {trial.learning_rate:g}"
        result = (
            f", valid loss {trial.valid_loss:.3f} accuracy {trial.valid_accuracy:.2f}"
            if trial.valid_loss is not None and trial.valid_accuracy is not None
            else ""
        )
        say(
            f"      {what}: start-training found {trial.feature_cache.split(' ')[0]}; "
            f"the job said '{trial.job_said}'{result}"
        )
    return trials


def _finished(stack: OfflineStack, trial: Trial, timeout_seconds: float) -> Trial:
    deadline = time.monotonic() + timeout_seconds
    while True:
        job = stack.sagemaker.describe_training_job(TrainingJobName=trial.job_name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"tuning job {trial.job_name} is still {job['TrainingJobStatus']}")
        time.sleep(0.5)
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"tuning job {trial.job_name} {job['TrainingJobStatus']}: {job.get('FailureReason')}")
    log = stack.executor.work_dir / trial.job_name / "algo-1" / "training.log"
    said = [line.strip() for line in log.read_text(errors="replace").splitlines() if "feature cache" in line]
    trial.job_said = said[0].split(":")[0] if said else "no feature cache line"
    metrics = {item["MetricName"]: item["Value"] for item in job.get("FinalMetricDataList", [])}
    trial.valid_loss, trial.valid_accuracy = metrics.get("valid:loss"), metrics.get("valid:accuracy")
    return trial


def deploy_starter_model(stack: OfflineStack, say=print) -> dict:
    """Build the starter model (starter_model.py), register it as an Approved version (``make register-model``: a
    person's approval, as it is not trained here), deploy it to the endpoint blue/green."""
    from starter_model import build_starter_artifact, write_model_tarball

    build_starter_artifact(stack.work_dir / "starter-model" / "model")
    tarball = stack.work_dir / "starter-model" / "model.tar.gz"
    write_model_tarball(stack.work_dir / "starter-model" / "model", tarball)
    package = stack.register_model(tarball.read_bytes(), "the starter model: ImageNet's dog classes, no training")
    deployment = stack.invoke("DeployEndpointFunction", {"model_package_arn": package})
    stack.settle_endpoints()
    say(f"      endpoint {deployment['endpoint_name']} {deployment['action']} to the starter model, blue/green")
    return deployment


def starter_on_real_photos(tarball: Path, photos: Path = OXFORD_PHOTOS, say=print) -> dict | None:
    """The starter model measured on real labelled photos through its own serving code (``make evaluate``'s path):
    top-1 and top-5 on the photos of the breeds it knows, calibration, dogs answered "not a dog"; None without them."""
    from ops.evaluate_model import evaluate

    if not photos.is_dir():
        say(f"      (no real photos at {photos}: set SHARED_PHOTOS to measure the starter model on them)")
        return None
    result = evaluate(str(tarball), photos)
    figures = {
        "photos_dir": str(photos),
        "photos": result.photos,
        "known": result.known,
        "top1": result.top1,
        "top5": result.top5,
        "ece": result.ece,
        "dogs_answered_not_a_dog": result.dogs_answered_not_a_dog,
    }
    say(
        f"      the starter model on {result.known} real photos of breeds it knows ({photos.name}): "
        f"top-1 {result.top1:.1%}, top-5 {result.top5:.1%}"
    )
    return figures


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
    write_imagenet_weights(stack, hyperparameters, say)
    model, deployment, scaling, gate = run_pipeline(stack, hyperparameters, say)
    say("[5/8] tuning, as a tuner runs it: the frozen backbone's features extracted once, then the trials")
    trials = tune(stack, hyperparameters, say)

    say("[6/8] POST /predictions through the local API: the trained model, on held-out images")
    api = stack.open_api()
    result = DemoResult(model.training_job_name, model.hosts, model.model_artifacts, deployment["action"], scaling)
    result.gate, result.generated_data = gate, data_dir is None
    result.trials = trials
    for label, image, content_type, expected in samples:
        status, answer = post_image(api.url, image, content_type, sign=api.sign)
        result.predictions.append(Prediction(label, expected, status, answer))
    say("[7/8] the starter model (ImageNet's dog breeds, real weights) on the same endpoint, then real photos")
    deploy_starter_model(stack, say)
    result.starter_on_photos = starter_on_real_photos(stack.work_dir / "starter-model" / "model.tar.gz", say=say)
    for label, image, content_type, expected in photo_samples():
        status, answer = post_image(api.url, image, content_type, sign=api.sign)
        result.predictions.append(Prediction(label, expected, status, answer))
    result.seconds = time.monotonic() - started
    say("[8/8] report")
    write_report(result, model.job_dir, stack.work_dir)
    return result


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
