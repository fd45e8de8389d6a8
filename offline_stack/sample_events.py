"""Write the sample events in events/: ``python -m offline_stack.sample_events``.

API Gateway HTTP API (payload format 2.0) events for ``PredictFunction``, small enough to read, and
direct-invocation events for the control-plane functions. They name the offline stack's bucket
(``OFFLINE_BUCKET``); against AWS, put your stack's bucket in their S3 URIs. The same files drive
``sam local invoke -e`` and the tests (see tests/event_expectations.py).
"""

from __future__ import annotations

import base64
import json
import random

from offline_stack.http_api_events import http_api_event
from offline_stack.sam_template import PROJECT_ROOT, SamTemplate
from offline_stack.synthetic_images import class_image, encoded_image

EVENTS_DIR = PROJECT_ROOT / "events"
OFFLINE_BUCKET = SamTemplate.load().physical_id("ArtifactsBucket")
# A training job the control-plane events refer to (the tests create it first).
SAMPLE_TRAINING_JOB = "dog-breeds-2026-11-25-12-00-00-a1b2"
# The Approved model package versions the deploy events name (the tests register them first: create_sample_packages)
SAMPLE_PACKAGE_GROUP = SamTemplate.load().parameters["EndpointName"]
SAMPLE_PACKAGES = [
    f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{SAMPLE_PACKAGE_GROUP}/{version}" for version in (1, 2)
]
SAMPLE_SOURCE = f"s3://{OFFLINE_BUCKET}/code/training_jobs-0f1e2d3c4b5a6978/sourcedir.tar.gz"


def sample_api_event(
    body: bytes,
    content_type: str,
    query: dict[str, str] | None = None,
    declared_length: int | None = None,
    base64_encoded: bool = True,
) -> dict:
    """A ``POST /predictions`` event as API Gateway would deliver a curl request for this body."""
    domain = "abc123.execute-api.us-east-1.amazonaws.com"
    headers = {
        "accept": "application/json",
        "content-length": str(len(body) if declared_length is None else declared_length),
        "content-type": content_type,
        "host": domain,
        "user-agent": "curl/8.5.0",
    }
    return http_api_event(
        body,
        headers,
        query or {},
        base64_encoded=base64_encoded,
        request_id="sample-request-id",
        source_ip="203.0.113.10",
        epoch_ms=1795608000000,
        domain=domain,
        api_id="abc123",
    )


# The generated class each image event shows (offline_stack.synthetic_images.CLASS_FOLDERS): what a model trained on
# the demo's data should answer first.
SAMPLE_IMAGE_CLASSES = {"predict-jpeg.json": 0, "predict-png.json": 2, "predict-json-base64.json": 0}


def sample_events() -> dict[str, dict]:
    rng = random.Random(3)
    jpeg = encoded_image(class_image(SAMPLE_IMAGE_CLASSES["predict-jpeg.json"], rng, 48), "JPEG")
    png = encoded_image(class_image(SAMPLE_IMAGE_CLASSES["predict-png.json"], rng, 32), "PNG")
    json_image = json.dumps({"image": base64.b64encode(jpeg).decode()}).encode()
    return {
        "predict-jpeg.json": sample_api_event(jpeg, "image/jpeg", {"top_k": "3"}),
        "predict-png.json": sample_api_event(png, "image/png"),
        "predict-json-base64.json": sample_api_event(json_image, "application/json", base64_encoded=False),
        "predict-url-disabled.json": sample_api_event(
            b'{"url": "https://images.example.com/labrador.jpg"}', "application/json", base64_encoded=False
        ),
        "predict-unsupported-media-type.json": sample_api_event(b"GIF89a\x01\x00\x01\x00", "image/gif"),
        "predict-malformed-json.json": sample_api_event(b'{"image": ', "application/json", base64_encoded=False),
        "predict-bad-top-k.json": sample_api_event(jpeg, "image/jpeg", {"top_k": "50"}),
        "predict-oversized.json": sample_api_event(jpeg[:64], "image/jpeg", declared_length=10 * 1024 * 1024),
        "predict-not-an-image.json": sample_api_event(b"this is text, not a JPEG", "image/jpeg"),
    }


