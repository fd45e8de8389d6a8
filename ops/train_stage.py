"""`make train-stage`: the model is built from the commit where it must be.

    python -m ops.train_stage --stage testing [--input-json '{"training": {...}}'] [--timeout 10800]

testing serves a model trained from this commit's training code, or trains one now: when its registry has no
Approved version, or the newest Approved version was trained from other code than ``training_jobs/`` here (the
release gate records the content-addressed code a job ran as ``training_code``), this runs the stack's own training
pipeline (train -> gate -> blue/green deploy -> auto-scaling) and waits for it. A candidate the gate rejects fails
the step with the gate's numbers: a change that makes the model worse stops the release. prod never trains: it is
promoted the exact version testing approved (``make promote-model``).

The data set is the one in the stack's bucket under ``data/`` (``make upload-data``, once per testing account); a
missing one is an error that says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from dog_breeds.release_gate import APPROVED, TRAINING_CODE
from dog_breeds.training_code import code_key, source_tarball
from ops.stack_outputs import stack_outputs
from ops.stages import add_stage_arguments, read_stage

TRAINING_JOBS = Path(__file__).resolve().parent.parent / "training_jobs"
DATA_PREFIX = "data/"


class TrainingRefused(Exception):
    """The stage cannot train; the message says why and what to do."""


def current_code_key() -> str:
    """The key this checkout's training code has in every stack's bucket (the same packing as the deployed one)."""
    return code_key(source_tarball(TRAINING_JOBS))


def approved_code(sagemaker, group: str) -> tuple[str | None, str | None]:
    """(newest Approved version's ARN, the training code it was trained from), or (None, None)."""
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus=APPROVED, SortBy="CreationTime", SortOrder="Descending"
    ).get("ModelPackageSummaryList", [])
    if not summaries:
        return None, None
    arn = summaries[0]["ModelPackageArn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    return arn, (package.get("CustomerMetadataProperties") or {}).get(TRAINING_CODE)


def needs_training(approved_arn: str | None, approved_from: str | None, code: str) -> str | None:
    """Why the stage must train (None: it serves an approved model of this code)."""
    if approved_arn is None:
        return "no approved model in the registry"
    if not approved_from or not approved_from.endswith(code):
        return f"the approved model ({approved_arn}) was trained from {approved_from or 'unrecorded code'}, not {code}"
    return None


def train(stepfunctions, s3, outputs: dict[str, str], training_input: dict, timeout: float, say=print) -> dict:
    """Run the stack's training pipeline and wait for it; raise ``TrainingRefused`` unless it succeeds."""
    bucket = outputs["ArtifactsBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=DATA_PREFIX, MaxKeys=1)
    if not listed.get("KeyCount"):
        raise TrainingRefused(
            f"no data set under s3://{bucket}/{DATA_PREFIX}: upload it once with "
            f"make upload-data DATA_DIR=<your ImageFolder> BUCKET={bucket}"
        )
    body = json.dumps(training_input, sort_keys=True)
    name = f"train-{hashlib.sha256(body.encode()).hexdigest()[:8]}-{int(time.time())}"
    arn = stepfunctions.start_execution(stateMachineArn=outputs["TrainingPipelineArn"], name=name, input=body)[
        "executionArn"
    ]
    say(f"training pipeline started: {arn}")
    deadline = time.monotonic() + timeout
    while (execution := stepfunctions.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise TrainingRefused(f"the training pipeline {arn} is still running after {timeout:.0f} s")
        time.sleep(2)
    if execution["status"] != "SUCCEEDED":
        cause = f"{execution.get('error', '')}: {execution.get('cause', '')}".strip(": ")
        raise TrainingRefused(f"the training pipeline ended {execution['status']}: {cause[:500]}")
    return execution


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_stage_arguments(parser, required=False)
    parser.add_argument(
        "--input-json",
        default=os.environ.get("TRAINING_INPUT") or "{}",
        help="the training pipeline's input (default: $TRAINING_INPUT, else {}: the stack's own settings)",
    )
    parser.add_argument("--timeout", type=float, default=10800.0, help="seconds to wait for the pipeline")
    args = parser.parse_args(argv)
    if args.stage == "prod":
        parser.error("prod never trains: it is promoted the version testing approved (make promote-model)")
    try:
        training_input = json.loads(args.input_json)
    except json.JSONDecodeError as error:
        parser.error(
            f'--input-json is not JSON ({error}); expected e.g. \'{{"training": {{"hyperparameters": {{}}}}}}\''
        )
    stage = read_stage(args.stage, branch=args.branch or None)
    outputs = stack_outputs(stage.stack_name, stage.region)
    try:
        return _train_unless_current(stage, outputs, training_input, args.timeout)
    except (TrainingRefused, ClientError) as refusal:
        print(f"error: {stage.stack_name}: {refusal}", file=sys.stderr)
        return 1


def _train_unless_current(stage, outputs: dict[str, str], training_input: dict, timeout: float) -> int:
    session = boto3.session.Session(region_name=stage.region)
    code = current_code_key()
    approved_arn, approved_from = approved_code(session.client("sagemaker"), outputs["ModelPackageGroupName"])
    reason = needs_training(approved_arn, approved_from, code)
    if reason is None:
        print(f"{stage.stack_name} serves {approved_arn}, trained from this commit's code ({code}): no training")
        return 0
    print(f"{stage.stack_name} trains: {reason}")
    train(session.client("stepfunctions"), session.client("s3"), outputs, training_input, timeout)
    approved_arn, approved_from = approved_code(session.client("sagemaker"), outputs["ModelPackageGroupName"])
    print(f"{stage.stack_name}: trained, judged and deployed {approved_arn} ({approved_from})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
