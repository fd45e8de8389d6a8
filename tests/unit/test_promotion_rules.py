"""Model promotion's refusals and records (``ops/promote_model.py``) against small in-memory clients, so
tests/unit alone catches a change to a decision; tests/integration/test_promotion.py runs the same code against
moto and two offline stages (the wiring)."""

from __future__ import annotations

import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from ops import promote_model
from ops.promote_model import (
    PromotionRefused,
    export_approved,
    read_promotion,
    register,
    release,
    store_artifact,
)

GROUP = "dog-breed-classifier-testing"
BYTES = b"model bytes"
DIGEST = hashlib.sha256(BYTES).hexdigest()
CODE = f"code/training_jobs-{'c' * 64}/sourcedir.tar.gz"  # the training code a version was trained from


def _error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


class FakeS3:
    def __init__(self, objects: dict[tuple[str, str], bytes] | None = None) -> None:
        self.objects = dict(objects or {})

    def download_file(self, bucket, key, path):
        with open(path, "wb") as file:
            file.write(self.objects[(bucket, key)])

    def put_object(self, Bucket, Key, Body, IfNoneMatch):  # noqa: N803 (boto3's names)
        if (Bucket, Key) in self.objects:
            raise _error("PreconditionFailed")
        self.objects[(Bucket, Key)] = Body.read()

    def get_object(self, Bucket, Key):  # noqa: N803
        data = self.objects[(Bucket, Key)]

        class Body:
            def iter_chunks(self, size):
                return iter([data[i : i + size] for i in range(0, len(data), size)] or [b""])

        return {"Body": Body()}


class FakeSageMaker:
    def __init__(self) -> None:
        self.packages: dict[str, dict] = {}
        self.groups: set[str] = set()
        self.updates: list[dict] = []

    def add(self, version: int, status: str, digest: str | None = DIGEST, group: str = GROUP, code: str = CODE) -> str:
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}"
        metadata = {"test:accuracy": "0.91", "test:loss": "0.3", "training_job_name": "job-7", "other": "x"}
        if digest:
            metadata["artifact_sha256"] = digest
        if code:
            metadata["training_code"] = f"s3://src/{code}"
        self.packages[arn] = {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": status,
            "ApprovalDescription": "approved: test accuracy 0.91",
            "CustomerMetadataProperties": metadata,
            "InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://src/training-output/j/model.tar.gz"}]},
        }
        return arn

    def list_model_packages(self, ModelPackageGroupName, ModelApprovalStatus, SortBy, SortOrder):  # noqa: N803
        assert (SortBy, SortOrder) == ("CreationTime", "Descending")
        arns = [
            arn
            for arn, p in self.packages.items()
            if p["ModelPackageGroupName"] == ModelPackageGroupName and p["ModelApprovalStatus"] == ModelApprovalStatus
        ]
        return {"ModelPackageSummaryList": [{"ModelPackageArn": arn} for arn in reversed(arns)]}

    def describe_model_package(self, ModelPackageName):  # noqa: N803
        return self.packages[ModelPackageName]

    def create_model_package_group(self, ModelPackageGroupName, ModelPackageGroupDescription):  # noqa: N803
        if ModelPackageGroupName in self.groups:
            raise _error("ValidationException", f"Model Package Group {ModelPackageGroupName} already exists")
        self.groups.add(ModelPackageGroupName)

    def create_model_package(self, **request):
        arn = f"arn:aws:sagemaker:us-east-1:210987654321:model-package/{request['ModelPackageGroupName']}/1"
        self.packages[arn] = request
        return {"ModelPackageArn": arn}

    def update_model_package(self, **changes):
        self.updates.append(changes)


@pytest.fixture
def source():
    sagemaker, s3 = FakeSageMaker(), FakeS3({("src", "training-output/j/model.tar.gz"): BYTES})
    return sagemaker, s3


