"""Least privilege, checked: policies/*.json are the template's inline policies, and they lint clean."""

import json
from pathlib import Path

import pytest
from parliament import analyze_policy_string

from offline_stack.sam_template import PROJECT_ROOT, SamTemplate
from tests.support.policy_documents import as_policy_document

POLICIES_DIR = PROJECT_ROOT / "policies"
TEMPLATE = SamTemplate.load()


def _inline_policies() -> dict[str, tuple[str, dict]]:
    found = {}
    for logical_id, resource in TEMPLATE.resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                found[policy["PolicyName"]] = (logical_id, as_policy_document(policy["PolicyDocument"]))
    return found


def _statements(document: dict) -> list[dict]:
    return document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


POLICY_FILES = sorted(POLICIES_DIR.glob("*.json"))


def test_every_policy_file_is_a_role_policy_of_the_template_and_vice_versa():
    assert {path.stem for path in POLICY_FILES} == set(_inline_policies())


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_template_inline_policy_equals_its_file(path: Path):
    _, inline = _inline_policies()[path.stem]
    assert inline == json.loads(path.read_text())


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_no_wildcard_actions(path: Path):
    for statement in _statements(json.loads(path.read_text())):
        assert "NotAction" not in statement
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{path.name}: wildcard action {action}"


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_parliament_finds_nothing(path: Path):
    rendered = TEMPLATE.substitute(path.read_text())
    findings = analyze_policy_string(rendered).findings
    assert findings == [], [f"{f.issue}: {f.detail}" for f in findings]


def test_no_full_access_managed_policies_anywhere():
    for path in [PROJECT_ROOT / "template.yaml", *POLICY_FILES]:
        assert "FullAccess" not in path.read_text(), path.name
    for logical_id, resource in TEMPLATE.resources.items():
        assert "ManagedPolicyArns" not in resource.get("Properties", {}), logical_id


def test_functions_use_their_own_role_so_sam_attaches_no_managed_policies():
    for logical_id, resource in TEMPLATE.resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert "Role" in resource["Properties"], logical_id
            assert "Policies" not in resource["Properties"], logical_id


def test_predict_function_may_invoke_only_the_configured_endpoint_spelt_in_lower_case():
    document = json.loads(TEMPLATE.substitute((POLICIES_DIR / "predict-function.json").read_text()))
    invoke = [s for s in _statements(document) if "sagemaker:InvokeEndpoint" in _as_list(s["Action"])]
    # the stack's endpoint, of either kind (EndpointKind: each kind has its own name; a switch uses both a while)
    assert [s["Resource"] for s in invoke] == [
        [
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dog-breed-classifier",
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dog-breed-classifier-serverless",
        ]
    ]
    assert TEMPLATE.document["Parameters"]["EndpointName"]["AllowedPattern"].startswith("^[a-z0-9](-*[a-z0-9])")


