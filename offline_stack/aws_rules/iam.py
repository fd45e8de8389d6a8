"""IAM as the offline stack enforces it: every function, training job and endpoint acts with the credentials of its
own role from the template, and each call it makes is allowed only if that role's policy allows it, on the real
resource ARN, with the condition keys the policies use.

moto's own enforcement cannot prove a scoped policy: it checks every non-S3 request against the resource ``*``
(so a statement scoped to one endpoint allows nothing) and fails every condition it has no value for. So the
control plane (moto) and the endpoint server call ``Roles.authorize`` instead, which evaluates what AWS would.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **Evaluation.** An explicit Deny wins; otherwise the request needs an Allow whose Action, Resource and
  Condition all match; otherwise it is denied. Source: IAM user guide, "Policy evaluation logic".
- **Matching.** ``*`` and ``?`` are wildcards in Action and Resource; actions match case-insensitively.
  Source: IAM user guide, "IAM JSON policy elements: Action" and "...: Resource".
- **Conditions.** StringEquals, StringNotEquals, StringLike, StringNotLike, ArnEquals, ArnLike, Bool (and their
  ``...IfExists`` forms); a condition on a key the request does not carry is false, unless ``...IfExists``.
  Source: IAM user guide, "IAM JSON policy elements: Condition operators". ``Null``: "Use a Null condition operator
  to check if a condition key is absent at the time of authorization". Multi-valued keys (``sagemaker:InstanceTypes``)
  take the set operators: "ForAllValues – Tests whether the value of every member of the request set is a subset of
  the condition key set" (and it is true when the key is absent, so a policy pairs it with ``Null``), "ForAnyValue –
  Tests whether at least one member of the set of request values matches at least one member of the set of condition
  key values". Sources: IAM user guide, "Condition operators" and "Set operators for multivalued context keys"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).
- **SageMaker's request keys** on create calls: ``sagemaker:NetworkIsolation`` ("Filters access by the network
  isolation associated with the resource in the request", Bool) on CreateTrainingJob and CreateModel,
  ``sagemaker:InterContainerTrafficEncryption`` ("Filters access by the inter container traffic encryption associated
  with the resource in the request", Bool) on CreateTrainingJob, ``sagemaker:InstanceTypes`` ("Filters access by the
  list of all instance types associated with the resource in the request", ArrayOfString) on CreateTrainingJob and
  CreateEndpointConfig. Source: Service Authorization Reference, Amazon SageMaker AI, "Condition keys"
  (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html). Inference: a request
  that leaves ``EnableNetworkIsolation`` or ``EnableInterContainerTrafficEncryption`` out carries ``false`` (their
  documented default).
- **What a request needs** (``permissions_for``): SageMaker actions on their resource ARNs (names lower-cased, as
  SageMaker writes them), CreateEndpoint/UpdateEndpoint on the endpoint and its config (the rollback alarms are read
  as the endpoint's execution role: ``aws_rules/sagemaker.py``), ``sagemaker:AddTags`` when a create request
  carries tags, ``iam:PassRole`` (with ``iam:PassedToService``) for the role a job or model is
  given; CloudWatch alarms by name; S3 objects with ``s3:prefix`` and ``s3:if-none-match``. Sources: Service
  Authorization Reference for Amazon SageMaker AI, Amazon CloudWatch and Amazon S3 ("Actions, resources, and
  condition keys"); SageMaker developer guide, "Grant permissions to tag SageMaker AI resources" and
  "Passing roles"; IAM user guide, "Grant a user permissions to pass a role to an AWS service".
- **Permissions boundaries.** A role with a boundary may do only what both its identity policies and the
  boundary allow: "A permissions boundary is an advanced feature for using a managed policy to set the maximum
  permissions that an identity-based policy can grant to an IAM entity." Source: IAM user guide, "Permissions
  boundaries for IAM entities" (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
  Role-changing calls carry the boundary they set or the role has as ``iam:PermissionsBoundary`` ("Filters access
  by the ARN of the policy used as the permissions boundary"; CreateRole, PutRolePolicy, DeleteRolePolicy,
  PutRolePermissionsBoundary, AttachRolePolicy, DetachRolePolicy, DeleteRolePermissionsBoundary). Source: Service
  Authorization Reference, AWS Identity and Access Management, "Condition keys".
- **S3's refusal says why.** "Amazon S3 now includes additional context in access denied (HTTP 403 Forbidden)
  errors for requests made to resources within the same AWS account", in the form "User: user-arn is not
  authorized to perform: action on "resource-arn" because context". Source: S3 user guide, "Troubleshoot access
  denied (403 Forbidden) errors in Amazon S3" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshoot-403-errors.html).
- **Signatures.** A request signed with a role's key must carry that key's SigV4 signature; anything else is
  refused as AWS refuses it. Source: IAM user guide, "Signing AWS API requests" (Signature Version 4).

Bucket policies' Deny statements are enforced for every principal (``aws_rules/s3.py``). Not enforced offline: other
resource-based policies, SCPs, session policies. The operator (the tests, ``make demo``) signs with the
offline stack's dummy credentials and acts as an account administrator, as a person deploying would; the calls
moto's Step Functions interpreter makes for the pipeline's ``aws-sdk`` tasks go that way too (the pipeline role's
actions are checked against its policy statically, tests/unit/test_state_machine.py).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# SageMaker: the request field that names each action's resource, and its resource type in the ARN
_SAGEMAKER_RESOURCES = {
    "CreateTrainingJob": ("training-job", "TrainingJobName"),
    "DescribeTrainingJob": ("training-job", "TrainingJobName"),
    "StopTrainingJob": ("training-job", "TrainingJobName"),
    "CreateTransformJob": ("transform-job", "TransformJobName"),
    "DescribeTransformJob": ("transform-job", "TransformJobName"),
    "StopTransformJob": ("transform-job", "TransformJobName"),
    "CreateModel": ("model", "ModelName"),
    "DescribeModel": ("model", "ModelName"),
    "DeleteModel": ("model", "ModelName"),
    "CreateEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "DescribeEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "DeleteEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "CreateEndpoint": ("endpoint", "EndpointName"),
    "UpdateEndpoint": ("endpoint", "EndpointName"),
    "DescribeEndpoint": ("endpoint", "EndpointName"),
    "DeleteEndpoint": ("endpoint", "EndpointName"),
    "UpdateEndpointWeightsAndCapacities": ("endpoint", "EndpointName"),
    "InvokeEndpoint": ("endpoint", "EndpointName"),
    "CreateModelPackageGroup": ("model-package-group", "ModelPackageGroupName"),
    "DescribeModelPackageGroup": ("model-package-group", "ModelPackageGroupName"),
    "CreateModelPackage": ("model-package-group", "ModelPackageGroupName"),
    "DescribeModelPackage": ("model-package", "ModelPackageName"),
    "UpdateModelPackage": ("model-package", "ModelPackageArn"),
}
# The role a create request hands to SageMaker, which the caller must be allowed to pass
_PASSED_ROLES = {"CreateTrainingJob": "RoleArn", "CreateModel": "ExecutionRoleArn"}
_SCALABLE_TARGET_ACTIONS = {
    "RegisterScalableTarget",
    "DeregisterScalableTarget",
    "PutScalingPolicy",
    "DeleteScalingPolicy",
}


@dataclass(frozen=True)
class Permission:
    """One action on one resource, with the condition keys the request carries."""

    action: str
    resource: str
    context: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.action} on resource: {self.resource}"


class Policy:
    """Identity-based policy documents, evaluated as IAM evaluates them."""

    def __init__(self, documents: list[dict]) -> None:
        self.statements = [
            statement
            for document in documents
            for statement in (
                document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
            )
        ]

    def allows(self, permission: Permission) -> bool:
        matching = [statement for statement in self.statements if _applies(statement, permission)]
        if any(statement["Effect"] == "Deny" for statement in matching):
            return False
        return any(statement["Effect"] == "Allow" for statement in matching)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(expression, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _applies(statement: dict, permission: Permission) -> bool:
    if "NotAction" in statement:
        if any(_wildcard(a, permission.action, False) for a in _as_list(statement["NotAction"])):
            return False
    elif not any(_wildcard(a, permission.action, False) for a in _as_list(statement["Action"])):
        return False
    if "NotResource" in statement:
        if any(_wildcard(r, permission.resource) for r in _as_list(statement["NotResource"])):
            return False
    elif not any(_wildcard(r, permission.resource) for r in _as_list(statement.get("Resource", "*"))):
        return False
    return all(
        condition_holds(operator, key, _as_list(expected), permission.context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def condition_holds(operator: str, key: str, expected: list, context: Mapping[str, str | tuple[str, ...]]) -> bool:
    """One condition operator on one key, as IAM evaluates it (trust policies use it too:
    ``offline_stack/aws_rules/sts.py``)."""
    if operator == "Null":  # "true": the key must be absent; "false": present
        return (key not in context) == (str(expected[0]).lower() == "true")
    qualifier, _, operator = operator.rpartition(":")
    if qualifier:
        if qualifier not in ("ForAllValues", "ForAnyValue"):
            raise ValueError(f"set operator {qualifier} is not evaluated offline; add it to aws_rules.iam")
        values = context.get(key, ())
        members = [values] if isinstance(values, str) else list(values)
        each = [condition_holds(operator, key, expected, {key: member}) for member in members]
        return all(each) if qualifier == "ForAllValues" else any(each)
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if key not in context:
        return if_exists or operator.startswith(("StringNot", "ArnNot"))
    actual = str(context[key])
    tests = {
        "StringEquals": lambda: actual in [str(e) for e in expected],
        "StringNotEquals": lambda: actual not in [str(e) for e in expected],
        "StringLike": lambda: any(_wildcard(str(e), actual) for e in expected),
        "StringNotLike": lambda: not any(_wildcard(str(e), actual) for e in expected),
        "ArnEquals": lambda: actual in [str(e) for e in expected],
        "ArnLike": lambda: any(_wildcard(str(e), actual) for e in expected),
        "ArnNotEquals": lambda: actual not in [str(e) for e in expected],
        "ArnNotLike": lambda: not any(_wildcard(str(e), actual) for e in expected),
        "Bool": lambda: actual.lower() in [str(e).lower() for e in expected],
    }
    if operator not in tests:
        raise ValueError(f"condition operator {operator} is not evaluated offline; add it to aws_rules.iam")
    return tests[operator]()


@dataclass
class Role:
    """A template role, with the session credentials its holders sign with offline."""

    logical_id: str
    arn: str
    policy: Policy
    access_key_id: str
    secret_access_key: str
    session_token: str | None  # None: the state machine's (its interpreter signs without one)
    boundary: Policy | None = None  # the role's permissions boundary, when it has one

    def allows(self, permission: Permission) -> bool:
        """Identity policy and boundary both allow (a boundary grants nothing by itself)."""
        return self.policy.allows(permission) and (self.boundary is None or self.boundary.allows(permission))

    @property
    def session_arn(self) -> str:
        account = self.arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.arn.rsplit('/', 1)[-1]}/offline"

    def environment(self) -> dict[str, str]:
        """What Lambda puts in a function's environment: its role's session credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            **({"AWS_SESSION_TOKEN": self.session_token} if self.session_token else {}),
        }

    def session(self, region: str):
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            region_name=region,
        )


