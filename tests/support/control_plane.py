"""The world the control-plane events assume, built in the control plane (moto on loopback)."""

from __future__ import annotations

import json

from breed_classifier.model import PRETRAINED_WEIGHTS
from offline_stack.sam_template import SamTemplate
from offline_stack.sample_events import EVENTS_DIR, OFFLINE_BUCKET, create_sample_training_job

EXECUTION_ROLE_ARN = SamTemplate.load().arn("SageMakerExecutionRole")


def seed_control_plane(control_plane) -> None:
    """The artifacts bucket with a data set under ``data/`` (CreateTrainingJob refuses a channel with nothing under
    its prefix), and a Completed training job named as in the deploy events."""
    s3 = control_plane.client("s3")
    s3.create_bucket(Bucket=OFFLINE_BUCKET)
    s3.put_object(Bucket=OFFLINE_BUCKET, Key="data/train/001.Affenpinscher/1.jpg", Body=b"a photo")
    for name in PRETRAINED_WEIGHTS.values():  # what make upload-weights puts there (placeholders: no job runs)
        s3.put_object(Bucket=OFFLINE_BUCKET, Key=f"pretrained/{name}", Body=b"weights")
    for event in EVENTS_DIR.glob("*.json"):  # the code an event names by its S3 URI (stored by an earlier job)
        uri = json.loads(event.read_text()).get("source_s3_uri", "")
        if uri.startswith(f"s3://{OFFLINE_BUCKET}/"):
            s3.put_object(Bucket=OFFLINE_BUCKET, Key=uri.removeprefix(f"s3://{OFFLINE_BUCKET}/"), Body=b"code")
    create_sample_training_job(control_plane.client("sagemaker"), s3)
