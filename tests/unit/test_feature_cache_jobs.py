"""How the start-training function finds a frozen backbone's features in the feature cache (S3), and extracts them.

Against an in-memory listing of the bucket and the in-memory SageMaker (tests/support/fakes.py);
tests/integration/test_offline_stack.py runs extraction and the hits through the offline stack (the demo's tuning step).
"""

from __future__ import annotations

import json

import pytest

from dog_breeds.errors import InvalidEventError
from dog_breeds.settings import TrainingDefaults
from dog_breeds.start_training import feature_cache_folder, read_training_event, start_training
from tests.support.fakes import SETTINGS, FakeSageMaker

DATA = [("data/train/001.Akita/a.jpg", '"e1"', 100), ("data/valid/001.Akita/b.jpg", '"e2"', 90)]
FROZEN = {"architecture": "efficientnet_lite0", "image-size": 96}


class Bucket:
    def __init__(self, objects):
        self.objects = list(objects)

    def __call__(self, prefix: str):
        return [item for item in self.objects if item[0].startswith(prefix)]


class Digests:
    """The bytes' SHA-256 of each key as S3 would read them now; ``read`` lists every key read."""

    def __init__(self) -> None:
        self.now: dict[str, str] = {}
        self.read: list[str] = []

    def __call__(self, key: str) -> str:
        self.read.append(key)
        return self.now.get(key, "a" * 64)


def start(event: dict, bucket: Bucket, sagemaker=None, digests=None) -> tuple[dict, dict]:
    sagemaker = sagemaker if sagemaker is not None else FakeSageMaker()
    request = read_training_event(event, TrainingDefaults(), SETTINGS.bucket)
    answer = start_training(
        sagemaker,
        request,
        SETTINGS,
        lambda: "s3://dog-breeds-artifacts/code/x/sourcedir.tar.gz",
        bucket,
        digests if digests is not None else Digests(),
    )
    job = [arguments for operation, arguments in sagemaker.calls if operation == "create_training_job"][-1]
    return answer, job


def extracted(sagemaker: FakeSageMaker, bucket: Bucket, job: dict) -> str:
    """SageMaker completes the extraction ``job``: its output object appears under the folder."""
    key = f"{job['OutputDataConfig']['S3OutputPath'].removeprefix('s3://dog-breeds-artifacts/')}/"
    key += f"{job['TrainingJobName']}/output/model.tar.gz"
    sagemaker.completed_job(job["TrainingJobName"], f"s3://dog-breeds-artifacts/{key}", job["HyperParameters"])
    bucket.objects.append((key, '"f"', 5000))
    return key


def channels(job: dict) -> dict[str, str]:
    return {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}


@pytest.mark.parametrize(
    "change",
    [{"image-size": 128}, {"architecture": "resnet50"}, {"cached-views": 3}, {"seed": 1}, {"pretrained": False}],
)
def test_the_folder_changes_with_the_transform_the_backbone_and_the_views(change):
    assert feature_cache_folder({**FROZEN, **change}, DATA) != feature_cache_folder(FROZEN, DATA)


def test_the_folder_changes_with_the_data_and_is_the_same_for_a_learning_rate():
    changed = [(DATA[0][0], '"another"', 100), DATA[1]]
    assert feature_cache_folder(FROZEN, changed) != feature_cache_folder(FROZEN, DATA)
    assert feature_cache_folder({**FROZEN, "learning-rate": 0.1}, DATA) == feature_cache_folder(FROZEN, DATA)
    assert feature_cache_folder(FROZEN, list(reversed(DATA))) == feature_cache_folder(FROZEN, DATA)


def test_no_folder_when_the_backbone_trains_or_the_cache_is_off():
    assert feature_cache_folder({**FROZEN, "freeze-backbone": False}, DATA) is None
    assert feature_cache_folder({**FROZEN, "freeze-backbone": "false"}, DATA) is None
    assert feature_cache_folder({**FROZEN, "feature-cache": "off"}, DATA) is None
    assert feature_cache_folder(FROZEN, DATA).startswith("feature-cache/")