def test_the_bucket_is_encrypted_private_and_tls_only():
    bucket = TEMPLATE.resource("ArtifactsBucket")["Properties"]
    rules = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    policy = TEMPLATE.resource("ArtifactsBucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}.items() <= policy[0].items()


def test_pass_role_is_only_for_the_sagemaker_roles_each_by_its_one_function_and_only_to_sagemaker():
    passed = {}
    for path in POLICY_FILES:
        for statement in _statements(json.loads(path.read_text())):
            if "iam:PassRole" in _as_list(statement["Action"]):
                passed[path.stem] = statement["Resource"]
                assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # training jobs get the training role, models an endpoint role (their kind's), the golden set's scoring models the
    # scoring role: no function can hand out another's
    assert passed == {
        "start-training-function": "${SageMakerExecutionRole.Arn}",
        "deploy-endpoint-function": ["${SageMakerEndpointRole.Arn}", "${SageMakerServerlessEndpointRole.Arn}"],
        "release-gate-function": "${SageMakerGoldenScoringRole.Arn}",
    }


def test_the_endpoint_role_reads_models_and_writes_captures_and_nothing_of_training():
    from offline_stack.aws_rules.iam import Permission, Policy

    bucket = "arn:aws:s3:::dog-breed-classifier-artifactsbucket"
    endpoint = Policy([json.loads(TEMPLATE.substitute((POLICIES_DIR / "sagemaker-endpoint.json").read_text()))])
    training = Policy([json.loads(TEMPLATE.substitute((POLICIES_DIR / "sagemaker-execution.json").read_text()))])
    bucket = TEMPLATE.substitute("arn:aws:s3:::${ArtifactsBucket}")
    for action, key in [
        ("s3:GetObject", "models/sha256/a/model.tar.gz"),
        ("s3:PutObject", "data-capture/e/x.jsonl"),
    ]:
        assert endpoint.allows(Permission(action, f"{bucket}/{key}")), (action, key)
    for action, key in [
        ("s3:GetObject", "training-output/j/output/model.tar.gz"),  # deployed models are registry copies only
        ("s3:GetObject", "data/train/a/1.jpg"),
        ("s3:GetObject", "checkpoints/j/checkpoint.pt"),
        ("s3:GetObject", "code/training_jobs-1/sourcedir.tar.gz"),
        ("s3:PutObject", "models/a/model.tar.gz"),
        ("s3:PutObject", "training-output/j/output/model.tar.gz"),
        ("s3:PutObject", "checkpoints/j/checkpoint.pt"),
    ]:
        assert not endpoint.allows(Permission(action, f"{bucket}/{key}")), (action, key)
    serverless = Policy(
        [json.loads(TEMPLATE.substitute((POLICIES_DIR / "sagemaker-serverless-endpoint.json").read_text()))]
    )
    assert serverless.allows(Permission("s3:GetObject", f"{bucket}/models/sha256/a/model.tar.gz"))
    assert not serverless.allows(Permission("s3:PutObject", f"{bucket}/data-capture/e/x.jsonl"))  # no capture there
    for role in (endpoint, serverless):  # the container's metrics in SageMaker's namespaces only
        assert role.allows(Permission("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "/aws/sagemaker/E"}))
        assert not role.allows(Permission("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Billing"}))
    # and training may no longer write captures or read the models others put under models/
    assert not training.allows(Permission("s3:PutObject", f"{bucket}/data-capture/e/x.jsonl"))
    assert not training.allows(Permission("s3:GetObject", f"{bucket}/models/a/model.tar.gz"))


def test_the_deploy_function_accepts_model_data_only_where_the_endpoint_role_may_read_it():
    # A model.tar.gz the endpoint's role cannot read leaves the endpoint Failed ("could not access model data")
    from dog_breeds.deploy_endpoint import MODEL_PREFIXES

    execution = json.loads((POLICIES_DIR / "sagemaker-endpoint.json").read_text())
    readable = {
        resource.split("${ArtifactsBucket}/", 1)[1].removesuffix("*")
        for statement in _statements(execution)
        if "s3:GetObject" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }
    listed = {
        prefix.removesuffix("*")
        for statement in _statements(execution)
        if "s3:ListBucket" in _as_list(statement["Action"])
        for prefix in statement["Condition"]["StringLike"]["s3:prefix"]
    }
    assert all(any(prefix.startswith(r) for r in readable) for prefix in MODEL_PREFIXES), readable
    assert all(any(prefix.startswith(p) for p in listed) for prefix in MODEL_PREFIXES), listed


def _statement(name: str, sid_prefix: str) -> dict:
    document = json.loads(TEMPLATE.substitute((POLICIES_DIR / f"{name}.json").read_text()))
    return next(s for s in _statements(document) if s["Sid"].startswith(sid_prefix))


def test_images_are_pulled_only_from_the_accounts_where_aws_publishes_them():
    from dog_breeds.container_images import DEBUGGER_RULE_ACCOUNTS, DLC_ACCOUNTS

    for role in ("sagemaker-execution", "sagemaker-endpoint"):
        assert set(_statement(role, "PullTheAwsPyTorch")["Condition"]["StringEquals"]["aws:ResourceAccount"]) == {
            *DLC_ACCOUNTS.values(),
            *DEBUGGER_RULE_ACCOUNTS.values(),
        }
    pull = _statement("sagemaker-endpoint", "PullTheAwsPyTorch")
    from offline_stack.aws_rules.iam import Permission, Policy

    policy = Policy([{"Version": "2012-10-17", "Statement": [pull]}])
    image = "arn:aws:ecr:us-east-1:{}:repository/pytorch-inference"
    assert policy.allows(
        Permission("ecr:BatchGetImage", image.format("763104351884"), {"aws:ResourceAccount": "763104351884"})
    )
    assert not policy.allows(
        Permission("ecr:BatchGetImage", image.format("666666666666"), {"aws:ResourceAccount": "666666666666"})
    )


def test_scaling_is_allowed_for_sagemaker_variants_only():
    from offline_stack.aws_rules.iam import Policy, permissions_for

    document = json.loads(TEMPLATE.substitute((POLICIES_DIR / "register-autoscaling-function.json").read_text()))
    policy = Policy([document])

    def register(namespace: str, dimension: str, resource: str) -> bool:
        request = {"ServiceNamespace": namespace, "ScalableDimension": dimension, "ResourceId": resource}
        needed = permissions_for(
            "application-autoscaling", "RegisterScalableTarget", request, "us-east-1", "123456789012"
        )
        return policy.allows(needed[0])

    assert register("sagemaker", "sagemaker:variant:DesiredInstanceCount", "endpoint/dog-breed-classifier/variant/A")
    assert not register("ecs", "ecs:service:DesiredCount", "service/default/payments")
    assert not register("dynamodb", "dynamodb:table:WriteCapacityUnits", "table/orders")


@pytest.mark.parametrize("role, service", [("SageMakerExecutionRole", "sagemaker"), ("TrainingPipelineRole", "states")])
def test_services_assume_the_roles_only_for_this_account(role, service):
    (trust,) = TEMPLATE.resource(role)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": f"{service}.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source = trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source.startswith(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:")
