"""Starts a SageMaker training job for the classifier (see docs/pipeline.md, "The training pipeline")."""

from pathlib import Path

from aws_lambda_powertools import Logger

from dog_breeds.adapters.clients import aws_client
from dog_breeds.adapters.s3_objects import list_objects, sha256_of
from dog_breeds.adapters.sagemaker_control import SageMakerControl
from dog_breeds.settings import CONTROL_PLANE_TIMEOUTS, ControlPlaneSettings, TrainingDefaults
from dog_breeds.start_training import read_training_event, start_training
from dog_breeds.training_code import source_tarball, store_source

settings, defaults = ControlPlaneSettings.from_environment(), TrainingDefaults.from_environment()
sagemaker = SageMakerControl(aws_client("sagemaker", CONTROL_PLANE_TIMEOUTS))
s3 = aws_client("s3", CONTROL_PLANE_TIMEOUTS)
logger = Logger()


def deployed_code() -> str:
    """The training code deployed with this function, stored in the bucket under its content hash."""
    return store_source(s3, settings.bucket, source_tarball(Path(defaults.code_dir)))


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    request = read_training_event(event, defaults, settings.bucket)
    result = start_training(
        sagemaker,
        request,
        settings,
        deployed_code,
        lambda prefix: list_objects(s3, settings.bucket, prefix),
        lambda key: sha256_of(s3, f"s3://{settings.bucket}/{key}"),
    )
    logger.info("training job started", extra=result)
    return result
