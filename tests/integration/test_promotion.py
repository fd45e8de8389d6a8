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
    GOLDEN_ACCURACY,
    RECORD,
    PromotionRefused,
    _rescored,
    export_approved,
    read_promotion,
    register,
    served_package,
    store_artifact,
)
from ops.stages import Stage
from ops.upload_golden import upload_golden_set
from tests.support.artifacts import labelled_photos, one_answer_artifact

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


def serve(sagemaker, endpoint: str, model_data_url: str) -> None:
    """An endpoint of ``endpoint``'s name serving ``model_data_url``, as the deploy function makes one."""
    name = f"{endpoint}-{abs(hash(model_data_url)) % 10**8}"
    sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": "image", "ModelDataUrl": model_data_url},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/endpoint",
    )
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1}
    sagemaker.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[variant | {"InstanceType": "ml.m5.large"}]
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)


def judged(sagemaker, status: str = "Approved", digest: str | None = None, key: str = KEY) -> str:
    """A package version as the release gate registers it: its metrics and the artifact's digest ("": none)."""
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=SOURCE,
        InferenceSpecification={
            "Containers": [{"Image": "image", "ModelDataUrl": f"s3://source-bucket/{key}"}],
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


def test_a_stage_that_serves_no_approved_version_has_nothing_to_export(accounts, tmp_path):
    s3, sagemaker = accounts
    judged(sagemaker, "Approved")  # approved, but the stage's endpoint does not serve it
    outputs = {"EndpointName": SOURCE, "ModelPackageGroupName": SOURCE}
    assert served_package(sagemaker, outputs) is None
    with pytest.raises(PromotionRefused, match="serves no approved version"):
        export_approved(sagemaker, s3, SOURCE, tmp_path, served_package(sagemaker, outputs))


def test_the_export_takes_the_version_the_stage_serves_not_the_newest_approval(accounts, tmp_path):
    # Given two approved versions, the stage's endpoint serving the older (the newer failed its release: a newer
    # approval is not a tested one)
    s3, sagemaker = accounts
    served, newer = judged(sagemaker), judged(sagemaker, key=KEY.replace("testing-1", "testing-2"))
    serve(sagemaker, SOURCE, f"s3://source-bucket/{KEY}")
    # Then the served one is what a promotion starts from
    assert served_package(sagemaker, {"EndpointName": SOURCE, "ModelPackageGroupName": SOURCE}) == served != newer


def test_an_approval_revoked_in_the_source_registry_is_not_exported(accounts, tmp_path):
    # Given a version testing approved, its approval revoked there before prod's job read it
    s3, sagemaker = accounts
    arn = judged(sagemaker)
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="bad")
    # Then prod's export, which reads testing's registry itself, refuses it
    with pytest.raises(PromotionRefused, match="Rejected, not Approved"):
        export_approved(sagemaker, s3, SOURCE, tmp_path, arn)


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
    record = export_approved(sagemaker, s3, SOURCE, tmp_path, newest)
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


# --- prod re-scores the candidate on its own golden set before anything is written ------------------------------

FOLDERS = ["001.Affenpinscher", "002.Afghan_hound", "003.Airedale_terrier"]
PROD = Stage("prod", TARGET, "us-east-1", {})
PROD_OUTPUTS = {"ArtifactsBucketName": "target-bucket", "EndpointName": TARGET, "ModelPackageGroupName": TARGET}


def test_prod_refuses_a_promotion_without_its_golden_set(accounts, tmp_path):
    s3, sagemaker = accounts
    candidate = one_answer_artifact(tmp_path, FOLDERS, 0)
    with pytest.raises(PromotionRefused, match="has no golden set .* make upload-golden STAGE=prod"):
        _rescored(sagemaker, s3, PROD, PROD_OUTPUTS, candidate)
    # another stage (a feature stack) without one is promoted without a re-score, and says so
    assert _rescored(sagemaker, s3, Stage("testing", TARGET, "us-east-1", {}), PROD_OUTPUTS, candidate) == {}


def test_a_candidate_below_the_threshold_on_prods_photos_stops_the_promotion(accounts, tmp_path):
    # Given prod's golden set (mostly Affenpinschers) and a candidate that answers Afghan hound to every photo,
    # whatever accuracy its job logged
    s3, sagemaker = accounts
    upload_golden_set(s3, "target-bucket", labelled_photos(tmp_path / "golden", {FOLDERS[0]: 4, FOLDERS[1]: 1}))
    weak = one_answer_artifact(tmp_path, FOLDERS, 1)
    # Then the re-score (top-1 0.2 < 0.6, the template's default threshold) refuses it
    with pytest.raises(PromotionRefused, match=r"top-1 0.2000 on 5 photos < threshold 0.6000"):
        _rescored(sagemaker, s3, PROD, PROD_OUTPUTS, weak)
    # And a candidate that names them right passes, with its figures to record on the version
    strong = one_answer_artifact(tmp_path, FOLDERS, 0)
    assert _rescored(sagemaker, s3, PROD, PROD_OUTPUTS, strong)[GOLDEN_ACCURACY] == "0.800000"


def test_a_candidate_worse_than_what_prod_serves_on_the_same_photos_is_refused(accounts, tmp_path):
    # Given prod serving a model that gets 0.8 of its golden set, and a threshold of 0.1
    s3, sagemaker = accounts
    upload_golden_set(s3, "target-bucket", labelled_photos(tmp_path / "golden", {FOLDERS[0]: 4, FOLDERS[1]: 1}))
    serving = one_answer_artifact(tmp_path, FOLDERS, 0)
    digest = hashlib.sha256(serving.read_bytes()).hexdigest()
    key = f"models/sha256/{digest}/model.tar.gz"
    s3.put_object(Bucket="target-bucket", Key=key, Body=serving.read_bytes())
    record = {"source_package_arn": "arn:source", "artifact_sha256": digest, "metrics": {}}
    register(sagemaker, TARGET, record, f"s3://target-bucket/{key}", "us-east-1")
    serve(sagemaker, TARGET, f"s3://target-bucket/{key}")
    lenient = Stage("prod", TARGET, "us-east-1", {"GateMinimumTestAccuracy": "0.1"})
    # When a candidate that gets 0.2 of the same photos is promoted (above the threshold, 0.6 worse)
    candidate = one_answer_artifact(tmp_path / "candidate", FOLDERS, 1)
    # Then the re-score refuses it against the serving model (the tolerance is the template's 0.02)
    with pytest.raises(PromotionRefused, match=r"top-1 0.2000 < the serving model's 0.8000 - tolerance 0.0200"):
        _rescored(sagemaker, s3, lenient, PROD_OUTPUTS, candidate)
