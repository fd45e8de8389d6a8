"""Each function's configuration, declared once and read once at cold start.

A settings class is a frozen dataclass whose fields say which environment variable they come from and what
they accept (``variable(...)``); ``read_environment`` reads and checks them all. A missing or malformed
variable raises ``SettingsError`` naming the variable and what it accepts, so a bad deployment fails at
start-up instead of on the first request.

Why not pydantic (which Powertools' parser uses): importing it costs the prediction function about 100 ms of
cold start (``make bench``'s cold-start row), more than the whole budget the issue sets. The declarations
read the same way; the reader is the forty lines below.

The template's Parameters are the home of every default a deployment can change; the defaults here are
what a variable falls back to when the template does not set it, and tests/unit/test_single_sources.py
checks them equal to the template's.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from dog_breeds.aws_names import ENDPOINT_NAME, INSTANCE_TYPE

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+")

DEFAULT_TOP_K = 5
MAX_TOP_K = 20

Settings = TypeVar("Settings", bound="DataclassInstance")


class SettingsError(RuntimeError):
    """A configuration variable is missing or malformed."""


def variable(
    name: str,
    default: Any = MISSING,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: re.Pattern[str] | None = None,
    accepts: str = "",
) -> Any:
    """A settings field read from the environment variable ``name``; required unless it has a ``default``.

    Numbers are checked against ``minimum``/``maximum``, text (and each item of a comma-separated list)
    against ``pattern``, described to the operator as ``accepts``.
    """
    rules = {"variable": name, "minimum": minimum, "maximum": maximum, "pattern": pattern, "accepts": accepts}
    return field(default=default, metadata=rules)


def read_environment(cls: type[Settings], environ: Mapping[str, str] | None = None) -> Settings:
    """Build ``cls`` from ``environ`` (the process environment by default), checking every field."""
    env = os.environ if environ is None else environ
    types = get_type_hints(cls)
    values = {}
    for spec in fields(cls):
        name, raw = spec.metadata["variable"], env.get(spec.metadata["variable"], "").strip()
        if not raw:
            if spec.default is MISSING:
                raise SettingsError(f"environment variable {name} is required and is not set")
            continue
        values[spec.name] = _parse(name, raw, types[spec.name], spec.metadata)
    return cls(**values)


def _parse(name: str, raw: str, kind: Any, rules: Mapping[str, Any]) -> Any:
    accepts = rules["accepts"]
    if kind is bool:
        if raw.lower() not in ("true", "false"):
            raise SettingsError(f"environment variable {name}={raw!r} must be true or false")
        return raw.lower() == "true"
    if kind in (int, float):
        what = "whole number" if kind is int else "number"
        try:
            number = kind(raw)
        except ValueError:
            raise SettingsError(f"environment variable {name}={raw!r} is not a {what}") from None
        if not math.isfinite(number):
            raise SettingsError(f"environment variable {name}={raw!r} is not a finite {what}")
        low, high = rules["minimum"], rules["maximum"]
        if (low is not None and number < low) or (high is not None and number > high):
            if high is None:
                bounds = f"at least {low}"
            elif low is None:
                bounds = f"at most {high}"
            else:
                bounds = f"from {low} to {high}"
            raise SettingsError(f"environment variable {name}={raw!r} must be {bounds}")
        return number
    if kind is str:
        if rules["pattern"] and not rules["pattern"].fullmatch(raw):
            raise SettingsError(f"environment variable {name}={raw!r} is not {accepts}")
        return raw
    # a comma-separated list: frozenset[str] or tuple[str, ...]
    items = [item.strip().lower() if kind == frozenset[str] else item.strip() for item in raw.split(",")]
    items = [item for item in items if item]
    bad = sorted(item for item in items if rules["pattern"] and not rules["pattern"].fullmatch(item))
    if bad:
        raise SettingsError(f"environment variable {name} has entries that are not {accepts}: {bad}")
    return frozenset(items) if kind == frozenset[str] else tuple(items)


@dataclass(frozen=True)
class ClientTimeouts:
    """How long one AWS call may take: connect, read, and attempts in all (bounded retries)."""

    connect_seconds: float = 2.0
    read_seconds: float = 10.0
    max_attempts: int = 2


_KINDS = "instances or serverless"
_KIND = re.compile("instances|serverless")

# Control-plane calls are rare and may be slow; they get more time and one more attempt than predictions.
CONTROL_PLANE_TIMEOUTS = ClientTimeouts(connect_seconds=5.0, read_seconds=30.0, max_attempts=3)
_ENDPOINT_NAME = "1-63 lower-case letters, digits and hyphens (SageMaker lower-cases endpoint ARNs, IAM matches case)"


# SageMaker Serverless Inference (developer guide, "Invoke a serverless endpoint"): "The maximum request and response
# payload size for serverless invocations is 4 MB" (read as 4,000,000 bytes, the stricter reading), "The model must
# download and the server must respond successfully to /ping within 3 minutes", and "The timeout for the container to
# respond to inference requests to /invocations is 1 minute".
SERVERLESS_PAYLOAD_LIMIT_BYTES = 4_000_000
SERVERLESS_COLD_START_LIMIT_SECONDS = 180
# When to try again after a serverless endpoint's cold start outlasted the function's wait: the function waited
# ENDPOINT_READ_TIMEOUT_SECONDS already, and the start goes on inside SageMaker (up to the 3 minutes above).
SERVERLESS_RETRY_AFTER_SECONDS = 20
# The least memory a serverless container needs for the largest image the model accepts. Measured on the model
# container (issue 35): resident memory peaked at 2,020 MiB decoding a 76 kB PNG of 1 x 39,000,000 pixels, inside the
# decode budget (training_jobs/inference.py MAX_SOURCE_PIXELS, 40,000,000), and 2,080 MiB with two heavy images at
# once; a container past MemorySizeInMB is killed with its request. 2048 MB leaves no headroom: 3072 MB is the least.
SERVERLESS_DECODE_BUDGET_PIXELS = 40_000_000
SERVERLESS_MINIMUM_MEMORY_MB = 3072


@dataclass(frozen=True)
class PredictSettings:
    """The prediction function (``functions/predict``)."""

    endpoint_name: str = variable("ENDPOINT_NAME", pattern=ENDPOINT_NAME, accepts=_ENDPOINT_NAME)
    # The endpoint's kind: a serverless endpoint takes smaller images and may answer after a cold start
    endpoint_kind: str = variable("ENDPOINT_KIND", "instances", pattern=_KIND, accepts=_KINDS)
    # The other endpoint kind's name: answers while a kind switch has not yet brought ENDPOINT_NAME into service
    fallback_endpoint_name: str = variable("FALLBACK_ENDPOINT_NAME", "", pattern=ENDPOINT_NAME, accepts=_ENDPOINT_NAME)
    max_image_bytes: int = variable("MAX_IMAGE_BYTES", 4 * 1024 * 1024, minimum=1)
    url_allowed_hosts: frozenset[str] = variable(
        "URL_ALLOWED_HOSTS", frozenset(), pattern=HOST_NAME, accepts="host names"
    )
    connect_timeout_seconds: float = variable("ENDPOINT_CONNECT_TIMEOUT_SECONDS", 2.0, minimum=0.1)
    read_timeout_seconds: float = variable("ENDPOINT_READ_TIMEOUT_SECONDS", 10.0, minimum=0.1)
    max_attempts: int = variable("ENDPOINT_MAX_ATTEMPTS", 2, minimum=1)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PredictSettings:
        return read_environment(cls, environ)

    @property
    def timeouts(self) -> ClientTimeouts:
        return ClientTimeouts(self.connect_timeout_seconds, self.read_timeout_seconds, self.max_attempts)

    @property
    def image_limit_bytes(self) -> int:
        """The largest image accepted: MAX_IMAGE_BYTES, and no more than a serverless endpoint's payload limit."""
        if self.endpoint_kind == "serverless":
            return min(self.max_image_bytes, SERVERLESS_PAYLOAD_LIMIT_BYTES)
        return self.max_image_bytes


