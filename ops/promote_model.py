"""Promote the model a stage approved into another stage: the exact bytes that were judged, never a retrain.

    python -m ops.promote_model export  --stage testing [--package-arn ARN] --dir promotion/
    python -m ops.promote_model promote --stage prod --dir promotion/ [--release]

``export`` (with the source stage's credentials) takes an approved package version of the stage's registry (the
newest, or ``--package-arn``), downloads its model.tar.gz, and checks its SHA-256 against the digest the release
gate recorded on the package when it judged it. It writes ``model.tar.gz`` and ``record.json`` (the package ARN,
digest, approval and gate metrics) to ``--dir``: what the pipeline hands from the testing job to the prod job as
a workflow artifact, so neither account needs access to the other.

``promote`` (with the target stage's credentials) checks the file against the record again, stores it in the
target's bucket under its digest (``models/sha256/<sha256>/model.tar.gz``, a conditional write: never over
other bytes), registers it in the target's registry as an approved version carrying the source's metrics and
ARN, and with ``--release`` starts the target's pipeline with ``{"release_model_package_arn": ...}`` and follows it
to its end (the blue/green release with its guardrails, then auto-scaling).

Refused, with the reason and nothing written: a package that is not Approved, one without a recorded digest,
bytes whose digest differs from the record (at export or at promote), a record that is not an approval.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from dog_breeds.model_store import model_key
from dog_breeds.release_gate import ACCURACY, APPROVED, ARTIFACT_SHA256, LOSS
from ops.register_model import ensure_package_group, inference_specification
from ops.stack_outputs import stack_outputs
from ops.stages import add_stage_arguments, read_stage

RECORD, ARTIFACT = "record.json", "model.tar.gz"
_CHUNK = 1024 * 1024


class PromotionRefused(Exception):
    """The model may not be promoted; the message says why."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _newest_approved(sagemaker, group: str) -> str:
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus=APPROVED, SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    if not summaries:
        raise PromotionRefused(f"the {group} registry has no approved version: nothing to promote")
    return summaries[0]["ModelPackageArn"]


def export_approved(sagemaker, s3, group: str, directory: Path, package_arn: str | None = None) -> dict:
    """Write the approved version's artifact and its record to ``directory``; the record."""
    arn = package_arn or _newest_approved(sagemaker, group)
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    if package.get("ModelPackageGroupName") != group:
        raise PromotionRefused(f"{arn} is not a version of the {group} registry")
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise PromotionRefused(f"{arn} is {status}, not Approved: only an approved model is promoted")
    metadata = dict(package.get("CustomerMetadataProperties") or {})
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
            ARTIFACT_SHA256: record["artifact_sha256"],
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
    parser.add_argument("--package-arn", default=None, help="export: this approved version, not the newest")
    parser.add_argument("--release", action="store_true", help="promote: then release it through the pipeline")
    parser.add_argument("--timeout", type=float, default=3600, help="promote --release: seconds to wait for it")
    args = parser.parse_args(argv)
    stage = read_stage(args.stage, branch=args.branch or None)
    outputs = stack_outputs(stage.stack_name, stage.region)
    session = boto3.session.Session(region_name=stage.region)
    sagemaker, s3 = session.client("sagemaker"), session.client("s3")
    try:
        if args.action == "export":
            record = export_approved(sagemaker, s3, outputs["ModelPackageGroupName"], args.dir, args.package_arn)
            print(f"exported {record['source_package_arn']} (sha256 {record['artifact_sha256'][:16]}...) to {args.dir}")
            return 0
        record, artifact = read_promotion(args.dir)
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


if __name__ == "__main__":
    sys.exit(main())
