"""The CloudFormation execution roles (policies/pipeline/cloudformation-execution.json, one per identity set of
pipeline/bootstrap.yaml), proved least privilege, and the escalation they used to allow, refused.

CloudFormation creates, updates and deletes a stage's resources as its set's role. The policy must allow what each
resource type's handlers call on that set's names (testing ``dog-breed-classifier-testing``, prod
``dog-breed-classifier-prod``, feature stacks ``dog-breeds-<branch>``) and nothing on anything else; and every role it
creates must carry the set's permissions boundary, which it may not remove. The handlers' actions per resource type
come from the CloudFormation resource schemas (``handlers.<create|update|delete|read>.permissions``, CloudFormation
registry / "Resource type schema"); they are evaluated with the offline IAM evaluator on the ARNs the rendered names
produce (``ops.bootstrap.render``: the bootstrap stack as CloudFormation resolves it).
"""

from __future__ import annotations

import json

import pytest
from parliament import analyze_policy_string

from offline_stack.aws_rules.iam import Permission, Policy, Role
from offline_stack.sam_template import PROJECT_ROOT, PSEUDO_PARAMETERS, SamTemplate
from ops.bootstrap import IDENTITY_SETS, render
from ops.stages import feature_stack, read_stage

PATH = PROJECT_ROOT / "policies" / "pipeline" / "cloudformation-execution.json"
TEMPLATE = SamTemplate.load()
REGION, ACCOUNT = "us-east-1", "123456789012"
REPOSITORY = "octo-org/dog-breeds"
IDENTITIES = {identity_set: render(identity_set, REPOSITORY, ACCOUNT, REGION) for identity_set in IDENTITY_SETS}
POLICIES = {identity_set: Policy([i.cloudformation_policy]) for identity_set, i in IDENTITIES.items()}
BOUNDARIES = {identity_set: Policy([i.boundary_policy]) for identity_set, i in IDENTITIES.items()}
# A stack of each set, as the pipeline names them
STACKS = {
    "testing": "dog-breed-classifier-testing",
    "prod": "dog-breed-classifier-prod",
    "feature": feature_stack("feature/better-crop")[0],
}
# The names each stack is deployed with (samconfig.toml's parameter_overrides; a feature branch's own)
STACK_NAMES = {
    "testing": read_stage("testing").parameter_overrides,
    "prod": read_stage("prod").parameter_overrides,
    "feature": feature_stack("feature/better-crop")[1],
}

SCALING_REQUEST_KEYS = {
    "application-autoscaling:service-namespace": "sagemaker",
    "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
}