def test_export_takes_the_version_it_is_given_and_records_what_was_judged(source, tmp_path):
    sagemaker, s3 = source
    sagemaker.add(1, "Approved", digest="0" * 64)
    newest = sagemaker.add(2, "Approved")
    sagemaker.add(3, "Rejected")
    record = export_approved(sagemaker, s3, GROUP, tmp_path / "out", newest, trained_from=CODE)
    assert (tmp_path / "out/model.tar.gz").read_bytes() == BYTES and not list((tmp_path / "out").glob("*.partial"))
    assert json.loads((tmp_path / "out/record.json").read_text()) == record
    assert {k: v for k, v in record.items() if k != "exported_at"} == {
        "source_package_arn": newest,
        "artifact_sha256": DIGEST,
        "approval_status": "Approved",
        "approval_description": "approved: test accuracy 0.91",
        "metrics": {"test:accuracy": "0.91", "test:loss": "0.3"},
        "training_job_name": "job-7",
    }


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (lambda sm: sm.add(1, "PendingManualApproval"), "is PendingManualApproval, not Approved"),
        (lambda sm: sm.add(1, "Rejected"), "is Rejected, not Approved"),
        (lambda sm: sm.add(1, "Approved", digest=None), "carries no artifact_sha256"),
        (lambda sm: sm.add(1, "Approved", digest="f" * 64), f"has SHA-256 {DIGEST}, but"),
        (lambda sm: sm.add(1, "Approved", group="another-group"), f"is not a version of the {GROUP} registry"),
    ],
)
def test_export_refuses_what_cannot_be_proved_approved_and_writes_nothing(source, tmp_path, setup, says):
    sagemaker, s3 = source
    arn = setup(sagemaker)
    with pytest.raises(PromotionRefused, match=says.replace("(", r"\(")):
        export_approved(sagemaker, s3, GROUP, tmp_path / "out", package_arn=arn)
    assert not (tmp_path / "out/model.tar.gz").exists() and not (tmp_path / "out/record.json").exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_export_without_a_served_version_says_so(source, tmp_path):
    sagemaker, s3 = source
    with pytest.raises(PromotionRefused, match=f"the {GROUP} stage serves no approved version of its registry"):
        export_approved(sagemaker, s3, GROUP, tmp_path, None)


@pytest.mark.parametrize("code", ["code/training_jobs-" + "d" * 64 + "/sourcedir.tar.gz", ""])
def test_a_served_model_trained_from_other_code_than_this_commits_is_not_exported(source, tmp_path, code):
    """A later push may redeploy testing while prod waits for its approval: prod takes no model of other code."""
    sagemaker, s3 = source
    arn = sagemaker.add(1, "Approved", code=code)
    with pytest.raises(PromotionRefused, match=f"was trained from .*, not this commit's {CODE}: the stage serves"):
        export_approved(sagemaker, s3, GROUP, tmp_path / "out", arn, trained_from=CODE)
    assert not (tmp_path / "out/model.tar.gz").exists()
    assert export_approved(sagemaker, s3, GROUP, tmp_path / "named", arn)["source_package_arn"] == arn


def _exported(tmp_path, status="Approved", data=BYTES):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "model.tar.gz").write_bytes(data)
    record = {"source_package_arn": "arn:src/2", "artifact_sha256": DIGEST, "approval_status": status}
    (tmp_path / "record.json").write_text(json.dumps({**record, "metrics": {"test:accuracy": "0.91"}}))
    return tmp_path


