"""In-memory stand-ins for the ports (``dog_breeds/ports.py``), for the states moto cannot reach.

moto creates endpoints InService at once and cannot be made to answer Updating, Failed or RollingBack, nor
to refuse a call mid-way. These fakes hold what the logic wrote and can be put in any such state; mypy
checks them against the ports (``pyproject.toml``), so a port that changes breaks them at lint time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dog_breeds.errors import AwsRequestRefusedError
from dog_breeds.ports import AwsDocument, EndpointDeployments, GoldenSet, ModelRegistry, ScalableTargets
from dog_breeds.settings import ControlPlaneSettings
from offline_stack.aws_rules.sagemaker import kind_change_refusal

# What the control-plane functions know about the stack, for tests against the fakes
SETTINGS = ControlPlaneSettings(
    region="us-east-1",
    bucket="dog-breeds-artifacts",
    execution_role_arn="arn:aws:iam::123456789012:role/sagemaker-execution",
    job_name_prefix="dog-breeds",
    endpoint_name="dog-breed-classifier",
    artifacts_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
)


def _job_arn(name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"


@dataclass
class FakeSageMaker:
    """Training jobs, models, endpoint configs and endpoints, by name; ``calls`` lists every write."""

    jobs: dict[str, AwsDocument] = field(default_factory=dict)
    models: dict[str, AwsDocument] = field(default_factory=dict)
    endpoint_configs: dict[str, AwsDocument] = field(default_factory=dict)
    endpoints: dict[str, AwsDocument] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # operations that AWS refuses

    def _write(self, operation: str, argument: Any) -> None:
        if operation in self.refuse:
            raise AwsRequestRefusedError(f"SageMaker {operation} refused: ResourceLimitExceeded: quota")
        self.calls.append((operation, argument))

    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # by resource ARN
    packages: dict[str, AwsDocument] = field(default_factory=dict)  # model package versions, by ARN

    def describe_model_package(self, arn: str) -> AwsDocument | None:
        return self.packages.get(arn)

    def approved_package(self, model_data_url: str, status: str = "Approved", recorded: str | None = None) -> str:
        """A version of the endpoint's group with ``status`` whose model is ``model_data_url`` (its digest, the
        content address's, recorded unless ``recorded`` says otherwise)."""
        group = SETTINGS.endpoint_name
        version = 1 + sum(1 for p in self.packages.values() if p["ModelPackageGroupName"] == group)
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}"
        digest = recorded if recorded is not None else model_data_url.rsplit("/", 2)[-2]
        self.packages[arn] = {
            "ModelPackageArn": arn,
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": status,
            "InferenceSpecification": {"Containers": [{"ModelDataUrl": model_data_url}]},
            "CustomerMetadataProperties": {"artifact_sha256": digest},
        }
        return arn

    def completed_job(self, name: str, model_data_url: str, hyperparameters: dict | None = None) -> None:
        self.jobs[name] = {
            "TrainingJobArn": _job_arn(name),
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": model_data_url},
            "HyperParameters": hyperparameters or {},
        }

    def create_training_job(self, request: AwsDocument) -> str:
        self._write("create_training_job", request)
        name = request["TrainingJobName"]
        self.jobs[name] = {"TrainingJobArn": _job_arn(name), "TrainingJobStatus": "InProgress"}
        return _job_arn(name)

    def describe_training_job(self, name: str) -> AwsDocument | None:
        return self.jobs.get(name)

    def tags_of(self, arn: str) -> dict[str, str]:
        return dict(self.tags.get(arn, {}))

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        self._write("tag", (arn, tags))
        self.tags.setdefault(arn, {}).update(tags)

    def model_exists(self, name: str) -> bool:
        return name in self.models

    def create_model(self, request: AwsDocument) -> None:
        self._write("create_model", request)
        self.models[request["ModelName"]] = request

    def endpoint_config_exists(self, name: str) -> bool:
        return name in self.endpoint_configs

    def create_endpoint_config(self, request: AwsDocument) -> None:
        self._write("create_endpoint_config", request)
        self.endpoint_configs[request["EndpointConfigName"]] = request

    def describe_endpoint(self, name: str) -> AwsDocument | None:
        return self.endpoints.get(name)

    def create_endpoint(self, name: str, config_name: str, tags: list[dict[str, str]]) -> None:
        self._write("create_endpoint", (name, config_name))
        variant = self.endpoint_configs[config_name]["ProductionVariants"][0]
        capacity = (
            {"CurrentServerlessConfig": variant["ServerlessConfig"]}
            if "ServerlessConfig" in variant
            else {"CurrentInstanceCount": variant["InitialInstanceCount"]}
        )
        self.endpoints[name] = {
            "EndpointConfigName": config_name,
            "EndpointStatus": "Creating",
            "ProductionVariants": [{"VariantName": "AllTraffic", **capacity}],
        }

    def update_endpoint(self, name: str, config_name: str, deployment_config: AwsDocument | None = None) -> None:
        serving = self.endpoint_configs[self.endpoints[name]["EndpointConfigName"]]["ProductionVariants"][0]
        refusal = kind_change_refusal(serving, self.endpoint_configs[config_name]["ProductionVariants"][0])
        if refusal:  # SageMaker's rule, as the offline control plane applies it
            raise AwsRequestRefusedError(f"SageMaker update_endpoint refused: ValidationException: {refusal}")
        self._write("update_endpoint", (name, config_name, deployment_config))
        # RetainAllVariantProperties: the instance count stays what it is
        self.endpoints[name] = {**self.endpoints[name], "EndpointConfigName": config_name, "EndpointStatus": "Updating"}

    def delete_endpoint(self, name: str) -> None:
        self._write("delete_endpoint", name)
        del self.endpoints[name]

    def describe_endpoint_config(self, name: str) -> AwsDocument | None:
        return self.endpoint_configs.get(name)

    def set_instance_count(self, name: str, count: int) -> None:
        """What auto-scaling does to the serving fleet."""
        self.endpoints[name]["ProductionVariants"][0]["CurrentInstanceCount"] = count

    def writes(self) -> list[str]:
        return [operation for operation, _ in self.calls]


