"""The CloudFormation execution role's policy (policies/pipeline/cloudformation-execution.json), proved least privilege.

`sam pipeline bootstrap` makes one CloudFormation execution role per stage; CloudFormation creates, updates and
deletes the stack's resources as that role. Its policy must allow what each resource type's handlers call on this
project's names (stacks ``dog-breed-classifier``, ``-testing`` and feature stacks ``dog-breeds-<branch>``), and
nothing on anything else. The handlers' actions per resource type come from the CloudFormation resource schemas
(``handlers.<create|update|delete|read>.permissions``, CloudFormation registry / "Resource type schema"); they are
evaluated here with the offline IAM evaluator on the ARNs the rendered names produce.
"""

from __future__ import annotations

import json

import pytest
from parliament import analyze_policy_string

from offline_stack.aws_rules.iam import Permission, Policy
from offline_stack.sam_template import PROJECT_ROOT, SamTemplate

PATH = PROJECT_ROOT / "policies" / "pipeline" / "cloudformation-execution.json"
TEMPLATE = SamTemplate.load()
PIPELINE_BUCKET = "aws-sam-cli-managed-testing-pipeline-artifactsbucket-1a2b3c"
REGION, ACCOUNT = "us-east-1", "123456789012"


def rendered() -> str:
    return TEMPLATE.substitute(PATH.read_text().replace("${PipelineArtifactsBucket}", PIPELINE_BUCKET))


POLICY = Policy([json.loads(rendered())])

# What CloudFormation calls for each resource type of the template, once SAM has transformed it
# (Serverless::Function -> Lambda::Function, ::LayerVersion -> Lambda::LayerVersion, ::StateMachine -> StepFunctions)
HANDLER_ACTIONS = {
    "AWS::IAM::Role": (
        "role",
        "iam:CreateRole iam:GetRole iam:PutRolePolicy iam:GetRolePolicy iam:DeleteRolePolicy iam:ListRolePolicies "
        "iam:ListAttachedRolePolicies iam:UpdateRole iam:UpdateRoleDescription iam:UpdateAssumeRolePolicy "
        "iam:TagRole iam:UntagRole iam:ListInstanceProfilesForRole iam:DeleteRole",
    ),
    "AWS::Lambda::Function": (
        "function",
        "lambda:CreateFunction lambda:GetFunction lambda:UpdateFunctionCode lambda:UpdateFunctionConfiguration "
        "lambda:PutFunctionConcurrency lambda:DeleteFunctionConcurrency lambda:GetFunctionCodeSigningConfig "
        "lambda:GetRuntimeManagementConfig lambda:TagResource lambda:UntagResource lambda:ListTags "
        "lambda:DeleteFunction",
    ),
    "AWS::Lambda::Permission": ("function", "lambda:AddPermission lambda:RemovePermission lambda:GetPolicy"),
    "AWS::Lambda::LayerVersion": (
        "layer",
        "lambda:PublishLayerVersion lambda:GetLayerVersion lambda:DeleteLayerVersion",
    ),
    "AWS::S3::Bucket": (
        "bucket",
        "s3:CreateBucket s3:PutEncryptionConfiguration s3:PutBucketPublicAccessBlock s3:PutBucketOwnershipControls "
        "s3:PutBucketVersioning s3:PutBucketTagging s3:PutBucketLogging s3:PutLifecycleConfiguration "
        "s3:GetBucketLocation s3:DeleteBucket",
    ),
    "AWS::S3::BucketPolicy": ("bucket", "s3:PutBucketPolicy s3:GetBucketPolicy s3:DeleteBucketPolicy"),
    "AWS::Logs::LogGroup": (
        "log-group",
        "logs:CreateLogGroup logs:PutRetentionPolicy logs:TagResource logs:ListTagsForResource logs:DeleteLogGroup",
    ),
    "AWS::CloudWatch::Alarm": ("alarm", "cloudwatch:PutMetricAlarm cloudwatch:DescribeAlarms cloudwatch:DeleteAlarms"),
    "AWS::StepFunctions::StateMachine": (
        "state-machine",
        "states:CreateStateMachine states:DescribeStateMachine states:UpdateStateMachine states:TagResource "
        "states:DeleteStateMachine",
    ),
    "AWS::ApiGatewayV2::Api": ("api", "apigateway:POST apigateway:GET apigateway:PATCH apigateway:DELETE"),
    "AWS::ApiGatewayV2::Integration": (
        "api-child",
        "apigateway:POST apigateway:GET apigateway:PATCH apigateway:DELETE",
    ),
    "AWS::ApiGatewayV2::Route": ("api-child", "apigateway:POST apigateway:GET apigateway:PATCH apigateway:DELETE"),
    "AWS::ApiGatewayV2::Stage": ("api-child", "apigateway:POST apigateway:GET apigateway:PATCH apigateway:DELETE"),
    "AWS::ApiGatewayV2::Authorizer": ("api-child", "apigateway:POST apigateway:GET apigateway:PATCH apigateway:DELETE"),
}
TRANSFORMED = {
    "AWS::Serverless::Function": "AWS::Lambda::Function",
    "AWS::Serverless::LayerVersion": "AWS::Lambda::LayerVersion",
    "AWS::Serverless::StateMachine": "AWS::StepFunctions::StateMachine",
}
STACKS = ("dog-breed-classifier", "dog-breed-classifier-testing", "dog-breeds-feature-better-crop-41261c")


