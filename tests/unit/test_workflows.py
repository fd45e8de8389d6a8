"""The release pipeline's workflow: linted, pinned, least-privileged, thin, and rehearsable offline step for step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from offline_stack.pipeline_rehearsal import TARGETS, WORKFLOW, ordered_jobs, workflow_steps
from offline_stack.sam_template import PROJECT_ROOT

WORKFLOWS = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
DOCUMENT = yaml.safe_load(WORKFLOW.read_text())
JOBS = DOCUMENT["jobs"]


def _makefile_targets() -> set[str]:
    text = (PROJECT_ROOT / "Makefile").read_text()
    return {match.group(1) for match in re.finditer(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE)}


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
    uses = re.findall(r"uses:\s*(\S+)(.*)", WORKFLOW.read_text())
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


def test_every_step_is_a_make_target_the_makefile_has_and_the_rehearsal_runs():
    steps = workflow_steps()
    assert steps
    assert {step.target for step in steps} <= _makefile_targets()
    unrehearsed = {step.target for step in steps} - set(TARGETS)
    assert not unrehearsed, f"make pipeline-rehearsal cannot run {unrehearsed}: add them to its TARGETS"


def test_prod_waits_for_an_environment_approval_and_testing_to_pass():
    prod = JOBS["deploy-prod"]
    assert prod["environment"] == "prod"
    order = ordered_jobs(DOCUMENT)
    assert order.index("integration-test-testing") < order.index("deploy-prod")
    assert prod["needs"] == ["integration-test-testing"]


def test_no_two_runs_deploy_one_stage_at_once():
    for name, job in JOBS.items():
        targets = {step.target for step in workflow_steps() if step.job == name}
        if targets & {"deploy-stage", "promote-model", "destroy-stage", "integration-test"}:
            assert job["concurrency"]["cancel-in-progress"] is False, name
    assert JOBS["deploy-testing"]["concurrency"]["group"] == JOBS["integration-test-testing"]["concurrency"]["group"]


def test_the_release_order_is_the_one_the_issue_asks_for():
    # build -> package -> deploy testing -> integration tests -> export -> deploy prod -> promote -> integration tests
    # -> (feature) deploy -> ... -> destroy the feature stack
    sequence = [(step.target, step.stage, bool(step.branch)) for step in workflow_steps()]
    milestones = [
        ("build", "testing", False),
        ("package", "testing", False),
        ("package", "prod", False),
        ("deploy-stage", "testing", False),
        ("integration-test", "testing", False),
        ("export-model", "testing", False),
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


def test_a_run_step_that_is_not_a_make_target_is_refused(tmp_path):
    broken = tmp_path / "pipeline.yaml"
    broken.write_text(WORKFLOW.read_text().replace("- run: make lint", "- run: ./scripts/lint.sh"))
    with pytest.raises(ValueError, match="every step of the pipeline is a make target"):
        workflow_steps(broken)