@dataclass
class FakeScaling:
    """Scalable targets and their target-tracking policies, as Application Auto Scaling keeps them."""

    targets: dict[str, tuple[int, int]] = field(default_factory=dict)
    policies: dict[tuple[str, str], AwsDocument] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)

    def register_target(self, resource_id: str, min_capacity: int, max_capacity: int) -> None:
        if "register_target" in self.refuse:
            raise AwsRequestRefusedError(
                "Application Auto Scaling register_scalable_target refused: ValidationException"
            )
        self.targets[resource_id] = (min_capacity, max_capacity)

    def put_target_tracking_policy(self, resource_id: str, policy_name: str, configuration: AwsDocument) -> str:
        if resource_id not in self.targets:
            raise AwsRequestRefusedError("Application Auto Scaling put_scaling_policy refused: ObjectNotFoundException")
        self.policies[(resource_id, policy_name)] = configuration
        return f"arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:{policy_name}"

    def deregister_target(self, resource_id: str) -> bool:
        for key in [key for key in self.policies if key[0] == resource_id]:
            del self.policies[key]
        return self.targets.pop(resource_id, None) is not None


@dataclass
class FakeRegistry(FakeSageMaker):
    """FakeSageMaker with the model registry: package groups and versions, by ARN, newest last."""

    groups: dict[str, AwsDocument] = field(default_factory=dict)

    def ensure_model_package_group(self, name: str, description: str, tags: list[dict[str, str]]) -> None:
        self.groups.setdefault(name, {"description": description, "tags": tags})

    def create_model_package(self, request: AwsDocument) -> str:
        self._write("create_model_package", request)
        group = request["ModelPackageGroupName"]
        for arn, package in self.packages.items():  # ClientToken: a retry registers nothing new
            if package.get("ClientToken") == request["ClientToken"]:
                return arn
        version = 1 + sum(1 for p in self.packages.values() if p["ModelPackageGroupName"] == group)
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}"
        self.packages[arn] = {**request, "ModelPackageArn": arn}
        return arn

    def update_model_package(self, arn: str, **changes: Any) -> None:
        self._write("update_model_package", (arn, changes))
        self.packages[arn].update(changes)

    def latest_model_packages(self, group: str, status: str, limit: int) -> list[AwsDocument]:
        found = [
            {"ModelPackageArn": arn}
            for arn, package in self.packages.items()
            if package["ModelPackageGroupName"] == group and package.get("ModelApprovalStatus") == status
        ]
        return found[::-1][:limit]

    def describe_model(self, name: str) -> AwsDocument | None:
        return self.models.get(name)

    transform_jobs: dict[str, AwsDocument] = field(default_factory=dict)

    def describe_transform_job(self, name: str) -> AwsDocument | None:
        return self.transform_jobs.get(name)

    def create_transform_job(self, request: AwsDocument) -> None:
        self._write("create_transform_job", request)
        self.transform_jobs.setdefault(request["TransformJobName"], {**request, "TransformJobStatus": "InProgress"})

    def serve(self, endpoint: str, model_data_url: str) -> None:
        """An endpoint serving ``model_data_url`` (endpoint -> config -> model -> model data)."""
        name = f"serving-{len(self.models)}"
        self.models[name] = {"ModelName": name, "PrimaryContainer": {"ModelDataUrl": model_data_url}}
        self.endpoint_configs[name] = {"ProductionVariants": [{"ModelName": name}]}
        self.endpoints[endpoint] = {"EndpointConfigName": name, "EndpointStatus": "InService"}


def _satisfies_the_ports(
    sagemaker: FakeSageMaker, scaling: FakeScaling, registry: FakeRegistry
) -> tuple[EndpointDeployments, ScalableTargets, ModelRegistry]:
    return sagemaker, scaling, registry  # mypy proves the fakes are the ports' shape


@dataclass
class FakeGoldenSet:
    """``ports.GoldenSet`` in memory: the photos' keys and ETags, and the answers transform jobs wrote, by key."""

    photos: dict[str, str] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)

    def listing(self) -> list[tuple[str, str]]:
        return sorted(self.photos.items())

    def answers(self, job_name: str) -> dict[str, str]:
        prefix = f"golden-scores/{job_name}/"
        return {key: text for key, text in self.written.items() if key.startswith(prefix)}


def _golden_satisfies_the_port(golden: FakeGoldenSet) -> GoldenSet:
    return golden
