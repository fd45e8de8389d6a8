"""The SageMaker control-plane calls the functions make, with AWS's refusals turned into project errors.

Control-plane messages go to an operator (Step Functions, a CLI), not to API consumers, so AWS's own
reason is kept in the error: it says what to fix (a quota, a missing permission, a bad image).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from dog_breeds.adapters.aws_calls import call_aws, describe_aws
from dog_breeds.errors import AwsRequestRefusedError, ResourceExistsError
from dog_breeds.ports import AwsDocument

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient


class SageMakerControl:
    """``ports.TrainingJobs``, ``EndpointDeployments`` and ``ModelRegistry`` over a ``sagemaker`` client.

    One instance per execution environment.
    """

    def __init__(self, client: SageMakerClient) -> None:
        self.client = client

    def create_training_job(self, request: AwsDocument) -> str:
        """Start the job; ``ResourceExistsError`` when a job of that name exists (names are unique per account)."""
        try:
            return self._call("create_training_job", **request)["TrainingJobArn"]
        except AwsRequestRefusedError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ResourceInUse":
                raise ResourceExistsError(str(exc)) from cause
            raise

    def describe_training_job(self, name: str) -> AwsDocument | None:
        return self._describe("describe_training_job", TrainingJobName=name)

    def tags_of(self, arn: str) -> dict[str, str]:
        found: dict[str, str] = {}
        token: dict[str, str] = {}
        while True:
            page = self._call("list_tags", ResourceArn=arn, **token)
            found.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
            if not page.get("NextToken"):
                return found
            token = {"NextToken": page["NextToken"]}

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        self._call("add_tags", ResourceArn=arn, Tags=[{"Key": key, "Value": value} for key, value in tags.items()])

    def model_exists(self, name: str) -> bool:
        return self._describe("describe_model", ModelName=name) is not None

    def create_model(self, request: AwsDocument) -> None:
        self._call("create_model", **request)

    def endpoint_config_exists(self, name: str) -> bool:
        return self._describe("describe_endpoint_config", EndpointConfigName=name) is not None

    def create_endpoint_config(self, request: AwsDocument) -> None:
        self._call("create_endpoint_config", **request)

    def describe_endpoint(self, name: str) -> AwsDocument | None:
        return self._describe("describe_endpoint", EndpointName=name)

    def create_endpoint(self, name: str, config_name: str, tags: list[dict[str, str]]) -> None:
        self._call("create_endpoint", EndpointName=name, EndpointConfigName=config_name, Tags=tags)

    def update_endpoint(self, name: str, config_name: str, deployment_config: AwsDocument | None = None) -> None:
        # Keep the instance count auto-scaling has set; the new config brings the new model.
        guardrails = {"DeploymentConfig": deployment_config} if deployment_config else {}
        self._call(
            "update_endpoint",
            EndpointName=name,
            EndpointConfigName=config_name,
            RetainAllVariantProperties=True,
            **guardrails,
        )

    def delete_endpoint(self, name: str) -> None:
        self._call("delete_endpoint", EndpointName=name)

    def describe_endpoint_config(self, name: str) -> AwsDocument | None:
        return self._describe("describe_endpoint_config", EndpointConfigName=name)

    def describe_model(self, name: str) -> AwsDocument | None:
        return self._describe("describe_model", ModelName=name)

    def describe_transform_job(self, name: str) -> AwsDocument | None:
        return self._describe("describe_transform_job", TransformJobName=name)

    def create_transform_job(self, request: AwsDocument) -> None:
        try:
            self._call("create_transform_job", **request)
        except AwsRequestRefusedError as exc:  # started by a retry of the same gate: the name is the work
            cause = exc.__cause__
            if not (isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ResourceInUse"):
                raise

    # --- the model registry: one package group per endpoint ---

    def ensure_model_package_group(self, name: str, description: str, tags: list[dict[str, str]]) -> None:
        if self._describe("describe_model_package_group", ModelPackageGroupName=name) is None:
            self._call(
                "create_model_package_group",
                ModelPackageGroupName=name,
                ModelPackageGroupDescription=description,
                Tags=tags,
            )

    def create_model_package(self, request: AwsDocument) -> str:
        return self._call("create_model_package", **request)["ModelPackageArn"]

    def describe_model_package(self, arn: str) -> AwsDocument | None:
        return self._describe("describe_model_package", ModelPackageName=arn)

    def update_model_package(self, arn: str, **changes: Any) -> None:
        self._call("update_model_package", ModelPackageArn=arn, **changes)

    def latest_model_packages(self, group: str, status: str, limit: int) -> list[AwsDocument]:
        """The group's newest ``limit`` package versions with approval ``status``, newest first (summaries)."""
        answer = self._call(
            "list_model_packages",
            ModelPackageGroupName=group,
            ModelApprovalStatus=status,
            ModelPackageType="Versioned",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=limit,
        )
        return answer.get("ModelPackageSummaryList", [])

    def _describe(self, operation: str, **names: str) -> AwsDocument | None:
        """Describe by name; ``None`` when it does not exist.

        SageMaker answers a Describe of a well-formed name that does not exist with a
        ValidationException (there is no NotFound code); our names are always well-formed.
        """
        return describe_aws("SageMaker", self.client, operation, ("ValidationException", "ValidationError"), **names)

    def _call(self, operation: str, **parameters: Any) -> AwsDocument:
        return call_aws("SageMaker", self.client, operation, **parameters)
