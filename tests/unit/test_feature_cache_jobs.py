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


def start(event: dict, bucket: Bucket) -> tuple[dict, dict]:
    sagemaker = FakeSageMaker()
    request = read_training_event(event, TrainingDefaults(), SETTINGS.bucket)
    answer = start_training(
        sagemaker, request, SETTINGS, lambda: "s3://dog-breeds-artifacts/code/x/sourcedir.tar.gz", bucket
    )
    (job,) = [arguments for operation, arguments in sagemaker.calls if operation == "create_training_job"]
    return answer, job


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


def test_a_miss_then_an_extraction_then_trials_that_hit():
    bucket = Bucket(DATA)
    answer, job = start({"hyperparameters": FROZEN}, bucket)
    folder = feature_cache_folder(FROZEN, DATA)
    assert answer["feature_cache"] == f"miss {folder}" and "features" not in channels(job)

    answer, job = start({"hyperparameters": FROZEN, "extract_features": True}, bucket)
    assert answer["feature_cache"] == f"extracting into {folder}"
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://dog-breeds-artifacts/{folder.rstrip('/')}"
    assert json.loads(job["HyperParameters"]["extract-features"]) is True
    assert answer["model_artifacts"].startswith(f"s3://dog-breeds-artifacts/{folder}")

    bucket.objects.append((f"{folder}{job['TrainingJobName']}/output/model.tar.gz", '"f"', 5000))
    for rate in (0.001, 0.01):
        answer, job = start({"hyperparameters": {**FROZEN, "learning-rate": rate}}, bucket)
        assert answer["feature_cache"] == f"hit {folder}"
        assert channels(job)["features"] == f"s3://dog-breeds-artifacts/{folder}"
        assert job["OutputDataConfig"]["S3OutputPath"] == "s3://dog-breeds-artifacts/training-output"
        assert "extract-features" not in job["HyperParameters"]


def test_an_unfinished_extraction_is_not_a_hit():
    folder = feature_cache_folder(FROZEN, DATA)
    bucket = Bucket([*DATA, (f"{folder}job/debug-output/x", '"d"', 1)])
    assert start({"hyperparameters": FROZEN}, bucket)[0]["feature_cache"] == f"miss {folder}"


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
