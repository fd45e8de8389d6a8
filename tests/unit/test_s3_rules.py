"""The artifacts bucket's policy as ``offline_stack/aws_rules/s3.py`` judges it: the template's own statements, each
refusing what it names and nothing else."""

from __future__ import annotations

import pytest

from offline_stack.aws_rules.iam import Permission
from offline_stack.aws_rules.s3 import bucket_of, explicit_deny
from offline_stack.sam_template import SamTemplate

TEMPLATE = SamTemplate.load()
BUCKET = TEMPLATE.physical_id("ArtifactsBucket")
POLICY = TEMPLATE.resolve(TEMPLATE.resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"])
ADMIN = "arn:aws:iam::123456789012:root"
MODEL = f"arn:aws:s3:::{BUCKET}/models/sha256/{'a' * 64}/model.tar.gz"
CODE = f"arn:aws:s3:::{BUCKET}/code/training_jobs-{'b' * 64}/sourcedir.tar.gz"
WEIGHTS = f"arn:aws:s3:::{BUCKET}/pretrained/efficientnet_lite0.pth"
ONCE = {"s3:if-none-match": "*"}


@pytest.mark.parametrize("resource", [MODEL, CODE, WEIGHTS])
def test_a_content_address_is_written_only_if_none_is_there(resource):
    refusal = explicit_deny(POLICY, Permission("s3:PutObject", resource), ADMIN)
    assert refusal == (
        f'User: {ADMIN} is not authorized to perform: s3:PutObject on resource: "{resource}" with an explicit deny '
        "in a resource-based policy"
    )
    assert explicit_deny(POLICY, Permission("s3:PutObject", resource, ONCE), ADMIN) is None


def test_a_model_is_not_deleted_by_name_but_a_version_may_be_removed():
    assert explicit_deny(POLICY, Permission("s3:DeleteObject", MODEL), ADMIN)
    assert explicit_deny(POLICY, Permission("s3:DeleteObjectVersion", MODEL), ADMIN) is None  # make destroy
    assert explicit_deny(POLICY, Permission("s3:DeleteObject", WEIGHTS), ADMIN) is None


@pytest.mark.parametrize(
    "key", ["data/train/001.Affenpinscher/1.jpg", "code/mine/sourcedir.tar.gz", "models/x", "training-output/x"]
)
def test_every_other_prefix_is_left_to_the_principals_own_policies(key):
    assert explicit_deny(POLICY, Permission("s3:PutObject", f"arn:aws:s3:::{BUCKET}/{key}"), ADMIN) is None


TRAINING_ROLE = TEMPLATE.arn("SageMakerExecutionRole")
FEATURES = f"arn:aws:s3:::{BUCKET}/feature-cache/0123/extract-job/output/model.tar.gz"
CAPTURED = f"arn:aws:s3:::{BUCKET}/data-capture/dog-breed-classifier/AllTraffic/2026/12/07/15/x.jsonl"


@pytest.mark.parametrize(
    "writer", [ADMIN, TEMPLATE.arn("StartTrainingFunctionRole"), TEMPLATE.arn("PredictFunctionRole")]
)
def test_only_the_training_role_writes_the_feature_cache(writer):
    assert "explicit deny" in explicit_deny(POLICY, Permission("s3:PutObject", FEATURES, ONCE), writer)
    assert explicit_deny(POLICY, Permission("s3:PutObject", FEATURES), TRAINING_ROLE) is None
    assert explicit_deny(POLICY, Permission("s3:GetObject", FEATURES), writer) is None  # reading is the roles' own


@pytest.mark.parametrize("action", ["s3:GetObject", "s3:GetObjectVersion"])
def test_captured_requests_are_read_by_nobody_unless_the_stack_names_them(action):
    assert "explicit deny" in explicit_deny(POLICY, Permission(action, CAPTURED), ADMIN)
    readers = SamTemplate.load(overrides={"CapturedRequestReaderArns": f"{ADMIN},arn:aws:iam::123456789012:role/ops/*"})
    named = readers.resolve(readers.resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"])
    assert explicit_deny(named, Permission(action, CAPTURED), ADMIN) is None
    assert explicit_deny(named, Permission(action, CAPTURED), "arn:aws:iam::123456789012:role/ops/auditor") is None
    assert "explicit deny" in explicit_deny(named, Permission(action, CAPTURED), TEMPLATE.arn("SageMakerEndpointRole"))
    assert explicit_deny(POLICY, Permission("s3:PutObject", CAPTURED), TEMPLATE.arn("SageMakerEndpointRole")) is None


def test_the_tls_only_deny_is_read_as_a_request_over_https():
    assert explicit_deny(POLICY, Permission("s3:GetObject", MODEL), ADMIN) is None
    plain_http = Permission("s3:GetObject", MODEL, {"aws:SecureTransport": "false"})
    assert "explicit deny" in explicit_deny(POLICY, plain_http, ADMIN)


def test_a_statement_applies_to_the_principals_it_names_only():
    named = {"Statement": [{"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::1:role/a"}, "Action": "s3:*"}]}
    everyone = {"Statement": [{"Effect": "Deny", "Principal": {"AWS": ["*"]}, "Action": "s3:*", "Resource": "*"}]}
    allow = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}
    request = Permission("s3:GetObject", MODEL)
    assert explicit_deny(named, request, "arn:aws:iam::1:role/b") is None
    assert explicit_deny(
        named | {"Statement": [{**named["Statement"][0], "Resource": "*"}]}, request, "arn:aws:iam::1:role/a"
    )
    assert explicit_deny(everyone, request, ADMIN) and explicit_deny(allow, request, ADMIN) is None
    assert explicit_deny(None, request, ADMIN) is None and explicit_deny(b'{"Statement": []}', request, ADMIN) is None
    assert bucket_of(MODEL) == BUCKET and bucket_of(f"arn:aws:s3:::{BUCKET}") == BUCKET
