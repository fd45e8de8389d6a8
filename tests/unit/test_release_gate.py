"""The release gate's decisions, against an in-memory registry: the threshold, the regression tolerance against
the model the endpoint serves now, what is written on the package, and a person's override.

tests/integration/test_pipeline_executions.py runs the same gate against moto inside the pipeline (wiring);
these pin each decision at its boundary, so tests/unit alone catches a change to one.
"""

from __future__ import annotations

import hashlib

import pytest

from dog_breeds.errors import InvalidEventError, TrainingNotCompleteError
from dog_breeds.model_store import StoredModel
from dog_breeds.release_gate import (
    APPROVED,
    REJECTED,
    GateRequest,
    read_gate_event,
    release_approved_package,
    run_gate,
)
from dog_breeds.settings import GateSettings
from tests.support.fakes import SETTINGS, FakeRegistry

GATE = GateSettings(minimum_test_accuracy=0.6, maximum_accuracy_regression=0.02)
GROUP = SETTINGS.endpoint_name


def _artifact(job: str) -> str:
    return f"s3://dog-breeds-artifacts/training-output/{job}/output/model.tar.gz"


def _job(registry: FakeRegistry, name: str, accuracy: float | None, loss: float = 0.5, status="Completed") -> str:
    metrics = [{"MetricName": "test:loss", "Value": loss}, {"MetricName": "train:loss", "Value": 0.1}]
    if accuracy is not None:
        metrics.append({"MetricName": "test:accuracy", "Value": accuracy})
    registry.jobs[name] = {
        "TrainingJobStatus": status,
        "ModelArtifacts": {"S3ModelArtifacts": _artifact(name)},
        "FinalMetricDataList": metrics,
    }
    return name


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()  # stands in for the bytes' digest: one per job


def _stored(url: str) -> str:
    """Where the gate's write-once copy of ``url``'s model lands (dog_breeds.model_store)."""
    return f"s3://dog-breeds-artifacts/models/sha256/{_digest(url)}/model.tar.gz"


def _store(url: str) -> StoredModel:
    return StoredModel(_stored(url), _digest(url), hashlib.sha256(f"inference.py of {url}".encode()).hexdigest())


def _judge(registry: FakeRegistry, job: str, gate: GateSettings = GATE) -> dict:
    return run_gate(registry, GateRequest(training_job_name=job), SETTINGS, gate, _store)


def _serving(registry: FakeRegistry, accuracy: float) -> str:
    """An approved package whose model the endpoint serves now."""
    answer = _judge(registry, _job(registry, "serving-job", accuracy))
    assert answer["decision"] == APPROVED
    registry.serve(GROUP, _stored(_artifact("serving-job")))
    return answer["model_package_arn"]


@pytest.mark.parametrize(
    ("accuracy", "decision", "says"),
    [
        (0.6, APPROVED, "approved: test accuracy 0.6000 >= threshold 0.6000; no registered model serves yet"),
        (0.5999, REJECTED, "rejected by threshold: test accuracy 0.5999 < 0.6000"),
        (None, REJECTED, "rejected: the training job reported no test:accuracy metric"),
        (0.0, REJECTED, "rejected by threshold: test accuracy 0.0000 < 0.6000"),
    ],
)
def test_the_threshold_decides_when_nothing_serves(accuracy, decision, says):
    registry = FakeRegistry()
    answer = _judge(registry, _job(registry, "candidate", accuracy))
    assert (answer["decision"], answer["reason"]) == (decision, says)
    package = registry.packages[answer["model_package_arn"]]
    assert package["ModelApprovalStatus"] == decision and package["ApprovalDescription"] == says
    assert package["CustomerMetadataProperties"]["gate_decision"] == decision
    assert answer["test_accuracy"] == accuracy and answer["serving_test_accuracy"] is None


@pytest.mark.parametrize(
    ("candidate", "decision"),
    [(0.78, APPROVED), (0.8, APPROVED), (0.7799, REJECTED), (0.95, APPROVED)],
)
def test_a_candidate_may_lose_at_most_the_tolerance_to_the_serving_model(candidate, decision):
    registry = FakeRegistry()
    serving_arn = _serving(registry, 0.8)
    answer = _judge(registry, _job(registry, "candidate", candidate))
    assert answer["decision"] == decision and answer["serving_test_accuracy"] == 0.8
    if decision == REJECTED:
        assert answer["reason"] == (
            f"rejected by regression: test accuracy {candidate:.4f} < serving model's 0.8000 - tolerance 0.0200 "
            f"({serving_arn})"
        )
    else:
        assert answer["reason"].endswith("; serving model's 0.8000 - tolerance 0.0200")


