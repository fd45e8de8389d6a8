"""SageMaker's training rules as the offline executor applies them (``offline_stack/aws_rules/sagemaker.py``):
network isolation and empty channels, decided per job; tests/integration/test_isolated_training.py runs jobs
through them."""

from __future__ import annotations

import json

from offline_stack.aws_rules.sagemaker import empty_channel_refusal, isolated_environment, isolated_training_refusal

CHANNEL_CODE = "/opt/ml/input/data/code/sourcedir.tar.gz"


def _job(isolated: bool, submit: str = CHANNEL_CODE) -> dict:
    return {"EnableNetworkIsolation": isolated, "HyperParameters": {"sagemaker_submit_directory": json.dumps(submit)}}


def test_an_isolated_job_with_its_code_in_a_channel_and_no_requirements_runs(tmp_path):
    (tmp_path / "train.py").write_text("")
    assert isolated_training_refusal(_job(True), tmp_path) is None


def test_an_isolated_job_cannot_fetch_code_from_s3_nor_install_requirements(tmp_path):
    refusal = isolated_training_refusal(_job(True, "s3://bucket/code/x/sourcedir.tar.gz"), tmp_path)
    assert refusal.startswith("ClientError:") and "cannot download its code from s3://bucket/code/x" in refusal
    assert isolated_training_refusal(_job(True), None).startswith(f"ExecuteUserScriptError: {CHANNEL_CODE}")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert isolated_training_refusal(_job(True), tmp_path).startswith("InstallRequirementsError")


def test_a_job_without_isolation_may_do_all_of_that(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert isolated_training_refusal(_job(False, "s3://bucket/code.tar.gz"), tmp_path) is None
    assert isolated_training_refusal({"HyperParameters": {}}, None) is None  # isolation is off unless asked


def test_an_isolated_container_gets_no_credentials_endpoints_or_proxies():
    environment = {
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "HTTPS_PROXY": "http://proxy",
        "http_proxy": "http://proxy",
        "PIP_INDEX_URL": "https://pypi.org/simple",
        "SM_CHANNEL_TRAINING": "/opt/ml/input/data/training",
        "PATH": "/usr/bin",
    }
    assert isolated_environment({"EnableNetworkIsolation": True}, environment) == {
        "SM_CHANNEL_TRAINING": "/opt/ml/input/data/training",
        "PATH": "/usr/bin",
    }
    assert isolated_environment({"EnableNetworkIsolation": False}, environment) == environment


def test_a_channel_with_nothing_under_its_prefix_fails_the_job_naming_it():
    assert empty_channel_refusal({"training": ("s3://b/data/", 3), "code": ("s3://b/code/x", 1)}) is None
    assert empty_channel_refusal({}) is None
    refusal = empty_channel_refusal({"training": ("s3://b/data/", 3), "pretrained": ("s3://b/pretrained/w.pth", 0)})
    assert refusal == (
        "ClientError: Data download failed: no S3 objects found under the S3 URI of channel(s) "
        "pretrained (s3://b/pretrained/w.pth)"
    )