def arns(kind: str, stack: str) -> list[str]:
    """The ARNs CloudFormation acts on for a resource of ``kind`` in ``stack`` (generated names: <stack>-<id>-<rnd>)."""
    at = f"{REGION}:{ACCOUNT}"
    return {
        "role": [f"arn:aws:iam::{ACCOUNT}:role/{stack}-PredictFunctionRole-AbC123"],
        "function": [f"arn:aws:lambda:{at}:function:{stack}-predict"],
        "layer": [f"arn:aws:lambda:{at}:layer:{stack}-shared", f"arn:aws:lambda:{at}:layer:{stack}-shared:3"],
        "bucket": [f"arn:aws:s3:::{stack}-artifactsbucket-1x2y3z"],
        "log-group": [
            f"arn:aws:logs:{at}:log-group:/aws/lambda/{stack}-predict",
            f"arn:aws:logs:{at}:log-group:/aws/apigateway/{stack}-predictions",
            f"arn:aws:logs:{at}:log-group:/aws/sagemaker/Endpoints/{stack}",
            f"arn:aws:logs:{at}:log-group:/aws/vendedlogs/states/{stack}-pipeline",
        ],
        "alarm": [f"arn:aws:cloudwatch:{at}:alarm:{stack}-model-failures"],
        "state-machine": [f"arn:aws:states:{at}:stateMachine:{stack}-pipeline"],
        "api": [f"arn:aws:apigateway:{REGION}::/apis", f"arn:aws:apigateway:{REGION}::/apis/a1b2c3"],
        "api-child": [f"arn:aws:apigateway:{REGION}::/apis/a1b2c3/routes/r1", f"arn:aws:apigateway:{REGION}::/tags/x"],
    }[kind]


def test_every_resource_type_of_the_template_has_its_handlers_actions_listed_here():
    types = {TRANSFORMED.get(r["Type"], r["Type"]) for r in TEMPLATE.resources.values()}
    assert types <= set(HANDLER_ACTIONS), types - set(HANDLER_ACTIONS)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("resource_type", sorted(HANDLER_ACTIONS))
def test_cloudformation_may_create_update_and_delete_each_resource_of_the_projects_stacks(resource_type, stack):
    kind, actions = HANDLER_ACTIONS[resource_type]
    for action in actions.split():
        for arn in arns(kind, stack):
            assert POLICY.allows(Permission(action, arn)), f"{action} on {arn}"


def test_functions_and_state_machines_get_their_roles_and_code():
    role = f"arn:aws:iam::{ACCOUNT}:role/dog-breed-classifier-TrainingPipelineRole-AbC"
    for service in ("lambda.amazonaws.com", "states.amazonaws.com"):
        assert POLICY.allows(Permission("iam:PassRole", role, {"iam:PassedToService": service}))
    assert POLICY.allows(Permission("s3:GetObject", f"arn:aws:s3:::{PIPELINE_BUCKET}/abc123.zip"))
    assert POLICY.allows(Permission("logs:DescribeLogGroups", "*"))
    # a state machine with logging: its creator sets up the log delivery (Step Functions developer guide, "IAM
    # policies for logging to CloudWatch Logs")
    for action in ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:PutResourcePolicy", "logs:ListLogDeliveries"):
        assert POLICY.allows(Permission(action, "*"))


@pytest.mark.parametrize(
    "action, arn, context",
    [
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/another-app-Role", {}),
        ("iam:AttachRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/dog-breed-classifier-Role", {}),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/admin", {}),
        ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/dog-breed-me", {}),
        (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/dog-breed-classifier-X",
            {"iam:PassedToService": "ec2.amazonaws.com"},
        ),
        (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole",
            {"iam:PassedToService": "lambda.amazonaws.com"},
        ),
        ("lambda:UpdateFunctionCode", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments", {}),
        ("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:dog-breed-classifier-predict", {}),
        ("s3:GetObject", "arn:aws:s3:::dog-breed-classifier-artifactsbucket-1x2y3z/data/photo.jpg", {}),
        ("s3:PutObject", f"arn:aws:s3:::{PIPELINE_BUCKET}/abc.zip", {}),
        ("s3:PutBucketPolicy", "arn:aws:s3:::company-data-lake", {}),
        ("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/dog-breed-classifier", {}),
        ("logs:DeleteLogGroup", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/payments", {}),
        ("states:StartExecution", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:dog-breed-classifier-pipeline", {}),
        ("cloudwatch:DeleteAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:billing", {}),
    ],
)
def test_nothing_beyond_the_projects_resources_and_the_stacks_own_job(action, arn, context):
    assert not POLICY.allows(Permission(action, arn, context)), f"{action} on {arn} should be denied"


def test_no_wildcard_actions():
    for statement in json.loads(PATH.read_text())["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement["Sid"]


# parliament's one finding, accepted: a role that manages an AWS::S3::BucketPolicy (and lifecycle) can write one
# that grants object access ("resource policy privilege escalation"). Managing the artifacts bucket's policy is this
# role's job; only cloudformation.amazonaws.com can assume it, and the policy it writes is the template's, reviewed
# in the pull request that changes it. Anything else parliament says fails this test.
ACCEPTED = {("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "arn:aws:s3:::dog-breed*")}


def test_parliament_finds_nothing_but_the_bucket_policy_the_role_exists_to_manage():
    findings = analyze_policy_string(rendered()).findings
    unexpected = [
        f"{finding.issue}: {finding.detail}"
        for finding in findings
        if (
            finding.issue,
            str(finding.detail).split(" due to")[0].removeprefix("Possible resource policy privilege escalation on "),
        )
        not in ACCEPTED
    ]
    assert unexpected == []
