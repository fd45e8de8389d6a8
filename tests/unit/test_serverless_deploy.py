"""The serverless endpoint kind: what the deploy function creates, refuses, and how it switches kind.

Against the in-memory ports (tests/support/fakes.py), which apply SageMaker's kind-change rule as the offline
control plane does (offline_stack/aws_rules/sagemaker.py). tests/integration/test_serverless_endpoint.py runs
the same through moto and a served container.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from dog_breeds.deploy_endpoint import read_retire_event, retire_endpoint, variant_resource_id
from dog_breeds.errors import EndpointBusyError, InvalidEventError
from dog_breeds.settings import (
    SERVERLESS_DECODE_BUDGET_PIXELS,
    SERVERLESS_MINIMUM_MEMORY_MB,
    EndpointDefaults,
    SettingsError,
)
from offline_stack.aws_rules.sagemaker import kind_change_refusal, serverless_config_refusal
from offline_stack.sam_template import SamTemplate
from tests.support.fakes import SETTINGS, FakeScaling
from tests.unit.test_deploy_and_scaling_states import PACKAGE, deploy, request, with_model

SERVERLESS = replace(SETTINGS, endpoint_kind="serverless")
SERVERLESS_NAME = "dog-breed-classifier-serverless"


def serverless_request(**changes):
    sizes = {"serverless_memory_mb": 3072, "serverless_max_concurrency": 5, "serverless_provisioned_concurrency": 0}
    return replace(request(), **{**sizes, **changes})


def test_the_serverless_endpoint_has_its_own_name_a_serverless_variant_and_a_model_without_isolation():
    sagemaker = with_model()
    result = deploy(sagemaker, FakeScaling(), serverless_request(), SERVERLESS)
    assert (result["endpoint_name"], result["endpoint_kind"], result["action"]) == (
        SERVERLESS_NAME,
        "serverless",
        "created",
    )
    config = sagemaker.endpoint_configs[result["endpoint_config_name"]]
    variant = config["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    assert "DataCaptureConfig" not in config
    model = next(arguments for operation, arguments in sagemaker.calls if operation == "create_model")
    assert model["EnableNetworkIsolation"] is False
    assert result["replaces"] is None


def test_provisioned_concurrency_is_sent_only_when_asked_for():
    sagemaker = with_model()
    result = deploy(sagemaker, FakeScaling(), serverless_request(serverless_provisioned_concurrency=2), SERVERLESS)
    variant = sagemaker.endpoint_configs[result["endpoint_config_name"]]["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 5, "ProvisionedConcurrency": 2}


def test_instance_endpoints_keep_isolation_and_their_names():
    sagemaker = with_model()
    result = deploy(sagemaker, FakeScaling(), request(), SETTINGS)
    model = next(arguments for operation, arguments in sagemaker.calls if operation == "create_model")
    assert result["endpoint_name"] == "dog-breed-classifier" and model["EnableNetworkIsolation"] is True
    # the same content gives the same names with either kind's settings
    again = deploy(with_model(), FakeScaling(), request(PACKAGE), SETTINGS)
    assert again["endpoint_config_name"] == result["endpoint_config_name"]


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"data_capture_percent": 10}, "serverless endpoints do not support data capture"),
        ({"serverless_memory_mb": 2500}, "must be one of 1024, 2048, 3072, 4096, 5120, 6144"),
        ({"serverless_provisioned_concurrency": 6}, "must not exceed SERVERLESS_MAX_CONCURRENCY=5"),
        # SageMaker takes 1024 and 2048, but the model's decode budget needs about 2 GB resident
        ({"serverless_memory_mb": 2048}, "less than the 3072 MB a serverless container needs to decode"),
        ({"serverless_memory_mb": 1024}, "set ServerlessMemorySizeMB to 3072, 4096, 5120 or 6144"),
    ],
)
def test_what_serverless_cannot_do_is_refused_before_anything_is_created(changes, refused):
    sagemaker = with_model()
    with pytest.raises(InvalidEventError, match=refused):
        deploy(sagemaker, FakeScaling(), serverless_request(**changes), SERVERLESS)
    assert sagemaker.writes() == []


def test_provisioned_concurrency_equal_to_the_maximum_is_accepted():
    sagemaker = with_model()
    deploy(sagemaker, FakeScaling(), serverless_request(serverless_provisioned_concurrency=5), SERVERLESS)
    assert "create_endpoint" in sagemaker.writes()


def test_the_stack_settings_refuse_serverless_with_data_capture_at_cold_start():
    environ = {"SAGEMAKER_ENDPOINT_ROLE_ARN": "arn:aws:iam::123456789012:role/r", "ENDPOINT_KIND": "serverless"}
    assert EndpointDefaults.from_environment(environ).serverless_memory_mb == 3072
    with pytest.raises(SettingsError, match="DataCapturePercent to 0"):
        EndpointDefaults.from_environment({**environ, "DATA_CAPTURE_PERCENT": "5"})
    # the same capture is fine for an instance endpoint
    assert EndpointDefaults.from_environment({**environ, "ENDPOINT_KIND": "instances", "DATA_CAPTURE_PERCENT": "5"})
    with pytest.raises(SettingsError, match="instances or serverless"):
        EndpointDefaults.from_environment({**environ, "ENDPOINT_KIND": "lambda"})


def test_switching_kind_creates_the_new_endpoint_beside_the_serving_one_and_names_it_replaced():
    sagemaker, scaling = with_model(), FakeScaling()
    deploy(sagemaker, scaling, request(), SETTINGS)
    sagemaker.endpoints["dog-breed-classifier"]["EndpointStatus"] = "InService"
    scaling.register_target(variant_resource_id("dog-breed-classifier"), 1, 3)
    sagemaker.calls.clear()
    result = deploy(sagemaker, scaling, serverless_request(), SERVERLESS)
    assert (result["action"], result["replaces"]) == ("created", "dog-breed-classifier")
    assert "delete_endpoint" not in sagemaker.writes() and "update_endpoint" not in sagemaker.writes()
    assert sagemaker.endpoints["dog-breed-classifier"]["EndpointStatus"] == "InService"  # still answering

    # the old one is retired only once the new one is InService, and its scaling target goes with it
    with pytest.raises(EndpointBusyError, match="keeps serving until it is InService"):
        retire_endpoint(sagemaker, scaling, "dog-breed-classifier", SERVERLESS)
    assert "dog-breed-classifier" in sagemaker.endpoints
    sagemaker.endpoints[SERVERLESS_NAME]["EndpointStatus"] = "InService"
    retired = retire_endpoint(sagemaker, scaling, "dog-breed-classifier", SERVERLESS)
    assert retired == {"retired": "dog-breed-classifier", "action": "deleted", "autoscaling_deregistered": True}
    assert "dog-breed-classifier" not in sagemaker.endpoints and scaling.targets == {}
    assert retire_endpoint(sagemaker, scaling, "dog-breed-classifier", SERVERLESS)["action"] == "already-gone"
    assert deploy(sagemaker, scaling, serverless_request(), SERVERLESS)["replaces"] is None


def test_retiring_never_touches_the_serving_endpoint_or_any_other():
    sagemaker = with_model()
    for name in (SERVERLESS_NAME, "someone-elses-endpoint"):
        with pytest.raises(InvalidEventError, match="'dog-breed-classifier' \\(the endpoint a kind switch replaces\\)"):
            retire_endpoint(sagemaker, FakeScaling(), name, SERVERLESS)
    assert sagemaker.writes() == []


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"model_package_arn": PACKAGE}, None),
        ({"retire_endpoint": "dog-breed-classifier"}, "dog-breed-classifier"),
    ],
)
def test_a_retire_event_is_told_apart_from_a_deploy_event(event, expected):
    assert read_retire_event(event) == expected


@pytest.mark.parametrize(
    "event", [{"retire_endpoint": 3}, {"retire_endpoint": "Bad_Name"}, {"retire_endpoint": "a", "x": 1}]
)
def test_a_malformed_retire_event_is_refused(event):
    with pytest.raises(InvalidEventError, match='{"retire_endpoint": "<endpoint name>"} and nothing else'):
        read_retire_event(event)


def test_sagemaker_refuses_an_update_across_kinds_and_serverless_configs_it_cannot_serve():
    instances = {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    serverless = {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
    # "You can convert a serverless endpoint to real-time, but ... you cannot roll it back to serverless"
    assert kind_change_refusal(instances, serverless) and kind_change_refusal(serverless, instances) is None
    assert kind_change_refusal(instances, instances) is None and kind_change_refusal(serverless, serverless) is None
    assert serverless_config_refusal(instances, {"EnableCapture": True}, True) is None  # not serverless: not this rule
    assert "DataCaptureConfig" in serverless_config_refusal(serverless, {"EnableCapture": True}, False)
    assert "Network isolation" in serverless_config_refusal(serverless, None, True)
    assert serverless_config_refusal(serverless, None, False) is None
    for maximum, provisioned, refused in (
        (0, None, True),
        (1, None, False),
        (200, None, False),
        (201, None, True),
        (5, 5, False),
        (5, 6, True),
        (5, 1, False),
        (5, 0, True),
    ):
        config = {"MemorySizeInMB": 2048, "MaxConcurrency": maximum}
        if provisioned is not None:
            config["ProvisionedConcurrency"] = provisioned
        assert bool(serverless_config_refusal({"ServerlessConfig": config}, None, False)) is refused


def test_a_serverless_endpoint_registers_no_scaling():
    from dog_breeds.register_autoscaling import ScalingRequest, register_autoscaling

    scaling = FakeScaling()
    scaling_request = ScalingRequest(1, 3, 15.0, 30, 30)
    result = register_autoscaling(scaling, SERVERLESS_NAME, scaling_request, "serverless")
    assert result["registered"] is False and "scales itself" in result["reason"]
    assert scaling.targets == {} and scaling.policies == {}
    assert register_autoscaling(scaling, "dog-breed-classifier", scaling_request, "instances")["registered"] is True
    assert list(scaling.targets) == [variant_resource_id("dog-breed-classifier")]


def test_the_memory_floor_follows_the_models_decode_budget():
    # Raising the model's pixel budget without measuring the memory again fails here
    import inference

    assert SERVERLESS_DECODE_BUDGET_PIXELS == inference.MAX_SOURCE_PIXELS
    memory = SamTemplate.load().document["Parameters"]["ServerlessMemorySizeMB"]
    assert min(memory["AllowedValues"]) == memory["MinValue"] == SERVERLESS_MINIMUM_MEMORY_MB


def test_a_serverless_model_runs_one_model_server_worker_and_an_instance_model_one_thread_per_worker():
    sagemaker = with_model()
    deploy(sagemaker, FakeScaling(), serverless_request(), SERVERLESS)
    model = next(arguments for operation, arguments in sagemaker.calls if operation == "create_model")
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_MODEL_SERVER_WORKERS"] == "1"
    assert "OMP_NUM_THREADS" not in model["PrimaryContainer"]["Environment"]
    instances = with_model()
    deploy(instances, FakeScaling(), request(), SETTINGS)
    model = next(arguments for operation, arguments in instances.calls if operation == "create_model")
    assert model["PrimaryContainer"]["Environment"]["OMP_NUM_THREADS"] == "1"
    assert "SAGEMAKER_MODEL_SERVER_WORKERS" not in model["PrimaryContainer"]["Environment"]
