"""The PyTorch estimator with the project's defaults: the SDK twin of the start-training function.

Same image, instance type and count, hyperparameters, Debugger settings (opt-in: Debugger is closed
to new customers since 2026-07-30), network isolation and channels as ``functions/start_training``; a test
compares the two CreateTrainingJob requests field by field, with Debugger off and on.
"""

from __future__ import annotations

from sagemaker.debugger import ProfilerConfig, ProfilerRule, Rule, rule_configs
from sagemaker.pytorch import PyTorch

from breed_classifier.metrics import METRIC_DEFINITIONS
from dog_breeds.start_training import PRETRAINED_PREFIX, pretrained_weights_file
from dog_breeds.volume_encryption import takes_volume_key

FRAMEWORK_VERSION, PY_VERSION = "2.8.0", "py312"
DEFAULT_INSTANCE_TYPE, DEFAULT_INSTANCE_COUNT = "ml.m5.2xlarge", 6
DEFAULT_MAX_RUN_SECONDS = 86400
DEFAULT_JOB_PREFIX = "dog-breeds"
SYSTEM_MONITOR_INTERVAL_MS = 500
TAGS = [{"Key": "project", "Value": "dog-breed-classifier"}, {"Key": "launched-by", "Value": "sdk-launcher"}]


def training_inputs(bucket: str, hyperparameters: dict | None = None) -> dict[str, str]:
    """The job's data channels: the data set, and the ImageNet weights its backbone starts from (if pretrained),
    chosen as the start-training function chooses them. The job runs with network isolation, so the weights cannot
    be downloaded: ``make upload-weights`` puts them under ``pretrained/``."""
    inputs = {"training": f"s3://{bucket}/data/"}
    weights = pretrained_weights_file(hyperparameters or {})
    if weights:
        inputs["pretrained"] = f"s3://{bucket}/{PRETRAINED_PREFIX}{weights}"
    return inputs


def debugger_rules() -> list:
    """The original notebook's built-in rules plus the profiler report (framework profiling is
    deprecated for PyTorch 2.0 and later, so only system metrics are collected)."""
    return [
        Rule.sagemaker(rule_configs.vanishing_gradient()),
        Rule.sagemaker(rule_configs.overfit()),
        Rule.sagemaker(rule_configs.overtraining()),
        Rule.sagemaker(rule_configs.poor_weight_initialization()),
        ProfilerRule.sagemaker(rule_configs.ProfilerReport()),
    ]


def _debugger_on() -> dict:
    return {
        "rules": debugger_rules(),
        "profiler_config": ProfilerConfig(system_monitor_interval_millis=SYSTEM_MONITOR_INTERVAL_MS),
    }


def build_estimator(
    session,
    role: str,
    bucket: str,
    source_s3_uri: str,
    hyperparameters: dict | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    instance_count: int = DEFAULT_INSTANCE_COUNT,
    use_spot: bool = False,
    max_run: int = DEFAULT_MAX_RUN_SECONDS,
    job_prefix: str = DEFAULT_JOB_PREFIX,
    use_debugger: bool = False,
    run_name: str | None = None,
    output_kms_key: str | None = None,
) -> PyTorch:
    """``run_name``: the job's (or tuning job's) name, which names its checkpoint prefix: a run never finds another
    run's checkpoint there (train.py also refuses one written by another job). ``output_kms_key``: the stack's
    ArtifactsKeyArn, which the model is written with (SageMaker would otherwise use the account's aws/s3 key), and
    the ML storage volume where the instance type takes a key."""
    if use_spot and not run_name:
        raise ValueError("spot training needs run_name: each run checkpoints under checkpoints/<run_name>/")
    spot = (
        {
            "use_spot_instances": True,
            "max_wait": 2 * max_run,
            "checkpoint_s3_uri": f"s3://{bucket}/checkpoints/{run_name}",
        }
        if use_spot
        else {}
    )
    return PyTorch(
        entry_point="train.py",
        source_dir=source_s3_uri,
        role=role,
        framework_version=FRAMEWORK_VERSION,
        py_version=PY_VERSION,
        instance_type=instance_type,
        instance_count=instance_count,
        hyperparameters=hyperparameters or {},
        output_path=f"s3://{bucket}/training-output",
        **({"output_kms_key": output_kms_key} if output_kms_key else {}),
        # the ML storage volume too, where the instance type takes a key (dog_breeds.volume_encryption)
        **({"volume_kms_key": output_kms_key} if output_kms_key and takes_volume_key(instance_type) else {}),
        metric_definitions=METRIC_DEFINITIONS,
        **(_debugger_on() if use_debugger else {"debugger_hook_config": False, "disable_profiler": True}),
        max_run=max_run,
        base_job_name=job_prefix,
        sagemaker_session=session,
        tags=TAGS,
        # no egress, no credentials in the container; the code comes as the 'code' channel (the SDK does that)
        enable_network_isolation=True,
        encrypt_inter_container_traffic=True,  # multi-host jobs exchange gradients: encrypted between hosts
        **spot,
    )
