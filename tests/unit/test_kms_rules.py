"""The artifacts key's policy as ``offline_stack/aws_rules/kms.py`` judges it: the stack's roles and the principals
``ArtifactsKeyUserArns`` names use it through S3; an administrator of the account does not, until the key policy
names them (each rule's sentence is in the module)."""

from __future__ import annotations

import pytest

from offline_stack.aws_rules import kms
from offline_stack.aws_rules.iam import Policy
from offline_stack.sam_template import SamTemplate

OPERATOR = "arn:aws:iam::123456789012:root"
AUDITOR = "arn:aws:iam::123456789012:role/ops/auditor"
TEMPLATE = SamTemplate.load()
NAMED = SamTemplate.load(overrides={"ArtifactsKeyUserArns": f"{OPERATOR},{AUDITOR}"})
KEY = TEMPLATE.arn("ArtifactsKey")


def policy_of(template: SamTemplate) -> dict:
    return template.resolve(template.resources["ArtifactsKey"]["Properties"]["KeyPolicy"])


@pytest.mark.parametrize("action", ["kms:Decrypt", "kms:GenerateDataKey"])
@pytest.mark.parametrize("role", ["SageMakerExecutionRole", "SageMakerEndpointRole", "StartTrainingFunctionRole"])
def test_the_stacks_roles_use_the_key_by_their_path(action, role):
    assert kms.refusal(policy_of(TEMPLATE), KEY, action, TEMPLATE.arn(role), Policy([])) is None


@pytest.mark.parametrize("action", ["kms:Decrypt", "kms:GenerateDataKey"])
def test_an_administrator_is_refused_the_key_until_the_stack_names_them(action):
    everything = Policy([{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}])
    refused = kms.refusal(policy_of(TEMPLATE), KEY, action, AUDITOR, everything)
    assert refused == (
        f"User: {AUDITOR} is not authorized to perform: {action} on resource: {KEY} because no resource-based "
        f"policy allows the {action} action"
    )
    assert kms.refusal(policy_of(TEMPLATE), KEY, action, OPERATOR) is not None  # the account's root too
    assert kms.refusal(policy_of(NAMED), KEY, action, AUDITOR, Policy([])) is None
    assert kms.refusal(policy_of(NAMED), KEY, action, OPERATOR) is None


def test_the_account_administers_the_key_but_does_not_use_it():
    administration = next(
        s for s in policy_of(TEMPLATE)["Statement"] if s["Sid"] == "TheAccountAdministersTheKeyButDoesNotUseIt"
    )
    assert administration["Principal"] == {"AWS": OPERATOR}
    for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"):
        assert action not in administration["Action"], action
    assert kms.refusal(policy_of(TEMPLATE), KEY, "kms:PutKeyPolicy", OPERATOR) is None  # through IAM, as AWS does


def test_a_boundary_without_the_key_refuses_a_role_the_key_policy_admits():
    boundary = Policy([{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}])
    role = TEMPLATE.arn("SageMakerExecutionRole")
    refused = kms.refusal(policy_of(TEMPLATE), KEY, "kms:Decrypt", role, Policy([]), boundary)
    assert refused and refused.endswith("because no permissions boundary allows the kms:Decrypt action")


def test_a_grant_to_the_account_is_decided_by_the_principals_own_policy():
    delegated = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": OPERATOR}, "Action": "kms:*", "Resource": "*"}]}
    allowed = Policy([{"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]}])
    assert kms.refusal(delegated, KEY, "kms:Decrypt", AUDITOR, allowed) is None
    assert kms.refusal(delegated, KEY, "kms:Decrypt", AUDITOR, Policy([])) is not None
    denied = {"Statement": [*delegated["Statement"], {"Effect": "Deny", "Principal": "*", "Action": "kms:*"}]}
    assert "explicit deny" in kms.refusal(denied, KEY, "kms:Decrypt", AUDITOR, allowed)


def test_a_head_request_and_a_delete_need_no_key():
    assert kms.needs("s3:GetObject", "HEAD") is None
    assert kms.needs("s3:DeleteObject", "DELETE") is None
    assert (kms.needs("s3:GetObject", "GET"), kms.needs("s3:PutObject", "PUT")) == (
        "kms:Decrypt",
        "kms:GenerateDataKey",
    )


def test_the_bucket_encrypts_with_the_key_and_sagemaker_is_told_to():
    (rule,) = TEMPLATE.resolve(
        TEMPLATE.resources["ArtifactsBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    )
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}
    for function in ("StartTrainingFunction", "DeployEndpointFunction"):
        environment = TEMPLATE.function_properties(function)["Environment"]["Variables"]
        assert TEMPLATE.resolve(environment["ARTIFACTS_KEY_ARN"]) == KEY, function