def test_promote_reads_only_an_approval_whose_bytes_are_the_recorded_ones(tmp_path):
    record, artifact = read_promotion(_exported(tmp_path / "good"))
    assert record["artifact_sha256"] == DIGEST and artifact.read_bytes() == BYTES
    with pytest.raises(PromotionRefused, match="the record is Rejected, not Approved"):
        read_promotion(_exported(tmp_path / "rejected", status="Rejected"))
    with pytest.raises(PromotionRefused, match="was approved with"):
        read_promotion(_exported(tmp_path / "tampered", data=BYTES + b"!"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half/record.json").write_text("{}")
    with pytest.raises(PromotionRefused, match="must hold record.json and model.tar.gz: run the export first"):
        read_promotion(tmp_path / "half")


def test_the_artifact_is_stored_under_its_digest_once_and_never_over_other_bytes(tmp_path):
    artifact = _exported(tmp_path) / "model.tar.gz"
    s3 = FakeS3()
    url = store_artifact(s3, "prod-bucket", artifact, DIGEST)
    assert url == f"s3://prod-bucket/models/sha256/{DIGEST}/model.tar.gz"
    assert store_artifact(s3, "prod-bucket", artifact, DIGEST) == url  # the same bytes again: fine
    s3.objects[("prod-bucket", f"models/sha256/{DIGEST}/model.tar.gz")] = b"other"
    with pytest.raises(PromotionRefused, match="holds other bytes than its name says"):
        store_artifact(s3, "prod-bucket", artifact, DIGEST)

    class Denied(FakeS3):
        def put_object(self, **kwargs):
            raise _error("AccessDenied")

    with pytest.raises(ClientError):
        store_artifact(Denied(), "prod-bucket", artifact, DIGEST)


def test_a_promoted_version_is_registered_approved_with_its_source_and_metrics():
    sagemaker = FakeSageMaker()
    record = {"source_package_arn": "arn:src/2", "artifact_sha256": DIGEST, "metrics": {"test:accuracy": "0.91"}}
    record["serving_code_sha256"] = "c" * 64  # read_promotion reads it from the artifact
    arn = register(sagemaker, "prod-group", record, "s3://prod/models/sha256/x/model.tar.gz", "us-east-1")
    register(sagemaker, "prod-group", record, "s3://prod/models/sha256/x/model.tar.gz", "us-east-1")  # again
    request = sagemaker.packages[arn]
    assert request["ClientToken"] == DIGEST[:32] and request["ModelPackageDescription"] == "promoted from arn:src/2"
    assert request["CustomerMetadataProperties"] == {
        "test:accuracy": "0.91",
        "artifact_sha256": DIGEST,
        "serving_code_sha256": "c" * 64,
        "promoted_from": "arn:src/2",
        "gate_decision": "Approved",
    }
    assert sagemaker.updates[0] == {
        "ModelPackageArn": arn,
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription": "promoted: approved as arn:src/2",
    }

    class Broken(FakeSageMaker):
        def create_model_package_group(self, **kwargs):
            raise _error("AccessDeniedException", "not allowed")

    with pytest.raises(ClientError):
        register(Broken(), "prod-group", record, "s3://x", "us-east-1")


def test_a_release_is_followed_to_its_end_or_its_deadline(monkeypatch):
    monkeypatch.setattr(promote_model.time, "sleep", lambda seconds: None)

    class StepFunctions:
        def __init__(self, statuses):
            self.statuses, self.started = list(statuses), []

        def start_execution(self, stateMachineArn, name, input):  # noqa: N803, A002
            self.started.append((name, json.loads(input)))
            return {"executionArn": "arn:execution"}

        def describe_execution(self, executionArn):  # noqa: N803
            return {"status": self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]}

    finished = StepFunctions(["RUNNING", "RUNNING", "SUCCEEDED"])
    assert release(finished, "arn:sm", "arn:pkg/1", timeout_seconds=60)["status"] == "SUCCEEDED"
    ((name, payload),) = finished.started
    assert payload == {"release_model_package_arn": "arn:pkg/1"}
    assert name.startswith(f"promote-{hashlib.sha256(b'arn:pkg/1').hexdigest()[:16]}-")
    with pytest.raises(TimeoutError, match="is still running after -1 s"):
        release(StepFunctions(["RUNNING"]), "arn:sm", "arn:pkg/1", timeout_seconds=-1)


def test_the_file_digest_reads_in_chunks_to_the_end(tmp_path):
    data = b"x" * (3 * 1024 * 1024 + 5)
    (tmp_path / "big").write_bytes(data)
    assert promote_model.sha256_file(tmp_path / "big") == hashlib.sha256(data).hexdigest()


class _Session:
    """boto3's session as the command uses it: a client by service name (only those a test hands it)."""

    def __init__(self, clients: dict) -> None:
        self.clients = clients

    def client(self, name: str):
        return self.clients[name]


class _Release:
    def __init__(self, status: str) -> None:
        self.status, self.started = status, []

    def start_execution(self, stateMachineArn, name, input):  # noqa: N803, A002
        self.started.append(json.loads(input))
        return {"executionArn": "arn:execution"}

    def describe_execution(self, executionArn):  # noqa: N803
        return {"status": self.status, "error": "States.TaskFailed", "cause": "the gate refused"}


OUTPUTS = {
    "ModelPackageGroupName": GROUP,
    "ArtifactsBucketName": "prod-bucket",
    "TrainingPipelineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline",
    "EndpointName": "dog-breed-classifier",
}


GOLDEN = {"golden:accuracy": "0.950000", "golden:photos": "40"}


def _command(monkeypatch, clients: dict):
    """The command with these clients; the served version is the registry's newest approved one and the re-score
    answers GOLDEN (both run against moto and a real artifact in tests/integration/test_promotion.py)."""
    monkeypatch.setattr(promote_model, "stack_outputs", lambda stack, region: OUTPUTS)
    monkeypatch.setattr(promote_model.boto3.session, "Session", lambda region_name: _Session(clients))
    monkeypatch.setattr(promote_model, "current_code_key", lambda: CODE)
    monkeypatch.setattr(promote_model, "served_package", _newest_approved)
    monkeypatch.setattr(promote_model, "_rescored", lambda *args: dict(GOLDEN))
    return promote_model.main


def _newest_approved(sagemaker, outputs):
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=outputs["ModelPackageGroupName"],
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
    )["ModelPackageSummaryList"]
    return listed[0]["ModelPackageArn"] if listed else None


