"""The release gate: registers a trained model, approves or rejects it (docs/pipeline.md, "Releases")."""

from aws_lambda_powertools import Logger

from dog_breeds.adapters.clients import aws_client
from dog_breeds.adapters.s3_objects import S3GoldenSet, store_by_digest
from dog_breeds.adapters.sagemaker_control import SageMakerControl
from dog_breeds.release_gate import read_gate_event, run_gate
from dog_breeds.settings import CONTROL_PLANE_TIMEOUTS, ControlPlaneSettings, GateSettings

settings, gate = ControlPlaneSettings.from_environment(), GateSettings.from_environment()
sagemaker = SageMakerControl(aws_client("sagemaker", CONTROL_PLANE_TIMEOUTS))
s3 = aws_client("s3", CONTROL_PLANE_TIMEOUTS)
golden = S3GoldenSet(s3, settings.bucket) if gate.scoring_role_arn else None  # no scoring role: test split only
logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    request = read_gate_event(event)
    result = run_gate(sagemaker, request, settings, gate, lambda url: store_by_digest(s3, url, settings.bucket), golden)
    logger.info("release gate", extra=result)
    return result
