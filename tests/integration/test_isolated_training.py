"""Training jobs run with network isolation, and the offline executor holds them to it as SageMaker does
(offline_stack/aws_rules/sagemaker.py): the code and the ImageNet weights arrive as channels, the container gets no
AWS credentials, a requirements.txt cannot be installed, code named by an S3 URI cannot be fetched, and a channel
with nothing under its prefix fails the job before the entry point runs.

Each job here runs a stand-in train.py (a real process, as every host is) that reports what it can see, so the
test is about the container's surroundings, not about training (tests/integration/test_offline_stack.py trains).
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from launchers.upload_weights import upload_weights

from offline_stack.sample_events import OFFLINE_BUCKET
from offline_stack.training_executor import LocalTrainingExecutor
from tests.conftest import TEMPLATE_ROLES

REPORTING_TRAIN_PY = """
import json, os, pathlib
channel = pathlib.Path(os.environ.get("SM_CHANNEL_PRETRAINED", "/nonexistent"))
print("REPORT " + json.dumps({
    "aws_variables": sorted(name for name in os.environ if name.startswith("AWS_")),
    "pretrained": sorted(p.name for p in channel.glob("*")),
    "channels": json.loads(os.environ["SM_CHANNELS"]),
}))
model = pathlib.Path(os.environ["SM_MODEL_DIR"]); model.mkdir(parents=True, exist_ok=True)
(model / "model.pt").write_bytes(b"stand-in")
"""


def _code_package(**files: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture
def isolated_job(control_function, control_plane, tmp_path):
    """Start a job through the start-training function with the given code; run it as SageMaker would, as the
    job's role. Returns (outcome, the job's request, its log lines)."""
    operator = control_plane.client("s3")
    operator.put_object(Bucket=OFFLINE_BUCKET, Key="data/train/a/1.jpg", Body=b"jpeg")

    def run(code: bytes, hyperparameters: dict, job: dict | None = None):
        key = f"code/stand-in-{len(code)}/sourcedir.tar.gz"
        operator.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=code)
        sagemaker = control_plane.client("sagemaker")
        if job is None:
            with control_function("StartTrainingFunction") as function:
                event = {"hyperparameters": hyperparameters, "source_s3_uri": f"s3://{OFFLINE_BUCKET}/{key}"}
                name = function.invoke({**event, "instance_count": 1})["training_job_name"]
        else:
            name = job["TrainingJobName"]
            sagemaker.create_training_job(**job)
        lines: list[str] = []
        executor = LocalTrainingExecutor(
            sagemaker,
            operator,
            tmp_path / "jobs",
            lines.append,
            s3_as=lambda arn: control_plane.client_as(TEMPLATE_ROLES.by_arn[arn], "s3"),
        )
        try:
            outcome = executor.run(name)
        finally:
            executor.close()
        return outcome, sagemaker.describe_training_job(TrainingJobName=name), lines

    return run


def _report(lines: list[str]) -> dict:
    (report,) = [line.split("REPORT ", 1)[1] for line in lines if "REPORT " in line]
    return json.loads(report)


def test_the_job_gets_its_code_and_weights_as_channels_and_no_credentials(isolated_job, control_plane):
    uri, new = upload_weights(control_plane.client("s3"), OFFLINE_BUCKET, "efficientnet_lite0")
    assert new and uri == f"s3://{OFFLINE_BUCKET}/pretrained/efficientnet-lite0-57934424.pth"
    outcome, job, lines = isolated_job(
        _code_package(**{"train.py": REPORTING_TRAIN_PY}), {"architecture": "efficientnet_lite0"}
    )
    assert outcome.succeeded, outcome.failure_reason
    assert job["EnableNetworkIsolation"] is True
    report = _report(lines)
    assert report["pretrained"] == ["efficientnet-lite0-57934424.pth"]
    assert report["channels"] == ["code", "pretrained", "training"]
    assert report["aws_variables"] == []  # no credentials, no endpoints: nothing to call AWS with


def test_the_same_weights_uploaded_again_change_nothing(control_plane):
    s3 = control_plane.client("s3")
    first = upload_weights(s3, OFFLINE_BUCKET, "efficientnet_lite0")
    again = upload_weights(s3, OFFLINE_BUCKET, "efficientnet_lite0")
    assert (first[1], again[1]) == (True, False) and first[0] == again[0]


def test_a_requirements_file_fails_the_job_before_its_code_runs(isolated_job):
    code = _code_package(**{"train.py": REPORTING_TRAIN_PY, "requirements.txt": "matplotlib==3.11.2\n"})
    outcome, _, lines = isolated_job(code, {"pretrained": False})
    assert not outcome.succeeded
    assert (
        outcome.failure_reason.startswith("InstallRequirementsError") and "network isolation" in outcome.failure_reason
    )
    assert not any("REPORT " in line for line in lines)


def test_code_named_by_an_s3_uri_cannot_be_fetched_by_an_isolated_container(isolated_job, control_plane):
    # the request the start-training function sent before jobs ran isolated, with isolation now on
    code = _code_package(**{"train.py": REPORTING_TRAIN_PY})
    key = f"code/stand-in-{len(code)}/sourcedir.tar.gz"
    role = TEMPLATE_ROLES.by_logical_id["SageMakerExecutionRole"].arn
    job = {
        "TrainingJobName": "old-shape",
        "AlgorithmSpecification": {"TrainingImage": "pytorch-training:2.8.0-cpu-py312", "TrainingInputMode": "File"},
        "RoleArn": role,
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{OFFLINE_BUCKET}/data/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{OFFLINE_BUCKET}/training-output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(f"s3://{OFFLINE_BUCKET}/{key}"),
        },
        "EnableNetworkIsolation": True,
    }
    outcome, _, lines = isolated_job(code, {}, job=job)
    assert not outcome.succeeded and "cannot download its code" in outcome.failure_reason
    assert not any("REPORT " in line for line in lines)
    # the same request without isolation runs: the toolkit downloads the code itself
    outcome, _, lines = isolated_job(
        code, {}, job={**job, "TrainingJobName": "old-shape-2", "EnableNetworkIsolation": False}
    )
    assert outcome.succeeded and _report(lines)["aws_variables"]


def test_weights_that_were_never_uploaded_are_refused_when_the_job_is_created(isolated_job):
    # CreateTrainingJob checks every S3 channel before it accepts the job (aws_rules/sagemaker.py,
    # empty_channel_on_create): no job exists, and the refusal names the channel's URL
    with pytest.raises(Exception) as refusal:
        isolated_job(_code_package(**{"train.py": REPORTING_TRAIN_PY}), {"architecture": "resnet18"})
    message = str(refusal.value)
    assert "ValidationException: No S3 objects found under S3 URL" in message
    assert f"s3://{OFFLINE_BUCKET}/pretrained/resnet18-f37072fd.pth" in message
