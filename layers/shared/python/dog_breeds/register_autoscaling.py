"""Target-tracking auto-scaling for the endpoint's variant.

The metric, ``SageMakerVariantInvocationsPerInstance``, is the number of invocations each instance
receives **per minute** (CloudWatch's Sum over one minute divided by the instance count). A target of
15 therefore means "add instances when each one serves more than about 15 requests a minute".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dog_breeds.control_events import from_event, positive_number, read_event, whole_number
from dog_breeds.deploy_endpoint import variant_resource_id
from dog_breeds.errors import InvalidEventError
from dog_breeds.ports import ScalableTargets
from dog_breeds.settings import ScalingDefaults

METRIC = "SageMakerVariantInvocationsPerInstance"
SERVERLESS_SCALES_ITSELF = "a serverless endpoint scales itself, from zero to its MaxConcurrency"


@dataclass(frozen=True)
class ScalingRequest:
    """The scaling function's event, with the scaling defaults for what it leaves out."""

    min_capacity: int = from_event(whole_number(1, 100))
    max_capacity: int = from_event(whole_number(1, 100))
    target_invocations_per_instance_per_minute: float = from_event(positive_number)
    scale_in_cooldown_seconds: int = from_event(whole_number(0, 3600))
    scale_out_cooldown_seconds: int = from_event(whole_number(0, 3600))


def read_scaling_event(event: Any, defaults: ScalingDefaults) -> ScalingRequest:
    # endpoint_name is what the deploy step hands on in the pipeline: accepted and ignored.
    request = read_event(ScalingRequest, event or {}, defaults, ignored=("endpoint_name",))
    if request.min_capacity > request.max_capacity:
        raise InvalidEventError(
            f"min_capacity ({request.min_capacity}) must not exceed max_capacity ({request.max_capacity})"
        )
    target = float(request.target_invocations_per_instance_per_minute)
    return replace(request, target_invocations_per_instance_per_minute=target)


def register_autoscaling(
    scaling: ScalableTargets, endpoint_name: str, request: ScalingRequest, endpoint_kind: str = "instances"
) -> dict:
    """Register the variant and (re)write its policy; running it twice leaves the same state.

    A serverless endpoint has no instances to scale (SageMaker scales its concurrency up to MaxConcurrency and
    down to zero by itself): nothing is registered, and the answer says so.
    """
    resource_id = variant_resource_id(endpoint_name)
    if endpoint_kind == "serverless":
        return {
            "resource_id": resource_id,
            "registered": False,
            "policy_name": None,
            "reason": SERVERLESS_SCALES_ITSELF,
        }
    scaling.register_target(resource_id, request.min_capacity, request.max_capacity)
    policy_name = f"{endpoint_name}-invocations-per-instance"
    policy_arn = scaling.put_target_tracking_policy(
        resource_id,
        policy_name,
        {
            "TargetValue": request.target_invocations_per_instance_per_minute,
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleInCooldown": request.scale_in_cooldown_seconds,
            "ScaleOutCooldown": request.scale_out_cooldown_seconds,
        },
    )
    return {
        "resource_id": resource_id,
        "registered": True,
        "policy_name": policy_name,
        "policy_arn": policy_arn,
        "min_capacity": request.min_capacity,
        "max_capacity": request.max_capacity,
    }
