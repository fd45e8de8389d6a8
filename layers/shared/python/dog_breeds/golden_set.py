"""The golden set: labelled photos in the stack's bucket that the release gate scores every candidate on.

``golden/<breed folder>/<photo>`` (``make upload-golden``; the training data's folder names, so the expected answer
is the breed the folder names). When the bucket holds one, a candidate that passes the test-split rules is not
approved on its job's log line: SageMaker Batch Transform runs its model, in the inference container an endpoint
would run, over every photo (``application/x-image``, one photo a request), and the model serving now over the same
photos; the gate reads the answers (``golden-scores/<job>/<breed folder>/<photo>.out``), counts them itself, and
approves only a candidate at or above the threshold that loses no more than the tolerance to the serving model.

Jobs are named by what they score: the model (the SHA-256 of its content-addressed URL) and the photos (the digest of
the set's keys and ETags). A retried or re-polled gate finds the job it started; a model already scored on these
photos (the serving model, scored when it was a candidate) is not scored again; a changed set is scored afresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

GOLDEN_PREFIX = "golden/"
SCORES_PREFIX = "golden-scores/"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# One content type for every photo: the serving code's transform_fn sniffs JPEG and PNG under it (inference.py)
SCORING_CONTENT_TYPE = "application/x-image"
# The gate reads every answer within its 60 s timeout; a bigger set belongs in `make evaluate`
MAX_GOLDEN_PHOTOS = 5000
# Recorded on the candidate's package version
GOLDEN_ACCURACY, GOLDEN_PHOTOS = "golden:accuracy", "golden:photos"
GOLDEN_SERVING_ACCURACY, GOLDEN_SET = "golden:serving_accuracy", "golden:set"


@dataclass(frozen=True)
class GoldenPhotos:
    """The set as listed now: its photo keys and a digest of what they are (keys and ETags)."""

    keys: tuple[str, ...]
    digest: str

    @classmethod
    def from_listing(cls, listing: list[tuple[str, str]]) -> GoldenPhotos:
        photos = sorted((key, etag) for key, etag in listing if _is_labelled_photo(key))
        digest = hashlib.sha256("\n".join(f"{key} {etag}" for key, etag in photos).encode()).hexdigest()
        return cls(tuple(key for key, _ in photos), digest)


@dataclass(frozen=True)
class GoldenScore:
    photos: int
    correct: int
    unanswered: int  # photos without an answer (a job that failed part-way, a set changed since)

    @property
    def accuracy(self) -> float:
        return self.correct / self.photos if self.photos else 0.0


def breed_of(key: str) -> str:
    """``golden/002.Afghan_hound/x.jpg`` -> ``Afghan hound``: the folder's breed as the model's labels spell it
    (the same rule as training's ``breed_classifier.labels.breed_name``; a unit test holds them equal)."""
    folder = key.removeprefix(GOLDEN_PREFIX).split("/")[0]
    number, dot, name = folder.partition(".")
    if dot and number.isdigit():
        folder = name
    return folder.replace("_", " ").strip()


def scoring_job_name(job_name_prefix: str, model_data_url: str, photos: GoldenPhotos) -> str:
    """At most 32 + 8 + 12 + 1 + 8 = 61 characters (SageMaker allows 63)."""
    model = hashlib.sha256(model_data_url.encode()).hexdigest()[:12]
    return f"{job_name_prefix}-golden-{model}-{photos.digest[:8]}"


def candidate_model_name(job_name_prefix: str, model_data_url: str) -> str:
    return f"{job_name_prefix}-golden-{hashlib.sha256(model_data_url.encode()).hexdigest()[:12]}"


def transform_request(job_name: str, model_name: str, bucket: str, instance_type: str, tags: list) -> dict:
    """CreateTransformJob for one model over the whole set, one photo a request, answers as JSON."""
    return {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxConcurrentTransforms": 1,
        "MaxPayloadInMB": 6,  # SageMaker's default; a photo the API accepts is smaller
        "BatchStrategy": "SingleRecord",
        "Environment": {},
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{GOLDEN_PREFIX}"}},
            "ContentType": SCORING_CONTENT_TYPE,
            "SplitType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{bucket}/{SCORES_PREFIX}{job_name}/",
            "Accept": "application/json",
            "AssembleWith": "None",
        },
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": 1},
        "Tags": tags,
    }


def answer_key(job_name: str, photo_key: str) -> str:
    """Where Batch Transform writes a photo's answer: the output path, the photo's key under the input prefix,
    ``.out`` (offline_stack/aws_rules/sagemaker.py quotes the rule)."""
    return f"{SCORES_PREFIX}{job_name}/{photo_key.removeprefix(GOLDEN_PREFIX)}.out"


def score(photos: GoldenPhotos, job_name: str, answers: dict[str, str]) -> GoldenScore:
    """Top-1 of ``answers`` (answer key -> the JSON the serving code wrote) against each photo's folder."""
    correct = unanswered = 0
    for key in photos.keys:
        text = answers.get(answer_key(job_name, key))
        if text is None:
            unanswered += 1
            continue
        correct += _top_breed(text) == breed_of(key)
    return GoldenScore(len(photos.keys), correct, unanswered)


def _top_breed(text: str) -> str | None:
    try:
        predictions = json.loads(text)["predictions"]
        return str(predictions[0]["breed"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None  # an answer that names no breed counts as wrong


def _is_labelled_photo(key: str) -> bool:
    parts = key.removeprefix(GOLDEN_PREFIX).split("/")
    return key.startswith(GOLDEN_PREFIX) and len(parts) == 2 and parts[1].lower().endswith(IMAGE_SUFFIXES)
