"""The whole application on one machine: what `make demo` and `make serve` run.

=================================  ==============================================================
In AWS                             Offline (this stack), all on 127.0.0.1
=================================  ==============================================================
S3, SageMaker control plane,       moto in server mode (``ControlPlane``); boto3 reaches it through
Application Auto Scaling           ``AWS_ENDPOINT_URL``
Training job on N instances        ``LocalTrainingExecutor``: the same train.py, one process per host
SageMaker Runtime + container      ``EndpointServer`` + a model-container process per model
API Gateway HTTP API               ``ApiFront``: HTTP -> payload 2.0 event, the route throttle (429)
Lambda                             ``LambdaFunction``: the template's handler, layer, environment;
                                   behind the API, one process per execution environment, at most
                                   the reserved concurrency of them (``ConcurrencyPool``)
Step Functions                     moto's interpreter runs statemachine/pipeline.asl.json
                                   (``PipelineRuns``); jobs and endpoints change state as the
                                   local work progresses (``Lifecycles``)
=================================  ==============================================================
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from offline_stack.api_client import Signer, sigv4
from offline_stack.api_front import ApiFront, Authorization, RouteThrottle
from offline_stack.aws_rules.api_gateway import Caller, IamAuthorization, JwtAuthorization
from offline_stack.aws_rules.cloudformation import left_to_sagemaker, log_group_names, update_refusal
from offline_stack.aws_rules.iam import Permission, Policy, Role, Roles, invoke_endpoint_authorizer
from offline_stack.control_plane import DUMMY_CREDENTIALS, ControlPlane, sagemaker_state
from offline_stack.endpoint_server import EndpointServer
from offline_stack.execution_environments import ConcurrencyPool
from offline_stack.jwt_issuer import loopback_trust
from offline_stack.lambda_invoker import LambdaFunction
from offline_stack.lifecycles import Lifecycles
from offline_stack.local_endpoints import LocalEndpoints
from offline_stack.loopback_server import LOOPBACK
from offline_stack.pipeline_runs import PipelineRuns
from offline_stack.sam_template import PSEUDO_PARAMETERS, SamTemplate
from offline_stack.training_executor import LocalTrainingExecutor, TrainingOutcome
from offline_stack.transform_executor import LocalTransformExecutor

# An account's default concurrency for new accounts: what an unreserved function can count on.
UNRESERVED_OFFLINE_CONCURRENCY = 10


def offline_concurrency(reserved: str) -> int:
    """How many execution environments the offline API may run: the reservation, or 10 when there is none."""
    return UNRESERVED_OFFLINE_CONCURRENCY if reserved == "none" else int(reserved)


# Who signs with the offline stack's dummy credentials: the account's root, as aws:PrincipalArn names it. A person
# deploying names themself in ArtifactsKeyUserArns; offline stacks name the operator so.
OFFLINE_OPERATOR_ARN = f"arn:aws:iam::{PSEUDO_PARAMETERS['AWS::AccountId']}:root"


def put_bucket_policy(s3, template: SamTemplate) -> None:
    """The template's policy on its artifacts bucket, held to every principal as AWS holds it (``aws_rules/s3.py``)."""
    policy = template.resolve(template.resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"])
    s3.put_bucket_policy(Bucket=template.physical_id("ArtifactsBucket"), Policy=json.dumps(policy))


def encrypt_bucket(kms, s3, template: SamTemplate) -> str:
    """The template's artifacts key, made in the offline KMS with its key policy, as the bucket's default encryption
    (held to every principal by ``aws_rules/kms.py``); its ARN. The key gets the id the template's ARN names
    (``SamTemplate.arn``): AWS picks a random one, which the offline names cannot know in advance."""
    from moto.kms.models import kms_backends

    properties = template.resolve(template.resources["ArtifactsKey"]["Properties"])
    arn = template.arn("ArtifactsKey")
    region, account, key_id = arn.split(":")[3], arn.split(":")[4], arn.rsplit("/", 1)[1]
    backend = kms_backends[account][region]
    if key_id not in backend.keys:
        made = kms.create_key(Policy=json.dumps(properties["KeyPolicy"]), Description=properties["Description"])
        key = backend.keys.pop(made["KeyMetadata"]["KeyId"])
        key.id, key.arn = key_id, arn
        backend.keys[key_id] = key
    else:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(properties["KeyPolicy"]))
    (rule,) = template.resolve(
        template.resources["ArtifactsBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    )
    s3.put_bucket_encryption(
        Bucket=template.physical_id("ArtifactsBucket"),
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    "BucketKeyEnabled": rule["BucketKeyEnabled"],
                }
            ]
        },
    )
    return arn


