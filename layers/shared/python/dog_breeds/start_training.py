"""Start a SageMaker training job: the same request the SageMaker Python SDK 2.x estimator sends.

Script mode on AWS's PyTorch training image, every host running ``train.py`` (on CPU instances the
SDK's ``distribution`` options do not apply; the script forms the process group from ``SM_HOSTS``),
metric definitions for the training module's metric lines, and optional managed spot training with
checkpoints. SageMaker Debugger is opt-in (``use_debugger``; it is closed to new customers since
2026-07-30, so an account that never used it cannot start a job that asks for it): when on, the
Debugger hook with the original notebook's four built-in rules and system profiling every 500 ms with
the ProfilerReport rule; when off, the request carries neither, and profiling is disabled as the SDK
does. Framework profiling is never configured: Debugger deprecated it for PyTorch 2.0 and later.

Every job runs with network isolation: no egress and no AWS credentials in the container, so code in it (a
tampered data set's loader, a compromised dependency) can reach nothing. SageMaker still downloads the channels
and uploads the outputs. So the code comes as the ``code`` channel (``/opt/ml/input/data/code/sourcedir.tar.gz``,
as the SDK sends it under isolation), ImageNet weights as the ``pretrained`` channel, and nothing is installed at
container start (source: SageMaker developer guide, "Run training and inference containers in internet-free mode").

tests/integration/test_sdk_parity.py compares this request field by field with the SDK's.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dog_breeds.aws_names import INSTANCE_TYPE, tags
from dog_breeds.container_images import DEBUGGER_RULES_IMAGE, TRAINING_IMAGE, UnsupportedRegionError, image_uri
from dog_breeds.control_events import boolean, deployment_specific, from_event, read_event, text_matching, whole_number
from dog_breeds.errors import InvalidEventError, ResourceExistsError
from dog_breeds.ports import AwsDocument, TrainingJobs
from dog_breeds.settings import ControlPlaneSettings, TrainingDefaults
from dog_breeds.training_code import CODE_PREFIX, SOURCE_FILE
from dog_breeds.volume_encryption import takes_volume_key

# The flags of training_jobs/train.py (checked equal to breed_classifier.cli by a test).
HYPERPARAMETER_NAMES = (
    "epochs",
    "batch-size",
    "learning-rate",
    "patience",
    "architecture",
    "pretrained",
    "freeze-backbone",
    "image-size",
    "num-workers",
    "seed",
    "feature-cache",
    "cached-views",
    "dog-gate",
)
# The regexes of training_jobs/breed_classifier/metrics.py (checked equal by a test).
_NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
METRIC_DEFINITIONS = [
    {"Name": name, "Regex": rf"#metrics#(?: [^ ]+)*? {name.replace(':', '_')}={_NUMBER}"}
    for name in (
        "train:loss",
        "train:accuracy",
        "valid:loss",
        "valid:accuracy",
        "test:loss",
        "test:accuracy",
        "train:images_per_second",
        "train:step_seconds",
        "train:data_wait_seconds",
    )
]
DEBUGGER_RULES = ("VanishingGradient", "Overfit", "Overtraining", "PoorWeightInitialization")
# The tensors those rules read, saved every 500 steps (what the SDK configures for them).
DEBUG_COLLECTIONS = [
    {"CollectionName": "relu_input", "CollectionParameters": {"include_regex": ".*relu_input", "save_interval": "500"}},
    {"CollectionName": "gradients", "CollectionParameters": {"save_interval": "500"}},
]
SYSTEM_MONITOR_INTERVAL_MS = 500
ENTRY_POINT = "train.py"
DATA_PREFIX, OUTPUT_PREFIX, CHECKPOINT_PREFIX = "data/", "training-output", "checkpoints"
PRETRAINED_PREFIX = "pretrained/"
# Backbone features of frozen-backbone jobs, by a digest of what they depend on (breed_classifier.feature_cache)
FEATURE_CACHE_PREFIX = "feature-cache/"
# training_jobs/breed_classifier/model.py's PRETRAINED_WEIGHTS (checked equal by a test): the file each
# architecture's 'pretrained' channel holds, under s3://<bucket>/pretrained/ (make upload-weights puts it there).
PRETRAINED_WEIGHTS = {
    "resnet50": "resnet50-11ad3fa6.pth",
    "resnet18": "resnet18-f37072fd.pth",
    "efficientnet_lite0": "efficientnet-lite0-57934424.pth",
}
DEFAULT_ARCHITECTURE = "resnet50"  # breed_classifier.training.Hyperparameters' (checked equal by a test)
CODE_CHANNEL_SOURCE = f"/opt/ml/input/data/code/{SOURCE_FILE}"
_PREFIX = re.compile(r"(?!/)(?!.*\.\.)[A-Za-z0-9!_.*'()/-]{1,200}/")
# A Step Functions execution name (1-80 characters) or any caller's token of that shape
_IDEMPOTENCY_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,80}")
_SCALAR_TYPES = (str, int, float, bool)


def _hyperparameters(value) -> str | None:
    if not isinstance(value, dict):
        return f"must be an object with keys from {list(HYPERPARAMETER_NAMES)}"
    unknown = sorted(set(value) - set(HYPERPARAMETER_NAMES))
    if unknown:
        return f"unknown hyperparameter(s) {unknown}; accepted: {list(HYPERPARAMETER_NAMES)}"
    if not all(isinstance(v, _SCALAR_TYPES) for v in value.values()):
        return "values must be strings, numbers or booleans"
    return None


@dataclass(frozen=True, kw_only=True)
class TrainingJobRequest:
    """The start-training event (every field optional), with the training defaults for what it leaves out."""

    hyperparameters: dict[str, Any] = from_event(_hyperparameters, default_factory=dict)
    instance_type: str = from_event(text_matching(INSTANCE_TYPE, "a SageMaker instance type such as ml.m5.2xlarge"))
    instance_count: int = from_event(whole_number(1, 100))
    use_spot: bool = from_event(boolean)
    max_runtime_seconds: int = from_event(whole_number(60, 2_419_200))
    # None: the code deployed with the function (dog_breeds.training_code); else a .tar.gz in the bucket
    source_s3_uri: str | None = from_event(deployment_specific, None)
    data_prefix: str = from_event(text_matching(_PREFIX, "an S3 key prefix ending in '/', such as data/"), DATA_PREFIX)
    use_debugger: bool = from_event(boolean)
    # Compute the frozen backbone's features into the feature cache and train nothing (before tuning trials)
    extract_features: bool = from_event(boolean, False)
    # The same token names the same job: a retried start finds the job it started instead of starting another
    idempotency_token: str | None = from_event(
        text_matching(
            _IDEMPOTENCY_TOKEN, "1-80 letters, digits, '-', '_', '.' or ':' (a Step Functions execution name)"
        ),
        None,
    )


def read_training_event(event: Any, defaults: TrainingDefaults, bucket: str) -> TrainingJobRequest:
    """Validate a start-training event (every field optional) against the configured defaults."""
    source_pattern = re.compile(rf"s3://{re.escape(bucket)}/{CODE_PREFIX}[A-Za-z0-9._/-]+/{re.escape(SOURCE_FILE)}")
    in_bucket = text_matching(source_pattern, f"a {SOURCE_FILE} under s3://{bucket}/{CODE_PREFIX}<folder>/")
    return read_event(TrainingJobRequest, event or {}, defaults, checks={"source_s3_uri": in_bucket})


def training_job_name(prefix: str, now: datetime | None = None, token: str | None = None) -> str:
    """``<prefix>-YYYY-MM-DD-HH-MM-SS-<4 hex>``: unique, sortable, at most 57 characters."""
    now = now or datetime.now(UTC)
    return f"{prefix}-{now:%Y-%m-%d-%H-%M-%S}-{token or secrets.token_hex(2)}"


def idempotent_job_name(prefix: str, idempotency_token: str) -> str:
    """``<prefix>-run-<16 hex>``: the same for the same token (at most 53 characters)."""
    return f"{prefix}-run-{hashlib.sha256(idempotency_token.encode()).hexdigest()[:16]}"


# The SHA-256 of an extraction job's output, recorded on that job (SageMaker, not S3: no bucket writer can change it)
FEATURES_DIGEST_TAG = "dog-breeds:features-sha256"


@dataclass(frozen=True)
class FeatureCache:
    """Where a frozen-backbone job's features are kept (``folder``, under FEATURE_CACHE_PREFIX) and, on a hit, the
    extraction output the job gets as its ``features`` channel (``archive``, one key) and that object's SHA-256 as
    recorded on the extraction job (``sha256``; the job refuses other bytes)."""

    folder: str
    archive: str | None = None
    sha256: str | None = None

    @property
    def hit(self) -> bool:
        return self.archive is not None


def feature_cache_folder(hyperparameters: dict[str, Any], data: list[tuple[str, str, int]]) -> str | None:
    """The cache folder of a job with these hyperparameters on this data (its S3 objects' keys, ETags and sizes),
    or None when the job caches nothing (backbone trained, or ``feature-cache`` off). The job itself checks the
    features it is given against the backbone it loaded and the files it read, and computes them when they differ:
    this address only finds them."""
    if not caches_features(hyperparameters):
        return None
    address = {
        "architecture": hyperparameters.get("architecture", DEFAULT_ARCHITECTURE),
        "weights": pretrained_weights_file(hyperparameters) or "not pretrained",
        "image-size": hyperparameters.get("image-size", 224),
        "cached-views": hyperparameters.get("cached-views", 2),
        "seed": hyperparameters.get("seed", 42),
        "data": sorted(data),
    }
    digest = hashlib.sha256(json.dumps(address, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"{FEATURE_CACHE_PREFIX}{digest}/"


def caches_features(hyperparameters: dict[str, Any]) -> bool:
    """Whether a job with these hyperparameters caches its backbone's features (frozen, cache not off)."""
    return _truthy(hyperparameters.get("freeze-backbone", True)) and hyperparameters.get("feature-cache") != "off"


def _truthy(value: Any) -> bool:
    return value.strip().lower() in ("true", "1", "yes") if isinstance(value, str) else bool(value)


def create_training_job_request(
    request: TrainingJobRequest, settings: ControlPlaneSettings, job_name: str, cache: FeatureCache | None = None
) -> dict:
    """The ``CreateTrainingJob`` parameters for ``request`` (with its feature cache, when it has one)."""
    bucket, region = settings.bucket, settings.region
    output_path = f"s3://{bucket}/{OUTPUT_PREFIX}"
    if request.extract_features and cache is not None:  # the job's model.tar.gz is the features themselves
        output_path = f"s3://{bucket}/{cache.folder.rstrip('/')}"
    hyperparameters = {name: json.dumps(value) for name, value in request.hyperparameters.items()}
    if request.extract_features:
        hyperparameters["extract-features"] = json.dumps(True)
    if cache is not None and cache.hit:
        hyperparameters["features-sha256"] = json.dumps(cache.sha256)
    hyperparameters.update(
        {
            "sagemaker_program": json.dumps(ENTRY_POINT),
            "sagemaker_submit_directory": json.dumps(CODE_CHANNEL_SOURCE),
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": json.dumps(job_name),
            "sagemaker_region": json.dumps(region),
        }
    )
    stopping = {"MaxRuntimeInSeconds": request.max_runtime_seconds}
    job: AwsDocument = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri(TRAINING_IMAGE, region),
            "TrainingInputMode": "File",
            "EnableSageMakerMetricsTimeSeries": True,
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "RoleArn": settings.execution_role_arn,
        "InputDataConfig": [
            _channel("training", f"s3://{bucket}/{request.data_prefix}"),
            *_pretrained_channel(request.hyperparameters, bucket),
            _channel("code", request.source_s3_uri),
            *([_channel("features", f"s3://{bucket}/{cache.archive}")] if cache and cache.hit else []),
        ],
        # the model (or the features) written with the bucket's key, not the account's aws/s3 key
        "OutputDataConfig": {
            "S3OutputPath": output_path,
            **({"KmsKeyId": settings.artifacts_key_arn} if settings.artifacts_key_arn else {}),
        },
        "ResourceConfig": {
            "InstanceType": request.instance_type,
            "InstanceCount": request.instance_count,
            "VolumeSizeInGB": 30,
            # the ML storage volume with the stack's key too, where the instance type takes one
            **(
                {"VolumeKmsKeyId": settings.artifacts_key_arn}
                if settings.artifacts_key_arn and takes_volume_key(request.instance_type)
                else {}
            ),
        },
        "StoppingCondition": stopping,
        "HyperParameters": hyperparameters,
        "ProfilerConfig": {"DisableProfiler": True},
        "EnableNetworkIsolation": True,
        # Hosts of a multi-instance job exchange gradients: encrypted between them (the start-training role may
        # create no job without it: policies/start-training-function.json)
        "EnableInterContainerTrafficEncryption": True,
        "Tags": tags(launched_by="start-training"),
    }
    if request.use_debugger:
        job.update(_debugger_configuration(output_path, region))
    if request.use_spot:
        job["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = 2 * request.max_runtime_seconds
        job["CheckpointConfig"] = {"S3Uri": f"s3://{bucket}/{CHECKPOINT_PREFIX}/{job_name}"}
    return job


def _channel(name: str, s3_uri: str | None) -> dict:
    source = {"S3DataType": "S3Prefix", "S3Uri": s3_uri, "S3DataDistributionType": "FullyReplicated"}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}}


