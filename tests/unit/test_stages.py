"""A stage's samconfig environment and a feature branch's own stack (``ops/stages.py``): the names a branch gets
are valid where they are used (stack, endpoint, job prefix), distinct per branch, and never testing's."""

from __future__ import annotations

import re

import pytest

from ops.stages import FEATURE_STACK_PREFIX, feature_stack, main, read_stage

ENDPOINT_NAME = re.compile(r"[a-z0-9](-*[a-z0-9])*")


def test_a_stage_reads_its_stack_region_and_overrides():
    testing = read_stage("testing")
    assert (testing.stack_name, testing.region) == ("dog-breed-classifier-testing", "us-east-1")
    assert testing.parameter_overrides["EndpointName"] == "dog-breed-classifier-testing"
    assert testing.parameter_overrides["PredictReservedConcurrency"] == "none"
    assert read_stage("prod").stack_name == "dog-breed-classifier-prod"
    assert read_stage("testing", stack_name="dog-breeds-x-123456").stack_name == "dog-breeds-x-123456"


def test_an_unknown_stage_or_a_missing_environment_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown stage 'staging': samconfig.toml has testing, prod"):
        read_stage("staging")
    config = tmp_path / "samconfig.toml"
    config.write_text('version = 0.1\n[testing.global.parameters]\nstack_name = "t"\n')
    with pytest.raises(ValueError, match=r"has no \[prod\] environment"):
        read_stage("prod", samconfig=config)
    bare = read_stage("testing", samconfig=config)
    assert (bare.region, bare.parameter_overrides) == ("us-east-1", {})


@pytest.mark.parametrize(
    "branch",
    ["feature/Add-Serverless", "feature/" + "x" * 200, "feature/---", "feature/ünïcode_and spaces", "a"],
)
def test_a_feature_branch_gets_names_valid_as_a_stack_an_endpoint_and_a_job_prefix(branch):
    name, overrides = feature_stack(branch)
    assert name.startswith("dog-breeds-") and len(name) <= 50 and ENDPOINT_NAME.fullmatch(name)
    assert overrides["EndpointName"] == name
    prefix = overrides["JobNamePrefix"]
    assert prefix.startswith("dog-breeds-") and len(prefix) <= 32 and ENDPOINT_NAME.fullmatch(prefix)


def test_two_branches_that_read_alike_get_different_stacks():
    first, second = feature_stack("feature/A"), feature_stack("feature/a")
    assert first[0] != second[0] and first[1]["JobNamePrefix"] != second[1]["JobNamePrefix"]
    assert feature_stack("feature/a") == second  # the same branch, the same names, every run
    assert feature_stack("feature/add-x")[0].startswith("dog-breeds-feature-add-x-")


def test_a_branch_stack_uses_testings_configuration_under_its_own_names():
    stage = read_stage("testing", branch="feature/x")
    name, overrides = feature_stack("feature/x")
    assert stage.stack_name == name and stage.parameter_overrides["EndpointName"] == name
    assert stage.parameter_overrides["JobNamePrefix"] == overrides["JobNamePrefix"]
    assert stage.parameter_overrides["TrainingUseSpot"] == "true"  # testing's


def test_the_command_line_prints_what_make_reads(capsys):
    assert main(["stack-name", "--stage", "prod"]) == 0
    assert main(["region", "--stage", "prod"]) == 0
    assert main(["parameter-overrides", "--stage", "testing", "--branch", "feature/x"]) == 0
    stack, region, overrides = capsys.readouterr().out.splitlines()
    assert (stack, region) == ("dog-breed-classifier-prod", "us-east-1")
    assert f"EndpointName={feature_stack('feature/x')[0]}" in overrides.split()


def test_the_command_line_needs_a_stage(capsys):
    with pytest.raises(SystemExit) as refused:
        main(["stack-name"])
    assert refused.value.code == 2 and "--stage" in capsys.readouterr().err


def test_no_stages_names_start_with_anothers_or_with_the_feature_prefix():
    # The pipeline's identities are scoped by name prefix (pipeline/bootstrap.yaml): testing's CloudFormation role
    # may touch dog-breed-classifier-testing*, prod's dog-breed-classifier-prod*, the feature role dog-breeds-*.
    # A stage named so that another's prefix covers it would hand that stage's resources to the other identity.
    prefixes = {stage: read_stage(stage).stack_name for stage in ("testing", "prod")} | {
        "feature": FEATURE_STACK_PREFIX
    }
    for stage in ("testing", "prod"):
        overrides = read_stage(stage).parameter_overrides
        names = {read_stage(stage).stack_name, overrides["EndpointName"], overrides["JobNamePrefix"]}
        for other, prefix in prefixes.items():
            if other != stage:
                assert not any(name.startswith(prefix) for name in names), (stage, other, names)
        assert all(name.startswith(prefixes[stage]) for name in names), (stage, names)
    name, overrides = feature_stack("feature/x")
    assert all(value.startswith(FEATURE_STACK_PREFIX) for value in (name, *overrides.values()))


def test_the_key_users_the_workflow_sets_become_the_stacks_parameter(capsys, monkeypatch):
    # an unset repository variable is empty: its empty item is dropped, as are repeats
    role = "arn:aws:iam::123456789012:role/testing-PipelineExecutionRole-AbC"
    monkeypatch.setenv("ARTIFACTS_KEY_USERS", f"{role},,arn:aws:iam::123456789012:role/ops/uploader,{role},")
    assert main(["parameter-overrides", "--stage", "testing"]) == 0
    printed = capsys.readouterr().out
    assert f"ArtifactsKeyUserArns={role},arn:aws:iam::123456789012:role/ops/uploader" in printed.split()
    monkeypatch.setenv("ARTIFACTS_KEY_USERS", ",")
    assert main(["parameter-overrides", "--stage", "testing"]) == 0
    assert "ArtifactsKeyUserArns" not in capsys.readouterr().out  # nobody named: only the stack's own roles


@pytest.mark.parametrize(
    "listed",
    ["arn:aws:sts::123456789012:assumed-role/Admin/me", "Admin", "arn:aws:iam::123456789012:group/admins"],
)
def test_a_key_user_that_is_not_a_principals_arn_is_refused_with_what_is_accepted(capsys, monkeypatch, listed):
    monkeypatch.setenv("ARTIFACTS_KEY_USERS", listed)
    assert main(["parameter-overrides", "--stage", "testing"]) == 2
    error = capsys.readouterr().err
    assert f"ARTIFACTS_KEY_USERS: {listed!r} is not a principal's ARN" in error and "assumed-role session" in error
