"""Registers target-tracking auto-scaling on the endpoint variant (invocations per instance per minute)."""

from aws_lambda_powertools import Logger

from dog_breeds.adapters.application_autoscaling import VariantScaling
from dog_breeds.adapters.clients import aws_client
from dog_breeds.register_autoscaling import read_scaling_event, register_autoscaling
from dog_breeds.settings import CONTROL_PLANE_TIMEOUTS, ControlPlaneSettings, ScalingDefaults

settings, defaults = ControlPlaneSettings.from_environment(), ScalingDefaults.from_environment()
scaling = VariantScaling(aws_client("application-autoscaling", CONTROL_PLANE_TIMEOUTS))
logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    request = read_scaling_event(event, defaults)
    result = register_autoscaling(scaling, settings.serving_endpoint_name, request, settings.endpoint_kind)
    logger.info("auto-scaling registered", extra=result)
    return result
