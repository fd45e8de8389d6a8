"""Every state branch of deploy and scaling, against in-memory ports (moto cannot reach most of these states).

The same logic runs against moto in tests/integration/test_control_plane.py for the states moto has.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from dog_breeds.deploy_endpoint import VARIANT_NAME, DeployRequest, deploy_endpoint, read_deploy_event
from dog_breeds.errors import AwsRequestRefusedError, EndpointBusyError, InvalidEventError, ModelIntegrityError
from dog_breeds.register_autoscaling import METRIC, ScalingRequest, register_autoscaling
from dog_breeds.settings import EndpointDefaults
from tests.support.fakes import SETTINGS, FakeSageMaker, FakeScaling

JOB = "dog-breeds-2026-11-26-10-00-00-abcd"
# Approved versions' models, content-addressed (dog_breeds.model_store); the fake S3 below holds each key's bytes
MODEL_DATA = f"s3://dog-breeds-artifacts/models/sha256/{'a' * 64}/model.tar.gz"
NEWER = f"s3://dog-breeds-artifacts/models/sha256/{'b' * 64}/model.tar.gz"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/dog-breed-classifier/1"
ALARMS = ("dog-breed-classifier-model-failures", "dog-breed-classifier-latency-p99")
ENDPOINT_ROLE = "arn:aws:iam::123456789012:role/sagemaker-endpoint"


def with_model(**fake) -> FakeSageMaker:
    """SageMaker whose registry holds MODEL_DATA as the endpoint group's Approved version 1 (``PACKAGE``)."""
    sagemaker = FakeSageMaker(**fake)
    assert sagemaker.approved_package(MODEL_DATA) == PACKAGE
    return sagemaker


def stored_bytes_digest(url: str, overwritten: frozenset[str] = frozenset()) -> str:
    """The fake S3: a content-addressed key holds the bytes its name says, unless it was ``overwritten``."""
    return "0" * 64 if url in overwritten else url.rsplit("/", 2)[-2]


def deploy(sagemaker, scaling, deploy_request, settings, overwritten: frozenset[str] = frozenset()) -> dict:
    return deploy_endpoint(
        sagemaker, scaling, deploy_request, settings, lambda url: stored_bytes_digest(url, overwritten)
    )


def request(package: str = PACKAGE, alarms: tuple[str, ...] = ()) -> DeployRequest:
    defaults = EndpointDefaults()
    return DeployRequest(
        model_package_arn=package,
        instance_type="ml.m5.large",
        instance_count=1,
        inference_runtime=defaults.inference_runtime,
        data_capture_percent=0,
        canary_percent=defaults.canary_percent,
        bake_seconds=defaults.bake_seconds,
        rollback_alarms=alarms,
        serverless_memory_mb=defaults.serverless_memory_mb,
        serverless_max_concurrency=defaults.serverless_max_concurrency,
        serverless_provisioned_concurrency=defaults.serverless_provisioned_concurrency,
        role_arn=ENDPOINT_ROLE,
    )


def deployed(sagemaker: FakeSageMaker, status: str = "InService", alarms: tuple[str, ...] = ()) -> dict:
    """Deploy the approved model, then leave the endpoint in ``status`` with the write log cleared."""
    result = deploy(sagemaker, FakeScaling(), request(alarms=alarms), SETTINGS)
    sagemaker.endpoints[SETTINGS.endpoint_name]["EndpointStatus"] = status
    sagemaker.calls.clear()
    return result


def test_no_endpoint_yet_creates_model_config_and_endpoint_named_after_their_content():
    sagemaker = with_model()
    result = deploy(sagemaker, FakeScaling(), request(), SETTINGS)
    assert result["action"] == "created"
    assert sagemaker.writes() == ["create_model", "create_endpoint_config", "create_endpoint"]
    assert result["model_name"] == result["endpoint_config_name"] in sagemaker.endpoint_configs
    assert result["model_name"].startswith("dog-breed-classifier-") and result["model_data_url"] == MODEL_DATA
    variant = sagemaker.endpoint_configs[result["endpoint_config_name"]]["ProductionVariants"][0]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        VARIANT_NAME,
        "ml.m5.large",
        1,
    )


