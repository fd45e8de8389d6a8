"""KMS key policies as the offline stack enforces them on S3's objects: an object encrypted with the artifacts key is
read or written only by a principal the key's policy lets use it, through S3.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **The key policy decides, for a principal of the key's own account.** "When a user sends a GET request, Amazon S3
  checks if the AWS Identity and Access Management (IAM) user or role that sent the request is authorized to decrypt
  the object's key. If the IAM user or role and key belong to the same AWS account, then decrypt permissions must be
  granted on the key policy" (AWS re:Post Knowledge Center, "Do I need to specify the AWS KMS key when I download a
  KMS-encrypted object from Amazon S3?", https://repost.aws/knowledge-center/decrypt-kms-encrypted-objects-s3).
  "When the IAM user or role and KMS key are in the same account, you can use IAM policies to control access to the
  key. However, you must modify the key policy to explicitly turn on IAM policies" (same page): a statement naming the
  account (``arn:aws:iam::<account>:root``) lets the principal's own IAM policy grant the action; any other statement
  grants it directly.
- **A write needs kms:GenerateDataKey, a read kms:Decrypt.** "To use an AWS KMS key to encrypt a multipart upload,
  you must have kms:GenerateDataKey and kms:Decrypt permissions. The kms:GenerateDataKey permission allows you to
  initiate the upload" (re:Post Knowledge Center, https://repost.aws/knowledge-center/s3-large-file-encryption-kms-key);
  the read is the decrypt of the rule above. A HEAD reads no data and needs no key (an inference: S3 returns the
  object's metadata, which is not encrypted with the object's data key).
- **Through S3, from this account.** S3 calls KMS for the caller: the request carries ``kms:ViaService``
  ``s3.<region>.amazonaws.com`` and ``kms:CallerAccount`` the caller's account ("The kms:ViaService condition key
  limits use of a KMS key to requests from specified AWS services", AWS KMS developer guide, "kms:ViaService",
  https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service), and
  ``aws:PrincipalArn`` the role's ARN (``aws_rules/s3.py`` quotes it).
- **A role's permissions boundary limits its use of the key too.** "An entity's permissions boundary allows it to
  perform only the actions that are allowed by both its identity-based policies and its permissions boundaries"
  (IAM user guide, "Permissions boundaries for IAM entities",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html). That the boundary also limits
  what a key policy grants a role (to ``"*"`` narrowed by ``aws:PrincipalArn``) is an inference: the same guide's
  evaluation pages distinguish grants to a role from grants to its session, and this grant is to the role. So the
  boundary lets the stack's roles use the key (``policies/pipeline/permissions-boundary.json``), and the offline
  check requires it.

The refusal has IAM's same-account form, "User: ... is not authorized to perform: kms:Decrypt on resource: ...
because no resource-based policy allows the kms:Decrypt action"; that S3 hands KMS's words back in its 403
``AccessDenied`` is an inference from the form of S3's other refusals (``aws_rules/s3.py``).
Not enforced: grants, key state (disabled, pending deletion), multi-Region keys, encryption context.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from offline_stack.aws_rules.iam import Permission, Policy, _applies, _as_list

# What S3 asks KMS for, by the S3 action a request needs (moto's names: HEAD is GetObject, see ``needs``)
KMS_ACTION_FOR_S3 = {
    "s3:GetObject": "kms:Decrypt",
    "s3:GetObjectVersion": "kms:Decrypt",
    "s3:PutObject": "kms:GenerateDataKey",
}


def needs(s3_action: str, method: str) -> str | None:
    """The KMS action S3 calls for this request on an object encrypted with a KMS key; None when it calls none."""
    if method == "HEAD":
        return None
    return KMS_ACTION_FOR_S3.get(s3_action)


def _names(principal, principal_arn: str, account: str) -> str | None:
    """ "direct" when the statement's principal is the caller (or anyone), "account" when it is the caller's account
    (IAM decides then), None otherwise."""
    if principal == "*":
        return "direct"
    names = _as_list(principal.get("AWS", [])) if isinstance(principal, Mapping) else []
    if "*" in names or principal_arn in names:
        return "direct"
    if f"arn:aws:iam::{account}:root" in names or account in names:
        return "account"
    return None


def refusal(
    key_policy: str | dict,
    key_arn: str,
    action: str,
    principal_arn: str,
    identity: Policy | None = None,
    boundary: Policy | None = None,
) -> str | None:
    """KMS's refusal of ``action`` on ``key_arn`` to ``principal_arn`` calling through S3, or None when allowed.

    ``identity``: the principal's IAM policies (None: the account's root user, whom IAM does not limit);
    ``boundary``: its permissions boundary."""
    document = json.loads(key_policy) if isinstance(key_policy, str) else key_policy
    account, region = key_arn.split(":")[4], key_arn.split(":")[3]
    context = {
        "aws:PrincipalArn": principal_arn,
        "kms:CallerAccount": account,
        "kms:ViaService": f"s3.{region}.amazonaws.com",
    }
    permission = Permission(action, key_arn, context)
    allowed = False
    for statement in _as_list(document.get("Statement", [])):
        kind = _names(statement.get("Principal"), principal_arn, account)
        if kind is None or not _applies(statement, permission):
            continue
        if statement.get("Effect") == "Deny":
            return _message(principal_arn, action, key_arn, "with an explicit deny in a resource-based policy")
        allowed = allowed or kind == "direct" or identity is None or identity.allows(permission)
    if allowed and (boundary is None or boundary.allows(permission)):
        return None
    reason = "no permissions boundary allows" if allowed else "no resource-based policy allows"
    return _message(principal_arn, action, key_arn, f"because {reason} the {action} action")


def _message(principal_arn: str, action: str, key_arn: str, context: str) -> str:
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {key_arn} {context}"