class StackUpdateFailed(RuntimeError):
    """A parameter update CloudFormation would roll back; the stack keeps its parameters."""


class OfflineStack(contextlib.AbstractContextManager):
    def __init__(
        self,
        work_dir: Path,
        log: Callable[[str], None] = print,
        max_hosts: int | None = None,
        quiet_functions: bool = False,
        parameter_overrides: dict[str, str] | None = None,
        function_environment: dict[str, str] | None = None,
        listen: tuple[str, int, int] = (LOOPBACK, 0, 0),
        policy_overrides: dict[str, dict] | None = None,
        other_roles: list[Role] | None = None,
        boundary: Policy | None = None,
    ) -> None:
        """``listen``: (host, control-plane port, runtime port); 127.0.0.1 and free ports unless a container serves.
        ``policy_overrides``: a role's policy document in place of the template's (by logical id), to show what
        a missing statement breaks. ``other_roles``: principals of the account beside the template's (the release
        pipeline's roles), held to their own policies too. ``boundary``: the permissions boundary every template
        role carries (``PermissionsBoundaryArn``), held as AWS holds it."""
        self.work_dir = Path(work_dir)
        self.log = log
        # the operator uses the artifacts key, as the person deploying names themself (ArtifactsKeyUserArns)
        self.parameter_overrides = {"ArtifactsKeyUserArns": OFFLINE_OPERATOR_ARN, **(parameter_overrides or {})}
        self.template = SamTemplate.load(overrides=self.parameter_overrides)
        self._log_groups_outside_the_stack: set[str] = set()  # deleted by an update, written again by SageMaker
        self.bucket = self.template.physical_id("ArtifactsBucket")
        # Every function, training job and endpoint acts as its own role from the template (aws_rules.iam)
        template_roles = Roles.from_template(self.template, policy_overrides, boundary)
        self.roles = Roles([*template_roles.by_key.values(), *(other_roles or [])])
        host, control_plane_port, runtime_port = listen
        self.control_plane = ControlPlane(control_plane_port, host)
        self.runtime = EndpointServer(runtime_port, host=host)
        self._exit_stack = contextlib.ExitStack()
        self._max_hosts = max_hosts
        # Quiet: the functions log warnings only and emit no metrics lines (they would drown the demo's output).
        self._function_overrides = (
            {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"} if quiet_functions else {}
        ) | dict(function_environment or {})
        self.api: ApiFront | None = None
        self._pipeline: PipelineRuns | None = None

    def __enter__(self) -> OfflineStack:
        try:
            self._exit_stack.enter_context(self.control_plane)
            self._exit_stack.enter_context(self.runtime)
            self.control_plane.enforce_roles(self.roles)
            self.runtime.authorize = invoke_endpoint_authorizer(self.roles)
            self.s3 = self.control_plane.client("s3")
            self.sagemaker = self.control_plane.client("sagemaker")
            self.s3.create_bucket(Bucket=self.bucket)
            encrypt_bucket(self.control_plane.client("kms"), self.s3, self.template)
            put_bucket_policy(self.s3, self.template)
            self.cloudwatch = self.control_plane.client("cloudwatch")
            self.endpoints = LocalEndpoints(
                self.sagemaker, self.s3, self.cloudwatch, self.runtime, self.work_dir, self.log, s3_as=self._s3_as
            )
            self._exit_stack.callback(self.endpoints.close)
            self.executor = LocalTrainingExecutor(
                self.sagemaker, self.s3, self.work_dir / "jobs", self.log, self._max_hosts, s3_as=self._s3_as
            )
            self._exit_stack.callback(self.executor.close)
            self.lifecycles = Lifecycles(
                self.executor,
                self.endpoints,
                self.log,
                template=lambda: self.template,
                active=lambda: self.control_plane.lifecycles_on,
                transforms=LocalTransformExecutor(
                    self.sagemaker, self.s3, self.work_dir / "transforms", self.log, s3_as=self._s3_as
                ),
            ).start()
            self._exit_stack.callback(self.lifecycles.close)
        except BaseException:
            self._exit_stack.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._exit_stack.close()

    @property
    def environment(self) -> dict[str, str]:
        """What the functions' execution environments get: both loopback servers, dummy credentials."""
        return {
            **self.control_plane.environment(),
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.runtime.url,
            **self._function_overrides,
        }

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment: both loopback servers, and its own role's credentials."""
        role = self.roles.for_function(self.template, logical_id)
        return {**self.environment, **(role.environment() if role else {})}

    def _s3_as(self, role_arn: str):
        """S3 as the role a job or model was given (an unknown role gets no credentials AWS would accept)."""
        role = self.roles.by_arn.get(role_arn)
        if role is None:
            raise PermissionError(f"{role_arn} is not a role of the template: SageMaker could not assume it")
        return self.control_plane.client_as(role, "s3")

    def run_training_job(self, job_name: str, timeout_seconds: float = 1800) -> TrainingOutcome:
        """The job, run to its end: here, or, once pipelines run (``Lifecycles`` runs every job), awaited."""
        if not self.control_plane.lifecycles_on:
            return self.executor.run(job_name)
        deadline = time.monotonic() + timeout_seconds
        while (job := sagemaker_state().training_jobs[job_name]).training_job_status in ("InProgress", "Stopping"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"training job {job_name} still {job.training_job_status}")
            time.sleep(0.2)
        artifacts = job.model_artifacts["S3ModelArtifacts"] if job.training_job_status == "Completed" else None
        hosts = min(job.resource_config["InstanceCount"], self.executor.max_hosts)
        return TrainingOutcome(
            job_name,
            artifacts is not None,
            hosts,
            artifacts,
            getattr(job, "failure_reason", None),
            self.executor.work_dir / job_name,
            stopped=job.training_job_status == "Stopped",
        )

    def settle_endpoints(self, timeout_seconds: float = 1800) -> list[str]:
        """Serve every endpoint's current config; returns the endpoints whose served config changed. Once
        pipelines run, ``Lifecycles`` moves endpoints (through their guardrails): this waits for it."""
        if not self.control_plane.lifecycles_on:
            return self.endpoints.sync()
        before = {name: self.endpoints.serving(name) for name in sagemaker_state().endpoints}
        deadline = time.monotonic() + timeout_seconds
        while any(e.endpoint_status in ("Creating", "Updating") for e in sagemaker_state().endpoints.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("an endpoint is still Creating or Updating")
            time.sleep(0.2)
        return [name for name, served in before.items() if self.endpoints.serving(name) != served]

    def update_parameters(self, overrides: dict[str, str]) -> None:
        """As ``sam deploy --parameter-overrides`` on the deployed stack: the functions' next cold starts see them.

        Refused as CloudFormation would fail it (``aws_rules/cloudformation.py``), the stack unchanged: an update
        that creates a log group SageMaker wrote after an earlier update deleted it."""
        updated = SamTemplate.load(overrides={**self.parameter_overrides, **overrides})
        before, after = log_group_names(self.template), log_group_names(updated)
        refusal = update_refusal(before, after, self._log_groups_outside_the_stack)
        if refusal:
            raise StackUpdateFailed(refusal)
        serving = [endpoint["EndpointName"] for endpoint in self.sagemaker.list_endpoints()["Endpoints"]]
        self._log_groups_outside_the_stack |= left_to_sagemaker(before, after, serving)
        self.parameter_overrides.update(overrides)
        self.template = updated

    def invoke(self, logical_id: str, event: dict) -> dict:
        """Invoke a template function once (a fresh execution environment), as ``aws lambda invoke`` would."""
        with LambdaFunction(logical_id, self.template, self.function_environment(logical_id)) as function:
            return function.invoke(event)

    def register_model(self, body: bytes, reason: str) -> str:
        """``make register-model`` as the operator: ``body`` (a model.tar.gz) stored at its content address and
        registered as an Approved version of the endpoint's group; its ARN (the deploy function's input)."""
        from ops.register_model import register_approved

        group, region = self.template.parameters["EndpointName"], PSEUDO_PARAMETERS["AWS::Region"]
        return register_approved(self.sagemaker, self.s3, self.bucket, group, body, region, reason)

    def register_job_model(self, job_name: str) -> str:
        """A training job's model through the release gate (as the pipeline's JudgeCandidate step); its version's
        ARN. Raises when the gate does not approve it."""
        judged = self.invoke("ReleaseGateFunction", {"training_job_name": job_name})
        if judged["decision"] != "Approved":
            raise RuntimeError(f"the release gate refused {job_name}: {judged['reason']}")
        return judged["model_package_arn"]

    @property
    def pipeline(self) -> PipelineRuns:
        """The template's state machine, executing its ASL file here (from the first use on, jobs and endpoints
        go through their real states: see ``Lifecycles``)."""
        if self._pipeline is None:
            self._pipeline = PipelineRuns(self)
        return self._pipeline

    def open_api(self) -> ApiFront:
        """Start the HTTP front for POST /predictions with the template's reserved concurrency and route throttle.

        It stays up until the stack closes; one execution environment is cold-started before it answers.
        """
        if self.api is None:
            parameters = self.template.parameters
            pool = ConcurrencyPool(
                "PredictFunction",
                offline_concurrency(parameters["PredictReservedConcurrency"]),
                self.function_environment("PredictFunction"),
                self.parameter_overrides,
            )
            self._exit_stack.callback(pool.close)
            pool.warm(1)
            page_pool = ConcurrencyPool(  # unreserved: the account's shared concurrency
                "PageFunction",
                UNRESERVED_OFFLINE_CONCURRENCY,
                self.function_environment("PageFunction"),
                self.parameter_overrides,
            )
            self._exit_stack.callback(page_pool.close)
            rate, burst = float(parameters["ApiThrottleRateLimit"]), int(parameters["ApiThrottleBurstLimit"])
            throttle = RouteThrottle(rate, burst)
            page_throttle = RouteThrottle(
                float(parameters["PageThrottleRateLimit"]), int(parameters["PageThrottleBurstLimit"])
            )
            authorization, sign = self.api_authorization()
            front = ApiFront(
                pool,
                throttle,
                authorization=authorization,
                sign=sign,
                page_pool=page_pool,
                page_throttle=page_throttle,
            )
            self.api = self._exit_stack.enter_context(front)
        return self.api

    def api_authorization(self) -> tuple[Authorization | None, Signer | None]:
        return api_authorization(self.template.parameters, self.roles)


def api_authorization(parameters: Mapping[str, str], roles: Roles) -> tuple[Authorization | None, Signer | None]:
    """The check ``AuthMode`` puts on ``POST /predictions``, and how the operator signs for it.

    IAM: the operator (an administrator) and every template role are callers AWS knows; a role may invoke only if
    its policy allows ``execute-api:Invoke`` on the route. JWT: tokens of ``JwtIssuer`` for ``JwtAudience`` (the
    operator gets its token from that issuer: ``LocalJwtIssuer``). NONE: open."""
    region, account = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
    if parameters["AuthMode"] == "IAM":
        operator = Caller(
            DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            may_invoke=lambda arn: True,
            arn=f"arn:aws:iam::{account}:user/operator",
        )
        callers = [
            Caller(
                role.access_key_id,
                role.secret_access_key,
                role.session_token,
                may_invoke=lambda arn, role=role: role.allows(Permission("execute-api:Invoke", arn)),
                arn=role.session_arn,
            )
            for role in roles.by_key.values()
        ]

        def route_arn(route: str) -> str:
            method, path = route.split(" ", 1)
            return f"arn:aws:execute-api:{region}:{account}:offline/$default/{method}{path}"

        return IamAuthorization([operator, *callers], route_arn, region), sigv4(DUMMY_CREDENTIALS, region)
    if parameters["AuthMode"] == "JWT":
        audiences = [audience.strip() for audience in parameters["JwtAudience"].split(",")]
        scopes = [scope.strip() for scope in parameters.get("JwtScopes", "").split(",")]
        issuer = parameters["JwtIssuer"]
        return JwtAuthorization(issuer, audiences, scopes, ssl_context=loopback_trust(issuer)), None
    return None, None