def test_the_command_exports_then_promotes_and_releases_only_when_asked(monkeypatch, tmp_path, capsys):
    source_sagemaker, source_s3 = FakeSageMaker(), FakeS3({("src", "training-output/j/model.tar.gz"): BYTES})
    newest = source_sagemaker.add(2, "Approved")
    main = _command(monkeypatch, {"sagemaker": source_sagemaker, "s3": source_s3})
    assert main(["export", "--stage", "testing", "--dir", str(tmp_path)]) == 0
    assert f"exported {newest} (sha256 {DIGEST[:16]}...) to {tmp_path}" in capsys.readouterr().out
    # promote without --release: registered, and no pipeline started (the session has no stepfunctions client)
    target_sagemaker, target_s3 = FakeSageMaker(), FakeS3()
    main = _command(monkeypatch, {"sagemaker": target_sagemaker, "s3": target_s3})
    assert main(["promote", "--stage", "prod", "--dir", str(tmp_path)]) == 0
    (arn,) = target_sagemaker.packages
    assert target_sagemaker.packages[arn]["CustomerMetadataProperties"].items() >= GOLDEN.items()
    assert (
        f"promoted {newest} into" in capsys.readouterr().out
        and ("prod-bucket", f"models/sha256/{DIGEST}/model.tar.gz") in target_s3.objects
    )
    succeeded = _Release("SUCCEEDED")
    main = _command(monkeypatch, {"sagemaker": FakeSageMaker(), "s3": FakeS3(), "stepfunctions": succeeded})
    assert main(["promote", "--stage", "prod", "--dir", str(tmp_path), "--release", "--timeout", "1"]) == 0
    assert succeeded.started == [{"release_model_package_arn": arn}]
    assert f"released {arn} on dog-breed-classifier" in capsys.readouterr().out


def test_the_command_fails_when_the_release_fails_or_the_promotion_is_refused(monkeypatch, tmp_path, capsys):
    _exported(tmp_path / "good")
    failed = _Release("FAILED")
    main = _command(monkeypatch, {"sagemaker": FakeSageMaker(), "s3": FakeS3(), "stepfunctions": failed})
    assert main(["promote", "--stage", "prod", "--dir", str(tmp_path / "good"), "--release", "--timeout", "1"]) == 1
    assert "error: the release ended FAILED: States.TaskFailed: the gate refused" in capsys.readouterr().err
    main = _command(monkeypatch, {"sagemaker": FakeSageMaker(), "s3": FakeS3()})
    assert main(["export", "--stage", "testing", "--dir", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_an_export_makes_its_folder_and_may_be_repeated_into_it(source, tmp_path):
    sagemaker, s3 = source
    arn = sagemaker.add(1, "Approved")
    nested = tmp_path / "exports" / "testing"
    first = export_approved(sagemaker, s3, GROUP, nested, arn)
    assert export_approved(sagemaker, s3, GROUP, nested, arn)["source_package_arn"] == first["source_package_arn"]
    assert (nested / "model.tar.gz").read_bytes() == BYTES


@pytest.mark.parametrize(("timeout_seconds", "pause"), [(600, 0.5), (601, 5)])
def test_a_long_release_is_asked_about_every_5_seconds_a_short_one_twice_a_second(monkeypatch, timeout_seconds, pause):
    pauses: list[float] = []
    monkeypatch.setattr(promote_model.time, "sleep", pauses.append)

    class StepFunctions:
        statuses = ["RUNNING", "SUCCEEDED"]

        def start_execution(self, **kwargs):
            return {"executionArn": "arn:execution"}

        def describe_execution(self, executionArn):  # noqa: N803
            return {"status": self.statuses.pop(0)}

    assert release(StepFunctions(), "arn:sm", "arn:pkg/1", timeout_seconds)["status"] == "SUCCEEDED"
    assert pauses == [pause]


def test_the_command_needs_a_stage_and_a_folder_and_works_on_a_branchs_own_stack(monkeypatch, tmp_path, capsys):
    for missing in (["export", "--dir", str(tmp_path)], ["export", "--stage", "testing"]):
        with pytest.raises(SystemExit) as refusal:
            promote_model.main(missing)
        assert refusal.value.code == 2 and "the following arguments are required" in capsys.readouterr().err
    stacks: list[str] = []
    source_sagemaker, source_s3 = FakeSageMaker(), FakeS3({("src", "training-output/j/model.tar.gz"): BYTES})
    source_sagemaker.add(1, "Approved")
    _command(monkeypatch, {"sagemaker": source_sagemaker, "s3": source_s3})
    monkeypatch.setattr(promote_model, "stack_outputs", lambda stack, region: stacks.append(stack) or OUTPUTS)
    assert promote_model.main(["export", "--stage", "testing", "--dir", str(tmp_path / "a")]) == 0
    assert promote_model.main(["export", "--stage", "testing", "--branch", "feature-x", "--dir", str(tmp_path)]) == 0
    assert stacks[0] != stacks[1] and "feature-x" in stacks[1] and "feature-x" not in stacks[0]
