"""Promote the model a stage approved and serves into another stage: the exact bytes that were judged, never a retrain.

    python -m ops.promote_model export  --stage testing [--package-arn ARN] --dir promotion/
    python -m ops.promote_model promote --stage prod --dir promotion/ [--release]

``export`` (with credentials that may read the source stage: prod's job uses testing's read-only registry reader
role, pipeline/bootstrap.yaml) takes the approved version the source stage's endpoint **serves now** (what its
integration tests just ran against, and trained from this checkout's ``training_jobs/``, so a model another push
deployed meanwhile is not taken; ``--package-arn``: another approved version), downloads its model.tar.gz from
its content address, and checks its SHA-256 against the digest the release gate recorded on the version. It writes
``model.tar.gz`` and ``record.json`` (the version's ARN, digest, approval and gate metrics, as the source registry
holds them now) to ``--dir``. Both steps run in the same job (``.github/workflows/pipeline.yaml``, deploy-prod), so
what prod promotes is proved against the registry that judged it, never against a record carried between jobs.

``promote`` (with the target stage's credentials) checks the file against the record again and **re-scores** it on
the target's own golden set (``s3://<bucket>/golden/``, uploaded by ``make upload-golden``) through the serving code
the artifact carries (``ops/score_model.py``): below the target's ``GateMinimumTestAccuracy``, or worse than the
model the target serves (scored on the same photos now) by more than ``GateMaximumAccuracyRegression``, nothing is
written. Prod requires a golden set; other stages re-score when they have one. Then it stores the bytes under their
digest (``models/sha256/<sha256>/model.tar.gz``, a conditional write: never over other bytes), registers an approved
version carrying the source's metrics, ARN and the golden score, and with ``--release`` starts the target's pipeline
with ``{"release_model_package_arn": ...}`` and follows it to its end (the blue/green release with its guardrails).

Refused, with the reason and nothing written: a version that is not Approved, not served or trained from other
code (without ``--package-arn``), without a recorded digest, bytes whose digest differs from the record (at export
or at promote), a record that is not an approval, a golden score below the bar, no golden set in prod.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from dog_breeds.adapters.sagemaker_control import SageMakerControl
from dog_breeds.golden_set import GOLDEN_ACCURACY, GOLDEN_PHOTOS, GOLDEN_PREFIX  # also on the promoted version
from dog_breeds.model_store import model_key, serving_code_sha256
from dog_breeds.release_gate import (
    ACCURACY,
    APPROVED,
    ARTIFACT_SHA256,
    LOSS,
    SERVING_CODE_SHA256,
    TRAINING_CODE,
    serving_package,
)
from dog_breeds.settings import endpoint_name_of
from offline_stack.sam_template import TEMPLATE_PATH, load_template
from ops.register_model import ensure_package_group, inference_specification
from ops.score_model import Score, ScoringError, score
from ops.stack_outputs import stack_outputs
from ops.stages import Stage, add_stage_arguments, read_stage
from ops.train_stage import current_code_key

RECORD, ARTIFACT = "record.json", "model.tar.gz"
RESCORE_REQUIRED = ("prod",)  # stages whose promotions must be re-scored on their own golden set
_CHUNK = 1024 * 1024


class PromotionRefused(Exception):
    """The model may not be promoted; the message says why."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def served_package(sagemaker, outputs: dict[str, str]) -> str | None:
    """The approved version a stack's endpoint serves now (either kind's endpoint), or None."""
    registry, endpoint = SageMakerControl(sagemaker), outputs.get("EndpointName", "")
    group = outputs.get("ModelPackageGroupName", endpoint)
    for name in (endpoint, endpoint_name_of(endpoint, "serverless")):
        if name and (serving := serving_package(registry, name, group)):
            return serving["arn"]
    return None


