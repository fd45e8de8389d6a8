"""Least privilege, proved narrow: every statement of policies/*.json refuses its nearest neighbours.

Each statement has negative probes generated from its own Resource and Condition (tests/support/policy_probes.py):
the same action on another prefix of the bucket, another object of the type whose name shares the prefix, another
bucket, Region or account, with the statement's conditions met; and on its own resource with one condition not met.
They are pinned (tests/unit/policy_probes.json), so a policy widened in a commit lets one through and the failure
names the statement. The policies are evaluated by the same IAM evaluator that enforces every offline request as its
role (offline_stack/aws_rules/iam.py); tests/integration/test_least_privilege.py proves each statement is needed.
"""

from __future__ import annotations

import copy
import json

import pytest

from offline_stack.aws_rules.iam import Policy
from offline_stack.sam_template import SamTemplate
from tests.support.policy_probes import (
    PINNED,
    all_probes,
    as_list,
    denies,
    documents,
    permission_of,
    split_resource,
)

TEMPLATE = SamTemplate.load()
PROBES = json.loads(PINNED.read_text())
DOCUMENTS = documents(TEMPLATE)
# Statements with nothing narrower to probe: Resource "*" and no condition, because AWS has no resource-level
# permission for their actions (Service Authorization Reference: the action's resource-type column is empty). Their
# exact shape is pinned: a new action slipped into one of them fails here.
XRAY = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
SCALING_DESCRIBE = [
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
]
# Vended log delivery (a state machine's and an HTTP API's execution and access logs): no resource-level permission
LOG_DELIVERY = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
]
UNPROBED = {
    **{
        (name, "SendTracesXRayHasNoResourceLevelPermissions"): XRAY
        for name in (
            "deploy-endpoint-function.json",
            "page-function.json",
            "predict-function.json",
            "register-autoscaling-function.json",
            "release-gate-function.json",
            "start-training-function.json",
        )
    },
    ("pipeline-state-machine.json", "SendTracesXRayHasNoResourceLevelPermissions"): [
        *XRAY,
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    ],
    ("pipeline-state-machine.json", "DeliverExecutionLogsHasNoResourceLevelPermissions"): [
        *LOG_DELIVERY,
        "logs:DescribeLogGroups",
    ],
    ("deploy-endpoint-function.json", "ScalingDescribeCallsHaveNoResourceLevelPermissions"): SCALING_DESCRIBE,
    ("register-autoscaling-function.json", "DescribeCallsHaveNoResourceLevelPermissions"): SCALING_DESCRIBE,
    ("release-gate-function.json", "ListModelPackagesHasNoResourceLevelPermissions"): "sagemaker:ListModelPackages",
    **{
        (name, "EcrAuthorizationTokensHaveNoResourceLevelPermissions"): "ecr:GetAuthorizationToken"
        for name in (
            "sagemaker-endpoint.json",
            "sagemaker-execution.json",
            "sagemaker-golden-scoring.json",
            "sagemaker-serverless-endpoint.json",
        )
    },
}
# The release pipeline's (policies/pipeline/), in every identity set's rendering
PIPELINE_UNPROBED = {
    "pipeline-execution.json": {
        "ListsAndDescribesWithoutResourceLevelPermissions": [
            "sagemaker:ListModelPackages",
            "cloudformation:GetTemplateSummary",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingPolicies",
            "cloudwatch:DescribeAlarms",
            "sagemaker:ListTrainingJobs",
            "sagemaker:ListHyperParameterTuningJobs",
            "sagemaker:ListEndpointConfigs",
            "sagemaker:ListModels",
            "sagemaker:ListTransformJobs",
        ]
    },
    "cloudformation-execution.json": {
        "DescribeLogGroupsHasNoResourceLevelPermissions": "logs:DescribeLogGroups",
        "ApiAndStateMachineLogDeliveryHaveNoResourceLevelPermissions": LOG_DELIVERY,
    },
    "permissions-boundary.json": {
        "CallsWithoutResourceLevelPermissions": [
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingPolicies",
            "ecr:GetAuthorizationToken",
            "logs:CreateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:DescribeLogGroups",
            "logs:DescribeResourcePolicies",
            "logs:GetLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:UpdateLogDelivery",
            "sagemaker:ListModelPackages",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        ]
    },
    "registry-reader.json": {"ListVersionsWithoutResourceLevelPermissions": "sagemaker:ListModelPackages"},
}
UNPROBED |= {
    (name, sid): actions
    for name in DOCUMENTS
    if name.startswith("pipeline/")
    for sid, actions in PIPELINE_UNPROBED[name.split("/")[1].split("@")[0]].items()
}
STATEMENTS = [(name, statement["Sid"]) for name, document in DOCUMENTS.items() for statement in document["Statement"]]


def _statement(name: str, sid: str) -> dict:
    return next(s for s in DOCUMENTS[name]["Statement"] if s["Sid"] == sid)


