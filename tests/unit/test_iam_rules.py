"""IAM's evaluation as the offline stack applies it (offline_stack/aws_rules/iam.py), decision by decision."""

from __future__ import annotations

import json

import pytest

from offline_stack.aws_rules.iam import Permission, Policy, permissions_for, s3_permission
from offline_stack.lifecycles import canary_share

ENDPOINT = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dog-breed-classifier"


def policy(*statements: dict) -> Policy:
    return Policy([{"Version": "2012-10-17", "Statement": list(statements)}])


def allow(action, resource, **condition) -> dict:
    return {
        "Effect": "Allow",
        "Action": action,
        "Resource": resource,
        **({"Condition": condition} if condition else {}),
    }


def test_an_allow_that_matches_action_and_resource_allows_and_nothing_else_does():
    rules = policy(allow("sagemaker:InvokeEndpoint", ENDPOINT))
    assert rules.allows(Permission("sagemaker:InvokeEndpoint", ENDPOINT))
    assert not rules.allows(Permission("sagemaker:InvokeEndpoint", ENDPOINT + "-other"))
    assert not rules.allows(Permission("sagemaker:DescribeEndpoint", ENDPOINT))
    assert not policy().allows(Permission("sagemaker:InvokeEndpoint", ENDPOINT))


def test_an_explicit_deny_wins_over_any_allow():
    rules = policy(allow("sagemaker:*", "*"), {"Effect": "Deny", "Action": "sagemaker:InvokeEndpoint", "Resource": "*"})
    assert not rules.allows(Permission("sagemaker:InvokeEndpoint", ENDPOINT))
    assert rules.allows(Permission("sagemaker:DescribeEndpoint", ENDPOINT))


def test_actions_match_case_insensitively_and_resources_case_sensitively_with_wildcards():
    rules = policy(allow("SageMaker:invoke?ndpoint", "arn:aws:sagemaker:*:*:endpoint/dog-*"))
    assert rules.allows(Permission("sagemaker:InvokeEndpoint", ENDPOINT))
    assert not rules.allows(Permission("sagemaker:InvokeEndpoint", ENDPOINT.replace("dog", "Dog")))


def test_not_action_and_not_resource_exclude_what_they_name():
    rules = policy({"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": "arn:aws:s3:::b/secret/*"})
    assert rules.allows(Permission("s3:GetObject", "arn:aws:s3:::b/data/x"))
    assert not rules.allows(Permission("s3:DeleteObject", "arn:aws:s3:::b/data/x"))
    assert not rules.allows(Permission("s3:GetObject", "arn:aws:s3:::b/secret/x"))


@pytest.mark.parametrize(
    ("operator", "expected", "context", "allowed"),
    [
        ("StringLike", ["data/*"], {"s3:prefix": "data/train/"}, True),
        ("StringLike", ["data/*"], {"s3:prefix": "code/"}, False),
        ("StringLike", ["data/*"], {}, False),  # a key the request lacks: the condition is false
        ("StringLikeIfExists", ["data/*"], {}, True),
        ("StringEquals", ["*"], {"s3:prefix": "x"}, False),  # StringEquals has no wildcards
        ("StringNotEquals", ["x"], {}, True),
        ("StringNotEquals", ["x"], {"s3:prefix": "x"}, False),
        ("Bool", ["true"], {"s3:prefix": "True"}, True),
    ],
)
def test_conditions(operator, expected, context, allowed):
    rules = policy(allow("s3:ListBucket", "*", **{operator: {"s3:prefix": expected}}))
    assert rules.allows(Permission("s3:ListBucket", "arn:aws:s3:::b", context)) is allowed


def test_an_operator_the_offline_stack_cannot_evaluate_is_refused_by_name():
    rules = policy(allow("s3:ListBucket", "*", NumericLessThan={"s3:max-keys": "10"}))
    with pytest.raises(ValueError, match="NumericLessThan"):
        rules.allows(Permission("s3:ListBucket", "arn:aws:s3:::b", {"s3:max-keys": "5"}))


def test_a_tagged_create_with_a_role_needs_the_resource_add_tags_and_pass_role():
    needed = permissions_for(
        "sagemaker",
        "CreateTrainingJob",
        {"TrainingJobName": "Dog-Breeds-1", "Tags": [{"Key": "k", "Value": "v"}], "RoleArn": "arn:aws:iam::1:role/r"},
        "us-east-1",
        "123456789012",
    )
    job = "arn:aws:sagemaker:us-east-1:123456789012:training-job/dog-breeds-1"  # names lower-cased, as SageMaker's ARNs
    unisolated = {"sagemaker:NetworkIsolation": "false", "sagemaker:InterContainerTrafficEncryption": "false"}
    assert needed == [
        Permission("sagemaker:CreateTrainingJob", job, unisolated),
        Permission("sagemaker:AddTags", job),
        Permission("iam:PassRole", "arn:aws:iam::1:role/r", {"iam:PassedToService": "sagemaker.amazonaws.com"}),
    ]