def test_the_model_runs_the_configured_runtime_with_one_thread_per_worker_and_a_new_runtime_is_a_new_model():
    sagemaker = with_model()
    first = deployed(sagemaker, "InService")
    environment = sagemaker.models[first["model_name"]]["PrimaryContainer"]["Environment"]
    assert (environment["INFERENCE_RUNTIME"], environment["OMP_NUM_THREADS"]) == ("torchscript", "1")
    reduced = replace(request(), inference_runtime="bf16")
    second = deploy(sagemaker, FakeScaling(), reduced, SETTINGS)
    assert second["action"] == "updated" and second["model_name"] != first["model_name"]
    assert sagemaker.models[second["model_name"]]["PrimaryContainer"]["Environment"]["INFERENCE_RUNTIME"] == "bf16"


def test_the_same_model_on_a_serving_endpoint_changes_nothing():
    sagemaker = with_model()
    first = deployed(sagemaker, "InService")
    again = deploy(sagemaker, FakeScaling(), request(), SETTINGS)
    assert again["action"] == "unchanged" and again["endpoint_config_name"] == first["endpoint_config_name"]
    assert sagemaker.writes() == []


@pytest.mark.parametrize("same_model", [True, False])
def test_a_failed_endpoint_is_deleted_not_updated_and_the_next_deploy_creates_it(same_model):
    # SageMaker accepts only DeleteEndpoint on a Failed endpoint (DescribeEndpoint, EndpointStatus)
    sagemaker = with_model()
    deployed(sagemaker, "Failed")
    package = PACKAGE if same_model else sagemaker.approved_package(NEWER)
    assert deploy(sagemaker, FakeScaling(), request(package), SETTINGS)["action"] == "deleted-failed"
    assert "update_endpoint" not in sagemaker.writes() and sagemaker.writes()[-1] == "delete_endpoint"
    assert SETTINGS.endpoint_name not in sagemaker.endpoints
    assert deploy(sagemaker, FakeScaling(), request(package), SETTINGS)["action"] == "created"


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"])
def test_a_busy_endpoint_is_left_alone_and_the_error_names_its_state(status):
    sagemaker = with_model()
    deployed(sagemaker, status)
    with pytest.raises(EndpointBusyError, match=f"is {status}; deploy again when it is InService"):
        deploy(sagemaker, FakeScaling(), request(sagemaker.approved_package(NEWER)), SETTINGS)
    assert "update_endpoint" not in sagemaker.writes()
    assert sagemaker.endpoints[SETTINGS.endpoint_name]["EndpointStatus"] == status


@pytest.mark.parametrize("status", ["InService", "OutOfService", "UpdateRollbackFailed"])
def test_a_new_model_updates_a_settled_endpoint_blue_green(status):
    # UpdateRollbackFailed: a mix of fleets serves, and SageMaker's remedy is another UpdateEndpoint
    sagemaker = with_model()
    first = deployed(sagemaker, status)
    result = deploy(sagemaker, FakeScaling(), request(sagemaker.approved_package(NEWER)), SETTINGS)
    assert result["action"] == "updated" and result["endpoint_config_name"] != first["endpoint_config_name"]
    assert sagemaker.writes() == ["create_model", "create_endpoint_config", "update_endpoint"]
    assert sagemaker.calls[-1][1] == (SETTINGS.endpoint_name, result["endpoint_config_name"], None)


