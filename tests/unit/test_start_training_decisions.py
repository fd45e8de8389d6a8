"""The start-training function's own decisions (dog_breeds/start_training.py), against the in-memory SageMaker of
tests/support/fakes.py: a retried start finds its job instead of starting a second, what a spot or Debugger job
asks SageMaker for, and which hyperparameters an event may carry."""

from __future__ import annotations

import re

import pytest

from dog_breeds import start_training as module
from dog_breeds.errors import InvalidEventError, ResourceExistsError
from dog_breeds.settings import TrainingDefaults
from dog_breeds.start_training import (
    HYPERPARAMETER_NAMES,
    idempotent_job_name,
    read_training_event,
    start_training,
    training_job_name,
)
from tests.support.fakes import SETTINGS, FakeSageMaker

CODE = "s3://dog-breeds-artifacts/code/training_jobs-abc/sourcedir.tar.gz"


def _start(event: dict, sagemaker: FakeSageMaker) -> dict:
    request = read_training_event(event, TrainingDefaults(), SETTINGS.bucket)
    return start_training(sagemaker, request, SETTINGS, lambda: CODE)


def _created(sagemaker: FakeSageMaker) -> list[dict]:
    return [arguments for operation, arguments in sagemaker.calls if operation == "create_training_job"]


def test_the_same_token_names_the_same_job_and_a_retry_starts_no_second_one():
    name = idempotent_job_name(SETTINGS.job_name_prefix, "execution-1")
    assert name == idempotent_job_name(SETTINGS.job_name_prefix, "execution-1")
    assert name != idempotent_job_name(SETTINGS.job_name_prefix, "execution-2")
    assert re.fullmatch(rf"{SETTINGS.job_name_prefix}-run-[0-9a-f]{{16}}", name)
    sagemaker = FakeSageMaker()
    first = _start({"idempotency_token": "execution-1"}, sagemaker)
    again = _start({"idempotency_token": "execution-1"}, sagemaker)
    assert first["training_job_name"] == again["training_job_name"] == name
    assert len(_created(sagemaker)) == 1 and first["started"] is True and again["started"] is False


def test_a_concurrent_retry_that_created_the_job_first_is_the_answer_not_an_error(monkeypatch):
    sagemaker = FakeSageMaker()

    def raced(request):
        raise ResourceExistsError("SageMaker CreateTrainingJob refused: ResourceInUse: exists")

    monkeypatch.setattr(sagemaker, "create_training_job", raced)
    assert _start({"idempotency_token": "execution-1"}, sagemaker)["started"] is False
    with pytest.raises(ResourceExistsError):  # without a token, a name clash is a real error
        _start({}, sagemaker)


def test_without_a_token_each_start_gets_a_new_name_and_the_deployed_code():
    sagemaker = FakeSageMaker()
    answer = _start({}, sagemaker)
    (job,) = _created(sagemaker)
    assert answer["training_job_name"] == job["TrainingJobName"]
    assert job["TrainingJobName"].startswith(f"{SETTINGS.job_name_prefix}-")
    assert any(channel["ChannelName"] == "code" for channel in job["InputDataConfig"])
    assert CODE in str(job["InputDataConfig"])
    assert training_job_name("p", token="t") == training_job_name("p", token="t")


def test_a_spot_job_waits_up_to_twice_its_runtime_and_checkpoints_under_its_own_name():
    sagemaker = FakeSageMaker()
    _start({"use_spot": True, "max_runtime_seconds": 3600}, sagemaker)
    (job,) = _created(sagemaker)
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert job["CheckpointConfig"]["S3Uri"].endswith(f"/{job['TrainingJobName']}")
    _start({"use_spot": False}, sagemaker)
    on_demand = _created(sagemaker)[-1]
    assert "EnableManagedSpotTraining" not in on_demand and "CheckpointConfig" not in on_demand
    assert "MaxWaitTimeInSeconds" not in on_demand["StoppingCondition"]


def test_debugger_asks_for_its_hook_profiler_and_rules_only_where_aws_publishes_them(monkeypatch):
    sagemaker = FakeSageMaker()
    _start({"use_debugger": True}, sagemaker)
    (job,) = _created(sagemaker)
    assert job["DebugHookConfig"]["S3OutputPath"] == job["ProfilerConfig"]["S3OutputPath"]
    assert job["ProfilerConfig"]["DisableProfiler"] is False
    assert [rule["RuleConfigurationName"] for rule in job["ProfilerRuleConfigurations"]] == ["ProfilerReport"]
    assert job["DebugRuleConfigurations"]
    for rule in job["DebugRuleConfigurations"]:
        assert rule["RuleParameters"] == {"rule_to_invoke": rule["RuleConfigurationName"]}

    def unpublished(name, region):
        raise module.UnsupportedRegionError(region)

    _start({"use_debugger": False}, sagemaker)
    assert "DebugHookConfig" not in _created(sagemaker)[-1]
    monkeypatch.setattr(module, "image_uri", unpublished)
    configuration = module._debugger_configuration("s3://b/out", "xx-nowhere-1")
    assert "DebugRuleConfigurations" not in configuration and "DebugHookConfig" in configuration


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ([1, 2], "must be an object with keys from"),
        ({"epochs": 3, "colour": "red"}, "unknown hyperparameter(s) ['colour']; accepted:"),
        ({"epochs": [3]}, "values must be strings, numbers or booleans"),
    ],
)
def test_hyperparameters_are_refused_saying_what_is_accepted(hyperparameters, message):
    with pytest.raises(InvalidEventError) as refused:
        read_training_event({"hyperparameters": hyperparameters}, TrainingDefaults(), SETTINGS.bucket)
    assert message in str(refused.value)
    if "accepted" in message:
        assert str(list(HYPERPARAMETER_NAMES)) in str(refused.value)
