"""S3's bucket policies as the offline stack enforces them: the artifacts bucket's Deny statements hold every
request, the operator's (an administrator's) included, as AWS holds them.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **An explicit deny in a bucket policy refuses any principal.** "An *explicit deny* occurs when a policy contains a
  ``Deny`` statement for the specific AWS action" (S3 user guide, "Troubleshoot access denied (403 Forbidden) errors
  in Amazon S3", https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshoot-403-errors.html), and "An
  explicit deny in any of these policies overrides the allow" (IAM user guide, "Policy evaluation logic",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html): an administrator's
  ``s3:*`` does not pass it. The refusal has the form of S3's same-account 403, "User: user-arn is not authorized to
  perform: action on "resource-arn" because context" (same troubleshooting page); the context's wording, "with an
  explicit deny in a resource-based policy", is IAM's phrasing for explicit denies, not a sentence of S3's page (an
  inference).
- **Conditional writes can be required.** "You can use the condition keys ``s3:if-match`` or ``s3:if-none-match`` as
  the optional ``Condition`` element or ``Condition`` block to specify when a policy is in effect" (S3 user guide,
  "Enforce conditional writes on Amazon S3 buckets",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html). The key carries the
  request's ``If-None-Match`` header (``aws_rules.iam.s3_permission``).
- **Who asks: ``aws:PrincipalArn``.** "For IAM roles, the request context returns the ARN of the role, not the ARN
  of the user that assumed the role" (IAM user guide, "AWS global condition context keys",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html): a role's session is
  judged by its role's ARN (with its path), so the feature-cache Deny names the training role and the captured
  requests' Deny names ``CapturedRequestReaderArns``.
- **Principals.** A statement applies to ``"*"``, ``{"AWS": "*"}`` or the caller's ARN. The operator signs with the
  offline stack's dummy credentials: it is the account's root here (``arn:aws:iam::<account>:root``).

Inference, not a documented rule: ``aws:SecureTransport`` is ``true`` for every offline request. boto3 speaks
HTTPS to S3; the loopback servers speak HTTP only because they hold no certificate S3's clients would trust, so the
TLS-only Deny is proved by reading the template (tests/unit/test_policies.py), not by a refused request.
- **A multi-object delete is judged key by key.** "For each key, Amazon S3 performs a delete action and returns the
  result of that delete, success, or failure, in the response" (S3 API reference, DeleteObjects,
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html): each key is ``s3:DeleteObject`` (or
  ``s3:DeleteObjectVersion`` when named with its version) on that object, and a refused key is an ``AccessDenied``
  entry of the answer's ``Errors`` while the others go (``aws_rules.iam.install_in_moto``).

Not enforced: Allow statements of a bucket policy (the project's grant nothing), ACLs, access points, Object Lock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from offline_stack.aws_rules.iam import Permission, _applies, _as_list


def bucket_of(resource: str) -> str:
    """``arn:aws:s3:::bucket/key`` -> ``bucket``."""
    return resource.split(":::", 1)[-1].split("/", 1)[0]


def _names(principal, principal_arn: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(p in ("*", principal_arn) for p in _as_list(principal.get("AWS", [])))
    return False


def explicit_deny(policy: str | bytes | dict | None, permission: Permission, principal_arn: str) -> str | None:
    """S3's refusal when a Deny statement of the bucket's ``policy`` applies to this request; None otherwise."""
    if not policy:
        return None
    document = json.loads(policy) if isinstance(policy, str | bytes) else policy
    context = {"aws:SecureTransport": "true", "aws:PrincipalArn": principal_arn, **permission.context}
    request = Permission(permission.action, permission.resource, context)
    for statement in _as_list(document.get("Statement", [])):
        denies = statement.get("Effect") == "Deny" and _names(statement.get("Principal"), principal_arn)
        if denies and _applies(statement, request):
            return (
                f"User: {principal_arn} is not authorized to perform: {permission.action} on resource: "
                f'"{permission.resource}" with an explicit deny in a resource-based policy'
            )
    return None
