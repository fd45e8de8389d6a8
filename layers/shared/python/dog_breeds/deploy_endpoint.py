"""Deploy an approved model to the real-time endpoint: create it, or update it blue/green.

Only the model registry's door: the event names an **Approved** version of the endpoint's package group
(``model_package_arn``); its model must be a content-addressed, write-once key (``models/sha256/<digest>/``,
``dog_breeds.model_store``) whose digest the package records, and the object is read and its SHA-256 checked before
CreateModel. A training job or an artifact URL is refused with what to do instead (the release gate registers a job's
model; ``make register-model`` registers an artifact a person approves), so nothing unjudged or overwritten deploys.

Model and endpoint-config names are derived from what they contain (model data, image, instance
type and count), so deploying the same input twice creates nothing and changes nothing. An existing
endpoint is moved with ``UpdateEndpoint``: SageMaker starts the new fleet, shifts traffic once it is
InService and only then retires the old one, so the old model serves until the new one can.

What SageMaker allows decides the path (SageMaker API reference, DescribeEndpoint ``EndpointStatus``;
developer guide, "Update endpoints that use auto scaling"):

- a **Failed** endpoint accepts only ``DeleteEndpoint``: it is deleted, and the pipeline deploys again
  once it is gone (``action: "deleted-failed"``);
- **UpdateRollbackFailed** (both the update and its rollback failed; a mix of fleets serves) is remedied
  by another ``UpdateEndpoint``, which this is;
- an update that changes the **instance type** of a variant registered with Application Auto Scaling is
  refused, so its scaling policies and target are removed first; the pipeline's next step registers them
  again (``autoscaling_deregistered: true`` says so to a caller outside the pipeline);
- "You can convert a serverless endpoint to real-time, but once you make the update, you cannot roll it back to
  serverless" (developer guide, "Serverless endpoint operations", Update an endpoint). Each kind
  (``EndpointKind``) has an endpoint name of its own, so switching kind creates the new endpoint beside the
  serving one (``replaces`` names it), the prediction function falls back to the old one until the new one is
  InService, and the pipeline then retires the old one (``retire_endpoint``): never a moment with no endpoint
  serving. The one-way in-place conversion is not used: an instance endpoint left under the ``-serverless`` name
  could never become serverless again, so a switch back would need a third name (docs/pipeline.md).

Serverless endpoints exclude network isolation and data capture (developer guide, "Deploy models with Amazon
SageMaker Serverless Inference", Feature exclusions): their model is created without ``EnableNetworkIsolation``
(the container still installs nothing: the artifact carries its code and no requirements.txt), and a
``DataCapturePercent`` above 0 is refused before anything is created.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dog_breeds.aws_names import ENDPOINT_NAME, INSTANCE_TYPE, MODEL_PACKAGE_ARN, tags
from dog_breeds.container_images import INFERENCE_IMAGE, image_uri
from dog_breeds.control_events import from_event, read_event, text_matching, whole_number
from dog_breeds.errors import EndpointBusyError, InvalidEventError, ModelIntegrityError
from dog_breeds.model_store import MODEL_STORE_PREFIX, content_address
from dog_breeds.ports import EndpointDeployments, ScalableTargets
from dog_breeds.settings import ControlPlaneSettings, EndpointDefaults, serverless_refusal
from dog_breeds.volume_encryption import takes_volume_key

VARIANT_NAME = "AllTraffic"
INFERENCE_PROGRAM = "inference.py"
TAGS = tags()
DATA_CAPTURE_PREFIX = "data-capture"
# Where deployed models are: the content-addressed store the endpoint role may read (policies/sagemaker-endpoint.json)
MODEL_PREFIXES = (MODEL_STORE_PREFIX,)
APPROVED = "Approved"
ARTIFACT_SHA256 = "artifact_sha256"  # dog_breeds.release_gate's key on the package (checked equal by a test)
REGISTRY_ONLY = (
    "deploys come from the model registry: give model_package_arn, an Approved version of the endpoint's package "
    "group. A training job's model is registered (and judged) by the release gate: start the pipeline with its "
    'training_job_name, or invoke the release gate with {"training_job_name": ...}; an artifact of your own '
    "(the starter model, a model trained elsewhere) is registered with make register-model MODEL=<model.tar.gz>"
)
BUSY_STATES = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")

# BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: "Valid Range: Minimum value of 600. Maximum value of
# 28800." (SageMaker API reference, BlueGreenUpdatePolicy)
MAXIMUM_EXECUTION_TIMEOUT_SECONDS = (600, 28800)


@dataclass(frozen=True, kw_only=True)
class DeployRequest:
    """The deploy function's event, with the endpoint defaults for what it leaves out."""

    model_package_arn: str = from_event(
        text_matching(
            MODEL_PACKAGE_ARN, "a model package version ARN (arn:aws:sagemaker:...:model-package/<group>/<n>)"
        ),
    )
    instance_type: str = from_event(text_matching(INSTANCE_TYPE, "a SageMaker instance type such as ml.m5.large"))
    instance_count: int = from_event(whole_number(1, 10))
    inference_runtime: str
    data_capture_percent: int
    canary_percent: int
    bake_seconds: int
    rollback_alarms: tuple[str, ...]
    serverless_memory_mb: int
    serverless_max_concurrency: int
    serverless_provisioned_concurrency: int
    role_arn: str  # the endpoint's role (EndpointDefaults), never from the event


