"""The release gate: register a trained model in the endpoint's package group, then approve or reject it.

A candidate is approved when its test accuracy reaches the threshold and is not worse than the serving
model's by more than the tolerance. The serving model is found through the endpoint (endpoint -> config ->
model -> model data) and matched to its package in the registry, so the comparison is with what answers
requests now, not with the newest approval. Every decision is written on the package itself
(``ModelApprovalStatus`` and ``ApprovalDescription``), so the registry says which model was released and why.

When the stack's bucket holds a golden set (``golden/``, ``make upload-golden``), a candidate that passes those rules
is not approved on its job's log line: it stays PendingManualApproval while Batch Transform answers every golden
photo with the candidate and with the serving model (``dog_breeds.golden_set``), and the gate, polled by the
pipeline, approves it only at or above the threshold on those photos and no more than the tolerance below the serving
model's score on the same photos. The figures are written on the package (``golden:accuracy``...).

A person can override a rejection: approve the package (``aws sagemaker update-model-package``) and start
the pipeline with ``{"release_model_package_arn": ...}``; the override is recorded on the package.

The package's model is not the job's output key (mutable) but a write-once copy of the judged bytes at
``models/sha256/<digest>/model.tar.gz`` (``dog_breeds.model_store``), with the digest on the package: the deploy
function deploys only that, of an Approved version (``deploy: {"model_package_arn": ...}``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dog_breeds import golden_set
from dog_breeds.aws_names import MODEL_PACKAGE_ARN, TRAINING_JOB_NAME, tags
from dog_breeds.container_images import INFERENCE_IMAGE, image_uri
from dog_breeds.control_events import from_event, read_event, text_matching
from dog_breeds.deploy_endpoint import INFERENCE_PROGRAM
from dog_breeds.errors import InvalidEventError, TrainingNotCompleteError
from dog_breeds.golden_set import GoldenPhotos, GoldenScore
from dog_breeds.model_store import StoredModel
from dog_breeds.ports import AwsDocument, GoldenSet, ModelRegistry
from dog_breeds.settings import ControlPlaneSettings, GateSettings

APPROVED, REJECTED, PENDING = "Approved", "Rejected", "PendingManualApproval"
SCORING = "Scoring"  # not a registry status: the gate's answer while the golden set's jobs run (the package is PENDING)
ACCURACY, LOSS = "test:accuracy", "test:loss"
# The judged model.tar.gz's SHA-256, on the package: what `make promote-model` checks the promoted bytes against
ARTIFACT_SHA256 = "artifact_sha256"
SERVING_CODE_SHA256 = "serving_code_sha256"
# The content-addressed training code the job ran (code/training_jobs-<sha256>/...): `make train-stage` retrains
# when a commit's training code is not the approved model's
TRAINING_CODE = "training_code"
# How many approved versions to search for the serving model's package.
_SERVING_SEARCH_DEPTH = 20
# The job's own output key, on the package (where the judged bytes came from)
TRAINED_MODEL_DATA_URL = "trained_model_data_url"


@dataclass(frozen=True)
class GateRequest:
    """The gate's event: a job to judge, or an approved package version to release (the override)."""

    training_job_name: str | None = from_event(text_matching(TRAINING_JOB_NAME, "a SageMaker training job name"), None)
    release_model_package_arn: str | None = from_event(
        text_matching(MODEL_PACKAGE_ARN, "a model package version ARN"), None
    )
    # A candidate whose golden-set scoring the gate started: see how it went, decide when it is done
    scored_model_package_arn: str | None = from_event(
        text_matching(MODEL_PACKAGE_ARN, "a model package version ARN"), None
    )


_ONE_OF = "give exactly one of training_job_name, release_model_package_arn or scored_model_package_arn"


def read_gate_event(event: Any) -> GateRequest:
    request = read_event(GateRequest, event)
    given = [request.training_job_name, request.release_model_package_arn, request.scored_model_package_arn]
    if sum(value is not None for value in given) != 1:
        raise InvalidEventError(_ONE_OF)
    return request


