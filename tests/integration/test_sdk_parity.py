"""The start-training function's CreateTrainingJob request equals the SageMaker SDK 2.x estimator's.

Both requests are captured from boto3 as they are sent to the control plane (moto on loopback): the
SDK's from ``launchers.estimator`` for the same configuration, the function's as template.yaml wires it.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from offline_stack.lambda_invoker import LambdaFunction
from offline_stack.sam_template import SamTemplate
from offline_stack.sample_events import OFFLINE_BUCKET, SAMPLE_SOURCE
from tests.support.control_plane import EXECUTION_ROLE_ARN, seed_control_plane

HYPERPARAMETERS = {"epochs": 5, "learning-rate": 0.01}


def sdk_config_without_telemetry(directory: Path) -> Path:
    """The SDK's telemetry would call a public host: opt out through its own config file."""
    config = directory / "sagemaker-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    return config


def _capture(client, into: list) -> None:
    client.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **kwargs: into.append(dict(params))
    )


@pytest.fixture(scope="module", params=[False, True], ids=["debugger-off", "debugger-on"])
def captured_requests(request, control_plane_server, tmp_path_factory):
    """(SDK request, function request) for the same configuration, with Debugger off and on."""
    use_debugger = request.param
    control_plane_server.reset()
    seed_control_plane(control_plane_server)
    config = sdk_config_without_telemetry(tmp_path_factory.mktemp("sdk"))
    environment = {
        **control_plane_server.environment(),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        import sagemaker
        from launchers.estimator import build_estimator, training_inputs

        boto_session = boto3.Session(region_name="us-east-1")
        client = boto_session.client("sagemaker")
        sdk: list[dict] = []
        _capture(client, sdk)
        session = sagemaker.Session(boto_session=boto_session, sagemaker_client=client, default_bucket=OFFLINE_BUCKET)
        # A copy: the SDK adds its sagemaker_* entries to the dict it is given
        estimator = build_estimator(
            session,
            EXECUTION_ROLE_ARN,
            OFFLINE_BUCKET,
            SAMPLE_SOURCE,
            dict(HYPERPARAMETERS),
            use_debugger=use_debugger,
            output_kms_key=SamTemplate.load().arn("ArtifactsKey"),  # the stack's ArtifactsKeyArn output
        )
        estimator.fit(training_inputs(OFFLINE_BUCKET, HYPERPARAMETERS), wait=False, logs=False)
    ours: list[dict] = []
    with LambdaFunction("StartTrainingFunction", environment=control_plane_server.environment()) as function:
        _capture(function.module.sagemaker.client, ours)
        function.invoke(
            {"hyperparameters": HYPERPARAMETERS, "source_s3_uri": SAMPLE_SOURCE, "use_debugger": use_debugger}
        )
    return sdk[0], ours[0]


@pytest.fixture
def sdk_request(captured_requests):
    return captured_requests[0]


@pytest.fixture
def function_request(captured_requests):
    return captured_requests[1]


def test_image_instances_and_io_agree(sdk_request, function_request):
    for field in (
        "RoleArn",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "EnableNetworkIsolation",
    ):
        assert function_request[field] == sdk_request[field], field
    sdk_algorithm, function_algorithm = (
        sdk_request["AlgorithmSpecification"],
        function_request["AlgorithmSpecification"],
    )
    assert function_algorithm["TrainingImage"] == sdk_algorithm["TrainingImage"]
    assert function_algorithm["TrainingInputMode"] == sdk_algorithm["TrainingInputMode"]
    assert function_algorithm["MetricDefinitions"] == sdk_algorithm["MetricDefinitions"]


def test_hyperparameters_agree_but_for_the_job_name(sdk_request, function_request):
    sdk, ours = sdk_request["HyperParameters"], function_request["HyperParameters"]
    assert set(ours) == set(sdk)
    differing = {key for key in ours if ours[key] != sdk[key]}
    assert differing == {"sagemaker_job_name"}  # each request names its own job
    assert json.loads(ours["sagemaker_submit_directory"]) == "/opt/ml/input/data/code/sourcedir.tar.gz"


def test_the_job_runs_isolated_with_its_code_and_imagenet_weights_as_channels(function_request):
    assert function_request["EnableNetworkIsolation"] is True
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in function_request["InputDataConfig"]}
    assert channels == {
        "training": f"s3://{OFFLINE_BUCKET}/data/",
        "pretrained": f"s3://{OFFLINE_BUCKET}/pretrained/resnet50-11ad3fa6.pth",  # the defaults: resnet50, pretrained
        "code": SAMPLE_SOURCE,
    }


DEBUGGER_FIELDS = ("DebugHookConfig", "DebugRuleConfigurations", "ProfilerRuleConfigurations")


def test_debugger_is_asked_for_only_when_it_is_on(sdk_request, function_request):
    debugger_on = "DebugRuleConfigurations" in sdk_request
    for field in DEBUGGER_FIELDS:
        assert (field in function_request) == (field in sdk_request) == debugger_on, field
    assert function_request["ProfilerConfig"] == sdk_request["ProfilerConfig"]
    if not debugger_on:
        assert function_request["ProfilerConfig"] == {"DisableProfiler": True}