@dataclass(frozen=True)
class PageSettings:
    """The page function (``functions/page``): what it must tell callers about their photos."""

    # What the endpoint keeps of the requests (DataCapturePercent), said to callers on the page and in the contract
    data_capture_percent: int = variable("DATA_CAPTURE_PERCENT", 0, minimum=0, maximum=100)
    data_capture_retention_days: int = variable("DATA_CAPTURE_RETENTION_DAYS", 30, minimum=1, maximum=3650)
    # The stack's AuthMode: the credentials the served contract says POST /predictions asks for
    auth_mode: str = variable("AUTH_MODE", "IAM", pattern=re.compile(r"IAM|JWT|NONE"), accepts="IAM, JWT or NONE")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PageSettings:
        return read_environment(cls, environ)

    @property
    def capture_notice(self) -> str:
        """What callers are told when a share of their photos is kept ("" when none is)."""
        if not self.data_capture_percent:
            return ""
        return (
            f"Data capture is on: {self.data_capture_percent} % of the photos sent here, and the breeds answered, "
            f"are kept for {self.data_capture_retention_days} days by the operator of this API, to check the model."
        )


_SHORT_NAME = "{} lower-case letters, digits and hyphens"


@dataclass(frozen=True)
class ControlPlaneSettings:
    """What every control-plane function knows: where things live and who SageMaker runs as."""

    region: str = variable("AWS_REGION")
    bucket: str = variable("BUCKET_NAME")
    execution_role_arn: str = variable("SAGEMAKER_EXECUTION_ROLE_ARN")
    job_name_prefix: str = variable(
        "JOB_NAME_PREFIX",
        pattern=re.compile(r"(?=.{1,32}$)" + ENDPOINT_NAME.pattern),
        accepts=_SHORT_NAME.format("1-32"),
    )
    endpoint_name: str = variable(
        "ENDPOINT_NAME",
        pattern=re.compile(r"(?=.{1,50}$)" + ENDPOINT_NAME.pattern),
        accepts=_SHORT_NAME.format("1-50") + " (model and endpoint-config names add a 12-character suffix to it)",
    )
    # instances: a fleet of EndpointInstanceType, auto-scaled; serverless: billed per request, scales to zero
    endpoint_kind: str = variable("ENDPOINT_KIND", "instances", pattern=_KIND, accepts=_KINDS)
    # The bucket's KMS key: SageMaker writes a job's output and captured requests with it (without one it would use
    # the account's aws/s3 key, which any principal with S3 rights may use)
    artifacts_key_arn: str = variable(
        "ARTIFACTS_KEY_ARN",
        "",
        pattern=re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+"),
        accepts="a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)",
    )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ControlPlaneSettings:
        return read_environment(cls, environ)

    @staticmethod
    def kind_in(environ: Mapping[str, str] | None = None) -> str:
        raw = (os.environ if environ is None else environ).get("ENDPOINT_KIND", "").strip() or "instances"
        return _parse("ENDPOINT_KIND", raw, str, {"pattern": _KIND, "accepts": _KINDS})

    @property
    def serving_endpoint_name(self) -> str:
        """The endpoint of this stack's kind: an instance-based endpoint cannot become serverless in place
        (developer guide, "Serverless endpoint operations", Update), so each kind has a name of its own."""
        return endpoint_name_of(self.endpoint_name, self.endpoint_kind)

    @property
    def other_endpoint_name(self) -> str:
        """The other kind's endpoint: the one a kind switch replaces, deleted once the new one is InService."""
        return endpoint_name_of(self.endpoint_name, "serverless" if self.endpoint_kind == "instances" else "instances")


