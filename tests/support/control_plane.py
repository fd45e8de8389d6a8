"""The world the control-plane events assume, built in the control plane (moto on loopback)."""

from __future__ import annotations

from local.sam_template import SamTemplate
from local.sample_events import OFFLINE_BUCKET, SAMPLE_TRAINING_JOB

TEMPLATE = SamTemplate.load()
EXECUTION_ROLE_ARN = TEMPLATE.arn("SageMakerExecutionRole")


def seed_control_plane(control_plane) -> None:
    """The artifacts bucket, and a Completed training job named as in the deploy events."""
    control_plane.client("s3").create_bucket(Bucket=OFFLINE_BUCKET)
    control_plane.client("sagemaker").create_training_job(
        TrainingJobName=SAMPLE_TRAINING_JOB,
        AlgorithmSpecification={
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-cpu-py312",
            "TrainingInputMode": "File",
        },
        RoleArn=EXECUTION_ROLE_ARN,
        OutputDataConfig={"S3OutputPath": f"s3://{OFFLINE_BUCKET}/training-output"},
        ResourceConfig={"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
