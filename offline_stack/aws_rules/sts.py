"""STS as the release pipeline meets it: a GitHub job's OIDC token exchanged for a role's credentials.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **The trust policy decides.** AssumeRoleWithWebIdentity succeeds only when a statement of the role's trust
  policy allows ``sts:AssumeRoleWithWebIdentity`` to the token's provider (``Principal.Federated``) and every
  condition on the token's claims holds (``token.actions.githubusercontent.com:sub``, ``...:aud``); otherwise STS
  answers ``AccessDenied``, which configure-aws-credentials prints as "Could not assume role with OIDC: Not
  authorized to perform sts:AssumeRoleWithWebIdentity". Sources: IAM user guide, "Configuring a role for GitHub
  OIDC identity provider" (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html#idp_oidc_Create_GitHub);
  the message as the action prints it: aws-actions/configure-aws-credentials issues #318, #452 (observed text,
  not a documented sentence).
- **A session lasts at most the role's maximum.** "The value can range from 900 seconds (15 minutes) up to the
  maximum session duration setting for the role ... If you specify a value higher than this setting, the operation
  fails." and "By default, the value is set to 3600 seconds." Source: STS API reference,
  AssumeRoleWithWebIdentity, ``DurationSeconds``
  (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html). The refusal's text is
  STS's ``ValidationError`` for a too-long session (an inference from the AWS CLI's output; no documented sentence).
"""

from __future__ import annotations

from collections.abc import Mapping

from offline_stack.aws_rules.github import OIDC_ISSUER
from offline_stack.aws_rules.iam import _as_list, _wildcard, condition_holds

NOT_AUTHORIZED = "Could not assume role with OIDC: Not authorized to perform sts:AssumeRoleWithWebIdentity"
MIN_SESSION_SECONDS = 900
DEFAULT_SESSION_SECONDS = 3600


class StsRefusal(Exception):
    """What STS answers instead of credentials."""


def session_refusal(duration_seconds: int, max_session_seconds: int) -> str | None:
    """Why STS refuses a session of ``duration_seconds`` on a role whose maximum is ``max_session_seconds``."""
    if duration_seconds < MIN_SESSION_SECONDS or duration_seconds > max_session_seconds:
        return (
            f"The requested DurationSeconds ({duration_seconds}) exceeds the MaxSessionDuration set for this role "
            f"({max_session_seconds}) or is below {MIN_SESSION_SECONDS}."
        )
    return None


def assume_role_with_web_identity(
    trust_policy: Mapping, provider_arn: str, claims: Mapping[str, str], duration_seconds: int, max_session_seconds: int
) -> None:
    """Raise ``StsRefusal`` with STS's answer unless the role's trust lets this token in for this long."""
    context = {f"{OIDC_ISSUER}:{claim}": value for claim, value in claims.items()}
    statements = _as_list(trust_policy["Statement"])
    allowed = [statement for statement in statements if _lets_in(statement, provider_arn, context)]
    if not allowed or any(statement["Effect"] == "Deny" for statement in allowed):
        raise StsRefusal(f"{NOT_AUTHORIZED} (token subject {claims.get('sub')!r}, audience {claims.get('aud')!r})")
    refusal = session_refusal(duration_seconds, max_session_seconds)
    if refusal:
        raise StsRefusal(refusal)


def _lets_in(statement: Mapping, provider_arn: str, context: Mapping[str, str]) -> bool:
    federated = _as_list((statement.get("Principal") or {}).get("Federated", []))
    if provider_arn not in federated:
        return False
    if not any(_wildcard(action, "sts:AssumeRoleWithWebIdentity", False) for action in _as_list(statement["Action"])):
        return False
    return all(
        condition_holds(operator, key, _as_list(expected), context)
        for operator, keys in (statement.get("Condition") or {}).items()
        for key, expected in keys.items()
    )
