"""Model promotion (ops/promote_model.py) refuses what it must, and carries exactly the judged bytes.

Two offline "accounts" would be two processes (``make pipeline-rehearsal`` runs them); here one moto holds a
source registry and bucket and a target's, under different names, which is all the logic can tell apart.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from ops.promote_model import (
    ARTIFACT,
    RECORD,
    PromotionRefused,
    export_approved,
    read_promotion,
    register,
    store_artifact,
)

SOURCE, TARGET = "dog-breed-classifier-testing", "dog-breed-classifier"
ARTIFACT_BYTES = b"a model.tar.gz, judged" * 1000
KEY = "training-output/dog-breeds-testing-1/output/model.tar.gz"


@pytest.fixture
def accounts(control_plane):
    s3, sagemaker = control_plane.client("s3"), control_plane.client("sagemaker")
    for bucket in ("source-bucket", "target-bucket"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="source-bucket", Key=KEY, Body=ARTIFACT_BYTES)
    sagemaker.create_model_package_group(ModelPackageGroupName=SOURCE)
    return s3, sagemaker


def judged(sagemaker, status: str = "Approved", digest: str | None = None) -> str:
    """A package version as the release gate registers it: its metrics and the artifact's digest ("": none)."""
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=SOURCE,
        InferenceSpecification={
            "Containers": [{"Image": "image", "ModelDataUrl": f"s3://source-bucket/{KEY}"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"test:accuracy": "0.910000"}
        | ({} if digest == "" else {"artifact_sha256": digest or hashlib.sha256(ARTIFACT_BYTES).hexdigest()}),
    )["ModelPackageArn"]
    if status != "PendingManualApproval":
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription="gate")
    return arn


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_a_model_that_is_not_approved_is_not_exported(accounts, tmp_path, status):
    s3, sagemaker = accounts
    arn = judged(sagemaker, status)
    with pytest.raises(PromotionRefused, match=f"{status}, not Approved"):
        export_approved(sagemaker, s3, SOURCE, tmp_path, arn)
    assert not (tmp_path / ARTIFACT).exists() and not (tmp_path / RECORD).exists()


def test_without_an_explicit_version_only_approved_ones_count(accounts, tmp_path):
    s3, sagemaker = accounts
    judged(sagemaker, "Rejected")
    with pytest.raises(PromotionRefused, match="no approved version"):
        export_approved(sagemaker, s3, SOURCE, tmp_path)


def test_an_artifact_changed_after_its_approval_is_not_exported(accounts, tmp_path):
    # Given an approved version whose model.tar.gz was rewritten afterwards
    s3, sagemaker = accounts
    arn = judged(sagemaker)
    s3.put_object(Bucket="source-bucket", Key=KEY, Body=ARTIFACT_BYTES + b"and a payload")
    # Then the export refuses it, and leaves nothing behind
    with pytest.raises(PromotionRefused, match="was approved with"):
        export_approved(sagemaker, s3, SOURCE, tmp_path, arn)
    assert list(tmp_path.iterdir()) == []


def test_a_version_without_a_recorded_digest_is_not_exported(accounts, tmp_path):
    s3, sagemaker = accounts
    arn = judged(sagemaker, digest="")
    with pytest.raises(PromotionRefused, match="carries no artifact_sha256"):
        export_approved(sagemaker, s3, SOURCE, tmp_path, arn)


def test_the_approved_bytes_are_promoted_with_their_record(accounts, tmp_path):
    # Given the newest approved version, exported
    s3, sagemaker = accounts
    judged(sagemaker, "Approved")
    newest = judged(sagemaker, "Approved")
    record = export_approved(sagemaker, s3, SOURCE, tmp_path)
    assert record["source_package_arn"] == newest and (tmp_path / ARTIFACT).read_bytes() == ARTIFACT_BYTES
    # When it is promoted into the target
    record, artifact = read_promotion(tmp_path)
    url = store_artifact(s3, "target-bucket", artifact, record["artifact_sha256"])
    arn = register(sagemaker, TARGET, record, url, "us-east-1")
    # Then the target holds the same bytes under their digest, registered approved with the source's metrics
    digest = hashlib.sha256(ARTIFACT_BYTES).hexdigest()
    assert url == f"s3://target-bucket/models/sha256/{digest}/model.tar.gz"
    stored = s3.get_object(Bucket="target-bucket", Key=f"models/sha256/{digest}/model.tar.gz")["Body"].read()
    assert stored == ARTIFACT_BYTES
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["ModelPackageGroupName"] == TARGET and package["ModelApprovalStatus"] == "Approved"
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["artifact_sha256"], metadata["test:accuracy"], metadata["promoted_from"]) == (
        digest,
        "0.910000",
        newest,
    )
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == url


def test_a_file_changed_after_the_export_is_not_promoted(accounts, tmp_path):
    s3, sagemaker = accounts
    export_approved(sagemaker, s3, SOURCE, tmp_path, judged(sagemaker))
    (tmp_path / ARTIFACT).write_bytes(ARTIFACT_BYTES + b"tampered on the way")
    with pytest.raises(PromotionRefused, match="was approved with"):
        read_promotion(tmp_path)
    assert s3.list_objects_v2(Bucket="target-bucket").get("KeyCount", 0) == 0


def test_a_record_that_is_not_an_approval_is_not_promoted(accounts, tmp_path):
    s3, sagemaker = accounts
    export_approved(sagemaker, s3, SOURCE, tmp_path, judged(sagemaker))
    record = json.loads((tmp_path / RECORD).read_text())
    (tmp_path / RECORD).write_text(json.dumps(record | {"approval_status": "Rejected"}))
    with pytest.raises(PromotionRefused, match="not Approved"):
        read_promotion(tmp_path)


def test_bytes_already_stored_under_the_digest_must_be_the_digests(accounts, tmp_path):
    # Given other bytes already under the digest's key in the target bucket
    s3, sagemaker = accounts
    export_approved(sagemaker, s3, SOURCE, tmp_path, judged(sagemaker))
    record, artifact = read_promotion(tmp_path)
    digest = record["artifact_sha256"]
    s3.put_object(Bucket="target-bucket", Key=f"models/sha256/{digest}/model.tar.gz", Body=b"something else")
    # Then the promotion refuses to register them
    with pytest.raises(PromotionRefused, match="other bytes"):
        store_artifact(s3, "target-bucket", artifact, digest)
    # And the same bytes stored before are accepted again (a rerun of a promotion)
    s3.put_object(Bucket="target-bucket", Key=f"models/sha256/{digest}/model.tar.gz", Body=ARTIFACT_BYTES)
    assert store_artifact(s3, "target-bucket", artifact, digest).endswith(f"{digest}/model.tar.gz")
