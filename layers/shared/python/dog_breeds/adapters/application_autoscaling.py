"""``ports.ScalableTargets``: Application Auto Scaling calls for a SageMaker endpoint variant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dog_breeds.adapters.aws_calls import call_aws
from dog_breeds.ports import AwsDocument

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient

SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


class VariantScaling:
    def __init__(self, client: ApplicationAutoScalingClient) -> None:
        self.client = client

    def register_target(self, resource_id: str, min_capacity: int, max_capacity: int) -> None:
        """Register (or re-register, which updates) the variant as a scalable target."""
        self._call(
            "register_scalable_target",
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceId=resource_id,
            ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=min_capacity,
            MaxCapacity=max_capacity,
        )

    def put_target_tracking_policy(self, resource_id: str, policy_name: str, configuration: AwsDocument) -> str:
        """Create or replace the policy of that name; returns its ARN."""
        answer = self._call(
            "put_scaling_policy",
            PolicyName=policy_name,
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceId=resource_id,
            ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=configuration,
        )
        return answer["PolicyARN"]

    def deregister_target(self, resource_id: str) -> bool:
        """Delete the variant's scaling policies, then deregister it; whether it was registered at all."""
        where = {"ServiceNamespace": SERVICE_NAMESPACE, "ResourceId": resource_id}
        targets = self._call("describe_scalable_targets", ServiceNamespace=SERVICE_NAMESPACE, ResourceIds=[resource_id])
        if not targets.get("ScalableTargets"):
            return False
        for policy in self._call("describe_scaling_policies", **where).get("ScalingPolicies", []):
            self._call(
                "delete_scaling_policy", PolicyName=policy["PolicyName"], ScalableDimension=SCALABLE_DIMENSION, **where
            )
        self._call("deregister_scalable_target", ScalableDimension=SCALABLE_DIMENSION, **where)
        return True

    def _call(self, operation: str, **parameters: Any) -> AwsDocument:
        return call_aws("Application Auto Scaling", self.client, operation, **parameters)