def pretrained_weights_file(hyperparameters: dict[str, Any]) -> str | None:
    """The ImageNet weights file a job with these hyperparameters starts from, if any (train.py's defaults:
    resnet50, pretrained)."""
    pretrained = hyperparameters.get("pretrained", True)
    if isinstance(pretrained, str):
        pretrained = pretrained.strip().lower() in ("true", "1", "yes")
    architecture = hyperparameters.get("architecture", DEFAULT_ARCHITECTURE)
    return PRETRAINED_WEIGHTS.get(architecture) if pretrained else None


def _pretrained_channel(hyperparameters: dict[str, Any], bucket: str) -> list[dict]:
    weights = pretrained_weights_file(hyperparameters)
    return [_channel("pretrained", f"s3://{bucket}/{PRETRAINED_PREFIX}{weights}")] if weights else []


def _debugger_configuration(output_path: str, region: str) -> dict:
    """The Debugger hook, its rules, and system profiling with the ProfilerReport rule."""
    configuration = {
        "DebugHookConfig": {"S3OutputPath": output_path, "CollectionConfigurations": DEBUG_COLLECTIONS},
        "ProfilerConfig": {
            "S3OutputPath": output_path,
            "DisableProfiler": False,
            "ProfilingIntervalInMilliseconds": SYSTEM_MONITOR_INTERVAL_MS,
        },
    }
    try:
        rules_image = image_uri(DEBUGGER_RULES_IMAGE, region)
    except UnsupportedRegionError:
        return configuration  # Debugger's rule containers are not published in every region
    configuration["DebugRuleConfigurations"] = [_rule(name, rules_image) for name in DEBUGGER_RULES]
    configuration["ProfilerRuleConfigurations"] = [_rule("ProfilerReport", rules_image)]
    return configuration