def endpoint_name_of(base: str, kind: str) -> str:
    return base if kind == "instances" else f"{base}-{SERVERLESS_SUFFIX}"


SERVERLESS_SUFFIX = "serverless"


@dataclass(frozen=True)
class TrainingDefaults:
    """The start-training function's job defaults (template Parameters ``Training*``)."""

    instance_type: str = variable("TRAINING_INSTANCE_TYPE", "ml.m5.2xlarge")
    instance_count: int = variable("TRAINING_INSTANCE_COUNT", 6, minimum=1, maximum=100)
    max_runtime_seconds: int = variable("TRAINING_MAX_RUNTIME_SECONDS", 86400, minimum=60, maximum=2_419_200)
    use_spot: bool = variable("TRAINING_USE_SPOT", False)
    code_dir: str = variable("TRAINING_CODE_DIR", "/opt")
    use_debugger: bool = variable("TRAINING_USE_DEBUGGER", False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TrainingDefaults:
        return read_environment(cls, environ)


@dataclass(frozen=True)
class EndpointDefaults:
    """The deploy function's endpoint defaults and rollout guardrails (template Parameters)."""

    instance_type: str = variable("ENDPOINT_INSTANCE_TYPE", "ml.m5.large")
    instance_count: int = variable("ENDPOINT_INSTANCE_COUNT", 1, minimum=1, maximum=10)
    inference_runtime: str = variable(
        "INFERENCE_RUNTIME",
        "torchscript",
        pattern=re.compile("torchscript|bf16|eager"),
        accepts="torchscript, bf16 or eager",
    )
    data_capture_percent: int = variable("DATA_CAPTURE_PERCENT", 0, minimum=0, maximum=100)  # 0: no capture
    # EndpointKind=serverless: memory per concurrent request, and how many at once (MaxConcurrency)
    serverless_memory_mb: int = variable("SERVERLESS_MEMORY_MB", 3072, minimum=1024, maximum=6144)
    serverless_max_concurrency: int = variable("SERVERLESS_MAX_CONCURRENCY", 10, minimum=1, maximum=200)
    serverless_provisioned_concurrency: int = variable("SERVERLESS_PROVISIONED_CONCURRENCY", 0, minimum=0, maximum=200)
    canary_percent: int = variable("ROLLOUT_CANARY_PERCENT", 10, minimum=1, maximum=50)
    bake_seconds: int = variable("ROLLOUT_BAKE_SECONDS", 600, minimum=0, maximum=3600)
    # none: updates are plain blue/green, without guardrails
    rollback_alarms: tuple[str, ...] = variable("ROLLBACK_ALARM_NAMES", ())
    # The endpoint's own role (model artifacts in, captured requests out), never training's
    role_arn: str = variable("SAGEMAKER_ENDPOINT_ROLE_ARN", "")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> EndpointDefaults:
        defaults = read_environment(cls, environ)
        if not defaults.role_arn:
            raise SettingsError("environment variable SAGEMAKER_ENDPOINT_ROLE_ARN is required and is not set")
        if ControlPlaneSettings.kind_in(environ) == "serverless":
            refusal = serverless_refusal(defaults)
            if refusal:
                raise SettingsError(refusal)
        return defaults


def serverless_refusal(endpoint: Any) -> str:
    """Why SageMaker would refuse this serverless endpoint, or "" (developer guide, "Deploy models with Amazon
    SageMaker Serverless Inference": memory 1024-6144 MB in 1 GB steps, provisioned concurrency at most the maximum
    concurrency, and no data capture among its feature exclusions). Said here, at deploy time, not by a Failed
    endpoint config minutes later."""
    memory_mb, capture_percent = endpoint.serverless_memory_mb, endpoint.data_capture_percent
    max_concurrency = endpoint.serverless_max_concurrency
    provisioned_concurrency = endpoint.serverless_provisioned_concurrency
    if memory_mb % 1024:
        return f"SERVERLESS_MEMORY_MB={memory_mb} must be one of 1024, 2048, 3072, 4096, 5120, 6144 (1 GB steps)"
    if memory_mb < SERVERLESS_MINIMUM_MEMORY_MB:
        return (
            f"SERVERLESS_MEMORY_MB={memory_mb} is less than the {SERVERLESS_MINIMUM_MEMORY_MB} MB a serverless "
            f"container needs to decode the largest image the model accepts ({SERVERLESS_DECODE_BUDGET_PIXELS:,} "
            "pixels: about 2 GB resident, measured); set ServerlessMemorySizeMB to 3072, 4096, 5120 or 6144"
        )
    if provisioned_concurrency > max_concurrency:
        return (
            f"SERVERLESS_PROVISIONED_CONCURRENCY={provisioned_concurrency} must not exceed "
            f"SERVERLESS_MAX_CONCURRENCY={max_concurrency}"
        )
    if capture_percent:
        return (
            f"DATA_CAPTURE_PERCENT={capture_percent} with ENDPOINT_KIND=serverless: serverless endpoints do not "
            "support data capture; set DataCapturePercent to 0, or EndpointKind to instances to keep capture"
        )
    return ""


@dataclass(frozen=True)
class ScalingDefaults:
    """Target tracking on SageMakerVariantInvocationsPerInstance: invocations per instance PER MINUTE."""

    min_capacity: int = variable("SCALING_MIN_CAPACITY", 1, minimum=1, maximum=100)
    max_capacity: int = variable("SCALING_MAX_CAPACITY", 3, minimum=1, maximum=100)
    target_invocations_per_instance_per_minute: float = variable("SCALING_TARGET_INVOCATIONS", 15.0, minimum=0.01)
    scale_in_cooldown_seconds: int = variable("SCALING_SCALE_IN_COOLDOWN_SECONDS", 30, minimum=0, maximum=3600)
    scale_out_cooldown_seconds: int = variable("SCALING_SCALE_OUT_COOLDOWN_SECONDS", 30, minimum=0, maximum=3600)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ScalingDefaults:
        return read_environment(cls, environ)


@dataclass(frozen=True)
class GateSettings:
    """The release gate: a candidate needs this test accuracy, and may lose at most this much to the serving model."""

    minimum_test_accuracy: float = variable("GATE_MINIMUM_TEST_ACCURACY", 0.6, minimum=0.0, maximum=1.0)
    maximum_accuracy_regression: float = variable("GATE_MAXIMUM_ACCURACY_REGRESSION", 0.02, minimum=0.0, maximum=1.0)
    # Who Batch Transform runs as when it scores a model on the golden set (dog_breeds.golden_set): reads golden/
    # and the model, writes golden-scores/. Empty: the gate judges on the job's test split only.
    scoring_role_arn: str = variable("GOLDEN_SCORING_ROLE_ARN", "")
    scoring_instance_type: str = variable(
        "GOLDEN_SCORING_INSTANCE_TYPE", "ml.m5.large", pattern=INSTANCE_TYPE, accepts="an ml.* instance type"
    )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> GateSettings:
        return read_environment(cls, environ)
