"""The world the control-plane events assume, built in the control plane (moto on loopback)."""

from __future__ import annotations

import json

from dog_breeds.start_training import pretrained_weights_file
from offline_stack.sam_template import SamTemplate
from offline_stack.sample_events import EVENTS_DIR, OFFLINE_BUCKET, create_sample_training_job

EXECUTION_ROLE_ARN = SamTemplate.load().arn("SageMakerExecutionRole")


def seed_control_plane(control_plane) -> None:
    """The artifacts bucket with a data set under ``data/`` (CreateTrainingJob refuses a channel with nothing under
    its prefix), and a Completed training job named as in the deploy events."""
    s3 = control_plane.client("s3")
    s3.create_bucket(Bucket=OFFLINE_BUCKET)
    s3.put_object(Bucket=OFFLINE_BUCKET, Key="data/train/001.Affenpinscher/1.jpg", Body=b"a photo")
    # What the training events' jobs read besides data: the ImageNet weights their hyperparameters start from (what
    # make upload-weights puts there), and code an event names by its S3 URI (stored by an earlier job).
    # Placeholders: no job of these events runs a container; tests that do upload their own.
    for event in EVENTS_DIR.glob("start-training*.json"):
        body = json.loads(event.read_text())
        weights = pretrained_weights_file(body.get("hyperparameters") or {})
        if weights:
            s3.put_object(Bucket=OFFLINE_BUCKET, Key=f"pretrained/{weights}", Body=b"weights")
        uri = body.get("source_s3_uri", "")
        if uri.startswith(f"s3://{OFFLINE_BUCKET}/"):
            s3.put_object(Bucket=OFFLINE_BUCKET, Key=uri.removeprefix(f"s3://{OFFLINE_BUCKET}/"), Body=b"code")
    create_sample_training_job(control_plane.client("sagemaker"), s3)
