"""Deploys a trained model to the endpoint: creates it, or updates it blue/green (see docs/pipeline.md, "Releases").

``{"retire_endpoint": name}`` is the last step of an endpoint-kind switch: it deletes the other kind's endpoint
once this kind's serves (``dog_breeds.deploy_endpoint.retire_endpoint``).
"""

from aws_lambda_powertools import Logger

from dog_breeds.adapters.application_autoscaling import VariantScaling
from dog_breeds.adapters.clients import aws_client
from dog_breeds.adapters.sagemaker_control import SageMakerControl
from dog_breeds.deploy_endpoint import deploy_endpoint, read_deploy_event, read_retire_event, retire_endpoint
from dog_breeds.settings import CONTROL_PLANE_TIMEOUTS, ControlPlaneSettings, EndpointDefaults

settings, defaults = ControlPlaneSettings.from_environment(), EndpointDefaults.from_environment()
sagemaker = SageMakerControl(aws_client("sagemaker", CONTROL_PLANE_TIMEOUTS))
# An instance-type change must first take the variant out of auto-scaling (dog_breeds.deploy_endpoint)
scaling = VariantScaling(aws_client("application-autoscaling", CONTROL_PLANE_TIMEOUTS))
logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    retired = read_retire_event(event)
    if retired is not None:
        result = retire_endpoint(sagemaker, scaling, retired, settings)
        logger.info("endpoint retired", extra=result)
        return result
    result = deploy_endpoint(sagemaker, scaling, read_deploy_event(event, defaults, settings.bucket), settings)
    logger.info("endpoint deployment", extra=result)
    return result
