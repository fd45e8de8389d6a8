"""Start a training job with the SageMaker Python SDK (the SDK twin of the start-training function).

    python -m launchers.start_training_job --bucket BUCKET --role ROLE_ARN --key KEY_ARN [--instance-count 6] [--spot]
        [--wait]
        [--hyperparameter epochs=10 --hyperparameter learning-rate=0.01]

BUCKET, ROLE_ARN and KEY_ARN are the stack's ArtifactsBucketName, SageMakerExecutionRoleArn and ArtifactsKeyArn
outputs. The
training code is uploaded content-addressed first (see launchers.package_source).
"""

from __future__ import annotations

import argparse
import json

import boto3
import sagemaker

from breed_classifier.cli import HYPERPARAMETER_NAMES
from launchers.estimator import (
    DEFAULT_INSTANCE_COUNT,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_JOB_PREFIX,
    build_estimator,
    training_inputs,
)
from launchers.package_source import upload_source


def hyperparameter(text: str) -> tuple[str, object]:
    name, separator, raw = text.partition("=")
    if not separator or name not in HYPERPARAMETER_NAMES:
        raise argparse.ArgumentTypeError(f"use NAME=VALUE with NAME one of {', '.join(HYPERPARAMETER_NAMES)}")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", required=True, help="the stack's ArtifactsBucketName output")
    parser.add_argument("--role", required=True, help="the stack's SageMakerExecutionRoleArn output")
    parser.add_argument("--key", required=True, help="the stack's ArtifactsKeyArn output: the model is written with it")
    parser.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    parser.add_argument("--instance-count", type=int, default=DEFAULT_INSTANCE_COUNT)
    parser.add_argument("--job-prefix", default=DEFAULT_JOB_PREFIX)
    parser.add_argument("--hyperparameter", type=hyperparameter, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--debugger",
        action="store_true",
        help="SageMaker Debugger rules and system profiling (closed to new customers since 2026-07-30)",
    )


def estimator_from(args: argparse.Namespace, boto_session=None, run_name: str | None = None):
    """The estimator the arguments describe; ``run_name`` names the job (and its spot checkpoints)."""
    boto_session = boto_session or boto3.Session()
    source = upload_source(boto_session.client("s3"), args.bucket)
    session = sagemaker.Session(boto_session=boto_session, default_bucket=args.bucket)
    return build_estimator(
        session,
        args.role,
        args.bucket,
        source,
        dict(args.hyperparameter),
        args.instance_type,
        args.instance_count,
        use_spot=getattr(args, "spot", False),
        job_prefix=args.job_prefix,
        use_debugger=args.debugger,
        run_name=run_name,
        output_kms_key=args.key,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(parser)
    parser.add_argument("--spot", action="store_true", help="managed spot training with checkpoints")
    parser.add_argument("--wait", action="store_true", help="stream the logs until the job ends")
    args = parser.parse_args(argv)
    job_name = sagemaker.utils.name_from_base(args.job_prefix)  # known before the job: its checkpoints' prefix
    estimator = estimator_from(args, run_name=job_name)
    inputs = training_inputs(args.bucket, dict(args.hyperparameter))
    estimator.fit(inputs, job_name=job_name, wait=args.wait, logs="All" if args.wait else None)
    print(estimator.latest_training_job.name)


if __name__ == "__main__":
    main()
