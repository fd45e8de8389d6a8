"""`make pipeline-rehearsal` at its small budget: the workflow's jobs, each as the identity GitHub and AWS give it,
pass against offline stages from a fresh testing stage (it trains, gates, deploys and tests; prod then reads its
served model as testing's registry reader); and a pipeline role missing one statement fails the run with AWS's
refusal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from offline_stack.pipeline_plan import workflow_steps
from offline_stack.pipeline_rehearsal import OFFLINE_PATH, TARGETS
from offline_stack.sam_template import PROJECT_ROOT
from ops.bootstrap import BOOTSTRAP_TEMPLATE


def _rehearse(work_dir, *arguments):
    return subprocess.run(
        [sys.executable, "-m", "offline_stack.pipeline_rehearsal", "--work-dir", str(work_dir), *arguments],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": OFFLINE_PATH},  # as make pipeline-rehearsal runs it
        capture_output=True,
        text=True,
        timeout=1500,
    )


def test_the_workflows_jobs_pass_as_their_own_identities_against_offline_stages(tmp_path):
    # When the rehearsal runs (testing, prod and a feature stack, each a process of its own)
    result = _rehearse(tmp_path)
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # Then it went through every make step of every job that runs, in the workflow's order
    outcomes = json.loads((tmp_path / "outcomes.json").read_text())
    assert [(o["job"], o["command"]) for o in outcomes] == [(s.job, s.command) for s in workflow_steps()]
    # And everything it can run here ran and passed; only what it says it does not re-run was skipped
    for outcome, step in zip(outcomes, workflow_steps(), strict=True):
        expected = "skipped" if TARGETS[step.target] in ("covered", "full") else "ok"
        assert outcome["result"] == expected, outcome
    # each job as its own role: testing trained its first model itself, prod was promoted it, never trained
    assert "[deploy-testing as testing] make train-stage STAGE=testing  [testing]  ok" in result.stdout
    assert "[deploy-prod as prod] make promote-model STAGE=prod  [prod]  ok" in result.stdout
    assert "[delete-feature as feature] make destroy-stage STAGE=testing" in result.stdout
    assert "passed:" in result.stdout.splitlines()[-1]


def test_a_pipeline_role_missing_one_statement_fails_the_run_with_awss_refusal(tmp_path):
    # Given the pipeline role without the statement that lets train-stage find the stack's data set
    text = BOOTSTRAP_TEMPLATE.read_text()
    statement = re.search(r'\n( +)- Sid: "FindTheStacksDataSet"\n(?:\1  .*\n)+', text)
    assert statement, "pipeline/bootstrap.yaml no longer has FindTheStacksDataSet: update this test"
    bootstrap = tmp_path / "bootstrap.yaml"
    bootstrap.write_text(text.replace(statement.group(0), "\n", 1))
    # When the rehearsal runs
    result = _rehearse(tmp_path / "run", "--bootstrap", str(bootstrap))
    # Then testing's job fails at that step with AWS's words, and nothing after it runs
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if "FAILED (" in line]
    assert failed and "[deploy-testing as testing] make train-stage STAGE=testing" in failed[0], result.stdout[-3000:]
    assert "AccessDenied" in result.stdout and "s3:ListBucket" in result.stdout, result.stdout[-3000:]


def test_a_prod_release_that_fails_its_tests_is_rolled_back_to_what_served_before(tmp_path):
    # Given prod serving the version the first release promoted, and main pushed again
    # When that release's prod integration tests fail (the drill)
    result = _rehearse(tmp_path, "--rehearse-a-failed-release")
    lines = result.stdout.splitlines()
    # Then the run fails, as the release did, and the job's failure step puts prod back: template, then model
    assert result.returncode == 1, result.stdout[-3000:]
    assert lines[-1].startswith("FAILED: ") and " 1 failed" in lines[-1], result.stdout[-3000:]
    drill = [line for line in lines if line.startswith("  [push to main again")]
    assert "make integration-test STAGE=prod  [prod]  FAILED" in drill[-2]
    assert "make rollback-stage STAGE=prod  [prod]  ok" in drill[-1], result.stdout[-3000:]
    assert "rolled back to arn:aws:sagemaker:us-east-1:123456789012:model-package/dog-breed-classifier-prod/1" in (
        next((tmp_path / "logs").glob("*-rollback-stage.log")).read_text()
    )
    recorded = json.loads((tmp_path / "previous-release" / "previous-release.json").read_text())
    assert recorded["stack"] == "dog-breed-classifier-prod" and recorded["model_package_arn"].endswith("/1")