# A state machine's tasks call AWS as the state machine's role. Source: Step Functions API reference,
# CreateStateMachine, ``roleArn``: "The Amazon Resource Name (ARN) of the IAM role to use for this state machine."
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html). Offline, moto's
# interpreter signs every task's request with this fixed key (moto.stepfunctions.parser: ``boto_client_for``),
# so the control plane holds requests signed with it to the state machine's role.
STATE_MACHINE_INTERPRETER_KEY = ("ak", "sk")

BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)


class AccessDenied(Exception):
    def __init__(self, role: Role | None, permission: Permission | None, reason: str) -> None:
        super().__init__(reason)
        self.role, self.permission = role, permission


class Roles:
    """The template's roles by access key and by ARN; ``authorize`` decides a signed request."""

    def __init__(self, roles: list[Role]) -> None:
        self.by_key = {role.access_key_id: role for role in roles}
        self.by_arn = {role.arn: role for role in roles}
        self.by_logical_id = {role.logical_id: role for role in roles}

    @classmethod
    def from_template(
        cls, template, overrides: Mapping[str, dict] | None = None, boundary: Policy | None = None
    ) -> Roles:
        """Every ``AWS::IAM::Role`` with inline policies, its documents resolved with offline names.

        ``overrides`` replaces a role's policy documents (by logical id): how a test removes one statement.
        ``boundary``: the permissions boundary each role carries (the template's ``PermissionsBoundaryArn``)."""
        roles = []
        state_machine_roles = {
            resource["Properties"]["Role"]["Fn::GetAtt"][0]
            for resource in template.resources.values()
            if resource["Type"] in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
            and isinstance(resource["Properties"].get("Role"), dict)
        }
        for logical_id, resource in template.resources.items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            documents = [template.resolve(p["PolicyDocument"]) for p in resource["Properties"].get("Policies", [])]
            if overrides and logical_id in overrides:
                documents = [template.resolve(overrides[logical_id])]
            digest = hashlib.sha256(logical_id.encode()).hexdigest()[:12].upper()
            key, secret, token = f"ASIAOFFLINE{digest}"[:20], secrets.token_urlsafe(30), secrets.token_urlsafe(60)
            if logical_id in state_machine_roles:  # moto's interpreter signs every task with its own fixed key
                key, secret, token = (*STATE_MACHINE_INTERPRETER_KEY, None)
            roles.append(Role(logical_id, template.arn(logical_id), Policy(documents), key, secret, token, boundary))
        return cls(roles)

    @staticmethod
    def principal(name: str, arn: str, documents: list[dict], boundary: Policy | None = None) -> Role:
        """A role of the account that is not the template's (a pipeline role), with fresh session credentials."""
        digest = hashlib.sha256(arn.encode()).hexdigest()[:12].upper()
        return Role(
            name,
            arn,
            Policy(documents),
            access_key_id=f"ASIAOFFLINE{digest}"[:20],
            secret_access_key=secrets.token_urlsafe(30),
            session_token=secrets.token_urlsafe(60),
            boundary=boundary,
        )

    def for_function(self, template, logical_id: str) -> Role | None:
        """The role a template function runs as (its ``Role: !GetAtt <Role>.Arn``)."""
        role = template.function_properties(logical_id).get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            return self.by_logical_id.get(role["Fn::GetAtt"][0])
        return None

    def signer(self, headers: Mapping[str, str]) -> Role | None:
        """The role whose key signed the request, or None (the operator, or an unsigned request)."""
        key = credential_scope(headers).split("/")[0]
        return self.by_key.get(key)

    def authorize(self, method: str, path: str, headers: Mapping[str, str], body: bytes, permissions) -> Role | None:
        """Check a request: the role that signed it (None for the operator), or ``AccessDenied``.

        ``permissions``: what the request needs, as ``Permission``s (computed only for a role's request)."""
        role = self.signer(headers)
        if role is None:
            return None
        if not signature_matches(role, method, path, headers, body):
            raise AccessDenied(role, None, BAD_SIGNATURE)
        for permission in permissions():
            if not role.allows(permission):
                # AWS's access-denied context names the policy type that lacks the Allow
                kind = "identity-based policy" if not role.policy.allows(permission) else "permissions boundary"
                raise AccessDenied(
                    role,
                    permission,
                    f"User: {role.session_arn} is not authorized to perform: {permission.action} on resource: "
                    f"{permission.resource} because no {kind} allows the {permission.action} action",
                )
        return role