def export_approved(
    sagemaker, s3, group: str, directory: Path, package_arn: str | None, trained_from: str | None = None
) -> dict:
    """Write the approved version's artifact and its record, as the source registry holds them now, to
    ``directory``; the record. With ``trained_from`` (a training-code key), the version must have been trained
    from that code: the served model is this commit's, not one a later push deployed while prod waited."""
    if not package_arn:
        raise PromotionRefused(f"the {group} stage serves no approved version of its registry: nothing to promote")
    arn = package_arn
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    if package.get("ModelPackageGroupName") != group:
        raise PromotionRefused(f"{arn} is not a version of the {group} registry")
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise PromotionRefused(f"{arn} is {status}, not Approved: only an approved model is promoted")
    metadata = dict(package.get("CustomerMetadataProperties") or {})
    if trained_from and not metadata.get(TRAINING_CODE, "").endswith(trained_from):
        raise PromotionRefused(
            f"{arn} was trained from {metadata.get(TRAINING_CODE) or 'unrecorded code'}, not this commit's "
            f"{trained_from}: the stage serves another run's model (a later push redeployed it?); run the workflow "
            "again once it serves this commit's, or name a version with --package-arn"
        )
    recorded = metadata.get(ARTIFACT_SHA256)
    if not recorded:
        raise PromotionRefused(f"{arn} carries no {ARTIFACT_SHA256}: its bytes cannot be proved to be the judged ones")
    url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, _, key = url.removeprefix("s3://").partition("/")
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{ARTIFACT}.partial"
    s3.download_file(bucket, key, str(partial))
    actual = sha256_file(partial)
    if actual != recorded:
        partial.unlink()
        raise PromotionRefused(f"{url} has SHA-256 {actual}, but {arn} was approved with {recorded}: not promoted")
    partial.replace(directory / ARTIFACT)
    record = {
        "source_package_arn": arn,
        "artifact_sha256": recorded,
        "approval_status": status,
        "approval_description": package.get("ApprovalDescription", ""),
        "metrics": {name: metadata[name] for name in (ACCURACY, LOSS) if name in metadata},
        "training_job_name": metadata.get("training_job_name", ""),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (directory / RECORD).write_text(json.dumps(record, indent=2))
    return record


def read_promotion(directory: Path) -> tuple[dict, Path]:
    """The record and the artifact, once the artifact's digest is the record's and the record is an approval."""
    record_path, artifact = directory / RECORD, directory / ARTIFACT
    if not record_path.is_file() or not artifact.is_file():
        raise PromotionRefused(f"{directory} must hold {RECORD} and {ARTIFACT}: run the export first")
    record = json.loads(record_path.read_text())
    if record.get("approval_status") != APPROVED:
        raise PromotionRefused(f"the record is {record.get('approval_status')}, not Approved: not promoted")
    actual = sha256_file(artifact)
    if actual != record.get("artifact_sha256"):
        raise PromotionRefused(
            f"{artifact} has SHA-256 {actual}, but {record.get('source_package_arn')} was approved with "
            f"{record.get('artifact_sha256')}: not promoted"
        )
    with artifact.open("rb") as body:  # which serving code the judged bytes hold, recorded on prod's version
        record["serving_code_sha256"] = serving_code_sha256(body)
    return record, artifact


def store_artifact(s3, bucket: str, artifact: Path, digest: str) -> str:
    """``models/sha256/<digest>/model.tar.gz`` in ``bucket``, written only if absent; existing bytes must match."""
    key = model_key(digest)  # the content address the deploy function accepts (dog_breeds.model_store)
    try:
        with artifact.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
            raise
        stored = hashlib.sha256()
        for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(_CHUNK):
            stored.update(chunk)
        if stored.hexdigest() != digest:
            raise PromotionRefused(f"s3://{bucket}/{key} holds other bytes than its name says: not promoted") from None
    return f"s3://{bucket}/{key}"


def gate_of(stage: Stage) -> tuple[float, float]:
    """The stage's (GateMinimumTestAccuracy, GateMaximumAccuracyRegression): samconfig.toml's, else the template's."""
    defaults = load_template(TEMPLATE_PATH)["Parameters"]
    value = {
        name: float(stage.parameter_overrides.get(name, defaults[name]["Default"]))
        for name in ("GateMinimumTestAccuracy", "GateMaximumAccuracyRegression")
    }
    return value["GateMinimumTestAccuracy"], value["GateMaximumAccuracyRegression"]


def download_golden_set(s3, bucket: str, into: Path) -> Path | None:
    """The stage's golden set (``golden/<breed folder>/<photo>``) under ``into``; None when the stage has none."""
    found = False
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=GOLDEN_PREFIX):
        for item in page.get("Contents", []):
            relative = item["Key"].removeprefix(GOLDEN_PREFIX)
            parts = relative.split("/")
            if len(parts) != 2 or not all(parts) or any(part in (".", "..") for part in parts):
                continue  # not <breed folder>/<photo>: never a path outside ``into``
            target = into / parts[0] / parts[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
            found = True
    return into if found else None


def rescore(
    candidate: Path, golden: Path, gate: tuple[float, float], serving: Path | None = None
) -> tuple[Score, Score | None]:
    """The candidate's score on the golden set (and the serving model's, on the same photos); refused below the
    threshold or worse than the serving model by more than the tolerance."""
    threshold, tolerance = gate
    try:
        candidate_score = score(candidate, golden)
        serving_score = score(serving, golden) if serving else None
    except ScoringError as error:
        raise PromotionRefused(f"the golden set could not be scored: {error}") from error
    accuracy = candidate_score.top1
    if accuracy < threshold:
        raise PromotionRefused(
            f"re-scored on the golden set: top-1 {accuracy:.4f} on {candidate_score.photos} photos < threshold "
            f"{threshold:.4f}: not promoted"
        )
    if serving_score and accuracy < serving_score.top1 - tolerance:
        raise PromotionRefused(
            f"re-scored on the golden set: top-1 {accuracy:.4f} < the serving model's {serving_score.top1:.4f} - "
            f"tolerance {tolerance:.4f} on the same {candidate_score.photos} photos: not promoted"
        )
    return candidate_score, serving_score


def register(sagemaker, group: str, record: dict, model_data_url: str, region: str) -> str:
    """An approved version in ``group`` for the promoted artifact (the same digest registers once)."""
    ensure_package_group(sagemaker, group)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"promoted from {record['source_package_arn']}"[:1000],
        InferenceSpecification=inference_specification(region, model_data_url),
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={
            **record["metrics"],
            **record.get("golden", {}),
            ARTIFACT_SHA256: record["artifact_sha256"],
            SERVING_CODE_SHA256: record.get("serving_code_sha256", "none"),
            "promoted_from": record["source_package_arn"][:256],
            "gate_decision": APPROVED,
        },
        ClientToken=record["artifact_sha256"][:32],
    )["ModelPackageArn"]
    sagemaker.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=APPROVED,
        ApprovalDescription=f"promoted: approved as {record['source_package_arn']}"[:1024],
    )
    return arn