def run_gate(
    sagemaker: ModelRegistry,
    request: GateRequest,
    settings: ControlPlaneSettings,
    gate: GateSettings,
    store_model: Callable[[str], StoredModel],
    golden: GoldenSet | None = None,
) -> dict:
    """``store_model(url)``: copy the model.tar.gz at ``url`` to its write-once content address; return that URL, its
    SHA-256 and its serving code's. All are recorded on the package, so a deploy or a promotion can prove it carries
    the judged bytes, and a reviewer sees which serving code they hold. ``golden``: the bucket's golden set (None when
    the stack has no scoring role: judged on the test split only)."""
    if request.training_job_name:
        return judge_candidate(sagemaker, request.training_job_name, settings, gate, store_model, golden)
    if request.release_model_package_arn:
        return release_approved_package(sagemaker, request.release_model_package_arn, settings)
    if request.scored_model_package_arn and golden is not None:
        return judge_on_golden_set(sagemaker, request.scored_model_package_arn, settings, gate, golden)
    if request.scored_model_package_arn:
        raise InvalidEventError("this stack scores no golden set (GOLDEN_SCORING_ROLE_ARN is not set)")
    raise InvalidEventError(_ONE_OF)


def judge_candidate(
    sagemaker: ModelRegistry,
    job_name: str,
    settings: ControlPlaneSettings,
    gate: GateSettings,
    store_model: Callable[[str], StoredModel],
    golden: GoldenSet | None = None,
) -> dict:
    """Register ``job_name``'s model (its write-once copy) as a package version with its test metrics; approve or
    reject it, or, when it passes and the bucket holds a golden set, start scoring it there (``SCORING``)."""
    job = sagemaker.describe_training_job(job_name)
    if job is None or job["TrainingJobStatus"] != "Completed":
        status = "missing" if job is None else job["TrainingJobStatus"]
        raise TrainingNotCompleteError(f"training job {job_name} is {status}; only a Completed job can be judged")
    metrics = {item["MetricName"]: item["Value"] for item in job.get("FinalMetricDataList", [])}
    accuracy = metrics.get(ACCURACY)
    trained_model_data_url = job["ModelArtifacts"]["S3ModelArtifacts"]
    stored = store_model(trained_model_data_url)
    code = [
        channel["DataSource"]["S3DataSource"]["S3Uri"]
        for channel in job.get("InputDataConfig", [])
        if channel.get("ChannelName") == "code"
    ]
    group = settings.endpoint_name
    sagemaker.ensure_model_package_group(group, f"Models trained for the {group} endpoint", tags())
    # What the API serves: this kind's endpoint, or during a kind switch the other kind's, still answering
    serving = serving_package(sagemaker, settings.serving_endpoint_name, group) or serving_package(
        sagemaker, settings.other_endpoint_name, group
    )
    decision, reason = _decide(accuracy, serving, gate)
    photos = GoldenPhotos.from_listing(golden.listing()) if golden is not None else None
    if decision == APPROVED and photos is not None and not photos.keys:
        reason += (
            f"; no golden set in s3://{settings.bucket}/{golden_set.GOLDEN_PREFIX}: judged on the job's test split"
        )
    package_arn = sagemaker.create_model_package(
        {
            "ModelPackageGroupName": group,
            "ModelPackageDescription": f"trained by {job_name}",
            "InferenceSpecification": {
                "Containers": [{"Image": image_uri(INFERENCE_IMAGE, settings.region), "ModelDataUrl": stored.url}],
                "SupportedContentTypes": ["image/jpeg", "image/png", "application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "ModelApprovalStatus": PENDING,
            "CustomerMetadataProperties": {
                "training_job_name": job_name,
                ARTIFACT_SHA256: stored.sha256,
                SERVING_CODE_SHA256: stored.serving_code_sha256,  # inside the artifact; which code serves
                TRAINED_MODEL_DATA_URL: trained_model_data_url,
                **{name: f"{value:.6f}" for name, value in metrics.items() if name in (ACCURACY, LOSS)},
                "gate_decision": decision,  # kept when a person later changes the approval status
                **({TRAINING_CODE: code[0]} if code else {}),
            },
            # A retried invocation registers the same version once
            "ClientToken": hashlib.sha256(job_name.encode()).hexdigest()[:32],
        }
    )
    if decision == APPROVED and golden is not None and photos is not None and photos.keys:
        return judge_on_golden_set(sagemaker, package_arn, settings, gate, golden, photos)
    sagemaker.update_model_package(package_arn, ModelApprovalStatus=decision, ApprovalDescription=reason[:1024])
    return {
        "decision": decision,
        "reason": reason,
        "model_package_arn": package_arn,
        "test_accuracy": accuracy,
        "serving_test_accuracy": serving["accuracy"] if serving else None,
        "deploy": {"model_package_arn": package_arn},
    }


def judge_on_golden_set(
    sagemaker: ModelRegistry,
    package_arn: str,
    settings: ControlPlaneSettings,
    gate: GateSettings,
    golden: GoldenSet,
    photos: GoldenPhotos | None = None,
) -> dict:
    """Score the pending candidate ``package_arn`` and the serving model on the golden set (starting the Batch
    Transform jobs that are not there yet); while one runs, ``SCORING``; then approve or reject on the answers.
    ``photos``: the set as the caller listed it in this invocation (listed here otherwise)."""
    package = sagemaker.describe_model_package(package_arn)
    if package is None or package.get("ModelPackageGroupName") != settings.endpoint_name:
        raise InvalidEventError(f"{package_arn} is not a package version of the {settings.endpoint_name} group")
    properties = dict(package.get("CustomerMetadataProperties") or {})
    if package.get("ModelApprovalStatus") != PENDING:  # decided already (a retried poll): say what was decided
        return _answer(package["ModelApprovalStatus"], package.get("ApprovalDescription", ""), package_arn, properties)
    photos = photos or GoldenPhotos.from_listing(golden.listing())
    if not photos.keys or len(photos.keys) > golden_set.MAX_GOLDEN_PHOTOS:
        found = f"{len(photos.keys)} photos" if photos.keys else "no photos"
        reason = (
            f"rejected: the golden set s3://{settings.bucket}/{golden_set.GOLDEN_PREFIX} holds {found} while the "
            f"candidate is scored; it takes 1 to {golden_set.MAX_GOLDEN_PHOTOS} (make upload-golden)"
        )
        return _record(sagemaker, package_arn, properties, REJECTED, reason, {})
    candidate_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    group = settings.endpoint_name
    serving = serving_package(sagemaker, settings.serving_endpoint_name, group) or serving_package(
        sagemaker, settings.other_endpoint_name, group
    )
    serving_url = serving["model_data_url"] if serving and serving["model_data_url"] != candidate_url else None
    jobs = {"candidate": _scoring_job(sagemaker, candidate_url, photos, settings, gate)}
    if serving_url:
        jobs["serving"] = _scoring_job(sagemaker, serving_url, photos, settings, gate)
    running = [
        job["TransformJobName"] for job in jobs.values() if job["TransformJobStatus"] in ("InProgress", "Stopping")
    ]
    if running:
        reason = f"scoring on the golden set ({len(photos.keys)} photos): {', '.join(running)}"
        sagemaker.update_model_package(package_arn, ApprovalDescription=reason)
        return _answer(SCORING, reason, package_arn, properties)
    candidate = jobs["candidate"]
    if candidate["TransformJobStatus"] != "Completed":
        reason = (
            f"rejected: the candidate's scoring on the golden set ({candidate['TransformJobName']}) "
            f"{candidate['TransformJobStatus']}: {candidate.get('FailureReason', 'no reason given')}"
        )
        return _record(sagemaker, package_arn, properties, REJECTED, reason, {})
    scores = {
        kind: golden_set.score(photos, job["TransformJobName"], golden.answers(job["TransformJobName"]))
        for kind, job in jobs.items()
        if job["TransformJobStatus"] == "Completed"
    }
    decision, reason = _decide_on_golden(scores["candidate"], scores.get("serving"), gate)
    if "serving" in jobs and "serving" not in scores:
        reason += (
            f"; the serving model's scoring ({jobs['serving']['TransformJobName']}) "
            f"{jobs['serving']['TransformJobStatus']}, so only the threshold applied"
        )
    figures = {
        golden_set.GOLDEN_ACCURACY: f"{scores['candidate'].accuracy:.6f}",
        golden_set.GOLDEN_PHOTOS: str(scores["candidate"].photos),
        golden_set.GOLDEN_SET: photos.digest,
        **({golden_set.GOLDEN_SERVING_ACCURACY: f"{scores['serving'].accuracy:.6f}"} if "serving" in scores else {}),
    }
    return _record(sagemaker, package_arn, properties, decision, reason, figures)


def _scoring_job(
    sagemaker: ModelRegistry,
    model_data_url: str,
    photos: GoldenPhotos,
    settings: ControlPlaneSettings,
    gate: GateSettings,
) -> AwsDocument:
    """The Batch Transform job that scores ``model_data_url`` on ``photos``: found, or started (with its model, run as
    the scoring role, not the endpoint's)."""
    name = golden_set.scoring_job_name(settings.job_name_prefix, model_data_url, photos)
    found = sagemaker.describe_transform_job(name)
    if found is not None:
        return found
    model_name = golden_set.candidate_model_name(settings.job_name_prefix, model_data_url)
    if not sagemaker.model_exists(model_name):
        sagemaker.create_model(
            {
                "ModelName": model_name,
                "ExecutionRoleArn": gate.scoring_role_arn,
                "EnableNetworkIsolation": True,  # the artifact carries all its code
                "PrimaryContainer": {
                    "Image": image_uri(INFERENCE_IMAGE, settings.region),
                    "ModelDataUrl": model_data_url,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": INFERENCE_PROGRAM,
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "SAGEMAKER_REGION": settings.region,
                    },
                },
                "Tags": tags(),
            }
        )
    sagemaker.create_transform_job(
        golden_set.transform_request(name, model_name, settings.bucket, gate.scoring_instance_type, tags())
    )
    return {"TransformJobName": name, "TransformJobStatus": "InProgress"}


def _decide_on_golden(candidate: GoldenScore, serving: GoldenScore | None, gate: GateSettings) -> tuple[str, str]:
    threshold, tolerance = gate.minimum_test_accuracy, gate.maximum_accuracy_regression
    said = f"top-1 {candidate.accuracy:.4f} on {candidate.photos} golden photos"
    if candidate.unanswered:
        said += f" ({candidate.unanswered} unanswered, counted wrong)"
    if candidate.accuracy < threshold:
        return REJECTED, f"rejected on the golden set: {said} < threshold {threshold:.4f}"
    if serving is not None and candidate.accuracy < serving.accuracy - tolerance:
        return REJECTED, (
            f"rejected on the golden set: {said} < the serving model's {serving.accuracy:.4f} - tolerance "
            f"{tolerance:.4f}"
        )
    against = (
        f"; the serving model's {serving.accuracy:.4f} - tolerance {tolerance:.4f}"
        if serving is not None
        else "; no registered model serves yet"
    )
    return APPROVED, f"approved on the golden set: {said} >= threshold {threshold:.4f}{against}"


def _record(
    sagemaker: ModelRegistry, arn: str, properties: dict, decision: str, reason: str, figures: dict[str, str]
) -> dict:
    properties = {**properties, **figures, "gate_decision": decision}
    sagemaker.update_model_package(
        arn, ModelApprovalStatus=decision, ApprovalDescription=reason[:1024], CustomerMetadataProperties=properties
    )
    return _answer(decision, reason, arn, properties)


def _answer(decision: str, reason: str, arn: str, properties: dict) -> dict:
    return {
        "decision": decision,
        "reason": reason,
        "model_package_arn": arn,
        "test_accuracy": _number(properties.get(ACCURACY)),
        "golden_accuracy": _number(properties.get(golden_set.GOLDEN_ACCURACY)),
        "serving_golden_accuracy": _number(properties.get(golden_set.GOLDEN_SERVING_ACCURACY)),
        "deploy": {"model_package_arn": arn},
    }


def release_approved_package(sagemaker: ModelRegistry, package_arn: str, settings: ControlPlaneSettings) -> dict:
    """Deploy a package a person approved, whatever the gate said; the override is recorded on it."""
    package = sagemaker.describe_model_package(package_arn)
    if package is None or package.get("ModelPackageGroupName") != settings.endpoint_name:
        raise InvalidEventError(f"{package_arn} is not a package version of the {settings.endpoint_name} group")
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise InvalidEventError(
            f"{package_arn} is {status}; approve it first: aws sagemaker update-model-package --model-package-arn "
            f'{package_arn} --model-approval-status Approved --approval-description "why"'
        )
    properties = dict(package.get("CustomerMetadataProperties") or {})
    properties["released_by"] = "manual approval" if properties.get("gate_decision") != REJECTED else "override"
    sagemaker.update_model_package(package_arn, CustomerMetadataProperties=properties)
    reason = f"released by a person's approval: {package.get('ApprovalDescription', '(no description)')}"
    return {
        "decision": APPROVED,
        "reason": reason,
        "model_package_arn": package_arn,
        "test_accuracy": _number(properties.get(ACCURACY)),
        "serving_test_accuracy": None,
        "deploy": {"model_package_arn": package_arn},
    }


def serving_package(sagemaker: ModelRegistry, endpoint_name: str, group: str | None = None) -> dict | None:
    """The approved package (of ``group``, the endpoint's name by default) whose model the endpoint serves now,
    with its test accuracy; None if none is."""
    group = group or endpoint_name
    endpoint = sagemaker.describe_endpoint(endpoint_name)
    if endpoint is None:
        return None
    config = sagemaker.describe_endpoint_config(endpoint["EndpointConfigName"]) or {}
    variants = config.get("ProductionVariants") or [{}]
    model = sagemaker.describe_model(variants[0].get("ModelName", "")) if variants[0].get("ModelName") else None
    serving_data = (model or {}).get("PrimaryContainer", {}).get("ModelDataUrl")
    for summary in sagemaker.latest_model_packages(group, APPROVED, _SERVING_SEARCH_DEPTH):
        package = sagemaker.describe_model_package(summary["ModelPackageArn"]) or {}
        containers = package.get("InferenceSpecification", {}).get("Containers", [{}])
        if serving_data and containers[0].get("ModelDataUrl") == serving_data:
            accuracy = _number((package.get("CustomerMetadataProperties") or {}).get(ACCURACY))
            return {"arn": summary["ModelPackageArn"], "accuracy": accuracy, "model_data_url": serving_data}
    return None


def _decide(accuracy: float | None, serving: dict | None, gate: GateSettings) -> tuple[str, str]:
    threshold, tolerance = gate.minimum_test_accuracy, gate.maximum_accuracy_regression
    if accuracy is None:
        return REJECTED, f"rejected: the training job reported no {ACCURACY} metric"
    if accuracy < threshold:
        return REJECTED, f"rejected by threshold: test accuracy {accuracy:.4f} < {threshold:.4f}"
    if serving and serving["accuracy"] is not None and accuracy < serving["accuracy"] - tolerance:
        return REJECTED, (
            f"rejected by regression: test accuracy {accuracy:.4f} < serving model's {serving['accuracy']:.4f} "
            f"- tolerance {tolerance:.4f} ({serving['arn']})"
        )
    against = (
        f"; serving model's {serving['accuracy']:.4f} - tolerance {tolerance:.4f}"
        if serving and serving["accuracy"] is not None
        else "; no registered model serves yet"
    )
    return APPROVED, f"approved: test accuracy {accuracy:.4f} >= threshold {threshold:.4f}{against}"


def _number(text: str | None) -> float | None:
    return float(text) if text else None
