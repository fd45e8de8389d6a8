"""SageMaker's refusals that the offline control plane (moto) lacks, added to it: where AWS says no, so does it.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **UpdateEndpoint exists**, and keeps the instance count auto-scaling set when ``RetainAllVariantProperties``
  is true (moto has no UpdateEndpoint). Source: SageMaker API reference, UpdateEndpoint.
- **A Failed endpoint can only be deleted**; an endpoint that is Creating, Updating, SystemUpdating,
  RollingBack or Deleting cannot be updated either. Source: SageMaker API reference, DescribeEndpoint
  (``EndpointStatus``: "DeleteEndpoint is the only operation that can be performed on a failed endpoint";
  SystemUpdating "cannot be updated or deleted or re-scaled until it has completed").
- **An instance-type change of an auto-scaled variant is refused** until the variant is deregistered from
  Application Auto Scaling (a model change is allowed). Source: SageMaker developer guide, "Update endpoints
  that use auto scaling".
- **Endpoint instances count against a quota per instance type**, both fleets of a blue/green update
  included (the new fleet starts before the old one retires); past it, ``ResourceLimitExceeded``. Sources:
  SageMaker developer guide, "Deployment guardrails" / "Blue/green deployments" (the green fleet is
  provisioned beside the blue one), and "Amazon SageMaker AI endpoints and quotas" (``<type> for endpoint
  usage``). The offline quota is settable (``set_endpoint_instance_quota``).
- **Training job names are unique in an account and Region**: a second CreateTrainingJob of a name is
  refused with ``ResourceInUse``. Source: SageMaker API reference, CreateTrainingJob (``TrainingJobName``).
- **A training job with network isolation reaches nothing but its peers**: no outbound calls (to S3 neither) and
  no AWS credentials in the container; SageMaker still downloads the channels and uploads the outputs. So script
  mode cannot download ``sagemaker_submit_directory`` from S3 (the code must come as a channel: the SDK's
  ``code`` channel, ``/opt/ml/input/data/code/sourcedir.tar.gz``) nor pip-install a ``requirements.txt``, and
  nothing can be downloaded at run time. Source: SageMaker developer guide, "Run training and inference
  containers in internet-free mode" (network isolation); CreateTrainingJob (``EnableNetworkIsolation``).
  ``isolated_training_refusal`` and ``isolated_environment`` are applied by the offline training executor.
- **A serverless endpoint config has no data capture, and its model no network isolation**; its ``MaxConcurrency``
  is 1-200 and its ``ProvisionedConcurrency`` at most that (moto checks the memory size only). Source: SageMaker
  developer guide, "Deploy models with Amazon SageMaker Serverless Inference" (Feature exclusions: data capture,
  network isolation) and API reference, ProductionVariantServerlessConfig. ``serverless_config_refusal``.
- **An endpoint changes kind one way only**: "You can convert a serverless endpoint to real-time, but once you make
  the update, you cannot roll it back to serverless"; UpdateEndpoint from an instance-based config to a serverless
  one is refused (the message's wording is an inference). Source: SageMaker developer guide, "Serverless endpoint
  operations" (Update an endpoint). ``kind_change_refusal``.
- **A channel with nothing under its S3 prefix is refused by CreateTrainingJob itself** (``ValidationException``,
  "No S3 objects found under S3 URL ..."; the message as AWS's CI logs show it), and one emptied after the job
  was created fails the job ("Data download failed"). Source: SageMaker API reference, S3DataSource, CreateTrainingJob.
  ``empty_channel_on_create``, ``empty_channel_refusal``.
- **Serverless Inference exists in a listed set of Regions**: the developer guide's serverless page names 21
  ("Serverless Inference is available in 21 AWS Regions", read 2026-12; the list may grow, so ``make preflight``
  says which list it used). Source: "Deploy models with Amazon SageMaker Serverless Inference"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html). ``SERVERLESS_REGIONS``.
- **Batch Transform writes one ``.out`` object per input object, and fails the job when one object fails**:
  "For every S3 object used as input for the transform job, batch transform stores the transformed data with an
  .out suffix in a corresponding subfolder in the location in the output prefix" and "If any object fails in the
  transform job batch transform marks the job as failed to prompt investigation" (it "uploads only the output for
  successfully processed objects"). Source: SageMaker API reference, TransformOutput
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html). The page's example drops the
  input's own subfolder (``dataset01/``); the offline key keeps the object's path under the input prefix, which is
  what "a corresponding subfolder" says (an inference from that sentence). ``transform_output_key``; the offline
  executor is ``offline_stack/transform_executor.py``. Transform job names are unique like training jobs' (the
  same ``ResourceInUse``; an inference from CreateTransformJob's ``TransformJobName``: "The name must be unique
  within an AWS Region in an AWS account").
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

SERVERLESS_REGIONS = frozenset(
    {
        "us-east-1",  # US East (N. Virginia)
        "us-east-2",  # US East (Ohio)
        "us-west-1",  # US West (N. California)
        "us-west-2",  # US West (Oregon)
        "af-south-1",  # Africa (Cape Town)
        "ap-east-1",  # Asia Pacific (Hong Kong)
        "ap-south-1",  # Asia Pacific (Mumbai)
        "ap-northeast-1",  # Asia Pacific (Tokyo)
        "ap-northeast-2",  # Asia Pacific (Seoul)
        "ap-northeast-3",  # Asia Pacific (Osaka)
        "ap-southeast-1",  # Asia Pacific (Singapore)
        "ap-southeast-2",  # Asia Pacific (Sydney)
        "ca-central-1",  # Canada (Central)
        "eu-central-1",  # Europe (Frankfurt)
        "eu-west-1",  # Europe (Ireland)
        "eu-west-2",  # Europe (London)
        "eu-west-3",  # Europe (Paris)
        "eu-north-1",  # Europe (Stockholm)
        "eu-south-1",  # Europe (Milan)
        "me-south-1",  # Middle East (Bahrain)
        "sa-east-1",  # South America (Sao Paulo)
    }
)

# What the offline account allows per instance type for endpoint usage unless a test sets otherwise.
DEFAULT_ENDPOINT_INSTANCE_QUOTA = 20
_quotas: dict[str, int] = {}
_lock = threading.Lock()
_UPDATABLE = ("InService", "OutOfService", "UpdateRollbackFailed")


@dataclass(frozen=True)
class Fleet:
    instance_type: str
    count: int


def set_endpoint_instance_quota(instance_type: str, instances: int | None) -> None:
    """The offline account's ``<instance_type> for endpoint usage`` quota (None: back to the default)."""
    with _lock:
        if instances is None:
            _quotas.pop(instance_type, None)
        else:
            _quotas[instance_type] = instances


