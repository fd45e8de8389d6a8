"""The release gate on the golden set: a candidate that passes its job's test split is approved only on what its
served answers to the bucket's golden photos say, counted by the gate, against the threshold and the serving model.

Against the in-memory registry and golden set (tests/support/fakes.py); tests/integration/test_pipeline_executions.py
runs the same gate in the pipeline, with Batch Transform jobs that run the model's container on real photos.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from breed_classifier.labels import breed_name
from dog_breeds import golden_set
from dog_breeds.errors import InvalidEventError
from dog_breeds.golden_set import GoldenPhotos, answer_key, breed_of, scoring_job_name
from dog_breeds.model_store import StoredModel
from dog_breeds.release_gate import APPROVED, PENDING, REJECTED, SCORING, GateRequest, read_gate_event, run_gate
from dog_breeds.settings import GateSettings
from tests.support.fakes import SETTINGS, FakeGoldenSet, FakeRegistry

SCORING_ROLE = "arn:aws:iam::123456789012:role/golden-scoring"
GATE = GateSettings(minimum_test_accuracy=0.6, maximum_accuracy_regression=0.02, scoring_role_arn=SCORING_ROLE)
FOLDERS = ("001.Affenpinscher", "002.Afghan_hound")
PHOTOS = {f"golden/{folder}/{n}.jpg": f"etag-{folder}-{n}" for folder in FOLDERS for n in range(5)}


def _stored(job: str) -> StoredModel:
    digest = hashlib.sha256(job.encode()).hexdigest()
    return StoredModel(f"s3://dog-breeds-artifacts/models/sha256/{digest}/model.tar.gz", digest, "0" * 64)


def _trained(registry: FakeRegistry, job: str, test_accuracy: float = 1.0) -> str:
    registry.jobs[job] = {
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://dog-breeds-artifacts/training-output/{job}/output/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "test:accuracy", "Value": test_accuracy}],
    }
    return job


def _judge(registry: FakeRegistry, golden: FakeGoldenSet, job: str) -> dict:
    return run_gate(registry, GateRequest(training_job_name=job), SETTINGS, GATE, lambda _url: _stored(job), golden)


def _poll(registry: FakeRegistry, golden: FakeGoldenSet, arn: str) -> dict:
    return run_gate(registry, read_gate_event({"scored_model_package_arn": arn}), SETTINGS, GATE, _stored, golden)


def _finish(registry: FakeRegistry, golden: FakeGoldenSet, job_name: str, right: int, status: str = "Completed"):
    """Batch Transform's end: ``right`` photos answered with their own breed, the rest with another."""
    registry.transform_jobs[job_name]["TransformJobStatus"] = status
    if status != "Completed":
        registry.transform_jobs[job_name]["FailureReason"] = "ClientError: see the job's log"
        return
    for index, key in enumerate(sorted(golden.photos)):
        breed = breed_of(key) if index < right else "Akita"
        answer = {"predictions": [{"breed": breed, "class_index": 0, "probability": 0.9}]}
        golden.written[answer_key(job_name, key)] = json.dumps(answer)


def _jobs(registry: FakeRegistry) -> list[str]:
    return [request["TransformJobName"] for operation, request in registry.calls if operation == "create_transform_job"]


def _metadata(registry: FakeRegistry, arn: str) -> dict:
    return registry.packages[arn]["CustomerMetadataProperties"]


def test_a_candidate_perfect_on_its_test_split_is_not_approved_until_its_golden_answers_are_counted():
    registry, golden = FakeRegistry(), FakeGoldenSet(dict(PHOTOS))
    # When a candidate whose job logged test accuracy 1.0 is judged, the gate starts scoring it instead
    answer = _judge(registry, golden, _trained(registry, "perfect-on-paper"))
    assert answer["decision"] == SCORING
    arn = answer["model_package_arn"]
    assert registry.packages[arn]["ModelApprovalStatus"] == PENDING
    # one Batch Transform job over the golden prefix, its model run as the scoring role, one photo a request
    [job] = _jobs(registry)
    request = registry.transform_jobs[job]
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://dog-breeds-artifacts/golden/"
    assert request["TransformInput"]["ContentType"] == "application/x-image"
    assert request["BatchStrategy"] == "SingleRecord"
    assert request["TransformOutput"]["S3OutputPath"] == f"s3://dog-breeds-artifacts/golden-scores/{job}/"
    model = registry.models[request["ModelName"]]
    assert model["ExecutionRoleArn"] == SCORING_ROLE
    assert model["PrimaryContainer"]["ModelDataUrl"] == _stored("perfect-on-paper").url
    # While it runs, a poll says so and starts nothing more
    assert _poll(registry, golden, arn)["decision"] == SCORING
    assert _jobs(registry) == [job]
    # Then 3 of its 10 golden photos right: rejected, although its log said 1.0
    _finish(registry, golden, job, right=3)
    answer = _poll(registry, golden, arn)
    assert answer["decision"] == REJECTED
    assert answer["reason"] == "rejected on the golden set: top-1 0.3000 on 10 golden photos < threshold 0.6000"
    assert registry.packages[arn]["ModelApprovalStatus"] == REJECTED
    metadata = _metadata(registry, arn)
    assert (metadata["golden:accuracy"], metadata["golden:photos"], metadata["test:accuracy"]) == (
        "0.300000",
        "10",
        "1.000000",
    )
    # A retried poll answers what was decided, and writes nothing
    writes = len(registry.calls)
    assert _poll(registry, golden, arn)["decision"] == REJECTED
    assert len(registry.calls) == writes


