"""checkov on the templates (the application's and the pipeline's bootstrap): every finding it would report is
either fixed or skipped with its reason written beside the resource (``Metadata: checkov: skip``), so a new finding
fails here."""

from __future__ import annotations

import json
import subprocess

from offline_stack.sam_template import PROJECT_ROOT, SamTemplate

CHECKOV = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"


def test_every_checkov_skip_says_why():
    skips = 0
    for logical_id, resource in SamTemplate.load().resources.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips += 1
            assert skip["id"].startswith("CKV_") and len(skip.get("comment", "")) > 30, (logical_id, skip)
    assert skips > 0


def _checkov(path):
    assert CHECKOV.exists(), "checkov lives in .venv-checkov: make checkov-venv (make test does it)"
    result = subprocess.run(
        [CHECKOV, "-f", str(path), "--framework", "cloudformation", "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    return report["summary"], failed


def test_checkov_reports_nothing_unexplained():
    summary, failed = _checkov(PROJECT_ROOT / "template.yaml")
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 100 and summary["skipped"] > 0


def test_checkov_reports_nothing_unexplained_in_the_pipelines_bootstrap():
    summary, failed = _checkov(PROJECT_ROOT / "pipeline" / "bootstrap.yaml")
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 20