def test_an_update_with_rollback_alarms_needs_the_endpoint_and_its_config_of_the_caller_not_the_alarms():
    # "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action on the
    # auto-rollback alarms": SageMaker reads them as the endpoint's role (aws_rules/sagemaker.py), not the caller
    parameters = {
        "EndpointName": "e",
        "EndpointConfigName": "e-1",
        "DeploymentConfig": {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "e-model-failures"}]}},
    }
    resources = [p.resource for p in permissions_for("sagemaker", "UpdateEndpoint", parameters, "r", "1")]
    assert resources == ["arn:aws:sagemaker:r:1:endpoint/e", "arn:aws:sagemaker:r:1:endpoint-config/e-1"]


def test_the_endpoint_role_that_may_not_read_a_rollback_alarm_is_named_in_the_refusal():
    from offline_stack.aws_rules.iam import Policy, Role
    from offline_stack.aws_rules.sagemaker import rollback_alarms_unreadable

    allowed = {"Effect": "Allow", "Action": "cloudwatch:DescribeAlarms", "Resource": "arn:aws:cloudwatch:r:1:alarm:e-*"}
    role = Role("Endpoint", "arn:aws:iam::1:role/endpoint", Policy([{"Statement": [allowed]}]), "k", "s", "t")
    assert rollback_alarms_unreadable(role, ["e-model-failures", "e-latency-p99"], "r", "1") is None
    refusal = rollback_alarms_unreadable(role, ["e-model-failures", "billing"], "r", "1")
    assert refusal.startswith("AccessDenied: the endpoint's execution role arn:aws:iam::1:role/endpoint")
    assert "cloudwatch:DescribeAlarms on resource: arn:aws:cloudwatch:r:1:alarm:billing" in refusal


def test_registering_a_sagemaker_variant_needs_to_describe_and_resize_its_endpoint():
    parameters = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/E/variant/AllTraffic"}
    actions = [
        p.action for p in permissions_for("application-autoscaling", "RegisterScalableTarget", parameters, "r", "1")
    ]
    assert actions == [
        "application-autoscaling:RegisterScalableTarget",
        "sagemaker:DescribeEndpoint",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
    ]


def test_s3_requests_carry_their_prefix_and_if_none_match():
    listed = s3_permission("ListBucket", "arn:aws:s3:::b", "http://h/b?list-type=2&prefix=data%2F", {})
    assert listed.context == {"s3:prefix": "data/"}
    put = s3_permission("PutObject", "arn:aws:s3:::b/code/x", "http://h/b/code/x", {"If-None-Match": "*"})
    assert put.context == {"s3:if-none-match": "*"}