def _serving_on_golden(registry: FakeRegistry, golden: FakeGoldenSet, right: int) -> str:
    """An approved model, scored on the golden set, that the endpoint now serves."""
    arn = _judge(registry, golden, _trained(registry, "serving"))["model_package_arn"]
    _finish(registry, golden, _jobs(registry)[-1], right=right)
    assert _poll(registry, golden, arn)["decision"] == APPROVED
    registry.serve(SETTINGS.endpoint_name, _stored("serving").url)
    return arn


@pytest.mark.parametrize(("right", "decision"), [(8, APPROVED), (7, REJECTED)])
def test_the_candidate_may_lose_at_most_the_tolerance_to_the_serving_model_on_the_same_photos(right, decision):
    registry, golden = FakeRegistry(), FakeGoldenSet(dict(PHOTOS))
    _serving_on_golden(registry, golden, right=8)
    arn = _judge(registry, golden, _trained(registry, "candidate"))["model_package_arn"]
    # the serving model was scored on these photos when it was the candidate: its job is found, not run again
    candidate_job = scoring_job_name(
        SETTINGS.job_name_prefix, _stored("candidate").url, GoldenPhotos.from_listing(golden.listing())
    )
    assert _jobs(registry)[1:] == [candidate_job]
    _finish(registry, golden, candidate_job, right=right)
    answer = _poll(registry, golden, arn)
    assert answer["decision"] == decision
    assert answer["serving_golden_accuracy"] == 0.8
    if decision == REJECTED:
        assert "< the serving model's 0.8000 - tolerance 0.0200" in answer["reason"]


def test_a_changed_golden_set_is_scored_afresh_for_both_models():
    registry, golden = FakeRegistry(), FakeGoldenSet(dict(PHOTOS))
    _serving_on_golden(registry, golden, right=8)
    golden.photos["golden/001.Affenpinscher/new.png"] = "etag-new"
    _judge(registry, golden, _trained(registry, "candidate"))
    assert len(_jobs(registry)) == 3  # the candidate's and the serving model's, on the new set


def test_a_candidate_whose_scoring_job_failed_is_rejected_with_the_jobs_reason():
    registry, golden = FakeRegistry(), FakeGoldenSet(dict(PHOTOS))
    arn = _judge(registry, golden, _trained(registry, "broken"))["model_package_arn"]
    _finish(registry, golden, _jobs(registry)[0], right=0, status="Failed")
    answer = _poll(registry, golden, arn)
    assert answer["decision"] == REJECTED
    assert "scoring on the golden set" in answer["reason"] and "Failed: ClientError" in answer["reason"]


def test_when_the_serving_models_scoring_fails_only_the_threshold_applies_and_the_reason_says_so():
    registry, golden = FakeRegistry(), FakeGoldenSet(dict(PHOTOS))
    registry.serve(SETTINGS.endpoint_name, _stored("unscored").url)
    registry.approved_package(_stored("unscored").url)
    arn = _judge(registry, golden, _trained(registry, "candidate"))["model_package_arn"]
    candidate_job, serving_job = _jobs(registry)
    _finish(registry, golden, candidate_job, right=9)
    _finish(registry, golden, serving_job, right=0, status="Failed")
    answer = _poll(registry, golden, arn)
    assert answer["decision"] == APPROVED
    assert "the serving model's scoring" in answer["reason"] and "only the threshold applied" in answer["reason"]


