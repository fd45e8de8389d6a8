"""The release pipeline's workflow: linted, pinned, least-privileged, thin, and read as GitHub and AWS would run it.

The plan (``offline_stack/pipeline_plan.py``) gives every job the identity GitHub and AWS would give it and passes
files between jobs only as artifacts; each mistake the issue found in the first real release is made here on a
copy of the workflow (or of the template) and must be refused with GitHub's or AWS's own words.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from offline_stack.aws_rules.github import NO_ID_TOKEN
from offline_stack.pipeline_plan import WORKFLOW, ordered_jobs, plan_workflow, workflow_steps
from offline_stack.pipeline_rehearsal import TARGETS
from offline_stack.sam_template import PROJECT_ROOT, TEMPLATE_PATH

WORKFLOWS = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
TEXT = WORKFLOW.read_text()
DOCUMENT = yaml.safe_load(TEXT)
JOBS = DOCUMENT["jobs"]
PLAN = plan_workflow()


def _makefile_targets() -> set[str]:
    text = (PROJECT_ROOT / "Makefile").read_text()
    return {match.group(1) for match in re.finditer(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE)}


def _refusals(tmp_path: Path, old: str, new: str, count: int = 1) -> list[str]:
    """The plan of the workflow with ``old`` replaced by ``new`` (which must be there)."""
    assert TEXT.count(old) >= count, f"the workflow no longer has {old!r}: update this test"
    changed = tmp_path / "pipeline.yaml"
    changed.write_text(TEXT.replace(old, new, count))
    return plan_workflow(changed).refusals


def test_actionlint_reports_nothing():
    result = subprocess.run([BIN / "actionlint", *WORKFLOWS], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_reports_nothing_even_pedantic():
    result = subprocess.run(
        [BIN / "zizmor", "--offline", "--persona", "pedantic", "--no-progress", *WORKFLOWS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "No findings" in result.stdout, result.stdout + result.stderr


def test_every_action_is_pinned_by_a_full_commit_sha_with_its_version_named():
    uses = re.findall(r"uses:\s*(\S+)(.*)", TEXT)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.search(r"#\s*v\d", comment), f"{action}: say which version the SHA is"


def test_no_permission_by_default_and_oidc_only_where_a_role_is_assumed():
    assert DOCUMENT["permissions"] == {}
    for name, job in JOBS.items():
        assumes = any("configure-aws-credentials" in step.get("uses", "") for step in job["steps"])
        expected = {"contents": "read", "id-token": "write"} if assumes else {"contents": "read"}
        assert job["permissions"] == expected, name


def test_the_workflow_as_it_stands_is_refused_nothing():
    assert PLAN.refusals == []
    ran = {
        (job.run, job.name): job.identity.identity_set if job.identity else None
        for job in PLAN.jobs
        if job.result == "success"
    }
    assert ran == {
        ("push to main", "test"): None,
        ("push to main", "deploy-testing"): "testing",
        ("push to main", "deploy-prod"): "prod",
        ("push to feature/rehearsal", "test"): None,
        ("push to feature/rehearsal", "deploy-feature"): "feature",
        ("feature/rehearsal deleted", "delete-feature"): "feature",
    }


def test_every_step_is_a_make_target_the_makefile_has_and_the_rehearsal_runs():
    steps = workflow_steps()
    assert steps
    assert {step.target for step in steps} <= _makefile_targets()
    unrehearsed = {step.target for step in steps} - set(TARGETS)
    assert not unrehearsed, f"make pipeline-rehearsal cannot run {unrehearsed}: add them to its TARGETS"


def test_prod_is_touched_only_by_the_approved_job():
    prod = JOBS["deploy-prod"]
    assert prod["environment"] == "prod" and prod["needs"] == ["deploy-testing"]
    order = ordered_jobs(DOCUMENT)
    assert order.index("deploy-testing") < order.index("deploy-prod")
    for step in workflow_steps():
        if step.stage == "prod":
            assert step.job == "deploy-prod", f"{step.command} runs in {step.job}, before the approval"


def test_one_concurrency_group_per_stage_holds_it_from_deploy_to_export():
    groups = {}
    for name, job in JOBS.items():
        targets = {step.target for step in workflow_steps() if step.job == name}
        if targets & {"deploy-stage", "promote-model", "destroy-stage", "integration-test", "train-stage"}:
            assert job["concurrency"]["cancel-in-progress"] is False, name
            groups[name] = job["concurrency"]["group"]
    assert groups["deploy-testing"] == "stage-testing" and groups["deploy-prod"] == "stage-prod"
    # deploy and tests of testing are one job: no other run can deploy testing in between
    testing = [step.target for step in workflow_steps() if step.job == "deploy-testing"]
    assert testing.index("deploy-stage") < testing.index("integration-test")


def test_prods_candidate_is_read_from_testings_registry_as_its_reader_never_carried_by_an_artifact():
    (prod,) = [job for job in PLAN.jobs if job.name == "deploy-prod" and job.result == "success"]
    by_target = {(step.target, step.stage): step for step in prod.steps}
    export, promote = by_target[("export-model", "testing")], by_target[("promote-model", "prod")]
    # the export runs as testing's read-only registry reader, the promotion as prod's pipeline role
    assert export.identity.identity_set == "testing-registry-reader"
    assert promote.identity.identity_set == "prod"
    assert prod.steps.index(export) < prod.steps.index(promote)
    # and no job hands a model to another: only the built application travels
    uploads = [step for job in JOBS.values() for step in job["steps"] if "upload-artifact" in step.get("uses", "")]
    assert [step["with"]["name"] for step in uploads] == ["built-application"]


def test_every_job_has_a_timeout_and_pull_requests_run_tests_without_credentials():
    assert all("timeout-minutes" in job for job in JOBS.values())
    triggers = DOCUMENT[True] if True in DOCUMENT else DOCUMENT["on"]  # PyYAML reads the key `on` as True
    assert "pull_request" in triggers and "docs/**" in triggers["push"]["paths-ignore"]
    assert "id-token" not in JOBS["test"]["permissions"]


def test_the_release_order_is_the_one_the_issue_asks_for():
    # build -> package -> deploy testing -> (train) -> integration tests -> export -> [approval] -> package prod ->
    # deploy prod -> promote -> integration tests -> (feature) deploy -> ... -> destroy the feature stack
    sequence = [(step.target, step.stage, bool(step.branch)) for step in workflow_steps()]
    milestones = [
        ("build", "testing", False),
        ("package", "testing", False),
        ("deploy-stage", "testing", False),
        ("train-stage", "testing", False),
        ("integration-test", "testing", False),
        ("export-model", "testing", False),
        ("package", "prod", False),
        ("record-release", "prod", False),
        ("deploy-stage", "prod", False),
        ("promote-model", "prod", False),
        ("integration-test", "prod", False),
        ("deploy-stage", "testing", True),
        ("promote-model", "testing", True),
        ("integration-test", "testing", True),
        ("destroy-stage", "testing", True),
    ]
    positions = [sequence.index(milestone) for milestone in milestones]
    assert positions == sorted(positions), list(zip(milestones, positions, strict=True))


def test_a_failed_prod_release_rolls_prod_back_and_only_then():
    (prod,) = [job for job in PLAN.jobs if job.name == "deploy-prod" and job.result == "success"]
    assert [step.command for step in prod.on_failure] == ["make rollback-stage STAGE=prod"]
    assert "rollback-stage" not in [step.target for step in prod.steps]
    targets = [step.target for step in prod.steps]
    assert targets.index("record-release") < targets.index("deploy-stage")


def test_a_run_step_that_is_not_a_make_target_is_refused(tmp_path):
    broken = tmp_path / "pipeline.yaml"
    broken.write_text(TEXT.replace("- run: make lint", "- run: ./scripts/lint.sh"))
    with pytest.raises(ValueError, match="every step of the pipeline is a make target"):
        workflow_steps(broken)


# --- each way the first real release failed or could be abused, refused as GitHub or AWS refuses it -------------


def test_a_job_that_loses_its_environment_is_refused_by_the_prod_roles_trust(tmp_path):
    refusals = _refusals(tmp_path, "    environment: prod\n", "")
    assert refusals == [
        "[push to main] deploy-prod: Could not assume role with OIDC: Not authorized to perform "
        "sts:AssumeRoleWithWebIdentity (token subject 'repo:octo-org/dog-breed-classifier:ref:refs/heads/main', "
        "audience 'sts.amazonaws.com')"
    ]


def test_a_job_that_gains_an_environment_is_refused_by_its_roles_trust(tmp_path):
    refusals = _refusals(tmp_path, "    timeout-minutes: 230\n", "    environment: testing\n    timeout-minutes: 230\n")
    assert len(refusals) == 1 and "Not authorized to perform sts:AssumeRoleWithWebIdentity" in refusals[0]
    assert "environment:testing" in refusals[0]


def test_a_feature_branch_cannot_take_prod_or_testing_credentials(tmp_path):
    feature = "role-to-assume: ${{ vars.FEATURE_PIPELINE_EXECUTION_ROLE }}"
    prod = _refusals(tmp_path, feature, "role-to-assume: ${{ vars.PROD_PIPELINE_EXECUTION_ROLE }}")
    assert "ref:refs/heads/feature/rehearsal" in prod[0] and "Not authorized" in prod[0]
    testing = _refusals(tmp_path, feature, "role-to-assume: ${{ vars.TESTING_PIPELINE_EXECUTION_ROLE }}")
    assert "[push to feature/rehearsal] deploy-feature: Could not assume role with OIDC" in testing[0]


def test_prod_credentials_before_the_approval_are_refused(tmp_path):
    # the old build-and-package job packaged for prod outside the prod environment
    refusals = _refusals(
        tmp_path, "${{ vars.TESTING_PIPELINE_EXECUTION_ROLE }}", "${{ vars.PROD_PIPELINE_EXECUTION_ROLE }}"
    )
    assert refusals[0].startswith("[push to main] deploy-testing: Could not assume role with OIDC")


def test_a_job_without_id_token_permission_gets_no_credentials(tmp_path):
    refusals = _refusals(
        tmp_path,
        "      id-token: write # OIDC: assume prod's pipeline execution role, no stored keys\n",
        "",
    )
    assert refusals == [f"[push to main] deploy-prod: {NO_ID_TOKEN}"]


def test_a_hidden_upload_without_include_hidden_files_uploads_nothing_and_fails(tmp_path):
    refusals = _refusals(
        tmp_path,
        "          path: .aws-sam/build/\n          include-hidden-files: true\n",
        "          path: .aws-sam/build/\n",
    )
    assert refusals == [
        "[push to main] deploy-testing: No files were found with the provided path: .aws-sam/build/. "
        "No artifacts will be uploaded."
    ]


def test_files_reach_another_job_only_as_an_artifact(tmp_path):
    # without the built application, prod's package step has nothing to package
    refusals = _refusals(
        tmp_path,
        "      - uses: actions/download-artifact@fa0a91b85d4f404e444e00e005971372dc801d16 # v4.1.8\n"
        "        with:\n          name: built-application\n          path: .aws-sam/build\n",
        "",
    )
    assert refusals == [
        "[push to main] deploy-prod: make package STAGE=prod: .aws-sam/build/template.yaml is not in this job's "
        "workspace (jobs share no files; only an artifact carries one from another job)"
    ]


def test_an_artifact_must_outlive_the_approval_it_waits_for(tmp_path):
    refusals = _refusals(tmp_path, "retention-days: 35 # an approval may wait 30 days", "retention-days: 7")
    assert refusals == [
        "[push to main] deploy-prod: artifact built-application expires after 7 days, but a job waiting for the "
        "prod environment's approval may wait 30 days"
    ]


def test_a_job_that_may_outlive_its_session_is_refused(tmp_path):
    refusals = _refusals(tmp_path, "    timeout-minutes: 170\n", "    timeout-minutes: 200\n")
    assert len(refusals) == 1 and refusals[0].startswith("[push to main] deploy-prod: ExpiredToken")
    assert "200 minutes" in refusals[0] and "10800 s" in refusals[0]
    # and a session longer than the role allows is STS's refusal
    longer = _refusals(tmp_path, "role-duration-seconds: 10800", "role-duration-seconds: 21600")
    assert "exceeds the MaxSessionDuration set for this role (14400)" in longer[0]


def test_the_pipeline_role_may_hand_a_stack_only_to_its_own_cloudformation_role(tmp_path):
    refusals = _refusals(
        tmp_path,
        "CLOUDFORMATION_ROLE: ${{ vars.FEATURE_CLOUDFORMATION_EXECUTION_ROLE }}",
        "CLOUDFORMATION_ROLE: ${{ vars.TESTING_CLOUDFORMATION_EXECUTION_ROLE }}",
    )
    assert refusals[0].startswith("[push to feature/rehearsal] deploy-feature: User: arn:aws:sts::")
    assert "is not authorized to perform: iam:PassRole on resource: " in refusals[0]


def test_a_template_role_without_the_boundary_fails_its_deploy(tmp_path):
    # Given a feature branch whose template adds a role with no permissions boundary
    template = tmp_path / "template.yaml"
    text = TEMPLATE_PATH.read_text()
    anchor = "  PageFunctionRole:\n"
    assert anchor in text
    template.write_text(
        text.replace(
            anchor,
            '  BranchRole:\n    Type: AWS::IAM::Role\n    Properties:\n      Path: !Sub "/${AWS::StackName}/"\n'
            '      AssumeRolePolicyDocument:\n        Version: "2012-10-17"\n        Statement:\n'
            '          - Effect: Allow\n            Principal: { AWS: "arn:aws:iam::210987654321:root" }\n'
            "            Action: sts:AssumeRole\n"
            "      Policies:\n        - PolicyName: all\n          PolicyDocument:\n"
            '            Statement: [{Effect: Allow, Action: "*", Resource: "*"}]\n\n' + anchor,
        )
    )
    # When the pipeline deploys it, CloudFormation's role refuses to create it (the rest of the template is fine),
    # in testing (and prod is not reached) and in a feature stack
    refusals = plan_workflow(template=template).refusals
    assert refusals == [
        f"[{run}] {job}: BranchRole: CREATE_FAILED: User: arn:aws:sts::123456789012:assumed-role/"
        f"dog-breed-pipeline-{identity}-CloudFormationExecutionRole-offline/AWSCloudFormation is not authorized to "
        f"perform: iam:CreateRole on resource: arn:aws:iam::123456789012:role/{stack}/{stack}-BranchRole because no "
        "identity-based policy allows the iam:CreateRole action"
        for run, job, identity, stack in (
            ("push to main", "deploy-testing", "testing", "dog-breed-classifier-testing"),
            ("push to feature/rehearsal", "deploy-feature", "feature", "dog-breeds-feature-rehearsal-5184e3"),
        )
    ]


def test_the_rehearsal_stops_before_starting_anything_when_a_job_would_be_refused(tmp_path, capsys):
    from offline_stack.pipeline_rehearsal import main

    changed = tmp_path / "pipeline.yaml"
    changed.write_text(TEXT.replace("    environment: prod\n", ""))
    assert main(["--workflow", str(changed), "--work-dir", str(tmp_path / "run")]) == 1
    printed = capsys.readouterr().out
    assert "FAILED: GitHub or AWS would refuse:" in printed
    assert "deploy-prod: Could not assume role with OIDC: Not authorized to perform" in printed
    assert not (tmp_path / "run" / "stages").exists()  # no stage was started


def test_a_key_tagged_for_another_stages_stack_is_refused_at_creation(tmp_path):
    # Given a branch whose template tags the artifacts key with prod's stack name (to manage prod's keys later)
    template = tmp_path / "template.yaml"
    text = TEMPLATE_PATH.read_text()
    anchor = "          Value: !Ref AWS::StackName\n"
    assert text.count(anchor) == 1
    template.write_text(text.replace(anchor, "          Value: dog-breed-classifier-prod\n"))
    # When the pipeline deploys it, CloudFormation's role may not create a key so tagged, in testing and a feature
    refusals = plan_workflow(template=template).refusals
    assert [refusal.split(": CREATE_FAILED: ")[0] for refusal in refusals] == [
        "[push to main] deploy-testing: ArtifactsKey",
        "[push to feature/rehearsal] deploy-feature: ArtifactsKey",
    ]
    assert all("is not authorized to perform: kms:CreateKey on resource: *" in refusal for refusal in refusals)
