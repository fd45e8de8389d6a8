"""The ML storage volumes of training jobs and instance endpoints take the stack's KMS key where AWS accepts one:
on EBS-only instance types, never on types with local storage (AWS refuses the request there) nor serverless."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dog_breeds.volume_encryption import takes_volume_key
from tests.support.fakes import SETTINGS, FakeScaling
from tests.unit.test_deploy_and_scaling_states import deploy, request, with_model
from tests.unit.test_feature_cache_jobs import DATA, Bucket, start

KEY = SETTINGS.artifacts_key_arn


@pytest.mark.parametrize(
    ("instance_type", "keyed"),
    [
        ("ml.m5.2xlarge", True),
        ("ml.c6i.xlarge", True),
        ("ml.t2.medium", True),
        ("ml.g4dn.xlarge", False),  # NVMe instance store: AWS refuses a volume key
        ("ml.g5.2xlarge", False),
        ("ml.m5d.large", False),  # not a family the policies allow: no key rather than a refused request
        ("m5.large", False),
    ],
)
def test_only_ebs_only_families_take_a_volume_key(instance_type, keyed):
    assert takes_volume_key(instance_type) is keyed


@pytest.mark.parametrize(("instance_type", "keyed"), [("ml.m5.2xlarge", True), ("ml.g4dn.xlarge", False)])
def test_a_training_jobs_volume_takes_the_key_where_its_type_allows(instance_type, keyed):
    _, job = start({"instance_type": instance_type}, Bucket(DATA))
    assert job["ResourceConfig"].get("VolumeKmsKeyId") == (KEY if keyed else None)
    assert job["OutputDataConfig"]["KmsKeyId"] == KEY  # the output always: it goes through S3


@pytest.mark.parametrize(("instance_type", "keyed"), [("ml.m5.large", True), ("ml.g5.xlarge", False)])
def test_an_instance_endpoints_volumes_take_the_key_where_its_type_allows(instance_type, keyed):
    sagemaker = with_model()
    result = deploy(sagemaker, FakeScaling(), replace(request(), instance_type=instance_type), SETTINGS)
    config = sagemaker.endpoint_configs[result["endpoint_config_name"]]
    assert config.get("KmsKeyId") == (KEY if keyed else None)


def test_a_serverless_endpoint_config_names_no_volume_key():
    sagemaker = with_model()
    serverless = replace(SETTINGS, endpoint_kind="serverless")
    result = deploy(sagemaker, FakeScaling(), request(), serverless)
    assert "KmsKeyId" not in sagemaker.endpoint_configs[result["endpoint_config_name"]]
