"""`make pipeline-rehearsal` at its small budget: the workflow's steps, in its order, pass against offline stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from offline_stack.pipeline_rehearsal import OFFLINE_PATH, TARGETS, workflow_steps
from offline_stack.sam_template import PROJECT_ROOT


def test_the_workflows_steps_pass_in_the_workflows_order_against_offline_stages(tmp_path):
    # When the rehearsal runs (testing, prod and a feature stack, each a process of its own)
    result = subprocess.run(
        [sys.executable, "-m", "offline_stack.pipeline_rehearsal", "--work-dir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": OFFLINE_PATH},  # as make pipeline-rehearsal runs it
        capture_output=True,
        text=True,
        timeout=1500,
    )
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # Then it went through every make step of the workflow, in the workflow's order
    outcomes = json.loads((tmp_path / "outcomes.json").read_text())
    assert [(o["job"], o["command"]) for o in outcomes] == [(s.job, s.command) for s in workflow_steps()]
    # And everything it can run here ran and passed; only what it says it does not re-run was skipped
    for outcome, step in zip(outcomes, workflow_steps(), strict=True):
        expected = "skipped" if TARGETS[step.target] in ("covered", "full") else "ok"
        assert outcome["result"] == expected, outcome
    assert "passed:" in result.stdout.splitlines()[-1]