def test_the_comparison_is_with_what_the_endpoint_serves_not_the_newest_approval():
    registry = FakeRegistry()
    _serving(registry, 0.7)
    # a newer approved version that the endpoint does not serve (say, one deploy failed)
    assert _judge(registry, _job(registry, "newer-approved", 0.95))["decision"] == APPROVED
    answer = _judge(registry, _job(registry, "candidate", 0.69))
    assert answer["decision"] == APPROVED and answer["serving_test_accuracy"] == 0.7


def test_the_serving_model_is_searched_among_the_20_newest_approvals_only():
    registry = FakeRegistry()
    _serving(registry, 0.9)
    for number in range(20):
        _judge(registry, _job(registry, f"approved-{number}", 0.95))
    answer = _judge(registry, _job(registry, "candidate", 0.61))
    assert answer["decision"] == APPROVED and answer["serving_test_accuracy"] is None  # 21st newest: not found
    registry = FakeRegistry()
    _serving(registry, 0.9)
    for number in range(19):
        _judge(registry, _job(registry, f"approved-{number}", 0.95))
    assert _judge(registry, _job(registry, "candidate", 0.61))["serving_test_accuracy"] == 0.9  # 20th: found


def test_the_package_records_what_was_judged_and_a_retry_registers_it_once():
    registry = FakeRegistry()
    job = _job(registry, "candidate", 0.8123456789, loss=0.25)
    first = _judge(registry, job)
    again = _judge(registry, job)
    assert first["model_package_arn"] == again["model_package_arn"] and len(registry.packages) == 1
    package = registry.packages[first["model_package_arn"]]
    assert package["ClientToken"] == hashlib.sha256(job.encode()).hexdigest()[:32]
    assert package["ModelPackageGroupName"] == GROUP and package["ModelPackageDescription"] == f"trained by {job}"
    assert package["CustomerMetadataProperties"] == {
        "training_job_name": job,
        "artifact_sha256": _digest(_artifact(job)),
        "serving_code_sha256": _store(_artifact(job)).serving_code_sha256,
        "trained_model_data_url": _artifact(job),
        "test:accuracy": "0.812346",
        "test:loss": "0.250000",
        "gate_decision": APPROVED,
    }
    (container,) = package["InferenceSpecification"]["Containers"]
    # the write-once copy of the judged bytes, not the job's mutable output key
    assert container["ModelDataUrl"] == _stored(_artifact(job)) and container["Image"].endswith(":2.6.0-cpu-py312")
    assert first["deploy"] == {"model_package_arn": first["model_package_arn"]}
    assert GROUP in registry.groups


@pytest.mark.parametrize("status", ["InProgress", "Failed", "Stopped"])
def test_only_a_completed_job_is_judged(status):
    registry = FakeRegistry()
    with pytest.raises(TrainingNotCompleteError, match=f"is {status}"):
        _judge(registry, _job(registry, "candidate", 0.9, status=status))
    with pytest.raises(TrainingNotCompleteError, match="is missing"):
        _judge(registry, "no-such-job")
    assert registry.packages == {}


def test_a_reason_longer_than_the_registry_accepts_is_cut_on_the_package_only():
    registry = FakeRegistry()
    serving_arn = _serving(registry, 0.9)
    long_arn = serving_arn + "-" + "x" * 2000  # the reason names the serving package's ARN
    registry.packages[long_arn] = registry.packages.pop(serving_arn)
    answer = _judge(registry, _job(registry, "candidate", 0.7))
    assert answer["decision"] == REJECTED and len(answer["reason"]) > 2000
    assert registry.packages[answer["model_package_arn"]]["ApprovalDescription"] == answer["reason"][:1024]