def start_training(
    sagemaker: TrainingJobs,
    request: TrainingJobRequest,
    settings: ControlPlaneSettings,
    deployed_code: Callable[[], str],
    list_objects: Callable[[str], list[tuple[str, str, int]]] | None = None,
    sha256_of: Callable[[str], str] | None = None,
) -> dict:
    """Create the job; return what the pipeline needs next.

    ``deployed_code`` stores the code deployed with the function and returns its S3 URI; it is called only
    when the event names no code of its own. With an ``idempotency_token`` the job's name is the token's, and a
    job of that name that exists already is the answer: Lambda and Step Functions retry an invocation whose
    answer was lost, and a second multi-instance job would cost as much as the first.

    ``list_objects(prefix)`` lists the bucket (key, ETag, size): a frozen-backbone job's features are looked for
    in the feature cache by what the data and hyperparameters are, and come in as its ``features`` channel when an
    earlier ``extract_features`` job put them there (``"feature_cache": "hit"``); else the job computes them
    itself, once (``"miss"``). A hit is an extraction job of this stack that completed and wrote that object; the
    object's SHA-256 is recorded on the job (tag ``FEATURES_DIGEST_TAG``) the first time a job is given it
    (``sha256_of(key)`` reads it then) and passed to every job as ``features-sha256``: a file changed later is
    refused by the job, and an object no extraction job of ours wrote is not a hit.
    """
    cache = _feature_cache(request, settings, sagemaker, list_objects, sha256_of)
    if request.extract_features and cache is None:
        raise InvalidEventError(
            "extract_features needs a frozen backbone with the feature cache on (freeze-backbone true, "
            f"feature-cache auto) and data under {DATA_PREFIX}"
        )
    if request.idempotency_token is None:
        job_name = training_job_name(settings.job_name_prefix)
    else:
        job_name = idempotent_job_name(settings.job_name_prefix, request.idempotency_token)
    started = sagemaker.describe_training_job(job_name) is None if request.idempotency_token else True
    if started:
        if request.source_s3_uri is None:
            request = replace(request, source_s3_uri=deployed_code())
        try:
            sagemaker.create_training_job(create_training_job_request(request, settings, job_name, cache))
        except ResourceExistsError:
            if request.idempotency_token is None:
                raise
            started = False  # a concurrent retry created it between the describe and the create
    output = cache.folder.rstrip("/") if request.extract_features and cache else OUTPUT_PREFIX
    return {
        "training_job_name": job_name,
        "started": started,
        "instance_count": request.instance_count,
        "model_artifacts": f"s3://{settings.bucket}/{output}/{job_name}/output/model.tar.gz",
        "feature_cache": _cache_outcome(request, cache),
    }


