"""Deploy a trained model to the real-time endpoint: create it, or update it blue/green.

Model and endpoint-config names are derived from what they contain (model data, image, instance
type and count), so deploying the same input twice creates nothing and changes nothing. An existing
endpoint is moved with ``UpdateEndpoint``: SageMaker starts the new fleet, shifts traffic once it is
InService and only then retires the old one, so the old model serves until the new one can.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from dog_breeds.aws_names import INSTANCE_TYPE, TRAINING_JOB_NAME, tags
from dog_breeds.container_images import INFERENCE_IMAGE, image_uri
from dog_breeds.control_events import deployment_specific, from_event, read_event, text_matching, whole_number
from dog_breeds.errors import EndpointBusyError, InvalidEventError, TrainingNotCompleteError
from dog_breeds.ports import EndpointDeployments, TrainingJobs
from dog_breeds.settings import ControlPlaneSettings, EndpointDefaults

VARIANT_NAME = "AllTraffic"
INFERENCE_PROGRAM = "inference.py"
TAGS = tags()
DATA_CAPTURE_PREFIX = "data-capture"


@dataclass(frozen=True, kw_only=True)
class DeployRequest:
    """The deploy function's event, with the endpoint defaults for what it leaves out."""

    training_job_name: str | None = from_event(text_matching(TRAINING_JOB_NAME, "a SageMaker training job name"), None)
    model_data_url: str | None = from_event(deployment_specific, None)  # a model.tar.gz in the project's bucket
    instance_type: str = from_event(text_matching(INSTANCE_TYPE, "a SageMaker instance type such as ml.m5.large"))
    instance_count: int = from_event(whole_number(1, 10))
    inference_runtime: str
    data_capture_percent: int
    canary_percent: int
    bake_seconds: int
    rollback_alarms: tuple[str, ...]


def read_deploy_event(event: Any, defaults: EndpointDefaults, bucket: str) -> DeployRequest:
    model_data = re.compile(rf"s3://{re.escape(bucket)}/[A-Za-z0-9!_.*'()/-]+\.tar\.gz")
    in_bucket = text_matching(model_data, f"an s3://{bucket}/... model.tar.gz URI")
    request = read_event(DeployRequest, event, defaults, checks={"model_data_url": in_bucket})
    if (request.training_job_name is None) == (request.model_data_url is None):
        raise InvalidEventError("give exactly one of training_job_name or model_data_url")
    return request


def deploy_endpoint(sagemaker: EndpointDeployments, request: DeployRequest, settings: ControlPlaneSettings) -> dict:
    """Create or update the endpoint so that it serves ``request``'s model. Idempotent."""
    if request.model_data_url is not None:
        model_data_url = request.model_data_url
    elif request.training_job_name is not None:
        model_data_url = _completed_job_artifact(sagemaker, request.training_job_name)
    else:
        raise InvalidEventError("give exactly one of training_job_name or model_data_url")
    image = image_uri(INFERENCE_IMAGE, settings.region)
    capture = data_capture_config(settings.bucket, request.data_capture_percent)
    environment = model_environment(request)
    digest = hashlib.sha256(
        "|".join(
            [model_data_url, image, request.instance_type, str(request.instance_count), repr(capture)]
            + [f"{key}={value}" for key, value in sorted(environment.items())]
        ).encode()
    ).hexdigest()[:11]
    name = f"{settings.endpoint_name}-{digest}"
    if not sagemaker.model_exists(name):
        sagemaker.create_model(
            {
                "ModelName": name,
                "ExecutionRoleArn": settings.execution_role_arn,
                "PrimaryContainer": {
                    "Image": image,
                    "ModelDataUrl": model_data_url,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": INFERENCE_PROGRAM,
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                        "SAGEMAKER_REGION": settings.region,
                        **environment,
                    },
                },
                "Tags": TAGS,
            }
        )
    if not sagemaker.endpoint_config_exists(name):
        sagemaker.create_endpoint_config(
            {
                "EndpointConfigName": name,
                "ProductionVariants": [
                    {
                        "VariantName": VARIANT_NAME,
                        "ModelName": name,
                        "InstanceType": request.instance_type,
                        "InitialInstanceCount": request.instance_count,
                        "InitialVariantWeight": 1.0,
                    }
                ],
                **({"DataCaptureConfig": capture} if capture else {}),
                "Tags": TAGS,
            }
        )
    endpoint = sagemaker.describe_endpoint(settings.endpoint_name)
    if endpoint is None:
        sagemaker.create_endpoint(settings.endpoint_name, name, TAGS)
        action = "created"
    elif endpoint["EndpointConfigName"] == name and endpoint["EndpointStatus"] != "Failed":
        action = "unchanged"
    elif endpoint["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"):
        raise EndpointBusyError(
            f"endpoint {settings.endpoint_name} is {endpoint['EndpointStatus']}; deploy again when it is InService"
        )
    else:
        sagemaker.update_endpoint(settings.endpoint_name, name, deployment_config(request))
        action = "updated"
    return {
        "endpoint_name": settings.endpoint_name,
        "endpoint_config_name": name,
        "model_name": name,
        "model_data_url": model_data_url,
        "action": action,
    }


def model_environment(request: DeployRequest) -> dict[str, str]:
    """How the container serves: the runtime, and one intra-op thread per model-server worker.

    TorchServe starts one worker per vCPU; each worker's torch would otherwise take every core, so workers
    would fight over them. One thread each measured 1.15x the images per second of one two-thread worker on
    2 vCPUs (``make bench``, throughput rows), and no oversubscription on larger instances.
    """
    return {"INFERENCE_RUNTIME": request.inference_runtime, "OMP_NUM_THREADS": "1"}


def deployment_config(request: DeployRequest) -> dict | None:
    """Deployment guardrails for an update: a canary, a bake, and rollback when a named alarm fires.

    The canary is a share of the new fleet's capacity; it takes traffic for ``bake_seconds``, then the rest
    moves and bakes as long again. Any alarm in ALARM meanwhile rolls everything back to the old fleet.
    """
    if not request.rollback_alarms:
        return None
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": request.canary_percent},
                "WaitIntervalInSeconds": request.bake_seconds,
            },
            "TerminationWaitInSeconds": 0,
            # SageMaker accepts 600-14400 s for the whole update: two bakes, with room for the fleet to start
            "MaximumExecutionTimeoutInSeconds": min(14400, max(600, 2 * request.bake_seconds + 1800)),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in request.rollback_alarms]},
    }


def data_capture_config(bucket: str, percent: int) -> dict | None:
    """Capture ``percent`` of requests and predictions under data-capture/ (the bucket's encryption applies)."""
    if not percent:
        return None
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": percent,
        "DestinationS3Uri": f"s3://{bucket}/{DATA_CAPTURE_PREFIX}",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }


def _completed_job_artifact(sagemaker: TrainingJobs, job_name: str) -> str:
    job = sagemaker.describe_training_job(job_name)
    if job is None:
        raise InvalidEventError(f"training job {job_name} does not exist")
    status = job["TrainingJobStatus"]
    if status != "Completed":
        reason = f": {job['FailureReason']}" if job.get("FailureReason") else ""
        raise TrainingNotCompleteError(
            f"training job {job_name} is {status}{reason}; only a Completed job's model can be deployed"
        )
    return job["ModelArtifacts"]["S3ModelArtifacts"]