def invoke_endpoint_authorizer(roles: Roles, region: str = "us-east-1", account: str = "123456789012"):
    """The endpoint server's check of ``sagemaker:InvokeEndpoint`` (None: allowed; else AWS's message)."""

    def authorize(request, endpoint_name: str) -> str | None:
        arn = f"arn:aws:sagemaker:{region}:{account}:endpoint/{endpoint_name.lower()}"
        path = request.full_path.rstrip("?")
        try:
            roles.authorize(
                request.method,
                path,
                dict(request.headers),
                request.get_data(),
                lambda: [Permission("sagemaker:InvokeEndpoint", arn)],
            )
        except AccessDenied as denied:
            return str(denied)
        return None

    return authorize


def authorization_header(headers: Mapping[str, str]) -> str:
    return headers.get("Authorization") or headers.get("authorization") or ""


def credential_scope(headers: Mapping[str, str]) -> str:
    return authorization_header(headers).partition("Credential=")[2].partition(",")[0]


def signature_matches(signer, method: str, path: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Recompute the SigV4 signature with the signer's secret (a ``Role``, or anything with its three credential
    attributes), from the headers the client signed."""
    authorization = authorization_header(headers)
    scope = credential_scope(headers).split("/")
    if len(scope) < 4:
        return False
    region, service = scope[2], scope[3]
    signed = signed_headers(headers)
    if "host" not in signed:  # AWS refuses it before computing anything (``HOST_NOT_SIGNED``)
        return False
    chosen = {name: value for name, value in headers.items() if name.lower() in signed}
    request = AWSRequest(method=method, url=path, data=body, headers=chosen)
    timestamp = next((value for name, value in headers.items() if name.lower() == "x-amz-date"), "")
    request.context["timestamp"] = timestamp
    credentials = Credentials(signer.access_key_id, signer.secret_access_key, signer.session_token)
    auth = (S3SigV4Auth if service == "s3" else SigV4Auth)(credentials, service, region)
    try:
        signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    except (AttributeError, KeyError, TypeError, ValueError, UnicodeError):  # a header the signer cannot read
        return False
    provided = authorization.partition("Signature=")[2].partition(",")[0]
    # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a mismatch)
    return secrets.compare_digest(signature.encode(), provided.encode("utf-8", "surrogatepass"))


# What AWS answers when ``host`` is not among the signed headers (IncompleteSignatureException, as the AWS CLI shows
# it for a hand-made request; observed, not a documented sentence).
HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


def signed_headers(headers: Mapping[str, str]) -> list[str]:
    """The header names the ``Authorization`` header says were signed, lower-cased."""
    listed = authorization_header(headers).partition("SignedHeaders=")[2].partition(",")[0]
    return [name.strip().lower() for name in listed.split(";") if name.strip()]


def permissions_for(service: str, action: str, parameters: Mapping, region: str, account: str) -> list[Permission]:
    """What IAM checks for ``service:action`` with these request ``parameters`` (see the rules above)."""
    if service == "sagemaker":
        return _sagemaker(action, parameters, region, account)
    if service == "application-autoscaling" and action in _SCALABLE_TARGET_ACTIONS:
        return _scaling(action, parameters, region, account)
    if service == "monitoring":  # CloudWatch's signing name
        return _cloudwatch(action, parameters, region, account)
    if service == "lambda" and action == "Invoke":
        # Service Authorization Reference, "AWS Lambda": Invoke is ``lambda:InvokeFunction`` on the function's ARN,
        # qualified when the request names a version or alias (the qualified form is an inference from its
        # ``function`` resource's ARN pattern)
        arn = f"arn:aws:lambda:{region}:{account}:function:{parameters['FunctionName']}"
        qualifier = parameters.get("Qualifier")
        return [Permission("lambda:InvokeFunction", f"{arn}:{qualifier}" if qualifier else arn)]
    if service in _NAMED_RESOURCES:
        return [Permission(f"{service}:{action}", _named_resource(service, action, parameters, region, account))]
    return [Permission(f"{service}:{action}", "*")]


# Services whose actions are authorized on the resource the request names (Service Authorization Reference:
# "AWS CloudFormation" stack ``arn:${Partition}:cloudformation:${Region}:${Account}:stack/${StackName}/${Id}``;
# "AWS Step Functions" stateMachine ``...:states:${Region}:${Account}:stateMachine:${StateMachineName}`` and
# execution ``...:execution:${StateMachineName}:${ExecutionId}``; "Amazon CloudWatch Logs" log-group
# ``...:logs:${Region}:${Account}:log-group:${LogGroupName}``). A request that names none is checked on ``*``.
_NAMED_RESOURCES = {
    "cloudformation": ("StackName",),
    "states": ("executionArn", "stateMachineArn"),
    "logs": ("logGroupName",),
}


def _named_resource(service: str, action: str, parameters: Mapping, region: str, account: str) -> str:
    name = next((str(parameters[k]) for k in _NAMED_RESOURCES[service] if parameters.get(k)), "")
    if not name or name.startswith("arn:"):
        return name or "*"
    if service == "cloudformation":
        return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/offline"
    if parameters.get("logStreamName"):  # log-stream ``...:log-group:${LogGroupName}:log-stream:${LogStreamName}``
        return f"arn:aws:logs:{region}:{account}:log-group:{name}:log-stream:{parameters['logStreamName']}"
    return f"arn:aws:logs:{region}:{account}:log-group:{name}"


def _sagemaker(action: str, parameters: Mapping, region: str, account: str) -> list[Permission]:
    def arn(kind: str, name: str) -> str:
        return name if name.startswith("arn:") else f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"

    if action in ("AddTags", "ListTags"):
        return [Permission(f"sagemaker:{action}", str(parameters["ResourceArn"]))]
    if action not in _SAGEMAKER_RESOURCES:
        return [Permission(f"sagemaker:{action}", "*")]
    kind, name_field = _SAGEMAKER_RESOURCES[action]
    resource = arn(kind, str(parameters.get(name_field, "")))
    needed = [Permission(f"sagemaker:{action}", resource)]
    if action in ("CreateEndpoint", "UpdateEndpoint"):
        needed.append(Permission(f"sagemaker:{action}", arn("endpoint-config", str(parameters["EndpointConfigName"]))))
    if action.startswith("Create") and parameters.get("Tags"):
        needed.append(Permission("sagemaker:AddTags", resource))
    needed[0] = Permission(needed[0].action, needed[0].resource, sagemaker_request_keys(action, parameters))
    # The rollback alarms are read by the endpoint's execution role, not the caller: aws_rules/sagemaker.py
    if action in _PASSED_ROLES and parameters.get(_PASSED_ROLES[action]):
        passed = str(parameters[_PASSED_ROLES[action]])
        needed.append(Permission("iam:PassRole", passed, {"iam:PassedToService": "sagemaker.amazonaws.com"}))
    return needed


def sagemaker_request_keys(action: str, parameters: Mapping) -> dict:
    """The SageMaker condition keys a create request carries (the module's docstring quotes them)."""
    keys: dict = {}
    if action in ("CreateTrainingJob", "CreateModel"):
        keys["sagemaker:NetworkIsolation"] = str(bool(parameters.get("EnableNetworkIsolation", False))).lower()
    if action == "CreateTrainingJob":
        encrypted = bool(parameters.get("EnableInterContainerTrafficEncryption", False))
        keys["sagemaker:InterContainerTrafficEncryption"] = str(encrypted).lower()
        if parameters.get("ResourceConfig", {}).get("InstanceType"):
            keys["sagemaker:InstanceTypes"] = (str(parameters["ResourceConfig"]["InstanceType"]),)
    if action == "CreateEndpointConfig":
        types = tuple(str(v["InstanceType"]) for v in parameters.get("ProductionVariants", []) if "InstanceType" in v)
        if types:
            keys["sagemaker:InstanceTypes"] = types
    return keys


def _scaling(action: str, parameters: Mapping, region: str, account: str) -> list[Permission]:
    """The scalable target, and what Application Auto Scaling asks of the caller for a SageMaker variant: to
    describe and resize the endpoint when registering it, to manage target tracking's alarms for a policy
    (Application Auto Scaling user guide, "Identity-based policy examples", SageMaker endpoint variants). The
    request's namespace and dimension are its condition keys ``application-autoscaling:service-namespace`` and
    ``application-autoscaling:scalable-dimension`` (Service Authorization Reference, Application Auto Scaling)."""
    resource_id = str(parameters.get("ResourceId", ""))
    target = hashlib.sha256(resource_id.encode()).hexdigest()[:32]
    context = {
        "application-autoscaling:service-namespace": str(parameters.get("ServiceNamespace", "")),
        "application-autoscaling:scalable-dimension": str(parameters.get("ScalableDimension", "")),
    }
    needed = [
        Permission(
            f"application-autoscaling:{action}",
            f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/{target}",
            context,
        )
    ]
    if parameters.get("ServiceNamespace") != "sagemaker" or not resource_id.startswith("endpoint/"):
        return needed
    endpoint = f"arn:aws:sagemaker:{region}:{account}:endpoint/{resource_id.split('/')[1].lower()}"
    if action == "RegisterScalableTarget":
        needed += [
            Permission(f"sagemaker:{a}", endpoint) for a in ("DescribeEndpoint", "UpdateEndpointWeightsAndCapacities")
        ]
    alarms = f"arn:aws:cloudwatch:{region}:{account}:alarm:TargetTracking-{resource_id}-AlarmHigh-offline"
    if action == "PutScalingPolicy":
        needed += [Permission(f"cloudwatch:{a}", alarms) for a in ("PutMetricAlarm", "DescribeAlarms", "DeleteAlarms")]
    if action == "DeleteScalingPolicy":
        # "You also need to make sure that end users have permissions for the target service and CloudWatch": a
        # target tracking policy's alarms are Application Auto Scaling's, deleted with it (the page's table pairs
        # DeleteScalingPolicy with cloudwatch:DescribeAlarms and DeleteAlarms: not re-quoted here, an inference)
        needed += [Permission(f"cloudwatch:{a}", alarms) for a in ("DescribeAlarms", "DeleteAlarms")]
    return needed


def _cloudwatch(action: str, parameters: Mapping, region: str, account: str) -> list[Permission]:
    def alarm(name: str) -> str:
        return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"

    if action == "PutMetricAlarm":
        return [Permission("cloudwatch:PutMetricAlarm", alarm(str(parameters["AlarmName"])))]
    if action in ("DeleteAlarms", "DescribeAlarms") and parameters.get("AlarmNames"):
        return [Permission(f"cloudwatch:{action}", alarm(str(name))) for name in _as_list(parameters["AlarmNames"])]
    if action == "PutMetricData":
        return [Permission("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": str(parameters.get("Namespace"))})]
    return [Permission(f"cloudwatch:{action}", "*")]