def test_photos_without_an_answer_count_as_wrong():
    registry, golden = FakeRegistry(), FakeGoldenSet(dict(PHOTOS))
    arn = _judge(registry, golden, _trained(registry, "candidate"))["model_package_arn"]
    job = _jobs(registry)[0]
    _finish(registry, golden, job, right=10)
    for key in list(golden.written)[:4]:
        del golden.written[key]
    answer = _poll(registry, golden, arn)
    assert (answer["decision"], answer["golden_accuracy"]) == (APPROVED, 0.6)
    assert "(4 unanswered, counted wrong)" in answer["reason"]


def test_without_a_golden_set_the_test_split_decides_and_the_reason_says_so():
    registry = FakeRegistry()
    answer = _judge(registry, FakeGoldenSet(), _trained(registry, "candidate"))
    assert answer["decision"] == APPROVED
    assert "no golden set in s3://dog-breeds-artifacts/golden/: judged on the job's test split" in answer["reason"]
    assert not _jobs(registry)


def test_a_candidate_below_the_threshold_on_its_test_split_is_rejected_without_scoring():
    registry = FakeRegistry()
    answer = _judge(registry, FakeGoldenSet(dict(PHOTOS)), _trained(registry, "poor", test_accuracy=0.2))
    assert answer["decision"] == REJECTED and not _jobs(registry)


def test_the_poll_needs_a_pending_package_of_the_group_and_a_stack_that_scores():
    registry = FakeRegistry()
    other = "arn:aws:sagemaker:us-east-1:123456789012:model-package/another-group/1"
    with pytest.raises(InvalidEventError, match="not a package version of the dog-breed-classifier group"):
        _poll(registry, FakeGoldenSet(dict(PHOTOS)), other)
    with pytest.raises(InvalidEventError, match="scores no golden set"):
        run_gate(registry, GateRequest(scored_model_package_arn=other), SETTINGS, GATE, _stored, None)
    with pytest.raises(InvalidEventError, match="exactly one of training_job_name, release_model_package_arn"):
        read_gate_event({"training_job_name": "a-job", "scored_model_package_arn": other})


def test_only_photos_in_breed_folders_are_the_set_and_their_digest_names_the_jobs():
    listing = [("golden/001.Affenpinscher/a.JPG", "e1"), ("golden/readme.txt", "e2"), ("golden/x/y/z.jpg", "e3")]
    photos = GoldenPhotos.from_listing(listing)
    assert photos.keys == ("golden/001.Affenpinscher/a.JPG",)
    changed = GoldenPhotos.from_listing([("golden/001.Affenpinscher/a.JPG", "e1-changed")])
    url = "s3://b/models/sha256/abc/model.tar.gz"
    assert scoring_job_name("p", url, photos) != scoring_job_name("p", url, changed)
    longest = scoring_job_name("p" * 32, url, photos)
    assert len(longest) <= 63  # SageMaker's limit on a transform job's name


@pytest.mark.parametrize("folder", ["002.Afghan_hound", "Afghan_hound", "117.Norwegian_elkhound", "not a dog"])
def test_the_gate_reads_a_folders_breed_as_training_names_it(folder):
    assert breed_of(f"golden/{folder}/x.jpg") == breed_name(folder)


def test_answer_keys_follow_batch_transforms_output_naming():
    assert answer_key("job", "golden/001.Affenpinscher/a.jpg") == "golden-scores/job/001.Affenpinscher/a.jpg.out"
    assert golden_set.SCORES_PREFIX == "golden-scores/"


@pytest.mark.parametrize(
    "answer",
    [
        "not json",
        json.dumps({"error": {"code": "UndecodableImage"}}),  # the model refused the photo
        json.dumps({"predictions": []}),
        json.dumps({"predictions": [{"class_index": 0}]}),
        json.dumps(["Affenpinscher"]),
    ],
)
def test_an_answer_that_names_no_breed_counts_as_wrong_not_as_an_error(answer):
    photos = GoldenPhotos.from_listing(
        [("golden/001.Affenpinscher/a.jpg", "e1"), ("golden/001.Affenpinscher/b.jpg", "e2")]
    )
    right = json.dumps({"predictions": [{"breed": "Affenpinscher", "class_index": 0, "probability": 0.9}]})
    answers = {
        answer_key("job", "golden/001.Affenpinscher/a.jpg"): right,
        answer_key("job", "golden/001.Affenpinscher/b.jpg"): answer,
    }
    result = golden_set.score(photos, "job", answers)
    assert (result.photos, result.correct) == (2, 1) and result.accuracy == 0.5
