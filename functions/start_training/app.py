"""Starts a SageMaker training job for the classifier (see README, "The training pipeline")."""

from aws_lambda_powertools import Logger

from dog_breeds.adapters.clients import aws_client
from dog_breeds.adapters.sagemaker_control import SageMakerControl
from dog_breeds.settings import CONTROL_PLANE_TIMEOUTS, ControlPlaneSettings, TrainingDefaults
from dog_breeds.training_job import read_training_event, start_training

settings, defaults = ControlPlaneSettings.from_environment(), TrainingDefaults.from_environment()
sagemaker = SageMakerControl(aws_client("sagemaker", CONTROL_PLANE_TIMEOUTS))
logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    result = start_training(sagemaker, read_training_event(event, defaults, settings.bucket), settings)
    logger.info("training job started", extra=result)
    return result