# What CloudFormation calls for each resource type of the template, once SAM has transformed it
# (Serverless::Function -> Lambda::Function, ::LayerVersion -> Lambda::LayerVersion, ::StateMachine -> StepFunctions)
HANDLER_ACTIONS = {
    "AWS::IAM::Role": (
        "role",
        "iam:GetRole iam:GetRolePolicy iam:ListRolePolicies iam:ListAttachedRolePolicies iam:UpdateRole "
        "iam:UpdateRoleDescription iam:UpdateAssumeRolePolicy iam:TagRole iam:UntagRole "
        "iam:ListInstanceProfilesForRole iam:DeleteRole",
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
    # a key is judged by its tag (its id is random): KMS's ABAC, the stage's stack name on the key
    "AWS::KMS::Key": (
        "key",
        "kms:CreateKey kms:DescribeKey kms:GetKeyPolicy kms:PutKeyPolicy kms:GetKeyRotationStatus "
        "kms:EnableKeyRotation kms:ListResourceTags kms:TagResource kms:UntagResource kms:UpdateKeyDescription "
        "kms:ScheduleKeyDeletion",
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
# Role-changing calls IAM conditions on the boundary they set or the role has (``iam:PermissionsBoundary``)
BOUNDED_ROLE_ACTIONS = ("iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy")


def role_arn(stack: str, logical_id: str = "PredictFunctionRole") -> str:
    """A template role as CloudFormation names it: under the stack's path (template.yaml's ``Path``)."""
    return f"arn:aws:iam::{ACCOUNT}:role/{stack}/{stack}-{logical_id}-AbC123"


def arns(kind: str, stack: str) -> list[str]:
    """The ARNs CloudFormation acts on for a resource of ``kind`` in ``stack`` (generated names: <stack>-<id>-<rnd>)."""
    at = f"{REGION}:{ACCOUNT}"
    return {
        "role": [role_arn(stack)],
        "function": [f"arn:aws:lambda:{at}:function:{stack}-predict"],
        "layer": [f"arn:aws:lambda:{at}:layer:{stack}-shared", f"arn:aws:lambda:{at}:layer:{stack}-shared:3"],
        "bucket": [f"arn:aws:s3:::{stack}-artifactsbucket-1x2y3z"],
        "log-group": [
            f"arn:aws:logs:{at}:log-group:/aws/lambda/{stack}-predict",
            f"arn:aws:logs:{at}:log-group:/aws/vendedlogs/apigateway/{stack}-predictions",
            f"arn:aws:logs:{at}:log-group:/aws/sagemaker/Endpoints/{stack}",
            f"arn:aws:logs:{at}:log-group:/aws/vendedlogs/states/{stack}-pipeline",
        ],
        "alarm": [f"arn:aws:cloudwatch:{at}:alarm:{stack}-model-failures"],
        "key": [f"arn:aws:kms:{at}:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
        "state-machine": [f"arn:aws:states:{at}:stateMachine:{stack}-pipeline"],
        "api": [f"arn:aws:apigateway:{REGION}::/apis", f"arn:aws:apigateway:{REGION}::/apis/a1b2c3"],
        "api-child": [f"arn:aws:apigateway:{REGION}::/apis/a1b2c3/routes/r1", f"arn:aws:apigateway:{REGION}::/tags/x"],
    }[kind]


KEY_TAG = "dog-breed-classifier:stack"


def permission(action: str, arn: str, kind: str, stack: str) -> Permission:
    """``action`` on ``arn`` as CloudFormation asks it for ``stack``: a key carries (and is created with) the tag
    naming its stack (template.yaml's ArtifactsKey); CreateKey names no key."""
    if kind != "key":
        return Permission(action, arn)
    tags = {f"aws:ResourceTag/{KEY_TAG}": stack, f"aws:RequestTag/{KEY_TAG}": stack}
    return Permission(action, "*" if action == "kms:CreateKey" else arn, tags)


def test_the_key_carries_the_tag_the_cloudformation_role_is_judged_by():
    tags = TEMPLATE.resources["ArtifactsKey"]["Properties"]["Tags"]
    assert tags == [{"Key": KEY_TAG, "Value": {"Ref": "AWS::StackName"}}]


def test_every_resource_type_of_the_template_has_its_handlers_actions_listed_here():
    types = {TRANSFORMED.get(r["Type"], r["Type"]) for r in TEMPLATE.resources.values()}
    assert types <= set(HANDLER_ACTIONS), types - set(HANDLER_ACTIONS)


def test_every_role_of_the_template_sits_under_the_stacks_path_and_carries_the_boundary_parameter():
    for logical_id, resource in TEMPLATE.resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            properties = resource["Properties"]
            assert properties["Path"] == {"Fn::Sub": "/${AWS::StackName}/"}, logical_id
            assert properties["PermissionsBoundary"] == {
                "Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]
            }, logical_id


@pytest.mark.parametrize("identity_set", IDENTITY_SETS)
@pytest.mark.parametrize("resource_type", sorted(HANDLER_ACTIONS))
def test_cloudformation_may_create_update_and_delete_each_resource_of_its_own_stacks(resource_type, identity_set):
    kind, actions = HANDLER_ACTIONS[resource_type]
    for action in actions.split():
        for arn in arns(kind, STACKS[identity_set]):
            assert POLICIES[identity_set].allows(permission(action, arn, kind, STACKS[identity_set])), f"{action}"


# API Gateway developer guide, "Configure logging for HTTP APIs in API Gateway": "To turn on logging for an API, your
# user must have the following permissions" (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging.html)
HTTP_API_LOGGING_ON_LOG_GROUPS = "logs:DescribeLogGroups logs:DescribeLogStreams logs:GetLogEvents logs:FilterLogEvents"
HTTP_API_LOGGING_ON_ANY = (
    "logs:CreateLogDelivery logs:PutResourcePolicy logs:UpdateLogDelivery logs:DeleteLogDelivery logs:CreateLogGroup "
    "logs:DescribeResourcePolicies logs:GetLogDelivery logs:ListLogDeliveries"
)


@pytest.mark.parametrize("identity_set", IDENTITY_SETS)
def test_cloudformation_holds_what_http_api_logging_asks_for_on_its_stages_access_log_group(identity_set):
    stack = STACKS[identity_set]
    group = TEMPLATE.resolve(TEMPLATE.resource("PredictionsApiAccessLogs")["Properties"]["LogGroupName"])
    assert group.startswith("/aws/vendedlogs/")  # as CloudWatch Logs asks of vended-log groups
    own = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group.replace(PSEUDO_PARAMETERS['AWS::StackName'], stack)}"
    for action in HTTP_API_LOGGING_ON_LOG_GROUPS.split():
        assert POLICIES[identity_set].allows(Permission(action, own)), action
    for action in HTTP_API_LOGGING_ON_ANY.split():
        resource = own if action == "logs:CreateLogGroup" else "*"
        assert POLICIES[identity_set].allows(Permission(action, resource)), action
    # the log-group actions stop at the stage's own groups
    other = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/apigateway/someone-elses-api"
    assert not POLICIES[identity_set].allows(Permission("logs:GetLogEvents", other))


@pytest.mark.parametrize("identity_set", IDENTITY_SETS)
def test_roles_are_created_and_changed_only_with_the_sets_own_boundary(identity_set):
    policy, own = POLICIES[identity_set], IDENTITIES[identity_set].boundary_arn
    other = IDENTITIES["prod" if identity_set != "prod" else "testing"].boundary_arn
    arn = role_arn(STACKS[identity_set])
    for action in BOUNDED_ROLE_ACTIONS:
        assert policy.allows(Permission(action, arn, {"iam:PermissionsBoundary": own})), action
        assert not policy.allows(Permission(action, arn)), f"{action} without a boundary must be denied"
        assert not policy.allows(Permission(action, arn, {"iam:PermissionsBoundary": other})), action
    for action in ("iam:DeleteRolePermissionsBoundary", "iam:AttachRolePolicy"):
        assert not policy.allows(Permission(action, arn, {"iam:PermissionsBoundary": own})), action
    for action in ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"):
        assert not policy.allows(Permission(action, own)), f"{action} on the boundary itself must be denied"


def test_functions_and_state_machines_get_their_roles_and_code():
    identities = IDENTITIES["testing"]
    role = role_arn(STACKS["testing"], "TrainingPipelineRole")
    policy = POLICIES["testing"]
    for service in ("lambda.amazonaws.com", "states.amazonaws.com"):
        assert policy.allows(Permission("iam:PassRole", role, {"iam:PassedToService": service}))
    assert policy.allows(Permission("s3:GetObject", f"arn:aws:s3:::{identities.artifacts_bucket}/abc123.zip"))
    assert policy.allows(Permission("logs:DescribeLogGroups", "*"))
    # a state machine with logging: its creator sets up the log delivery (Step Functions developer guide, "IAM
    # policies for logging to CloudWatch Logs")
    for action in ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:PutResourcePolicy", "logs:ListLogDeliveries"):
        assert policy.allows(Permission(action, "*"))


@pytest.mark.parametrize(
    "identity_set, other",
    [("feature", "testing"), ("feature", "prod"), ("testing", "prod"), ("testing", "feature"), ("prod", "testing")],
)
def test_one_sets_cloudformation_role_cannot_touch_another_sets_stacks(identity_set, other):
    # Given one account holding every stage (the case where names are all that separates them)
    policy, stack = POLICIES[identity_set], STACKS[other]
    # Then no resource of the other set's stack can be changed, whatever boundary the request names
    for kind, actions in HANDLER_ACTIONS.values():
        if kind.startswith("api"):
            continue  # HTTP API ids are random: see docs/pipeline.md (one account per stage closes this)
        for action in actions.split():
            for arn in arns(kind, stack):
                if action == "lambda:GetFunction" or not action.split(":")[1].startswith(("Get", "List", "Describe")):
                    refused = not policy.allows(permission(action, arn, kind, stack))
                    assert refused, f"{identity_set}: {action} on {arn}"
    for action in BOUNDED_ROLE_ACTIONS:
        bounded = {"iam:PermissionsBoundary": IDENTITIES[identity_set].boundary_arn}
        assert not policy.allows(Permission(action, role_arn(stack), bounded)), f"{identity_set}: {action}"


def test_the_exploit_a_feature_branch_creating_an_admin_role_is_refused():
    # Given a feature branch whose template adds a role "dog-breed-pwn" allowed "*" and trusted by another account
    policy, identities = POLICIES["feature"], IDENTITIES["feature"]
    stack = STACKS["feature"]
    pwn = f"arn:aws:iam::{ACCOUNT}:role/{stack}/dog-breed-pwn"
    # When CloudFormation creates it without the boundary (or outside the set's names), it is refused
    assert not policy.allows(Permission("iam:CreateRole", pwn))
    assert not policy.allows(Permission("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/dog-breed-pwn"))
    assert not policy.allows(
        Permission("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/dog-breed-pwn", {"iam:PermissionsBoundary": ""})
    )
    # And created with the boundary (all CloudFormation may do), the role can do no more than the app's roles
    assert policy.allows(Permission("iam:CreateRole", pwn, {"iam:PermissionsBoundary": identities.boundary_arn}))
    admin = Role(
        "Pwn", pwn, Policy([{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]), "k", "s", "t"
    )
    bounded = Role(**{**admin.__dict__, "boundary": BOUNDARIES["feature"]})
    escalations = [
        Permission("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/anything"),
        Permission("iam:PutRolePolicy", pwn),
        Permission("iam:AttachRolePolicy", pwn),
        Permission("iam:DeleteRolePermissionsBoundary", pwn),
        Permission("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/backdoor"),
        Permission("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole"),
        Permission("iam:PassRole", role_arn(STACKS["prod"]), {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        Permission("s3:GetObject", f"arn:aws:s3:::{STACKS['prod']}-artifactsbucket-1x2y3z/data-capture/photo.jpg"),
        Permission("s3:GetObject", f"arn:aws:s3:::{STACKS['testing']}-artifactsbucket-1x2y3z/data/x.jpg"),
        Permission("lambda:UpdateFunctionCode", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACKS['prod']}-predict"),
        Permission("ec2:RunInstances", "*"),
        # another stage's resources, by the actions the application's roles use (the boundary allowed these on
        # "*" until the narrowness probes covered it)
        Permission("sagemaker:DeleteEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{STACKS['prod']}"),
        Permission("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{STACKS['prod']}"),
        Permission("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACKS['prod']}-predict"),
        Permission("cloudwatch:DeleteAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{STACKS['prod']}-errors"),
        Permission(
            "ecr:BatchGetImage",
            f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/private-images",
            {"aws:ResourceAccount": ACCOUNT},  # the account that owns the repository
        ),
    ]
    for permission in escalations:
        assert admin.allows(permission)  # what the unbounded role would have had
        assert not bounded.allows(permission), f"the boundary lets the branch's role {permission}"
    # while what the application's own roles do on its own stack stays possible
    assert bounded.allows(Permission("s3:GetObject", f"arn:aws:s3:::{stack}-artifactsbucket-1x2y3z/models/m.tar.gz"))


@pytest.mark.parametrize("identity_set", IDENTITY_SETS)
def test_the_boundary_leaves_every_statement_of_the_applications_roles_in_force(identity_set, monkeypatch):
    # Given the application deployed as the set's stack (its names resolved as the stack would have them)
    from offline_stack import sam_template

    stack = STACKS[identity_set]
    monkeypatch.setitem(sam_template.PSEUDO_PARAMETERS, "AWS::StackName", stack)
    names = {name: STACK_NAMES[identity_set][name] for name in ("EndpointName", "JobNamePrefix")}
    assert all(value.startswith(IDENTITIES[identity_set].scope) for value in names.values()), names
    template = SamTemplate.load(overrides=names)
    boundary = BOUNDARIES[identity_set]
    checked = 0
    for logical_id, resource in template.resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in template.resolve(policy["PolicyDocument"])["Statement"]:
                # what every request of the action carries (a scaling request its namespace: aws_rules/iam.py),
                # and the statement's own condition keys met
                context = SCALING_REQUEST_KEYS | {
                    key: _as_list(values)[0]
                    for operator, keys in statement.get("Condition", {}).items()
                    for key, values in keys.items()
                }
                for action in _as_list(statement["Action"]):
                    for resource_arn in _as_list(statement["Resource"]):
                        checked += 1
                        assert boundary.allows(Permission(action, resource_arn, context)), (
                            f"{logical_id} {statement.get('Sid')}: the boundary cuts {action} on {resource_arn}"
                        )
    assert checked > 100


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_actions():
    for statement in json.loads(PATH.read_text())["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement["Sid"]


# parliament's one finding, accepted: a role that manages an AWS::S3::BucketPolicy (and lifecycle) can write one
# that grants object access ("resource policy privilege escalation"). Managing the artifacts bucket's policy is this
# role's job; only cloudformation.amazonaws.com can assume it, and the policy it writes is the template's, reviewed
# in the pull request that changes it. Anything else parliament says fails this test.
@pytest.mark.parametrize("identity_set", IDENTITY_SETS)
def test_parliament_finds_nothing_but_the_bucket_policy_the_role_exists_to_manage(identity_set):
    accepted = {("RESOURCE_POLICY_PRIVILEGE_ESCALATION", f"arn:aws:s3:::{IDENTITIES[identity_set].scope}*")}
    findings = analyze_policy_string(json.dumps(IDENTITIES[identity_set].cloudformation_policy)).findings
    unexpected = [
        f"{finding.issue}: {finding.detail}"
        for finding in findings
        if (
            finding.issue,
            str(finding.detail).split(" due to")[0].removeprefix("Possible resource policy privilege escalation on "),
        )
        not in accepted
    ]
    assert unexpected == []
