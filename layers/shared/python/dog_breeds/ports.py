"""The seams between the functions' logic and AWS, as ``typing.Protocol``s: what each use case needs.

The adapters (``dog_breeds/adapters/``) implement them over botocore clients, and mypy (``make lint``)
checks both sides. Unit tests hand the logic fakes (``tests/support/fakes.py``) that can be in the states moto
cannot reach: an endpoint Updating, Failed or RollingBack, a refused call.

Requests and answers stay AWS's own documents (``AwsDocument``): the logic builds the request SageMaker
reads, and a test compares it field by field with the SDK's (``tests/integration/test_sdk_parity.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypedDict

if TYPE_CHECKING:
    from dog_breeds.image_request import ImageUrl

AwsDocument = dict[str, Any]
"""A request or an answer as the AWS API spells it (``TrainingJobName``, ``EndpointStatus``...)."""


class Prediction(TypedDict):
    breed: str
    class_index: int
    probability: float


class EndpointRuntime(Protocol):
    """SageMaker Runtime, as the predict function uses it (``adapters.sagemaker_endpoint``)."""

    def predict(self, endpoint_name: str, image: bytes, content_type: str, top_k: int) -> list[Prediction]:
        """The endpoint's ``top_k`` best predictions for ``image``, best first; project errors otherwise."""
        ...


class ImageDownload(Protocol):
    """Fetches an ``{"url": ...}`` image (``adapters.image_download.download_image``)."""

    def __call__(self, url: ImageUrl, allowed_hosts: frozenset[str], max_bytes: int) -> bytes: ...


class TrainingJobs(Protocol):
    """SageMaker training jobs (``adapters.sagemaker_control.SageMakerControl``)."""

    def create_training_job(self, request: AwsDocument) -> str:
        """Start the job ``request`` describes; its ARN. ``ResourceExistsError`` when one of that name exists."""
        ...

    def describe_training_job(self, name: str) -> AwsDocument | None:
        """The job's description, or ``None`` when there is no such job."""
        ...

    def tags_of(self, arn: str) -> dict[str, str]:
        """The tags of the SageMaker resource ``arn``, by key."""
        ...

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        """Add ``tags`` to the SageMaker resource ``arn``."""
        ...


class EndpointDeployments(TrainingJobs, Protocol):
    """Models, endpoint configs and the endpoint, for deploying an approved registry version's model."""

    def describe_model_package(self, arn: str) -> AwsDocument | None: ...

    def model_exists(self, name: str) -> bool: ...

    def create_model(self, request: AwsDocument) -> None: ...

    def endpoint_config_exists(self, name: str) -> bool: ...

    def create_endpoint_config(self, request: AwsDocument) -> None: ...

    def describe_endpoint(self, name: str) -> AwsDocument | None:
        """The endpoint's description, or ``None`` when there is no such endpoint."""
        ...

    def create_endpoint(self, name: str, config_name: str, tags: list[dict[str, str]]) -> None: ...

    def update_endpoint(self, name: str, config_name: str, deployment_config: AwsDocument | None = None) -> None:
        """Move the endpoint to ``config_name`` blue/green, with guardrails when ``deployment_config`` is given."""
        ...

    def delete_endpoint(self, name: str) -> None:
        """Delete the endpoint (its configs and models stay)."""
        ...

    def describe_endpoint_config(self, name: str) -> AwsDocument | None: ...


class ModelRegistry(TrainingJobs, Protocol):
    """The model registry, what it takes to find the model an endpoint serves, and Batch Transform (the golden
    set's scoring, ``dog_breeds.golden_set``)."""

    def model_exists(self, name: str) -> bool: ...

    def create_model(self, request: AwsDocument) -> None: ...

    def describe_transform_job(self, name: str) -> AwsDocument | None:
        """The job's description, or ``None`` when there is no such job."""
        ...

    def create_transform_job(self, request: AwsDocument) -> None:
        """Start the job; a job of that name started meanwhile (a retried gate) is not an error."""
        ...

    def ensure_model_package_group(self, name: str, description: str, tags: list[dict[str, str]]) -> None: ...

    def create_model_package(self, request: AwsDocument) -> str: ...

    def describe_model_package(self, arn: str) -> AwsDocument | None: ...

    def update_model_package(self, arn: str, **changes: Any) -> None: ...

    def latest_model_packages(self, group: str, status: str, limit: int) -> list[AwsDocument]:
        """The group's newest ``limit`` versions with approval ``status``, newest first."""
        ...

    def describe_endpoint(self, name: str) -> AwsDocument | None: ...

    def describe_endpoint_config(self, name: str) -> AwsDocument | None: ...

    def describe_model(self, name: str) -> AwsDocument | None: ...


class ScalableTargets(Protocol):
    """Application Auto Scaling for an endpoint variant (``adapters.application_autoscaling``)."""

    def register_target(self, resource_id: str, min_capacity: int, max_capacity: int) -> None:
        """Register, or re-register (which updates), the variant as a scalable target."""
        ...

    def put_target_tracking_policy(self, resource_id: str, policy_name: str, configuration: AwsDocument) -> str:
        """Create or replace the target-tracking policy of that name; its ARN."""
        ...

    def deregister_target(self, resource_id: str) -> bool:
        """Delete the variant's scaling policies and deregister it; whether it was registered."""
        ...


class GoldenSet(Protocol):
    """The golden set in the stack's bucket and the answers Batch Transform wrote (``adapters.s3_objects``)."""

    def listing(self) -> list[tuple[str, str]]:
        """(key, ETag) of every object under ``golden/``."""
        ...

    def answers(self, job_name: str) -> dict[str, str]:
        """Every answer ``job_name`` wrote (``golden-scores/<job>/...``), by key."""
        ...