def test_the_pinned_probes_are_the_policies_own():
    """Regenerated from today's policies they are the same: a changed policy means reviewed, rewritten probes."""
    assert all_probes(TEMPLATE) == PROBES, (
        "policies/ changed: review and pin the probes again (python -m tests.support.policy_probes --write)"
    )


@pytest.mark.parametrize(("name", "sid"), STATEMENTS, ids=[f"{n}:{s}" for n, s in STATEMENTS])
def test_each_statement_refuses_its_neighbours_or_is_a_pinned_exception(name, sid):
    statement = _statement(name, sid)
    probes = PROBES.get(name, {}).get(sid, [])
    if statement["Effect"] == "Deny":  # it keeps refusing what it refuses, and reaches nothing beside it
        assert any(probe["probes"] == "refused" for probe in probes), f"{name} {sid}: no request it must refuse"
        wrong = [p for p in probes if denies(DOCUMENTS[name], permission_of(p)) != (p["probes"] == "refused")]
        assert not wrong, f"{name} {sid} now decides these the other way: {wrong}"
        return
    if (name, sid) in UNPROBED:  # its exact shape: these actions, on "*", with no condition
        assert (statement["Action"], statement["Resource"], statement.get("Condition")) == (
            UNPROBED[(name, sid)],
            "*",
            None,
        )
        return
    assert probes, f"{name} {sid}: no negative probe; narrow it, or pin it in UNPROBED with AWS's reason"
    policy = Policy([DOCUMENTS[name]])
    admitted = [probe for probe in probes if policy.allows(permission_of(probe))]
    assert not admitted, f"{name} {sid} now admits: {admitted}"


def _widenings(resource: str) -> list[str]:
    """The three mistakes the issue names: the whole bucket, every resource of the type in the account, ``*``."""
    head, rest = split_resource(resource)
    widened = ["*"]
    if head == "arn:aws:s3:::" and "/" in rest:
        widened.append(f"{head}{rest.split('/')[0]}/*")
    elif head and head != "arn:aws:s3:::":
        kind = next((rest[: i + 1] for i, c in enumerate(rest) if c in "/:"), None)
        if kind:
            widened.append(f"{head}{kind}*")
    return [w for w in widened if w != resource]


def _mistakes(statement: dict):
    for index, resource in enumerate(as_list(statement.get("Resource", "*"))):
        for widened in _widenings(resource):
            changed = copy.deepcopy(statement)
            resources = as_list(changed["Resource"])
            resources[index] = widened
            changed["Resource"] = resources
            yield f"Resource {resource} -> {widened}", changed
    for operator, keys in statement.get("Condition", {}).items():
        for key in keys:
            changed = copy.deepcopy(statement)
            del changed["Condition"][operator][key]
            if not changed["Condition"][operator]:
                del changed["Condition"][operator]
            yield f"Condition {operator} {key} removed", changed
    if statement["Effect"] == "Deny":  # a Deny's other mistakes: it refuses less
        for index, resource in enumerate(as_list(statement.get("Resource", "*"))):
            changed = copy.deepcopy(statement)
            resources = as_list(changed["Resource"])
            resources[index] = resource.replace("*", "zz-narrowed*") if "*" in resource else f"{resource}zz"
            changed["Resource"] = resources
            yield f"Resource {resource} narrowed", changed
        actions = as_list(statement["Action"])
        for action in actions if len(actions) > 1 else []:
            yield f"Action {action} dropped", {**statement, "Action": [a for a in actions if a != action]}
        for operator, keys in statement.get("Condition", {}).items():
            if operator.startswith("ArnNot"):
                for key, value in keys.items():
                    changed = copy.deepcopy(statement)
                    del changed["Condition"][operator][key]
                    wide = str(as_list(value)[0]).rpartition("/")[0] + "/*"
                    changed["Condition"] = {**changed["Condition"], "ArnNotLike": {key: wide}}
                    yield f"Condition {operator} {key} exception widened to {wide}", changed


MISTAKES = [
    (name, sid, label, changed)
    for name, sid in STATEMENTS
    if (name, sid) not in UNPROBED
    for label, changed in _mistakes(_statement(name, sid))
]


@pytest.mark.parametrize(
    ("name", "sid", "label", "changed"), MISTAKES, ids=[f"{n}:{s}:{label}" for n, s, label, _ in MISTAKES]
)
def test_a_widened_resource_or_a_dropped_condition_lets_a_pinned_probe_through(name, sid, label, changed):
    """The probes would catch each mistake: applied to a copy of the policy, one of the statement's probes is let
    through."""
    document = copy.deepcopy(DOCUMENTS[name])
    document["Statement"] = [changed if s["Sid"] == sid else s for s in document["Statement"]]
    probes = PROBES.get(name, {}).get(sid, [])
    if changed["Effect"] == "Deny":
        flipped = [p for p in probes if denies(document, permission_of(p)) != (p["probes"] == "refused")]
        assert flipped, f"{name} {sid}: {label} goes unnoticed"
        return
    policy = Policy([document])
    assert any(policy.allows(permission_of(probe)) for probe in probes), f"{name} {sid}: {label} goes unnoticed"