def endpoint_instance_quota(instance_type: str) -> int:
    with _lock:
        return _quotas.get(instance_type, DEFAULT_ENDPOINT_INSTANCE_QUOTA)


def install(emulating_lifecycles, roles_of_this_request=lambda: None) -> None:
    """Add the rules to moto's SageMaker (once per process). ``emulating_lifecycles()``: whether the control
    plane answering this request moves endpoints through their states (then an update keeps both fleets until
    the offline stack has served the new one); ``roles_of_this_request()``: the roles IAM holds to their policies
    (None: moto's own behaviour), for what SageMaker checks as a job's role."""
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    if hasattr(SageMakerResponse, "update_endpoint"):
        return
    _channels_checked_on_create(SageMakerModelBackend, roles_of_this_request)  # wraps moto's own: its signature
    _unique_job_names(SageMakerModelBackend, "training")
    _unique_job_names(SageMakerModelBackend, "transform")
    _endpoint_quota_on_create(SageMakerModelBackend)
    _serverless_rules_on_config(SageMakerModelBackend)
    _record_model_isolation(SageMakerResponse)
    SageMakerResponse.update_endpoint = _update_endpoint(emulating_lifecycles, roles_of_this_request)


CHANNELS_PATH = "/opt/ml/input/data/"
# What a container's environment holds that reaches out: credentials, endpoints, proxies (none under isolation)
_OUTWARD_VARIABLES = ("AWS_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "PIP_INDEX_URL")


def isolated_training_refusal(job: dict, code_dir: Path | None) -> str | None:
    """Why an isolated job fails before (or as) its entry point starts, or None. ``code_dir``: the unpacked
    code, None when it could not be fetched."""
    if not job.get("EnableNetworkIsolation"):
        return None
    submit = job.get("HyperParameters", {}).get("sagemaker_submit_directory", "").strip('"')
    if submit.startswith("s3://"):
        return (
            f"ClientError: the job runs with network isolation, so the container cannot download its code from "
            f"{submit}; give the code as a channel (the SDK's 'code' channel, {CHANNELS_PATH}code/sourcedir.tar.gz)"
        )
    if code_dir is None:
        return f"ExecuteUserScriptError: {submit} does not exist in the container (no channel holds it)"
    if (code_dir / "requirements.txt").exists():
        return (
            "InstallRequirementsError: the code holds requirements.txt, which script mode pip-installs at start, "
            "and the job runs with network isolation (no package index can be reached)"
        )
    return None


def empty_channel_refusal(channels: dict[str, tuple[str, int]]) -> str | None:
    """``channels``: name -> (S3 URI, objects downloaded). Why the job fails, or None."""
    empty = [f"{name} ({uri})" for name, (uri, objects) in channels.items() if objects == 0]
    if not empty:
        return None
    return f"ClientError: Data download failed: no S3 objects found under the S3 URI of channel(s) {', '.join(empty)}"


def isolated_environment(job: dict, environment: dict[str, str]) -> dict[str, str]:
    """The container's environment: without credentials, endpoints or proxies when the job is isolated."""
    if not job.get("EnableNetworkIsolation"):
        return environment
    return {name: value for name, value in environment.items() if not name.startswith(_OUTWARD_VARIABLES)}


def serverless_config_refusal(variant: dict, data_capture: dict | None, model_isolated: bool) -> str | None:
    """Why SageMaker refuses this production variant as a serverless one, or None (also None: not serverless)."""
    config = variant.get("ServerlessConfig")
    if not config:
        return None
    if data_capture and data_capture.get("EnableCapture", True):
        return "DataCaptureConfig is not supported for endpoint configs with serverless production variants."
    if model_isolated:
        return "Network isolation is not supported for models deployed to serverless endpoints."
    maximum = int(config.get("MaxConcurrency", 0))
    if not 1 <= maximum <= 200:
        return f"Value '{maximum}' at 'MaxConcurrency' failed to satisfy constraint: Member must be from 1 to 200."
    provisioned = config.get("ProvisionedConcurrency")
    if provisioned is not None and not 1 <= int(provisioned) <= maximum:
        return f"ProvisionedConcurrency ({provisioned}) must be from 1 to MaxConcurrency ({maximum})."
    return None


def kind_change_refusal(serving_variant: dict, new_variant: dict) -> str | None:
    """Why UpdateEndpoint refuses to move from ``serving_variant`` to ``new_variant`` (their kinds), or None.

    One way only: "You can convert a serverless endpoint to real-time, but once you make the update, you cannot
    roll it back to serverless" (SageMaker developer guide, "Serverless endpoint operations", update an endpoint).
    The refusal's wording is an inference (no documented message)."""
    if "ServerlessConfig" in new_variant and "ServerlessConfig" not in serving_variant:
        return (
            "Cannot update an endpoint from an instance-based production variant to a serverless one: create a "
            "new endpoint with the serverless endpoint config (a serverless endpoint converts to instances, not back)."
        )
    return None


def fleets_in_use(backend) -> list[Fleet]:
    """Every endpoint's serving fleet, and the old fleet of an update still in progress."""
    fleets = []
    for endpoint in list(backend.endpoints.values()):
        fleets.append(_serving_fleet(backend, endpoint))
        previous = getattr(endpoint, "previous_fleet", None)
        if previous is not None and endpoint.endpoint_status == "Updating":
            fleets.append(previous)
    return fleets


def _serving_fleet(backend, endpoint) -> Fleet:
    config = backend.endpoint_configs[endpoint.endpoint_config_name]
    variant = config.production_variants[0]
    current = (endpoint.production_variants or [{}])[0]
    count = current.get("CurrentInstanceCount") or variant.get("InitialInstanceCount", 1)
    return Fleet(variant.get("InstanceType", ""), int(count))


@functools.cache
def _resource_limit_exceeded() -> type:
    """SageMaker's ResourceLimitExceeded error as moto answers errors (moto has none of its own)."""
    from moto.sagemaker.exceptions import SagemakerClientError

    return type("ResourceLimitExceeded", (SagemakerClientError,), {"code": "ResourceLimitExceeded"})


def _check_quota(backend, fleet: Fleet) -> None:
    in_use = sum(f.count for f in fleets_in_use(backend) if f.instance_type == fleet.instance_type)
    quota = endpoint_instance_quota(fleet.instance_type)
    if in_use + fleet.count > quota:
        raise _resource_limit_exceeded()(
            f"The account-level service limit '{fleet.instance_type} for endpoint usage' is {quota} Instances, "
            f"with current utilization of {in_use} Instances and a request delta of {fleet.count} Instances. "
            "Please use AWS Service Quotas to request an increase for this quota."
        )


def _endpoint_quota_on_create(backend_class) -> None:
    created = backend_class.create_endpoint

    def create_endpoint(self, endpoint_name: str, endpoint_config_name: str, tags):
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is not None:
            variant = config.production_variants[0]
            _check_quota(self, Fleet(variant.get("InstanceType", ""), int(variant.get("InitialInstanceCount", 1))))
        return created(self, endpoint_name, endpoint_config_name, tags)

    backend_class.create_endpoint = create_endpoint


def _serverless_rules_on_config(backend_class) -> None:
    from moto.sagemaker.exceptions import ValidationError

    created = backend_class.create_endpoint_config

    def create_endpoint_config(self, endpoint_config_name: str, production_variants, data_capture_config, *a, **k):
        for variant in production_variants or []:
            model = self._models.get(variant.get("ModelName")) if hasattr(self, "_models") else None
            isolated = bool(getattr(model, "enable_network_isolation", False))
            refusal = serverless_config_refusal(variant, data_capture_config, isolated)
            if refusal:
                raise ValidationError(message=refusal)
        return created(self, endpoint_config_name, production_variants, data_capture_config, *a, **k)

    backend_class.create_endpoint_config = create_endpoint_config


def _record_model_isolation(response_class) -> None:
    """CreateModel's ``EnableNetworkIsolation`` is kept and described, as SageMaker does (moto drops it)."""
    created = response_class.create_model

    def create_model(self):
        result = created(self)
        model = self.sagemaker_backend._models.get(self._get_param("ModelName"))
        if model is not None:
            model.enable_network_isolation = bool(self._get_param("EnableNetworkIsolation"))
        return result

    response_class.create_model = create_model


def _unique_job_names(backend_class, kind: str) -> None:
    """``kind`` ``training`` or ``transform``: a second Create<Kind>Job of a name is refused with ``ResourceInUse``."""
    from moto.sagemaker.exceptions import ResourceInUseException

    jobs, operation = f"{kind}_jobs", f"create_{kind}_job"
    created = getattr(backend_class, operation)

    def create_job(self, *args, **kwargs):
        job_name = kwargs.get(f"{kind}_job_name", args[0] if args else None)
        if job_name in getattr(self, jobs):
            raise ResourceInUseException(
                f"{kind.capitalize()} job names must be unique within an AWS account and region, and a {kind} job "
                f"with this name already exists (arn:aws:sagemaker:{self.region_name}:{self.account_id}:{kind}-job/"
                f"{str(job_name).lower()})"
            )
        return created(self, *args, **kwargs)

    setattr(backend_class, operation, create_job)


def transform_output_key(input_uri: str, object_key: str, output_path: str) -> tuple[str, str]:
    """(bucket, key) where Batch Transform writes the answer to ``object_key`` (read under ``input_uri``)."""
    input_prefix = input_uri.removeprefix("s3://").partition("/")[2]
    bucket, _, output_prefix = output_path.removeprefix("s3://").partition("/")
    relative = object_key[len(input_prefix) :] if object_key.startswith(input_prefix) else object_key
    return bucket, f"{output_prefix.rstrip('/')}/{relative.lstrip('/')}.out"


def empty_channel_on_create(uri: str, role_arn: str, region: str) -> str:
    """CreateTrainingJob's refusal of an S3 prefix channel with nothing its role can list under it.

    AWS's words, as its own CI logs show them (aws/amazon-sagemaker-examples issues #2489, #2267: an observed
    message, not a documented sentence): the refusal is a ``ValidationException`` of CreateTrainingJob itself,
    before any job exists."""
    bucket = uri.removeprefix("s3://").partition("/")[0]
    return (
        f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the bucket exists '
        f"in the selected region ({region}), that objects exist under that S3 prefix, and that the role "
        f'"{role_arn}" has "s3:ListBucket" permissions on bucket "{bucket}".'
    )


def _channels_checked_on_create(backend_class, roles_of_this_request) -> None:
    import inspect

    from moto.s3.models import s3_backends
    from moto.sagemaker.exceptions import ValidationError

    from offline_stack.aws_rules.iam import Permission

    created = backend_class.create_training_job
    signature = inspect.signature(created)

    def create_training_job(self, *args, **kwargs):
        request = signature.bind(self, *args, **kwargs).arguments
        role_arn = request.get("role_arn", "")
        roles = roles_of_this_request()
        role = roles.by_arn.get(role_arn) if roles is not None else None
        for channel in request.get("input_data_config") or []:
            source = channel.get("DataSource", {}).get("S3DataSource", {})
            if not source or source.get("S3DataType", "S3Prefix") != "S3Prefix":
                continue
            uri = source["S3Uri"]
            name, _, prefix = uri.removeprefix("s3://").partition("/")
            bucket = s3_backends[self.account_id][self.partition].buckets.get(name)
            listed = bucket is not None and any(str(key).startswith(prefix) for key in bucket.keys)
            permitted = role is None or role.allows(
                Permission("s3:ListBucket", f"arn:aws:s3:::{name}", {"s3:prefix": prefix})
            )
            if not (listed and permitted):
                raise ValidationError(empty_channel_on_create(uri, role_arn, self.region_name))
        return created(self, *args, **kwargs)

    backend_class.create_training_job = create_training_job


def rollback_alarms_unreadable(role, alarm_names: list[str], region: str, account: str) -> str | None:
    """Why SageMaker cannot watch these auto-rollback alarms as the endpoint's execution role, or None.

    "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action on the
    auto-rollback alarms you specify" (SageMaker developer guide, "Deployment guardrails", auto-rollback
    configuration). What SageMaker answers when it has not is not documented: refusing the UpdateEndpoint with the
    missing permission named is an inference."""
    from offline_stack.aws_rules.iam import Permission

    for name in alarm_names:
        arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"
        if not role.allows(Permission("cloudwatch:DescribeAlarms", arn)):
            return (
                f"AccessDenied: the endpoint's execution role {role.arn} is not authorized to perform: "
                f"cloudwatch:DescribeAlarms on resource: {arn} (SageMaker reads the auto-rollback alarms as it)"
            )
    return None


def _update_endpoint(emulating_lifecycles, roles_of_this_request=lambda: None):
    from moto.applicationautoscaling.models import applicationautoscaling_backends
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.responses import ActionResult

    def update_endpoint(self) -> ActionResult:
        backend = self.sagemaker_backend
        endpoint = backend.endpoints.get(self._get_param("EndpointName"))
        config = backend.endpoint_configs.get(self._get_param("EndpointConfigName"))
        if endpoint is None or config is None:
            raise ValidationError(message="Could not find endpoint or endpoint configuration.")
        status = endpoint.endpoint_status
        if status == "Failed":
            raise ValidationError(
                message=f"Cannot update endpoint {endpoint.arn} in status Failed: DeleteEndpoint is the only "
                "operation that can be performed on a failed endpoint."
            )
        if status not in _UPDATABLE:
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}" ({status}).')
        serving = _serving_fleet(backend, endpoint)
        new_variant = config.production_variants[0]
        serving_variant = backend.endpoint_configs[endpoint.endpoint_config_name].production_variants[0]
        refusal = kind_change_refusal(serving_variant, new_variant)
        if refusal:
            raise ValidationError(message=refusal)
        alarms = (self._get_param("DeploymentConfig") or {}).get("AutoRollbackConfiguration", {}).get("Alarms", [])
        model = backend._models.get(new_variant.get("ModelName", ""))
        roles = roles_of_this_request()
        role = roles.by_arn.get(model.execution_role_arn) if roles is not None and model is not None else None
        if role is not None and alarms:
            names = [alarm["AlarmName"] for alarm in alarms]
            refusal = rollback_alarms_unreadable(role, names, backend.region_name, backend.account_id)
            if refusal:
                raise ValidationError(message=refusal)
        new_type = new_variant.get("InstanceType", "")
        scaling = applicationautoscaling_backends[backend.account_id][backend.region_name]
        resource_id = f"endpoint/{endpoint.endpoint_name}/variant/{new_variant['VariantName']}"
        registered = resource_id in scaling.targets.get("sagemaker:variant:DesiredInstanceCount", {})
        if registered and new_type != serving.instance_type:
            raise ValidationError(
                message=f'The variant(s) "[{new_variant["VariantName"]}]" must be deregistered as scalable targets '
                "with AWS Application Auto Scaling before they can be removed or have their instance types updated."
            )
        retain = str(self._get_param("RetainAllVariantProperties")).lower() == "true"
        count = serving.count if retain else int(new_variant.get("InitialInstanceCount", 1))
        _check_quota(backend, Fleet(new_type, count))  # the new fleet starts beside the old one
        if emulating_lifecycles():  # the offline stack serves the new config, or rolls back to this one
            endpoint.endpoint_status, endpoint.failure_reason = "Updating", None
            endpoint.previous_fleet = serving
        if self._get_param("DeploymentConfig"):  # DescribeEndpoint shows the guardrails of the last update
            endpoint.last_deployment_config = self._get_param("DeploymentConfig")
        endpoint.data_capture_config = config.data_capture_config
        endpoint.endpoint_config_name = config.endpoint_config_name
        variants = endpoint._process_production_variants(config.production_variants)
        if retain:
            variants[0]["CurrentInstanceCount"] = variants[0]["DesiredInstanceCount"] = serving.count
        endpoint.production_variants = variants
        return ActionResult({"EndpointArn": endpoint.arn})

    return update_endpoint