def test_debugger_rules_and_profiler_agree(sdk_request, function_request):
    if "DebugRuleConfigurations" not in sdk_request:  # Debugger off: neither asks for rules
        assert "DebugRuleConfigurations" not in function_request
        return
    for field in ("DebugRuleConfigurations", "ProfilerConfig"):
        assert function_request[field] == sdk_request[field], field
    # The SDK builds the hook's collections from a set: their order varies from run to run
    sdk_hook, our_hook = sdk_request["DebugHookConfig"], function_request["DebugHookConfig"]
    assert our_hook["S3OutputPath"] == sdk_hook["S3OutputPath"]
    by_name = lambda hook: sorted(hook["CollectionConfigurations"], key=lambda c: c["CollectionName"])  # noqa: E731
    assert by_name(our_hook) == by_name(sdk_hook)
    rule_names = [rule["RuleConfigurationName"] for rule in function_request["DebugRuleConfigurations"]]
    assert rule_names == ["VanishingGradient", "Overfit", "Overtraining", "PoorWeightInitialization"]
    assert function_request["ProfilerConfig"]["ProfilingIntervalInMilliseconds"] == 500
    assert [r["RuleParameters"] for r in function_request["ProfilerRuleConfigurations"]] == [
        r["RuleParameters"] for r in sdk_request["ProfilerRuleConfigurations"]
    ]


class _Captured(Exception):
    """Stops the SDK once its request is captured (moto's tuning API is not what is under test)."""


def _sdk_session(control_plane, tmp_path, monkeypatch):
    """The SDK's session on the control plane (telemetry off): (its sagemaker client, the session)."""
    config = sdk_config_without_telemetry(tmp_path)
    for name, value in {**control_plane.environment(), "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config)}.items():
        monkeypatch.setenv(name, value)
    import sagemaker

    boto_session = boto3.Session(region_name="us-east-1")
    client = boto_session.client("sagemaker")
    return client, sagemaker.Session(boto_session=boto_session, sagemaker_client=client, default_bucket=OFFLINE_BUCKET)


def test_the_tuner_searches_the_original_ranges_on_the_training_modules_loss(control_plane, tmp_path, monkeypatch):
    client, session = _sdk_session(control_plane, tmp_path, monkeypatch)
    from launchers.estimator import build_estimator
    from launchers.hpo import build_tuner

    from breed_classifier.metrics import METRIC_DEFINITIONS

    captured: list[dict] = []

    def capture(params, **kwargs):
        captured.append(dict(params))
        raise _Captured

    client.meta.events.register("provide-client-params.sagemaker.CreateHyperParameterTuningJob", capture)
    estimator = build_estimator(session, EXECUTION_ROLE_ARN, OFFLINE_BUCKET, SAMPLE_SOURCE)
    with pytest.raises(_Captured):
        build_tuner(estimator, max_jobs=8, max_parallel_jobs=2, job_prefix="dog-breeds").fit(
            {"training": f"s3://{OFFLINE_BUCKET}/data/"}, wait=False
        )
    tuning = captured[0]["HyperParameterTuningJobConfig"]
    assert tuning["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "valid:loss"}
    ranges = tuning["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"][0] | {"ScalingType": "Auto"} == {
        "Name": "learning-rate",
        "MinValue": "0.001",
        "MaxValue": "0.1",
        "ScalingType": "Auto",
    }
    # Framework estimators JSON-encode categorical values; the training toolkit decodes them into --batch-size N
    (batch,) = ranges["CategoricalParameterRanges"]
    assert batch["Name"] == "batch-size"
    assert [json.loads(value) for value in batch["Values"]] == ["32", "64", "128", "256"]
    assert tuning["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 2}
    definition = captured[0]["TrainingJobDefinition"]
    objective = [d for d in definition["AlgorithmSpecification"]["MetricDefinitions"] if d["Name"] == "valid:loss"]
    assert objective == [d for d in METRIC_DEFINITIONS if d["Name"] == "valid:loss"]


def test_each_spot_run_of_the_sdk_launcher_checkpoints_under_its_own_job_name(control_plane, tmp_path, monkeypatch):
    # One checkpoint prefix for every run let a later spot run resume an earlier run's weights
    client, session = _sdk_session(control_plane, tmp_path, monkeypatch)
    import sagemaker
    from launchers.estimator import build_estimator

    sent: list[dict] = []
    _capture(client, sent)
    jobs = [sagemaker.utils.name_from_base(f"dog-breeds-{run}") for run in ("first", "later")]
    for job in jobs:
        estimator = build_estimator(
            session, EXECUTION_ROLE_ARN, OFFLINE_BUCKET, SAMPLE_SOURCE, use_spot=True, run_name=job
        )
        estimator.fit({"training": f"s3://{OFFLINE_BUCKET}/data/"}, job_name=job, wait=False, logs=False)
    uris = [request["CheckpointConfig"]["S3Uri"] for request in sent]
    assert uris == [f"s3://{OFFLINE_BUCKET}/checkpoints/{job}" for job in jobs] and uris[0] != uris[1]
    with pytest.raises(ValueError, match="run_name"):
        build_estimator(session, EXECUTION_ROLE_ARN, OFFLINE_BUCKET, SAMPLE_SOURCE, use_spot=True)
