"""Register a model.tar.gz of your own (the starter model, a model trained elsewhere) as an Approved version.

    python -m ops.register_model --stage testing --model .offline/starter-model/model.tar.gz --reason "starter"
    make register-model STAGE=testing MODEL=<model.tar.gz> REASON="why it may serve"

The deploy function deploys only Approved versions of the endpoint's package group whose model sits at its content
address (``models/sha256/<sha256>/model.tar.gz``, written once: dog_breeds.model_store). Trained models get there
through the release gate; this is the door for everything else, and it is a person's approval: it records who
approved it (the caller's ARN) and why, on the version itself. It prints the version's ARN; deploy it with
``{"model_package_arn": ...}`` (the pipeline's ``release_model_package_arn`` releases it with the guardrails).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

from botocore.exceptions import ClientError

from dog_breeds.container_images import INFERENCE_IMAGE, image_uri
from dog_breeds.model_store import model_key, serving_code_sha256
from dog_breeds.release_gate import APPROVED, ARTIFACT_SHA256, SERVING_CODE_SHA256


class RegistrationRefused(Exception):
    """The model may not be registered; the message says why."""


def ensure_package_group(sagemaker, group: str) -> None:
    """The endpoint's model package group, created if absent (as the release gate creates it)."""
    try:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group, ModelPackageGroupDescription=f"Models trained for the {group} endpoint"
        )
    except ClientError as error:
        if "already exists" not in error.response["Error"]["Message"].lower():
            raise


def inference_specification(region: str, model_data_url: str) -> dict:
    """A version's InferenceSpecification: the AWS inference image and the model, and what the API sends it."""
    return {
        "Containers": [{"Image": image_uri(INFERENCE_IMAGE, region), "ModelDataUrl": model_data_url}],
        "SupportedContentTypes": ["image/jpeg", "image/png", "application/json"],
        "SupportedResponseMIMETypes": ["application/json"],
    }


def register_approved(
    sagemaker, s3, bucket: str, group: str, body: bytes, region: str, reason: str, approved_by: str = "operator"
) -> str:
    """Store ``body`` at its content address (written once; an existing key must hold the same bytes) and register it
    in ``group`` as an Approved version; the same bytes register once. Returns the version's ARN."""
    digest = hashlib.sha256(body).hexdigest()
    key = model_key(digest)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/gzip", IfNoneMatch="*")
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise
        stored = hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
        if stored != digest:
            raise RegistrationRefused(
                f"s3://{bucket}/{key} holds other bytes than its name says: not registered"
            ) from None
    ensure_package_group(sagemaker, group)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"registered by hand: {reason}"[:1000],
        InferenceSpecification=inference_specification(region, f"s3://{bucket}/{key}"),
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={
            ARTIFACT_SHA256: digest,
            SERVING_CODE_SHA256: serving_code_sha256(io.BytesIO(body)),
            "registered_by": approved_by[:256],
            "gate_decision": "not judged: registered by a person",
        },
        ClientToken=digest[:32],
    )["ModelPackageArn"]
    sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus=APPROVED, ApprovalDescription=f"{approved_by}: {reason}"[:1024]
    )
    return arn


def main(argv: list[str] | None = None) -> int:
    import boto3

    from ops.stack_outputs import stack_outputs
    from ops.stages import add_stage_arguments, read_stage

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_arguments(parser)
    parser.add_argument("--model", type=Path, required=True, help="the model.tar.gz to register")
    parser.add_argument("--reason", required=True, help="why it may serve (recorded on the version)")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"error: --model {args.model} is not a file; give a model.tar.gz (make starter-model makes one)")
        return 2
    stage = read_stage(args.stage, branch=args.branch or None)
    session = boto3.Session(region_name=stage.region)
    outputs = stack_outputs(stage.stack_name, stage.region)
    caller = session.client("sts").get_caller_identity()["Arn"]
    try:
        arn = register_approved(
            session.client("sagemaker"),
            session.client("s3"),
            outputs["ArtifactsBucketName"],
            outputs["EndpointName"],
            args.model.read_bytes(),
            stage.region,
            args.reason,
            approved_by=caller,
        )
    except RegistrationRefused as refused:
        print(f"error: {refused}")
        return 1
    print(arn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
