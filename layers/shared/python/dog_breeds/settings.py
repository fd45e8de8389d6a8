"""Typed configuration, read once at cold start.

A missing or malformed variable raises ``SettingsError`` naming the variable, so a bad
deployment fails at start-up instead of on the first request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

# SageMaker spells endpoint ARNs with the name in lower case, and IAM compares resources
# case-sensitively: a mixed-case name would be denied by the function's own policy.
ENDPOINT_NAME_PATTERN = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
HOST_NAME_PATTERN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)

DEFAULT_TOP_K = 5
MAX_TOP_K = 20


class SettingsError(RuntimeError):
    """A configuration variable is missing or malformed."""


@dataclass(frozen=True)
class ClientTimeouts:
    """How long one endpoint call may take: connect, read, and attempts in all (bounded retries)."""

    connect_seconds: float = 2.0
    read_seconds: float = 10.0
    max_attempts: int = 2


@dataclass(frozen=True)
class PredictSettings:
    endpoint_name: str
    max_image_bytes: int
    url_allowed_hosts: frozenset[str]
    timeouts: ClientTimeouts

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PredictSettings:
        env = os.environ if environ is None else environ
        endpoint_name = _required(env, "ENDPOINT_NAME")
        if not ENDPOINT_NAME_PATTERN.match(endpoint_name):
            raise SettingsError(
                f"ENDPOINT_NAME={endpoint_name!r} is not a valid endpoint name: use 1-63 lower-case "
                "letters, digits and hyphens (SageMaker lower-cases endpoint ARNs, and IAM matches case)"
            )
        hosts = frozenset(h.strip().lower() for h in env.get("URL_ALLOWED_HOSTS", "").split(",") if h.strip())
        bad_hosts = sorted(h for h in hosts if not HOST_NAME_PATTERN.match(h))
        if bad_hosts:
            raise SettingsError(f"URL_ALLOWED_HOSTS has entries that are not host names: {bad_hosts}")
        return cls(
            endpoint_name=endpoint_name,
            max_image_bytes=_number(env, "MAX_IMAGE_BYTES", int, 4 * 1024 * 1024, minimum=1),
            url_allowed_hosts=hosts,
            timeouts=ClientTimeouts(
                connect_seconds=_number(env, "ENDPOINT_CONNECT_TIMEOUT_SECONDS", float, 2.0, minimum=0.1),
                read_seconds=_number(env, "ENDPOINT_READ_TIMEOUT_SECONDS", float, 10.0, minimum=0.1),
                max_attempts=_number(env, "ENDPOINT_MAX_ATTEMPTS", int, 2, minimum=1),
            ),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required and is not set")
    return value


def _number(env: Mapping[str, str], name: str, kind: type, default, *, minimum):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise SettingsError(f"environment variable {name}={raw!r} must be at least {minimum}")
    return value


# --- the control-plane functions (start_training, deploy_endpoint, register_autoscaling) ---


@dataclass(frozen=True)
class ControlPlaneSettings:
    """What every control-plane function knows: where things live and who SageMaker runs as."""

    region: str
    bucket: str
    execution_role_arn: str
    job_name_prefix: str
    endpoint_name: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ControlPlaneSettings:
        env = os.environ if environ is None else environ
        prefix = _required(env, "JOB_NAME_PREFIX")
        if not ENDPOINT_NAME_PATTERN.match(prefix) or len(prefix) > 32:
            raise SettingsError(f"JOB_NAME_PREFIX={prefix!r} must be 1-32 lower-case letters, digits and hyphens")
        endpoint_name = _required(env, "ENDPOINT_NAME")
        if not ENDPOINT_NAME_PATTERN.match(endpoint_name) or len(endpoint_name) > 50:
            raise SettingsError(
                f"ENDPOINT_NAME={endpoint_name!r} must be 1-50 lower-case letters, digits and hyphens "
                "(model and endpoint-config names add a 12-character suffix to it)"
            )
        return cls(
            region=_required(env, "AWS_REGION"),
            bucket=_required(env, "BUCKET_NAME"),
            execution_role_arn=_required(env, "SAGEMAKER_EXECUTION_ROLE_ARN"),
            job_name_prefix=prefix,
            endpoint_name=endpoint_name,
        )


@dataclass(frozen=True)
class TrainingDefaults:
    instance_type: str
    instance_count: int
    max_runtime_seconds: int
    use_spot: bool
    code_dir: str = "/opt"
    use_debugger: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TrainingDefaults:
        env = os.environ if environ is None else environ
        return cls(
            instance_type=env.get("TRAINING_INSTANCE_TYPE", "ml.m5.2xlarge"),
            instance_count=_number(env, "TRAINING_INSTANCE_COUNT", int, 6, minimum=1),
            max_runtime_seconds=_number(env, "TRAINING_MAX_RUNTIME_SECONDS", int, 86400, minimum=60),
            use_spot=env.get("TRAINING_USE_SPOT", "false").strip().lower() == "true",
            code_dir=env.get("TRAINING_CODE_DIR", "/opt"),
            use_debugger=env.get("TRAINING_USE_DEBUGGER", "false").strip().lower() == "true",
        )


@dataclass(frozen=True)
class EndpointDefaults:
    instance_type: str
    instance_count: int
    data_capture_percent: int = 0  # 0: no capture
    canary_percent: int = 10
    bake_seconds: int = 600
    rollback_alarms: tuple[str, ...] = ()  # none: updates are plain blue/green, without guardrails

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> EndpointDefaults:
        env = os.environ if environ is None else environ
        defaults = cls(
            instance_type=env.get("ENDPOINT_INSTANCE_TYPE", "ml.m5.large"),
            instance_count=_number(env, "ENDPOINT_INSTANCE_COUNT", int, 1, minimum=1),
            data_capture_percent=_number(env, "DATA_CAPTURE_PERCENT", int, 0, minimum=0),
            canary_percent=_number(env, "ROLLOUT_CANARY_PERCENT", int, 10, minimum=1),
            bake_seconds=_number(env, "ROLLOUT_BAKE_SECONDS", int, 600, minimum=0),
            rollback_alarms=tuple(name for name in env.get("ROLLBACK_ALARM_NAMES", "").split(",") if name.strip()),
        )
        if defaults.data_capture_percent > 100 or defaults.canary_percent > 50 or defaults.bake_seconds > 3600:
            raise SettingsError(
                "DATA_CAPTURE_PERCENT must be 0-100, ROLLOUT_CANARY_PERCENT 1-50 and ROLLOUT_BAKE_SECONDS 0-3600"
            )
        return defaults


@dataclass(frozen=True)
class ScalingDefaults:
    """Target tracking on SageMakerVariantInvocationsPerInstance: invocations per instance PER MINUTE."""

    min_capacity: int
    max_capacity: int
    target_invocations_per_instance_per_minute: float
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ScalingDefaults:
        env = os.environ if environ is None else environ
        return cls(
            min_capacity=_number(env, "SCALING_MIN_CAPACITY", int, 1, minimum=1),
            max_capacity=_number(env, "SCALING_MAX_CAPACITY", int, 3, minimum=1),
            target_invocations_per_instance_per_minute=_number(
                env, "SCALING_TARGET_INVOCATIONS", float, 15.0, minimum=0.01
            ),
            scale_in_cooldown_seconds=_number(env, "SCALING_SCALE_IN_COOLDOWN_SECONDS", int, 30, minimum=0),
            scale_out_cooldown_seconds=_number(env, "SCALING_SCALE_OUT_COOLDOWN_SECONDS", int, 30, minimum=0),
        )


# Control-plane calls are rare and may be slow; they get more time and one more attempt than predictions.
CONTROL_PLANE_TIMEOUTS = ClientTimeouts(connect_seconds=5.0, read_seconds=30.0, max_attempts=3)


@dataclass(frozen=True)
class GateSettings:
    """The release gate: a candidate needs this test accuracy, and may lose at most this much to the serving model."""

    minimum_test_accuracy: float
    maximum_accuracy_regression: float

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> GateSettings:
        env = os.environ if environ is None else environ
        settings = cls(
            minimum_test_accuracy=_number(env, "GATE_MINIMUM_TEST_ACCURACY", float, 0.6, minimum=0.0),
            maximum_accuracy_regression=_number(env, "GATE_MAXIMUM_ACCURACY_REGRESSION", float, 0.02, minimum=0.0),
        )
        if settings.minimum_test_accuracy > 1 or settings.maximum_accuracy_regression > 1:
            raise SettingsError(
                "GATE_MINIMUM_TEST_ACCURACY and GATE_MAXIMUM_ACCURACY_REGRESSION are fractions from 0 to 1"
            )
        return settings
