"""Deploys an Approved model package version: creates the endpoint, or updates it blue/green (docs/pipeline.md).

``{"retire_endpoint": name}`` is the last step of an endpoint-kind switch: it deletes the other kind's endpoint
once this kind's serves (``dog_breeds.deploy_endpoint.retire_endpoint``).
"""

from aws_lambda_powertools import Logger

from dog_breeds.adapters.application_autoscaling import VariantScaling
from dog_breeds.adapters.clients import aws_client
from dog_breeds.adapters.s3_objects import sha256_of
from dog_breeds.adapters.sagemaker_control import SageMakerControl
from dog_breeds.deploy_endpoint import deploy_endpoint, read_deploy_event, read_retire_event, retire_endpoint
from dog_breeds.settings import CONTROL_PLANE_TIMEOUTS, ControlPlaneSettings, EndpointDefaults

settings, defaults = ControlPlaneSettings.from_environment(), EndpointDefaults.from_environment()
sagemaker = SageMakerControl(aws_client("sagemaker", CONTROL_PLANE_TIMEOUTS))
# An instance-type change must first take the variant out of auto-scaling (dog_breeds.deploy_endpoint)
scaling = VariantScaling(aws_client("application-autoscaling", CONTROL_PLANE_TIMEOUTS))
s3 = aws_client("s3", CONTROL_PLANE_TIMEOUTS)
logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    retired = read_retire_event(event)
    if retired is not None:
        result = retire_endpoint(sagemaker, scaling, retired, settings)
        logger.info("endpoint retired", extra=result)
        return result
    request = read_deploy_event(event, defaults, settings.bucket)
    result = deploy_endpoint(sagemaker, scaling, request, settings, lambda url: sha256_of(s3, url))
    logger.info("endpoint deployment", extra=result)
    return result