def release(stepfunctions, state_machine_arn: str, package_arn: str, timeout_seconds: float) -> dict:
    """Start the stage's pipeline with the package to release, follow it to its end: the execution's description."""
    name = f"promote-{hashlib.sha256(package_arn.encode()).hexdigest()[:16]}-{int(time.time())}"
    arn = stepfunctions.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps({"release_model_package_arn": package_arn})
    )["executionArn"]
    deadline = time.monotonic() + timeout_seconds
    while (execution := stepfunctions.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the release {arn} is still running after {timeout_seconds:.0f} s")
        time.sleep(5 if timeout_seconds > 600 else 0.5)
    return execution


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("export", "promote"))
    add_stage_arguments(parser)
    parser.add_argument("--dir", type=Path, required=True, help="where the export writes and the promotion reads")
    parser.add_argument("--package-arn", default=None, help="export: this version, not the served one")
    parser.add_argument("--release", action="store_true", help="promote: then release it through the pipeline")
    parser.add_argument("--timeout", type=float, default=3600, help="promote --release: seconds to wait for it")
    args = parser.parse_args(argv)
    stage = read_stage(args.stage, branch=args.branch or None)
    outputs = stack_outputs(stage.stack_name, stage.region)
    session = boto3.session.Session(region_name=stage.region)
    sagemaker, s3 = session.client("sagemaker"), session.client("s3")
    try:
        if args.action == "export":
            package_arn = args.package_arn or served_package(sagemaker, outputs)
            trained_from = None if args.package_arn else current_code_key()
            record = export_approved(
                sagemaker, s3, outputs["ModelPackageGroupName"], args.dir, package_arn, trained_from
            )
            print(f"exported {record['source_package_arn']} (sha256 {record['artifact_sha256'][:16]}...) to {args.dir}")
            return 0
        record, artifact = read_promotion(args.dir)
        record["golden"] = _rescored(sagemaker, s3, stage, outputs, artifact)
        url = store_artifact(s3, outputs["ArtifactsBucketName"], artifact, record["artifact_sha256"])
        arn = register(sagemaker, outputs["ModelPackageGroupName"], record, url, stage.region)
        print(f"promoted {record['source_package_arn']} into {stage.stack_name} as {arn} ({url})")
        if args.release:
            execution = release(session.client("stepfunctions"), outputs["TrainingPipelineArn"], arn, args.timeout)
            if execution["status"] != "SUCCEEDED":
                print(
                    f"error: the release ended {execution['status']}: {execution.get('error')}: "
                    f"{execution.get('cause', '')[:500]}",
                    file=sys.stderr,
                )
                return 1
            print(f"released {arn} on {outputs['EndpointName']}")
        return 0
    except PromotionRefused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as refused:  # AWS's own words: which call, which principal, what is missing
        print(f"error: {args.action} stopped: {refused}", file=sys.stderr)
        return 1