@pytest.mark.parametrize(
    ("serving", "canary_percent", "expected"),
    [
        (4, 10, {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}),
        (10, 20, {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 2}}),
        (3, 50, {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}),
        (2, 10, {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}),
        # one instance: a canary would be the whole fleet (SageMaker wants at most half); all at once, same bake
        (1, 10, {"Type": "ALL_AT_ONCE"}),
    ],
)
def test_an_update_with_rollback_alarms_carries_a_canary_of_whole_instances_at_most_half_the_fleet(
    serving, canary_percent, expected
):
    sagemaker = with_model()
    deployed(sagemaker, "InService")
    sagemaker.set_instance_count(SETTINGS.endpoint_name, serving)  # auto-scaling moved it
    changed = replace(request(sagemaker.approved_package(NEWER), alarms=ALARMS), canary_percent=canary_percent)
    deploy(sagemaker, FakeScaling(), changed, SETTINGS)
    guardrails = sagemaker.calls[-1][1][2]
    routing = guardrails["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {**expected, "WaitIntervalInSeconds": changed.bake_seconds}
    assert routing.get("CanarySize", {"Value": 0})["Value"] <= serving / 2
    assert [alarm["AlarmName"] for alarm in guardrails["AutoRollbackConfiguration"]["Alarms"]] == list(ALARMS)


def test_an_instance_type_change_takes_the_variant_out_of_auto_scaling_first():
    # UpdateEndpoint fails when it changes the instance type of a variant registered for auto-scaling
    # (SageMaker developer guide, "Update endpoints that use auto scaling")
    sagemaker, scaling = with_model(), FakeScaling()
    deployed(sagemaker, "InService")
    register_autoscaling(scaling, SETTINGS.endpoint_name, SCALING)
    bigger = replace(request(), instance_type="ml.c5.xlarge")
    result = deploy(sagemaker, scaling, bigger, SETTINGS)
    assert (result["action"], result["autoscaling_deregistered"]) == ("updated", True)
    assert scaling.targets == {} and scaling.policies == {}


def test_a_new_model_on_the_same_instance_type_keeps_auto_scaling():
    sagemaker, scaling = with_model(), FakeScaling()
    deployed(sagemaker, "InService")
    register_autoscaling(scaling, SETTINGS.endpoint_name, SCALING)
    result = deploy(sagemaker, scaling, request(sagemaker.approved_package(NEWER)), SETTINGS)
    assert (result["action"], result["autoscaling_deregistered"]) == ("updated", False)
    assert len(scaling.targets) == 1 and len(scaling.policies) == 1


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"training_job_name": JOB}, "training_job_name and model_data_url are not accepted: deploys come from"),
        ({"model_data_url": MODEL_DATA}, "start the pipeline with its training_job_name"),
        ({}, "model_package_arn is missing"),
        ({"model_package_arn": "arn:aws:sagemaker:us-east-1:1:model/x"}, "a model package version ARN"),
    ],
)
def test_an_event_that_is_not_a_registry_version_is_refused_with_what_to_do_instead(event, expected):
    with pytest.raises(InvalidEventError, match=expected):
        read_deploy_event(event, EndpointDefaults(), SETTINGS.bucket)


def _another_groups_package(sagemaker: FakeSageMaker) -> str:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/someone-else/1"
    sagemaker.packages[arn] = {**sagemaker.packages[PACKAGE], "ModelPackageGroupName": "someone-else"}
    return arn


@pytest.mark.parametrize(
    ("version", "error", "expected"),
    [
        (
            lambda s: "arn:aws:sagemaker:us-east-1:123456789012:model-package/dog-breed-classifier/9",
            InvalidEventError,
            "is not a version of the dog-breed-classifier model package group",
        ),
        (_another_groups_package, InvalidEventError, "is not a version of the dog-breed-classifier"),
        (
            lambda s: s.approved_package(NEWER, status="PendingManualApproval"),
            InvalidEventError,
            "is PendingManualApproval; only an Approved version deploys",
        ),
        (lambda s: s.approved_package(NEWER, status="Rejected"), InvalidEventError, "is Rejected"),
        (
            lambda s: s.approved_package(f"s3://dog-breeds-artifacts/training-output/{JOB}/output/model.tar.gz"),
            InvalidEventError,
            "only content-addressed models deploy",
        ),
        (
            lambda s: s.approved_package(NEWER.replace("dog-breeds-artifacts", "elsewhere")),
            InvalidEventError,
            "only content-addressed models deploy",
        ),
        (lambda s: s.approved_package(NEWER, recorded="c" * 64), ModelIntegrityError, f"records sha256 {'c' * 64}"),
    ],
)
def test_a_version_that_is_not_approved_content_addressed_and_recorded_is_refused_before_anything_is_written(
    version, error, expected
):
    sagemaker = with_model()
    with pytest.raises(error, match=expected):
        deploy(sagemaker, FakeScaling(), request(version(sagemaker)), SETTINGS)
    assert sagemaker.writes() == []


def test_an_overwritten_model_object_is_refused_and_the_serving_endpoint_keeps_serving():
    """The key is write-once for every role of the stack; should anyone else overwrite it, the digest read before
    CreateModel differs and nothing is created (a new instance would download what the key holds now)."""
    sagemaker = with_model()
    first = deployed(sagemaker, "InService")
    newer = sagemaker.approved_package(NEWER)
    with pytest.raises(ModelIntegrityError, match="the object was overwritten; not deployed"):
        deploy(sagemaker, FakeScaling(), request(newer), SETTINGS, overwritten=frozenset({NEWER}))
    assert sagemaker.writes() == []
    assert sagemaker.endpoints[SETTINGS.endpoint_name]["EndpointConfigName"] == first["endpoint_config_name"]