def test_a_miss_then_an_extraction_then_trials_that_hit_with_the_digest_recorded_at_the_first():
    bucket, sagemaker, digests = Bucket(DATA), FakeSageMaker(), Digests()
    answer, job = start({"hyperparameters": FROZEN}, bucket, sagemaker, digests)
    folder = feature_cache_folder(FROZEN, DATA)
    assert answer["feature_cache"] == f"miss {folder}" and "features" not in channels(job)
    assert "features-sha256" not in job["HyperParameters"]

    answer, job = start({"hyperparameters": FROZEN, "extract_features": True}, bucket, sagemaker, digests)
    assert answer["feature_cache"] == f"extracting into {folder}"
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://dog-breeds-artifacts/{folder.rstrip('/')}"
    assert json.loads(job["HyperParameters"]["extract-features"]) is True
    assert answer["model_artifacts"].startswith(f"s3://dog-breeds-artifacts/{folder}")

    key = extracted(sagemaker, bucket, job)
    digests.now[key] = "b" * 64
    for rate in (0.001, 0.01):
        answer, job = start({"hyperparameters": {**FROZEN, "learning-rate": rate}}, bucket, sagemaker, digests)
        assert answer["feature_cache"] == f"hit {folder}"
        assert channels(job)["features"] == f"s3://dog-breeds-artifacts/{key}"  # that object, not the folder
        assert json.loads(job["HyperParameters"]["features-sha256"]) == "b" * 64
        assert job["OutputDataConfig"] == {  # written with the bucket's key, not the account's aws/s3 key
            "S3OutputPath": "s3://dog-breeds-artifacts/training-output",
            "KmsKeyId": SETTINGS.artifacts_key_arn,
        }
        assert "extract-features" not in job["HyperParameters"]
    assert digests.read == [key]  # read once, then taken from where it was recorded
    # the bucket's object changes after that: jobs still get the recorded digest, so they refuse the new bytes
    digests.now[key] = "c" * 64
    _, job = start({"hyperparameters": FROZEN}, bucket, sagemaker, digests)
    assert json.loads(job["HyperParameters"]["features-sha256"]) == "b" * 64


def test_an_object_no_completed_extraction_job_of_this_stack_wrote_is_not_a_hit():
    folder = feature_cache_folder(FROZEN, DATA)
    sagemaker = FakeSageMaker()
    planted = [
        f"{folder}job/debug-output/x",  # not an output
        f"{folder}dog-breeds-no-such-job/output/model.tar.gz",  # no such job
        f"{folder}another-stack-2026-01-01/output/model.tar.gz",  # not this stack's prefix
        f"{folder}dog-breeds-trial/output/model.tar.gz",  # a job, but not an extraction
        f"{folder}dog-breeds-running/output/model.tar.gz",  # an extraction still running
    ]
    sagemaker.completed_job("dog-breeds-trial", f"s3://dog-breeds-artifacts/{planted[3]}", {})
    sagemaker.jobs["dog-breeds-running"] = {"TrainingJobArn": "arn:x", "TrainingJobStatus": "InProgress"}
    bucket = Bucket([*DATA, *((key, '"d"', 1) for key in planted)])
    digests = Digests()
    assert start({"hyperparameters": FROZEN}, bucket, sagemaker, digests)[0]["feature_cache"] == f"miss {folder}"
    assert digests.read == [] and not any(op == "tag" for op, _ in sagemaker.calls)


def test_extraction_is_refused_where_there_is_nothing_to_cache():
    for hyperparameters in ({**FROZEN, "freeze-backbone": False}, {**FROZEN, "feature-cache": "off"}):
        with pytest.raises(InvalidEventError, match="extract_features needs a frozen backbone"):
            start({"hyperparameters": hyperparameters, "extract_features": True}, Bucket(DATA))


def test_a_fine_tuned_backbone_has_no_cache_and_no_listing_is_needed():
    def no_listing(prefix):
        raise AssertionError("listed")

    sagemaker = FakeSageMaker()
    request = read_training_event(
        {"hyperparameters": {**FROZEN, "freeze-backbone": False}}, TrainingDefaults(), SETTINGS.bucket
    )
    answer = start_training(sagemaker, request, SETTINGS, lambda: "s3://b/code/x/sourcedir.tar.gz", no_listing)
    assert answer["feature_cache"] == "none"