@pytest.mark.parametrize(
    ("routing", "instances", "share"),
    [
        ({"Type": "ALL_AT_ONCE"}, 3, 1.0),
        ({"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}, 5, 0.2),
        ({"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 3}}, 2, 1.0),
        ({"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}}, 4, 0.25),
    ],
)
def test_the_offline_canary_takes_the_new_fleets_share_of_requests(routing, instances, share):
    assert canary_share(routing, instances) == pytest.approx(share)


@pytest.mark.parametrize(
    ("service", "action", "parameters", "expected"),
    [
        ("s3", "ListBucket", {}, [("s3:ListBucket", "*", {})]),
        ("sagemaker", "AddTags", {"ResourceArn": ENDPOINT}, [("sagemaker:AddTags", ENDPOINT, {})]),
        ("sagemaker", "ListEndpoints", {}, [("sagemaker:ListEndpoints", "*", {})]),
        (
            "monitoring",
            "PutMetricAlarm",
            {"AlarmName": "a-latency"},
            [("cloudwatch:PutMetricAlarm", "arn:aws:cloudwatch:r:1:alarm:a-latency", {})],
        ),
        (
            "monitoring",
            "DescribeAlarms",
            {"AlarmNames": ["a", "b"]},
            [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:r:1:alarm:{name}", {}) for name in "ab"],
        ),
        ("monitoring", "DescribeAlarms", {}, [("cloudwatch:DescribeAlarms", "*", {})]),
        (
            "monitoring",
            "PutMetricData",
            {"Namespace": "DogBreeds"},
            [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "DogBreeds"})],
        ),
        (
            "application-autoscaling",
            "DescribeScalingPolicies",
            {},
            [("application-autoscaling:DescribeScalingPolicies", "*", {})],
        ),
    ],
)  # fmt: skip
def test_what_each_request_needs(service, action, parameters, expected):
    needed = permissions_for(service, action, parameters, "r", "1")
    assert [(p.action, p.resource, dict(p.context)) for p in needed] == expected


def test_a_scaling_policy_on_a_variant_needs_its_alarms():
    parameters = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/E/variant/AllTraffic"}
    needed = permissions_for("application-autoscaling", "PutScalingPolicy", parameters, "r", "1")
    alarms = "arn:aws:cloudwatch:r:1:alarm:TargetTracking-endpoint/E/variant/AllTraffic-AlarmHigh-offline"
    assert {(p.action, p.resource) for p in needed if p.action.startswith("cloudwatch:")} == {
        (f"cloudwatch:{a}", alarms) for a in ("PutMetricAlarm", "DescribeAlarms", "DeleteAlarms")
    }
    other = permissions_for("application-autoscaling", "PutScalingPolicy", {"ServiceNamespace": "ecs"}, "r", "1")
    assert not [p for p in other if p.action.startswith("cloudwatch:")]
    assert str(needed[0]) == f"{needed[0].action} on resource: {needed[0].resource}"


def test_the_template_roles_are_read_with_a_statement_removed_when_a_test_says_so():
    from offline_stack.aws_rules.iam import Roles, signature_matches
    from offline_stack.sam_template import SamTemplate

    template = SamTemplate.load()
    empty = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    roles = Roles.from_template(template, overrides={"PredictFunctionRole": empty})
    predict = roles.for_function(template, "PredictFunction")
    assert predict is not None and predict.logical_id == "PredictFunctionRole"
    assert not predict.policy.allows(Permission("sagemaker:InvokeEndpoint", ENDPOINT))
    assert (
        Roles.from_template(template)
        .for_function(template, "PredictFunction")
        .policy.allows(Permission("sagemaker:InvokeEndpoint", ENDPOINT))
    )
    assert roles.for_function(template, "PageFunction").logical_id == "PageFunctionRole"  # each its own role
    assert (
        signature_matches(predict, "GET", "/", {"Authorization": "AWS4-HMAC-SHA256 Credential=KEY/20260101"}, b"")
        is False
    )


def test_a_denied_request_is_refused_outright_and_not_action_ignores_case():
    rules = policy(allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})
    assert rules.allows(Permission("s3:DeleteObject", "arn:aws:s3:::b/x")) is False
    assert rules.allows(Permission("s3:GetObject", "arn:aws:s3:::b/x")) is True
    except_delete = policy({"Effect": "Allow", "NotAction": "S3:DELETEOBJECT", "Resource": "*"})
    assert not except_delete.allows(Permission("s3:DeleteObject", "arn:aws:s3:::b/x"))
    assert except_delete.allows(Permission("s3:GetObject", "arn:aws:s3:::b/x"))


@pytest.mark.parametrize(
    ("prefix", "allowed"), [("data/train/", False), ("code/", True)]
)  # fmt: skip
def test_string_not_like_allows_what_matches_none_of_its_patterns(prefix, allowed):
    rules = policy(allow("s3:ListBucket", "*", StringNotLike={"s3:prefix": ["data/*"]}))
    assert rules.allows(Permission("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": prefix})) is allowed


def test_a_create_without_tags_needs_no_add_tags_and_only_sagemaker_variants_need_endpoint_alarms():
    needed = permissions_for("sagemaker", "CreateModel", {"ModelName": "m"}, "r", "1")
    assert [p.action for p in needed] == ["sagemaker:CreateModel"]
    parameters = {"ServiceNamespace": "ecs", "ResourceId": "endpoint/E/variant/AllTraffic"}
    other = permissions_for("application-autoscaling", "PutScalingPolicy", parameters, "r", "1")
    assert not [p for p in other if p.action.startswith(("cloudwatch:", "sagemaker:"))]


def test_a_function_whose_role_is_not_one_of_the_templates_has_none_and_a_short_scope_never_matches():
    import types

    from offline_stack.aws_rules.iam import Roles, signature_matches

    for role in ("arn:aws:iam::1:role/elsewhere", {"Ref": "ExistingRoleArn"}):
        template = types.SimpleNamespace(function_properties=lambda name, role=role: {"Role": role})
        assert Roles([]).for_function(template, "F") is None
    signer = types.SimpleNamespace(access_key_id="K", secret_access_key="S", session_token="T")
    header = {"Authorization": "AWS4-HMAC-SHA256 Credential=K/20260101/us-east-1, SignedHeaders=host, Signature=x"}
    assert signature_matches(signer, "GET", "/", header, b"") is False


@pytest.mark.parametrize(
    ("operator", "context", "allowed"),
    [
        ("ForAllValues:StringLike", {"k": ("ml.m5.large", "ml.c5.xlarge")}, True),
        ("ForAllValues:StringLike", {"k": ("ml.m5.large", "ml.p4d.24xlarge")}, False),
        ("ForAllValues:StringLike", {}, True),  # IAM's pitfall: an absent key passes ForAllValues (pair it with Null)
        ("ForAnyValue:StringLike", {"k": ("ml.p4d.24xlarge", "ml.c5.xlarge")}, True),
        ("ForAnyValue:StringLike", {}, False),
    ],
)
def test_set_operators_on_a_multivalued_key(operator, context, allowed):
    rules = policy(allow("sagemaker:CreateEndpointConfig", "*", **{operator: {"k": ["ml.m5.*", "ml.c5.*"]}}))
    assert rules.allows(Permission("sagemaker:CreateEndpointConfig", "arn:x", context)) is allowed


def test_null_checks_whether_the_request_carries_the_key():
    present = policy(allow("sagemaker:CreateTrainingJob", "*", Null={"k": "false"}))
    assert present.allows(Permission("sagemaker:CreateTrainingJob", "arn:x", {"k": ("ml.m5.large",)}))
    assert not present.allows(Permission("sagemaker:CreateTrainingJob", "arn:x", {}))


_PLACEHOLDERS = {
    "${AWS::Partition}": "aws",
    "${AWS::Region}": "us-east-1",
    "${AWS::AccountId}": "123456789012",
    "${JobNamePrefix}": "dog-breeds",
    "${EndpointName}": "dog-breed-classifier",
}


def _deployed_policy(name: str) -> Policy:
    """``policies/<name>.json`` with the template's placeholders filled as a deployed stack would fill them."""
    from offline_stack.sam_template import PROJECT_ROOT

    text = (PROJECT_ROOT / "policies" / f"{name}.json").read_text()
    for placeholder, value in _PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return Policy([json.loads(text)])


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        ({}, True),
        ({"EnableNetworkIsolation": False}, False),
        ({"EnableInterContainerTrafficEncryption": False}, False),
        ({"ResourceConfig": {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 1}}, False),
        ({"ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 2}}, True),
    ],
)
def test_the_start_training_role_creates_only_isolated_encrypted_jobs_on_the_allowed_instance_types(change, allowed):
    job = {
        "TrainingJobName": "dog-breeds-1",
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "ResourceConfig": {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1},
        **change,
    }
    (create, *_) = permissions_for("sagemaker", "CreateTrainingJob", job, "us-east-1", "123456789012")
    rules = _deployed_policy("start-training-function")
    assert rules.allows(create) is allowed


@pytest.mark.parametrize(
    ("variants", "allowed"),
    [
        ([{"InstanceType": "ml.c5.large", "InitialInstanceCount": 1}], True),
        ([{"InstanceType": "ml.p4d.24xlarge", "InitialInstanceCount": 1}], False),
        ([{"ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 5}}], True),  # no instance type at all
    ],
)
def test_the_deploy_role_creates_endpoint_configs_only_on_the_allowed_instance_types(variants, allowed):
    config = {"EndpointConfigName": "dog-breed-classifier-1", "ProductionVariants": variants}
    (create, *_) = permissions_for("sagemaker", "CreateEndpointConfig", config, "us-east-1", "123456789012")
    assert _deployed_policy("deploy-endpoint-function").allows(create) is allowed


def test_every_instance_type_the_stages_and_defaults_name_is_one_the_roles_may_use():
    """The allow-lists must not refuse what the project itself deploys: samconfig's stages and the template's
    defaults (a stage's ml.t2.medium endpoint was refused once, found by the pipeline rehearsal)."""
    import re

    from offline_stack.sam_template import PROJECT_ROOT, SamTemplate

    named = re.findall(
        r"(Training|Endpoint)InstanceType=(ml\.[a-z0-9.]+)", (PROJECT_ROOT / "samconfig.toml").read_text()
    )
    defaults = SamTemplate.load().parameters
    named += [("Training", defaults["TrainingInstanceType"]), ("Endpoint", defaults["EndpointInstanceType"])]
    for kind, instance_type in named:
        if kind == "Training":
            job = {
                "TrainingJobName": "dog-breeds-1",
                "EnableNetworkIsolation": True,
                "EnableInterContainerTrafficEncryption": True,
                "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1},
            }
            (create, *_) = permissions_for("sagemaker", "CreateTrainingJob", job, "us-east-1", "123456789012")
            assert _deployed_policy("start-training-function").allows(create), instance_type
        else:
            variants = [{"InstanceType": instance_type, "InitialInstanceCount": 1}]
            config = {"EndpointConfigName": "dog-breed-classifier-1", "ProductionVariants": variants}
            (create, *_) = permissions_for("sagemaker", "CreateEndpointConfig", config, "us-east-1", "123456789012")
            assert _deployed_policy("deploy-endpoint-function").allows(create), instance_type