def _feature_cache(
    request: TrainingJobRequest, settings: ControlPlaneSettings, sagemaker: TrainingJobs, list_objects, sha256_of
) -> FeatureCache | None:
    # The training role reads data under DATA_PREFIX only: another prefix has no cache (nor data the job can read)
    if list_objects is None or not request.data_prefix.startswith(DATA_PREFIX):
        return None
    if not caches_features(request.hyperparameters):  # nothing to cache: the bucket is not listed
        return None
    folder = feature_cache_folder(request.hyperparameters, list_objects(request.data_prefix))
    if folder is None:
        return None
    if request.extract_features or sha256_of is None:
        return FeatureCache(folder)
    archives = sorted(key for key, _, _ in list_objects(folder) if key.endswith("/output/model.tar.gz"))
    for key in reversed(archives):  # the newest extraction first (job names carry their start time)
        digest = _extracted_digest(key, folder, settings, sagemaker, sha256_of)
        if digest is not None:
            return FeatureCache(folder, key, digest)
    return FeatureCache(folder)


def _extracted_digest(key: str, folder: str, settings: ControlPlaneSettings, sagemaker: TrainingJobs, sha256_of):
    """The recorded SHA-256 of ``key`` when an extraction job of this stack wrote it; None for any other object."""
    job_name = key.removeprefix(folder).split("/")[0]
    if not job_name.startswith(f"{settings.job_name_prefix}-"):
        return None
    job = sagemaker.describe_training_job(job_name)
    if (
        job is None
        or job.get("TrainingJobStatus") != "Completed"
        or job.get("ModelArtifacts", {}).get("S3ModelArtifacts") != f"s3://{settings.bucket}/{key}"
        or job.get("HyperParameters", {}).get("extract-features") != json.dumps(True)
    ):
        return None
    recorded = sagemaker.tags_of(job["TrainingJobArn"]).get(FEATURES_DIGEST_TAG)
    if recorded is None:
        recorded = sha256_of(key)
        sagemaker.tag(job["TrainingJobArn"], {FEATURES_DIGEST_TAG: recorded})
    return recorded


def _cache_outcome(request: TrainingJobRequest, cache: FeatureCache | None) -> str:
    if cache is None:
        return "none"
    if request.extract_features:
        return f"extracting into {cache.folder}"
    return f"hit {cache.folder}" if cache.hit else f"miss {cache.folder}"


def _rule(name: str, image: str) -> dict:
    return {"RuleConfigurationName": name, "RuleEvaluatorImage": image, "RuleParameters": {"rule_to_invoke": name}}