def read_deploy_event(event: Any, defaults: EndpointDefaults, bucket: str) -> DeployRequest:
    if isinstance(event, dict) and ({"training_job_name", "model_data_url"} & set(event)):
        raise InvalidEventError(f"training_job_name and model_data_url are not accepted: {REGISTRY_ONLY}")
    if isinstance(event, dict) and "model_package_arn" not in event:
        raise InvalidEventError(f"model_package_arn is missing: {REGISTRY_ONLY}")
    return read_event(DeployRequest, event, defaults)


def read_retire_event(event: Any) -> str | None:
    """The endpoint name of a ``{"retire_endpoint": name}`` event (nothing else in it), or None for a deploy event."""
    if not isinstance(event, dict) or "retire_endpoint" not in event:
        return None
    name = event["retire_endpoint"]
    if set(event) != {"retire_endpoint"} or not isinstance(name, str) or not ENDPOINT_NAME.fullmatch(name):
        raise InvalidEventError('a retire event is {"retire_endpoint": "<endpoint name>"} and nothing else')
    return name


def deploy_endpoint(
    sagemaker: EndpointDeployments,
    scaling: ScalableTargets,
    request: DeployRequest,
    settings: ControlPlaneSettings,
    sha256_of: Callable[[str], str],
) -> dict:
    """Create or update the endpoint so that it serves ``request``'s approved model. Idempotent. ``sha256_of(url)``
    reads the model's bytes (their digest is checked before anything is created)."""
    model_data_url = approved_model(sagemaker, request.model_package_arn, settings, sha256_of)
    serverless = settings.endpoint_kind == "serverless"
    if serverless:
        refusal = serverless_refusal(request)
        if refusal:
            raise InvalidEventError(refusal)
    image = image_uri(INFERENCE_IMAGE, settings.region)
    capture = (
        None
        if serverless
        else data_capture_config(settings.bucket, request.data_capture_percent, settings.artifacts_key_arn)
    )
    environment = model_environment(request, serverless)
    variant = production_variant(request, serverless)
    # the instances' ML storage volumes with the stack's key, where the instance type takes one
    volume_key = (
        {"KmsKeyId": settings.artifacts_key_arn}
        if settings.artifacts_key_arn and not serverless and takes_volume_key(request.instance_type)
        else {}
    )
    digest = hashlib.sha256(
        "|".join(
            [model_data_url, image, *_capacity(variant), repr(capture), request.role_arn, repr(volume_key)]
            + [f"{key}={value}" for key, value in sorted(environment.items())]
        ).encode()
    ).hexdigest()[:11]
    name = f"{settings.endpoint_name}-{digest}"
    endpoint_name = settings.serving_endpoint_name
    if not sagemaker.model_exists(name):
        sagemaker.create_model(
            {
                "ModelName": name,
                "ExecutionRoleArn": request.role_arn,
                # No network from the model container: the artifact carries all its code (no requirements.txt).
                # Serverless endpoints do not support isolation (see above).
                "EnableNetworkIsolation": not serverless,
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
                "ProductionVariants": [{"VariantName": VARIANT_NAME, "ModelName": name, **variant}],
                **({"DataCaptureConfig": capture} if capture else {}),
                **volume_key,
                "Tags": TAGS,
            }
        )
    endpoint = sagemaker.describe_endpoint(endpoint_name)
    deregistered = False
    if endpoint is None:
        sagemaker.create_endpoint(endpoint_name, name, TAGS)
        action = "created"
    elif endpoint["EndpointStatus"] == "Failed":
        sagemaker.delete_endpoint(endpoint_name)
        action = "deleted-failed"
    elif endpoint["EndpointConfigName"] == name:
        action = "unchanged"
    elif endpoint["EndpointStatus"] in BUSY_STATES:
        raise EndpointBusyError(
            f"endpoint {endpoint_name} is {endpoint['EndpointStatus']}; deploy again when it is InService"
        )
    else:
        if not serverless and _serving_instance_type(sagemaker, endpoint) != request.instance_type:
            deregistered = scaling.deregister_target(variant_resource_id(endpoint_name))
        fleet = 1 if serverless else _instance_count(endpoint)
        sagemaker.update_endpoint(endpoint_name, name, deployment_config(request, fleet))
        action = "updated"
    replaced = settings.other_endpoint_name
    return {
        "endpoint_name": endpoint_name,
        "endpoint_kind": settings.endpoint_kind,
        "endpoint_config_name": name,
        "model_name": name,
        "model_package_arn": request.model_package_arn,
        "model_data_url": model_data_url,
        "action": action,
        "autoscaling_deregistered": deregistered,
        # the other kind's endpoint, still serving after a kind switch: retired once this one is InService
        "replaces": replaced if sagemaker.describe_endpoint(replaced) is not None else None,
    }