def _rescored(sagemaker, s3, stage: Stage, outputs: dict[str, str], artifact: Path) -> dict[str, str]:
    """Re-score ``artifact`` on the target stage's golden set before anything is written; what to record."""
    bucket = outputs["ArtifactsBucketName"]
    with tempfile.TemporaryDirectory(prefix="golden-") as work:
        golden = download_golden_set(s3, bucket, Path(work) / "golden")
        if golden is None:
            if stage.name in RESCORE_REQUIRED:
                raise PromotionRefused(
                    f"{stage.stack_name} has no golden set (s3://{bucket}/{GOLDEN_PREFIX}): every promotion into "
                    f"{stage.name} is re-scored on it first; upload one: make upload-golden STAGE={stage.name} "
                    "DATA_DIR=<folder of breed folders of labelled photos>"
                )
            print(
                f"{stage.stack_name} has no golden set: promoted without a re-score (only {RESCORE_REQUIRED} need one)"
            )
            return {}
        serving = None
        if (serving_arn := served_package(sagemaker, outputs)) is not None:
            url = sagemaker.describe_model_package(ModelPackageName=serving_arn)["InferenceSpecification"][
                "Containers"
            ][0]["ModelDataUrl"]
            serving = Path(work) / "serving.tar.gz"
            serving_bucket, _, key = url.removeprefix("s3://").partition("/")
            s3.download_file(serving_bucket, key, str(serving))
        candidate, served = rescore(artifact, golden, gate_of(stage), serving)
    against = f", serving model {served.top1:.4f}" if served else ", nothing served yet"
    print(f"re-scored on {stage.name}'s golden set: top-1 {candidate.top1:.4f} on {candidate.photos} photos{against}")
    return {GOLDEN_ACCURACY: f"{candidate.top1:.6f}", GOLDEN_PHOTOS: str(candidate.photos)}


if __name__ == "__main__":
    sys.exit(main())
