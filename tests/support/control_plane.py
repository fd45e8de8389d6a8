"""The world the control-plane events assume, built in the control plane (moto on loopback)."""

from __future__ import annotations

from offline_stack.sam_template import SamTemplate
from offline_stack.sample_events import (
    OFFLINE_BUCKET,
    create_event_inputs,
    create_sample_packages,
    create_sample_training_job,
)
from offline_stack.stack import OFFLINE_OPERATOR_ARN, encrypt_bucket, put_bucket_policy

EXECUTION_ROLE_ARN = SamTemplate.load().arn("SageMakerExecutionRole")
# the stack as its operator deploys it: naming themself a user of the artifacts key
TEMPLATE = SamTemplate.load(overrides={"ArtifactsKeyUserArns": OFFLINE_OPERATOR_ARN})


def seed_control_plane(control_plane) -> None:
    """The artifacts bucket with the template's key and bucket policy, a data set under ``data/``
    (CreateTrainingJob refuses a channel with nothing under its prefix), a Completed training job named as in the
    gate's events, and the Approved versions the deploy events name."""
    s3 = control_plane.client("s3")
    s3.create_bucket(Bucket=OFFLINE_BUCKET)
    encrypt_bucket(control_plane.client("kms"), s3, TEMPLATE)
    put_bucket_policy(s3, TEMPLATE)
    s3.put_object(Bucket=OFFLINE_BUCKET, Key="data/train/001.Affenpinscher/1.jpg", Body=b"a photo")
    create_event_inputs(s3)
    create_sample_training_job(control_plane.client("sagemaker"), s3)
    create_sample_packages(control_plane.client("sagemaker"), s3)