def retire_endpoint(
    sagemaker: EndpointDeployments, scaling: ScalableTargets, name: str, settings: ControlPlaneSettings
) -> dict:
    """Delete ``name``, the other kind's endpoint, once this kind's endpoint serves: the last step of a switch.

    Only that one name is accepted, and only while the endpoint that replaces it is InService, so a retry or
    a wrong event can never delete the endpoint that answers the API. Its scaling target goes first (a
    deleted endpoint's target would stay registered, pointing at nothing).
    """
    if name != settings.other_endpoint_name:
        raise InvalidEventError(
            f"retire_endpoint must be {settings.other_endpoint_name!r} (the endpoint a kind switch replaces), "
            f"not {name!r}"
        )
    serving = sagemaker.describe_endpoint(settings.serving_endpoint_name)
    status = serving["EndpointStatus"] if serving else "absent"
    if status != "InService":
        raise EndpointBusyError(
            f"endpoint {settings.serving_endpoint_name} is {status}; {name} keeps serving until it is InService"
        )
    if sagemaker.describe_endpoint(name) is None:
        return {"retired": name, "action": "already-gone"}
    deregistered = scaling.deregister_target(variant_resource_id(name))
    sagemaker.delete_endpoint(name)
    return {"retired": name, "action": "deleted", "autoscaling_deregistered": deregistered}


def _capacity(variant: dict[str, Any]) -> list[str]:
    """What the variant's capacity adds to the names (an instance fleet's as it always has)."""
    if "ServerlessConfig" in variant:
        return ["serverless", *(f"{key}={value}" for key, value in sorted(variant["ServerlessConfig"].items()))]
    return [variant["InstanceType"], str(variant["InitialInstanceCount"])]


def production_variant(request: DeployRequest, serverless: bool) -> dict[str, Any]:
    """The variant's capacity: a fleet of instances, or a serverless config (memory and concurrency)."""
    if not serverless:
        return {
            "InstanceType": request.instance_type,
            "InitialInstanceCount": request.instance_count,
            "InitialVariantWeight": 1.0,
        }
    config: dict[str, int] = {
        "MemorySizeInMB": request.serverless_memory_mb,
        "MaxConcurrency": request.serverless_max_concurrency,
    }
    if request.serverless_provisioned_concurrency:
        config["ProvisionedConcurrency"] = request.serverless_provisioned_concurrency
    return {"ServerlessConfig": config, "InitialVariantWeight": 1.0}


def variant_resource_id(endpoint_name: str) -> str:
    """Application Auto Scaling's name for the endpoint's one variant."""
    return f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}"


def _serving_instance_type(sagemaker: EndpointDeployments, endpoint: dict) -> str | None:
    config = sagemaker.describe_endpoint_config(endpoint["EndpointConfigName"]) or {}
    variants = config.get("ProductionVariants") or [{}]
    return variants[0].get("InstanceType")


def _instance_count(endpoint: dict) -> int:
    """The instances serving now: the new fleet starts with as many (``RetainAllVariantProperties``)."""
    variants = endpoint.get("ProductionVariants") or [{}]
    return int(variants[0].get("CurrentInstanceCount") or variants[0].get("DesiredInstanceCount") or 1)


