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

    def _call(self, operation: str, **parameters: Any) -> AwsDocument:
        return call_aws("Application Auto Scaling", self.client, operation, **parameters)