def s3_permission(action: str, resource: str, uri: str, headers: Mapping[str, str]) -> Permission:
    """The S3 permission moto's S3 asks about, with the condition keys the request carries."""
    context: dict[str, str] = {}
    query = parse_qs(urlsplit(uri).query)
    if "prefix" in query:
        context["s3:prefix"] = query["prefix"][0]
    for name, value in headers.items():
        if name.lower() == "if-none-match":
            context["s3:if-none-match"] = value
    return Permission(f"s3:{action}", resource, context)


# The keys of this thread's DeleteObjects request its principal may not delete (moto serves a request in one thread)
_refused_keys = threading.local()


def install_in_moto(roles_for_this_request) -> None:
    """Have moto ask ``Roles.authorize`` about every request (``roles_for_this_request()``: the serving control
    plane's ``Roles``, or None to keep moto's own behaviour). Once per process."""
    import json

    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError, JsonRESTError, SignatureDoesNotMatchError

    class JsonAccessDenied(JsonRESTError):
        code = 400  # what JSON-protocol services answer an AccessDeniedException with

    from moto.s3.exceptions import S3ClientError, S3SignatureDoesNotMatchError

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action
    if getattr(original, "offline_iam", False):
        return

    def authorize(self, iam_request_cls: type, resource: str = "*") -> None:
        roles = roles_for_this_request()
        if roles is None:
            return original(self, iam_request_cls, resource)
        is_s3 = iam_request_cls.__name__ == "S3IAMRequest"
        query = urlsplit(self.uri).query
        path = self.raw_path + (f"?{query}" if query else "")

        def permissions() -> list[Permission]:
            if is_s3:
                return [s3_permission(self.data["Action"], resource, self.uri, self.headers)]
            scope = credential_scope(self.headers).split("/")
            try:
                parameters = (
                    json.loads(self.raw_body or b"{}") if "json" in self.headers.get("Content-Type", "") else {}
                )
            except ValueError:
                parameters = {}
            parameters = parameters or self._get_params()
            return permissions_for(scope[3], self._get_action(), parameters, scope[2], self.current_account)

        # a form-encoded body as sent (the control plane keeps it: moto parses it away)
        body = self.normalized_request.environ.get("offline.raw_form_body", self.raw_body) or b""
        _refused_keys.arns = frozenset()
        if is_s3 and self.method == "POST" and "delete" in parse_qs(query, keep_blank_values=True):
            # DeleteObjects: S3 judges each key it names and answers per key (aws_rules/s3.py); moto asks
            # FakeBucket.get_permission about each, answered below from this request's refusals
            try:
                role = roles.authorize(self.method, path, self.headers, body, list)
            except AccessDenied:
                raise S3SignatureDoesNotMatchError() from None
            _refused_keys.arns = _refused_deletes(self, resource, role)
            return None
        try:
            role = roles.authorize(self.method, path, self.headers, body, permissions)
            if is_s3:  # the bucket's policy holds every principal, the operator too (aws_rules.s3)
                needed = permissions()[0]
                _bucket_policy(self, resource, role, needed)
                _object_key(self, resource, role, needed)  # and the object's KMS key (aws_rules.kms)
        except AccessDenied as denied:
            if is_s3:  # S3 names the principal, action and missing policy for a same-account request (docstring)
                if denied.permission is None:
                    raise S3SignatureDoesNotMatchError() from None
                raise S3ClientError("AccessDenied", str(denied)) from None
            json_protocol = "json" in self.headers.get("Content-Type", "")
            if denied.permission is None:
                if json_protocol:  # JSON-protocol services name it so (moto's error renders as code "403")
                    raise JsonAccessDenied("InvalidSignatureException", BAD_SIGNATURE) from None
                raise SignatureDoesNotMatchError() from None
            if json_protocol:
                raise JsonAccessDenied("AccessDeniedException", str(denied)) from None
            raise AccessDeniedError(user_arn=denied.role.session_arn, action=str(denied.permission)) from None

    def _bucket_and_principal(response, resource: str, role: Role | None):
        """moto's bucket ``resource`` names (None if there is none), and the caller as ``aws:PrincipalArn`` names it
        (the operator signs as the account's root)."""
        from moto.s3.models import s3_backends

        from offline_stack.aws_rules.s3 import bucket_of

        account = response.current_account
        bucket = s3_backends[account]["aws"].buckets.get(bucket_of(resource))
        return bucket, role.arn if role else f"arn:aws:iam::{account}:root"

    def _bucket_policy(response, resource: str, role: Role | None, permission: Permission) -> None:
        from offline_stack.aws_rules.s3 import explicit_deny

        bucket, principal = _bucket_and_principal(response, resource, role)
        if bucket is not None and (refusal := explicit_deny(bucket.policy, permission, principal)):
            raise AccessDenied(role, permission, refusal)

    def _object_key(response, resource: str, role: Role | None, permission: Permission) -> None:
        """KMS's decision on the key S3 would use for this object request (its own for a read, the request's or the
        bucket's default for a write), held by that key's policy in the offline KMS."""
        from moto.kms.models import kms_backends

        from offline_stack.aws_rules import kms

        action = kms.needs(permission.action, response.method)
        key_name = resource.split(":::", 1)[-1].partition("/")[2]
        bucket, principal = _bucket_and_principal(response, resource, role)
        if action is None or bucket is None or not key_name:
            return
        key_id = None
        if action == "kms:Decrypt":
            stored = bucket.keys.get(key_name)
            key_id = stored.kms_key_id if stored is not None and stored.encryption == "aws:kms" else None
        else:
            default = (bucket.encryption or {}).get("Rule", {}).get("ApplyServerSideEncryptionByDefault", {})
            requested = response.headers.get("x-amz-server-side-encryption-aws-kms-key-id")
            if response.headers.get("x-amz-server-side-encryption", default.get("SSEAlgorithm")) == "aws:kms":
                key_id = requested or default.get("KMSMasterKeyID")
        if not key_id:
            return
        region = key_id.split(":")[3] if key_id.startswith("arn:") else response.region
        key = kms_backends[response.current_account][region].keys.get(key_id.rsplit("/", 1)[-1])
        if key is None:  # S3 refuses a write with a key that does not exist; nothing offline makes one
            return
        identity, boundary = (role.policy, role.boundary) if role else (None, None)
        if refused := kms.refusal(key.policy, key.arn, action, principal, identity, boundary):
            raise AccessDenied(role, Permission(action, key.arn), refused)

    def _refused_deletes(response, resource: str, role: Role | None) -> frozenset[str]:
        """The object ARNs of a DeleteObjects request that its principal may not delete: ``s3:DeleteObject``, or
        ``s3:DeleteObjectVersion`` for a key named with its version, by the role's policies and the bucket's."""
        import xmltodict

        from offline_stack.aws_rules.s3 import bucket_of, explicit_deny

        objects = xmltodict.parse(response.body or b"<Delete/>").get("Delete", {}).get("Object", [])
        bucket_name = bucket_of(resource)
        bucket, principal = _bucket_and_principal(response, resource, role)
        refused = set()
        for item in objects if isinstance(objects, list) else [objects]:
            arn = f"arn:aws:s3:::{bucket_name}/{item['Key']}"
            permission = Permission("s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject", arn)
            if (role is not None and not role.allows(permission)) or (
                bucket is not None and explicit_deny(bucket.policy, permission, principal)
            ):
                refused.add(arn)
        return frozenset(refused)

    authorize.offline_iam = True
    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize

    # moto judges object requests by the bucket policy too, but without its conditions (the TLS-only Deny and a
    # Deny unless If-None-Match refuse everything): while roles are enforced, the check above is the only one.
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    moto_bucket_permission = FakeBucket.get_permission

    def get_permission(bucket, action: str, resource: str):
        if roles_for_this_request() is not None:
            refused = action == "s3:DeleteObject" and resource in getattr(_refused_keys, "arns", ())
            return PermissionResult.DENIED if refused else PermissionResult.NEUTRAL
        return moto_bucket_permission(bucket, action, resource)

    FakeBucket.get_permission = get_permission