def control_plane_events() -> dict[str, dict]:
    return {
        # No source_s3_uri: the function stores and runs the training code deployed with it.
        "start-training.json": {"hyperparameters": {"epochs": 5, "learning-rate": 0.01}},
        "start-training-spot.json": {
            "use_spot": True,
            "instance_type": "ml.m5.xlarge",
            "instance_count": 2,
            "source_s3_uri": SAMPLE_SOURCE,
        },
        "start-training-bad.json": {"hyperparameters": {"lr": 0.1}, "instance_count": 0, "colour": "blue"},
        "deploy-endpoint-approved.json": {"model_package_arn": SAMPLE_PACKAGES[0]},
        "deploy-endpoint-another-approved-on-c5.json": {
            "model_package_arn": SAMPLE_PACKAGES[1],
            "instance_type": "ml.c5.large",
        },
        "deploy-endpoint-bad.json": {
            "training_job_name": SAMPLE_TRAINING_JOB,
            "model_data_url": "s3://elsewhere/m.tar.gz",
        },
        "register-autoscaling.json": {"min_capacity": 1, "max_capacity": 3},
        "register-autoscaling-bad.json": {"min_capacity": 4, "max_capacity": 2},
    }


def create_sample_training_job(sagemaker, s3) -> None:
    """The Completed training job the deploy events name (moto completes a job at once), and an object where its
    model.tar.gz would be (the release gate digests it)."""
    sagemaker.create_training_job(
        TrainingJobName=SAMPLE_TRAINING_JOB,
        AlgorithmSpecification={
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-cpu-py312",
            "TrainingInputMode": "File",
        },
        RoleArn=SamTemplate.load().arn("SageMakerExecutionRole"),
        OutputDataConfig={"S3OutputPath": f"s3://{OFFLINE_BUCKET}/training-output"},
        ResourceConfig={"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    job = sagemaker.describe_training_job(TrainingJobName=SAMPLE_TRAINING_JOB)
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, _, key = artifact.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=b"the sample job's model.tar.gz (a placeholder: nothing loads it)")


def create_sample_packages(sagemaker, s3) -> None:
    """The Approved versions the deploy events name: two placeholder models at their content addresses, registered as
    ``make register-model`` registers an artifact (nothing loads them: moto runs no container)."""
    from ops.register_model import register_approved

    for number, arn in enumerate(SAMPLE_PACKAGES, start=1):
        body = f"sample model {number} (a placeholder: nothing loads it)".encode()
        registered = register_approved(
            sagemaker, s3, OFFLINE_BUCKET, SAMPLE_PACKAGE_GROUP, body, "us-east-1", f"sample model {number}"
        )
        assert registered == arn, (registered, arn)  # the events name them by these ARNs


def create_event_inputs(s3) -> None:
    """What the start-training events' jobs read besides their data set: the ImageNet weights their hyperparameters
    start from (what ``make upload-weights`` puts there) and the code an event names by its S3 URI (stored by an
    earlier job). CreateTrainingJob refuses a channel with nothing under it, as SageMaker does. Placeholders: no
    container runs for these events."""
    from dog_breeds.adapters.s3_objects import put_once
    from dog_breeds.start_training import pretrained_weights_file

    for event in sorted(EVENTS_DIR.glob("start-training*.json")):
        body = json.loads(event.read_text())
        weights = pretrained_weights_file(body.get("hyperparameters") or {})
        if weights:
            # written once, as the bucket policy requires under pretrained/ and code/ (an existing object stays)
            put_once(
                s3, OFFLINE_BUCKET, f"pretrained/{weights}", b"weights (a placeholder)", "application/octet-stream"
            )
        uri = body.get("source_s3_uri", "")
        if uri.startswith(f"s3://{OFFLINE_BUCKET}/"):
            put_once(s3, OFFLINE_BUCKET, uri.removeprefix(f"s3://{OFFLINE_BUCKET}/"), b"code", "application/gzip")


def main() -> None:
    for name, event in {**sample_events(), **control_plane_events()}.items():
        (EVENTS_DIR / name).write_text(json.dumps(event, indent=2) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