def test_a_refused_write_stops_the_deploy_and_leaves_the_serving_endpoint_as_it_was():
    sagemaker = with_model(refuse={"create_endpoint_config"})
    deployed_before = with_model()
    first = deployed(deployed_before, "InService")
    sagemaker.endpoints = deployed_before.endpoints
    newer = sagemaker.approved_package(f"s3://dog-breeds-artifacts/models/sha256/{'c' * 64}/model.tar.gz")
    with pytest.raises(AwsRequestRefusedError, match="ResourceLimitExceeded"):
        deploy(sagemaker, FakeScaling(), request(newer), SETTINGS)
    assert sagemaker.endpoints[SETTINGS.endpoint_name]["EndpointConfigName"] == first["endpoint_config_name"]
    assert "update_endpoint" not in sagemaker.writes()


SCALING = ScalingRequest(
    min_capacity=1,
    max_capacity=3,
    target_invocations_per_instance_per_minute=15.0,
    scale_in_cooldown_seconds=30,
    scale_out_cooldown_seconds=30,
)
RESOURCE = f"endpoint/dog-breed-classifier/variant/{VARIANT_NAME}"


def test_scaling_registers_the_variant_then_tracks_invocations_per_instance_per_minute():
    scaling = FakeScaling()
    result = register_autoscaling(scaling, "dog-breed-classifier", SCALING)
    assert scaling.targets == {RESOURCE: (1, 3)}
    policy = scaling.policies[(RESOURCE, result["policy_name"])]
    assert policy["PredefinedMetricSpecification"] == {"PredefinedMetricType": METRIC}
    assert (policy["TargetValue"], policy["ScaleInCooldown"], policy["ScaleOutCooldown"]) == (15.0, 30, 30)


def test_scaling_again_with_new_bounds_replaces_them_and_keeps_one_policy():
    scaling = FakeScaling()
    register_autoscaling(scaling, "dog-breed-classifier", SCALING)
    wider = ScalingRequest(2, 6, 30.0, 60, 10)
    register_autoscaling(scaling, "dog-breed-classifier", wider)
    assert scaling.targets == {RESOURCE: (2, 6)}
    assert len(scaling.policies) == 1 and next(iter(scaling.policies.values()))["TargetValue"] == 30.0


def test_a_refused_registration_writes_no_policy():
    scaling = FakeScaling(refuse={"register_target"})
    with pytest.raises(AwsRequestRefusedError, match="register_scalable_target"):
        register_autoscaling(scaling, "dog-breed-classifier", SCALING)
    assert scaling.policies == {}


def test_the_model_runs_as_the_endpoints_own_role_without_network():
    sagemaker = with_model()
    deploy(sagemaker, FakeScaling(), request(), SETTINGS)
    (model,) = [arguments for name, arguments in sagemaker.calls if name == "create_model"]
    assert model["ExecutionRoleArn"] == ENDPOINT_ROLE != SETTINGS.execution_role_arn
    assert model["EnableNetworkIsolation"] is True


def test_the_deploy_function_will_not_start_without_the_endpoints_role():
    with pytest.raises(RuntimeError, match="SAGEMAKER_ENDPOINT_ROLE_ARN is required") as refused:
        EndpointDefaults.from_environment({})
    assert type(refused.value).__name__ == "SettingsError"


@pytest.mark.parametrize(
    ("bake_seconds", "timeout"), [(0, 1800), (600, 3000), (6300, 14400), (7000, 15800), (13500, 28800), (20000, 28800)]
)
def test_an_update_may_take_two_bakes_and_half_an_hour_within_what_sagemaker_accepts(bake_seconds, timeout):
    from dog_breeds.deploy_endpoint import deployment_config

    config = deployment_config(replace(request(alarms=ALARMS), bake_seconds=bake_seconds), instance_count=4)
    assert config is not None
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == timeout
    assert 600 <= timeout <= 28800  # SageMaker's bounds for the whole update (API reference, BlueGreenUpdatePolicy)


def test_data_capture_is_off_at_0_percent_and_captures_both_directions_otherwise():
    from dog_breeds.deploy_endpoint import DATA_CAPTURE_PREFIX, data_capture_config

    assert data_capture_config("bucket", 0) is None
    config = data_capture_config("bucket", 5)
    assert config == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 5,
        "DestinationS3Uri": f"s3://bucket/{DATA_CAPTURE_PREFIX}",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert data_capture_config("bucket", 5, key) == {**config, "KmsKeyId": key}  # people's photos: the stack's key