def model_environment(request: DeployRequest, serverless: bool = False) -> dict[str, str]:
    """How the container serves: the runtime, and one intra-op thread per model-server worker.

    TorchServe starts one worker per vCPU; each worker's torch would otherwise take every core, so workers
    would fight over them. One thread each measured 1.15x the images per second of one two-thread worker on
    2 vCPUs (``make bench``, throughput rows), and no oversubscription on larger instances.

    A serverless endpoint runs one model-server worker (``SAGEMAKER_MODEL_SERVER_WORKERS=1``): its concurrency is
    SageMaker's (``MaxConcurrency``), and every further worker would load another copy of the model into the same
    ``MemorySizeInMB``, which the decode budget already fills (``settings.SERVERLESS_MINIMUM_MEMORY_MB``). The
    project's decision from the memory measurement, not an AWS sentence; its torch may use the container's vCPUs.
    """
    if serverless:
        return {"INFERENCE_RUNTIME": request.inference_runtime, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    return {"INFERENCE_RUNTIME": request.inference_runtime, "OMP_NUM_THREADS": "1"}


def deployment_config(request: DeployRequest, instance_count: int) -> dict | None:
    """Deployment guardrails for an update: a canary, a bake, and rollback when a named alarm fires.

    The canary is ``canary_percent`` of the new fleet's ``instance_count`` instances, in whole instances and at
    most half the fleet (SageMaker developer guide, "Use canary traffic shifting": the canary size should be at
    most 50 % of the new fleet's capacity). It takes traffic for ``bake_seconds``, then the rest moves and bakes
    as long again. A fleet of one instance has no canary that small: it moves all at once and bakes, with the
    same alarms. Any alarm in ALARM meanwhile rolls everything back to the old fleet.
    """
    if not request.rollback_alarms:
        return None
    if instance_count >= 2:
        canary = max(1, instance_count * request.canary_percent // 100)
        routing = {
            "Type": "CANARY",
            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": canary},
            "WaitIntervalInSeconds": request.bake_seconds,
        }
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": request.bake_seconds}
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": 0,
            # two bakes, with room for the fleet to start, within what SageMaker accepts
            "MaximumExecutionTimeoutInSeconds": min(
                MAXIMUM_EXECUTION_TIMEOUT_SECONDS[1],
                max(MAXIMUM_EXECUTION_TIMEOUT_SECONDS[0], 2 * request.bake_seconds + 1800),
            ),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in request.rollback_alarms]},
    }


def data_capture_config(bucket: str, percent: int, key_arn: str = "") -> dict | None:
    """Capture ``percent`` of requests and predictions under data-capture/, encrypted with the bucket's key
    ``key_arn``, named in the request rather than left to SageMaker's choice."""
    if not percent:
        return None
    return {
        **({"KmsKeyId": key_arn} if key_arn else {}),
        "EnableCapture": True,
        "InitialSamplingPercentage": percent,
        "DestinationS3Uri": f"s3://{bucket}/{DATA_CAPTURE_PREFIX}",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }


def approved_model(
    sagemaker: EndpointDeployments, package_arn: str, settings: ControlPlaneSettings, sha256_of: Callable[[str], str]
) -> str:
    """The content-addressed model URL of the Approved version ``package_arn``, once its bytes have the digest the
    package and the key record; a clear refusal otherwise."""
    group = settings.endpoint_name
    package = sagemaker.describe_model_package(package_arn)
    if package is None or package.get("ModelPackageGroupName") != group:
        raise InvalidEventError(f"{package_arn} is not a version of the {group} model package group")
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise InvalidEventError(
            f"{package_arn} is {status}; only an Approved version deploys (the release gate approves, or a person: "
            f"aws sagemaker update-model-package --model-package-arn {package_arn} --model-approval-status Approved)"
        )
    url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    named = content_address(url, settings.bucket)
    if named is None:
        raise InvalidEventError(
            f"{package_arn}'s model {url} is not under s3://{settings.bucket}/{MODEL_STORE_PREFIX}<sha256>/: only "
            "content-addressed models deploy (make register-model stores and registers one)"
        )
    recorded = (package.get("CustomerMetadataProperties") or {}).get(ARTIFACT_SHA256)
    if recorded != named:
        raise ModelIntegrityError(f"{package_arn} records sha256 {recorded}, but its model's key names {named}")
    actual = sha256_of(url)
    if actual != named:
        raise ModelIntegrityError(
            f"{url} holds bytes with sha256 {actual}, not {named} as its key and {package_arn} record: the object "
            "was overwritten; not deployed (find out who wrote it, then register the model again)"
        )
    return url