def test_a_person_releases_an_approved_package_and_an_override_of_a_rejection_is_recorded():
    registry = FakeRegistry()
    rejected = _judge(registry, _job(registry, "rejected", 0.3))["model_package_arn"]
    approved = _judge(registry, _job(registry, "approved", 0.9))["model_package_arn"]
    with pytest.raises(InvalidEventError, match="is Rejected; approve it first: aws sagemaker update-model-package"):
        release_approved_package(registry, rejected, SETTINGS)
    registry.update_model_package(rejected, ModelApprovalStatus=APPROVED, ApprovalDescription="checked by hand")
    answer = release_approved_package(registry, rejected, SETTINGS)
    assert answer["decision"] == APPROVED and answer["deploy"] == {"model_package_arn": rejected}
    assert answer["reason"] == "released by a person's approval: checked by hand"
    assert answer["test_accuracy"] == 0.3 and answer["serving_test_accuracy"] is None
    assert registry.packages[rejected]["CustomerMetadataProperties"]["released_by"] == "override"
    release_approved_package(registry, approved, SETTINGS)
    assert registry.packages[approved]["CustomerMetadataProperties"]["released_by"] == "manual approval"


def test_the_gate_releases_a_named_approved_package_without_judging_it():
    registry = FakeRegistry()
    arn = _judge(registry, _job(registry, "approved", 0.9))["model_package_arn"]
    calls = len(registry.calls)
    answer = run_gate(registry, GateRequest(release_model_package_arn=arn), SETTINGS, GATE, _store)
    assert answer["model_package_arn"] == arn and answer["deploy"] == {"model_package_arn": arn}
    assert [operation for operation, _ in registry.calls[calls:]] == ["update_model_package"]  # nothing registered


def test_a_package_of_another_group_or_none_is_refused():
    registry = FakeRegistry()
    registry.packages["arn:other"] = {"ModelPackageGroupName": "other-endpoint", "ModelApprovalStatus": APPROVED}
    for arn in ("arn:other", "arn:missing"):
        with pytest.raises(InvalidEventError, match="is not a package version of the dog-breed-classifier group"):
            release_approved_package(registry, arn, SETTINGS)


def test_the_event_names_exactly_one_of_a_job_or_a_package():
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/dog-breed-classifier/3"
    assert read_gate_event({"training_job_name": "job-1"}) == GateRequest(training_job_name="job-1")
    assert read_gate_event({"release_model_package_arn": arn}) == GateRequest(release_model_package_arn=arn)
    for event in ({}, {"training_job_name": "job-1", "release_model_package_arn": arn}):
        with pytest.raises(
            InvalidEventError,
            match="exactly one of training_job_name, release_model_package_arn or scored_model_package_arn",
        ):
            read_gate_event(event)
    with pytest.raises(InvalidEventError):
        read_gate_event({"release_model_package_arn": "arn:aws:sagemaker:us-east-1:1:model-package/x/1"})
    with pytest.raises(InvalidEventError, match="exactly one"):
        run_gate(FakeRegistry(), GateRequest(), SETTINGS, GATE, lambda url: "")


@pytest.mark.parametrize("kind", ["serverless", "instances"])
def test_the_model_of_either_endpoint_kind_is_judged_against_the_packages_of_the_stacks_group(kind):
    # A stack with EndpointKind=serverless serves from <EndpointName>-serverless, and its packages are still in the
    # group named <EndpointName>: the comparison must find the serving model there, whichever endpoint serves it
    import dataclasses

    settings = dataclasses.replace(SETTINGS, endpoint_kind=kind)
    registry = FakeRegistry()
    answer = run_gate(
        registry, GateRequest(training_job_name=_job(registry, "serving-job", 0.8)), settings, GATE, _store
    )
    registry.serve(settings.serving_endpoint_name, _stored(_artifact("serving-job")))
    assert settings.serving_endpoint_name != GROUP or kind == "instances"
    candidate = _job(registry, "candidate", 0.77)
    judged = run_gate(registry, GateRequest(training_job_name=candidate), settings, GATE, _store)
    assert answer["decision"] == APPROVED
    assert judged["decision"] == REJECTED and judged["serving_test_accuracy"] == 0.8


def test_the_serving_code_hash_is_of_code_inference_py_inside_the_artifact(tmp_path):
    import io
    import tarfile

    from dog_breeds.model_store import serving_code_sha256

    def artifact(files: dict[str, bytes]) -> io.BytesIO:
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:gz") as tar:
            for name, content in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        data.seek(0)
        return data

    code = b"def model_fn(model_dir): ...\n"
    expected = hashlib.sha256(code).hexdigest()
    assert serving_code_sha256(artifact({"model.pt": b"w", "code/inference.py": code})) == expected
    assert serving_code_sha256(artifact({"./code/inference.py": code})) == expected
    assert serving_code_sha256(artifact({"model.pt": b"w", "inference.py": code})) == "none"  # not where it runs
    assert serving_code_sha256(io.BytesIO(b"not a tarball")) == "none"
