"""GitHub Actions as the release pipeline meets it: the OIDC token a job is given, what an artifact carries from one
job to the next, and how long a job may run. The rehearsal (``offline_stack/pipeline_rehearsal.py``) reads the
workflow file through these rules, so a job GitHub would refuse or starve fails offline with GitHub's reason.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **A job's OIDC subject.** "The subject claim includes the environment name when the job references an
  environment" (``repo:ORG-NAME/REPO-NAME:environment:ENVIRONMENT-NAME``); "The subject claim includes the branch
  name of the workflow, but only if the job doesn't reference an environment, and if the workflow is not triggered
  by a pull request event" (``repo:ORG-NAME/REPO-NAME:ref:refs/heads/BRANCH-NAME``); a pull request's is
  ``repo:ORG-NAME/REPO-NAME:pull_request``; "Any ``:`` within the metadata values will be replaced with ``%3A`` in
  the subject claim." Source: https://docs.github.com/en/actions/reference/security/oidc ("Example subject
  claims").
- **A token needs ``id-token: write``.** "The job or workflow run requires a ``permissions`` setting with
  ``id-token: write``" ("Adding permissions settings"); without it ``configure-aws-credentials`` has no token to
  exchange. Source: https://docs.github.com/en/actions/concepts/security/openid-connect
- **The audience AWS sees** is ``sts.amazonaws.com``: the default of ``configure-aws-credentials``' ``audience``
  input (its README's inputs table; no sentence, the table's default column), and the client ID the OIDC provider
  lists. Source: https://github.com/aws-actions/configure-aws-credentials
- **A ``delete`` event runs on the default branch.** For ``delete``, ``GITHUB_REF`` is the "Default branch" (and
  ``GITHUB_SHA`` its "Last commit"), so its jobs' subject names the default branch, not the deleted one. Source:
  https://docs.github.com/en/actions/reference/workflows-and-actions/events-that-trigger-workflows#delete
- **Hidden files stay behind.** From ``actions/upload-artifact`` v4.4.0: "We will no longer include hidden files
  and folders by default in the upload-artifact action of this version ... Customers who need to continue to
  upload these files can use a new option, include-hidden-files". With ``if-no-files-found: error`` an upload of
  nothing fails the job ("No files were found with the provided path: ... No artifacts will be uploaded.", the
  action's own message; an inference from its source, ``src/shared/search.ts``/``upload-artifact.ts``). Source:
  https://github.com/actions/upload-artifact/releases/tag/v4.4.0
- **An approval waits at most 30 days.** "Jobs that reference an environment configured with required reviewers
  will wait for an approval before starting ... If a job is not approved within 30 days, it will automatically
  fail." And: "If you are on a GitHub Free, GitHub Pro, or GitHub Team plan, other deployment protection rules,
  such as a wait timer or required reviewers, are only available for public repositories." Source:
  https://docs.github.com/en/actions/managing-workflow-runs/reviewing-deployments
- **A job runs at most ``timeout-minutes``**: "The maximum number of minutes to let a job run before GitHub
  automatically cancels it. Default: 360". Source: https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax
  (``jobs.<job_id>.timeout-minutes``).
- **A job whose ``needs`` failed or was skipped is skipped**: "If a job fails or is skipped, all jobs that need it
  are skipped unless the jobs use a conditional expression that causes the job to continue." A job runs when its
  ``if:`` holds (``==``, ``!=``, ``&&``, ``||``, ``!``, ``startsWith``; string comparison ignores case). Source:
  https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax (``jobs.<job_id>.needs``,
  ``jobs.<job_id>.if``) and https://docs.github.com/en/actions/reference/workflows-and-actions/expressions
  ("GitHub ignores case when comparing strings").
- **Credentials last ``role-duration-seconds``**: 3600 unless set (the default column of the
  configure-aws-credentials README's inputs table), and STS refuses more than the role's maximum session
  (``sts.py``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

OIDC_ISSUER = "token.actions.githubusercontent.com"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
DEFAULT_JOB_TIMEOUT_MINUTES = 360
DEFAULT_ROLE_DURATION_SECONDS = 3600
APPROVAL_WAIT_DAYS = 30
NO_FILES_FOUND = "No files were found with the provided path: {path}. No artifacts will be uploaded."
# configure-aws-credentials' message when the job has no token to exchange (not a secret)
NO_ID_TOKEN = "Credentials could not be loaded: the job has no id-token: write permission, so it has no OIDC token"  # noqa: S105


@dataclass(frozen=True)
class Trigger:
    """What started the run: the event and the ref GitHub gives its jobs."""

    event: str  # push, pull_request, delete, workflow_dispatch
    ref: str  # refs/heads/...: the pushed branch; for delete, the deleted one (its jobs get the default branch)
    repository: str  # org/repo
    default_branch: str = "main"

    @property
    def job_ref(self) -> str:
        return f"refs/heads/{self.default_branch}" if self.event == "delete" else self.ref

    def context(self) -> dict[str, str]:
        """The ``github`` context an ``if:`` reads."""
        job_ref = self.job_ref
        context = {
            "github.event_name": self.event,
            "github.ref": job_ref,
            "github.ref_name": job_ref.removeprefix("refs/heads/"),
            "github.repository": self.repository,
        }
        if self.event == "delete":
            context |= {"github.event.ref": self.ref.removeprefix("refs/heads/"), "github.event.ref_type": "branch"}
        return context


def condition_holds(expression: str | bool | None, context: dict[str, str]) -> bool:
    """Evaluate a job's ``if:`` against the ``github`` context (the subset of GitHub's expression syntax the
    workflow uses; anything else is refused rather than guessed)."""
    if expression is None:
        return True
    if isinstance(expression, bool):
        return expression
    text = expression.strip().removeprefix("${{").removesuffix("}}").strip()
    parser = _ExpressionParser(text, context)
    value = parser.parse()
    return bool(value)


class _ExpressionParser:
    _TOKEN = re.compile(r"\s*(?:(\|\||&&|==|!=|!|\(|\)|,)|'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_.-]*))")

    def __init__(self, text: str, context: dict[str, str]) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = self._TOKEN.match(text, position)
            if not match or match.end() == position:
                raise ValueError(f"the rehearsal cannot read the expression {text!r} at {text[position:]!r}")
            operator, string, name = match.groups()
            if operator:
                self.tokens.append(("op", operator))
            elif string is not None:
                self.tokens.append(("str", string.replace("''", "'")))
            elif name:
                self.tokens.append(("name", name))
            position = match.end()
            while position < len(text) and text[position].isspace():
                position += 1
        self.context, self.index = context, 0

    def parse(self):
        value = self._or()
        if self.index != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.index][1]!r} in a job's if:")
        return value

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, value: str) -> bool:
        if self._peek() == ("op", value):
            self.index += 1
            return True
        return False

    def _or(self):
        value = self._and()
        while self._take("||"):
            right = self._and()
            value = value or right
        return value

    def _and(self):
        value = self._comparison()
        while self._take("&&"):
            right = self._comparison()
            value = value and right
        return value

    def _comparison(self):
        value = self._unary()
        for operator in ("==", "!="):
            if self._take(operator):
                right = self._unary()
                equal = str(value).lower() == str(right).lower()
                return equal if operator == "==" else not equal
        return value

    def _unary(self):
        if self._take("!"):
            return not self._unary()
        if self._take("("):
            value = self._or()
            if not self._take(")"):
                raise ValueError("a job's if: misses a closing parenthesis")
            return value
        if self.index >= len(self.tokens):
            raise ValueError("a job's if: ends where a value is expected")
        kind, value = self.tokens[self.index]
        self.index += 1
        if kind == "str":
            return value
        if value == "startsWith" and self._take("("):
            text = self._or()
            self._take(",")
            prefix = self._or()
            self._take(")")
            return str(text).lower().startswith(str(prefix).lower())
        if value in ("true", "false"):
            return value == "true"
        if value in self.context:
            return self.context[value]
        if value.startswith("github."):
            return ""  # a context property the event does not carry is null, which compares as ''
        raise ValueError(f"the rehearsal does not evaluate {value!r} in a job's if:")


def _escaped(value: str) -> str:
    return value.replace(":", "%3A")


def oidc_claims(trigger: Trigger, environment: str | None, audience: str = DEFAULT_AUDIENCE) -> dict[str, str]:
    """The claims of the token GitHub issues a job (the ones a trust policy can test)."""
    repository = trigger.repository
    if environment:
        subject = f"repo:{repository}:environment:{_escaped(environment)}"
    elif trigger.event == "pull_request":
        subject = f"repo:{repository}:pull_request"
    else:
        subject = f"repo:{repository}:ref:{_escaped(trigger.job_ref)}"
    claims = {"sub": subject, "aud": audience, "iss": f"https://{OIDC_ISSUER}", "repository": repository}
    claims["ref"] = trigger.job_ref
    if environment:
        claims["environment"] = environment
    return claims


def is_hidden(path: PurePosixPath) -> bool:
    """A file upload-artifact v4.4+ leaves out: any part of its path starts with a dot."""
    return any(part.startswith(".") and part not in (".", "..") for part in path.parts)


def uploaded_files(
    patterns: str, existing: Iterable[str], include_hidden: bool, if_no_files_found: str = "warn"
) -> list[str]:
    """The files an ``actions/upload-artifact`` step would carry, from the workspace's ``existing`` files (paths
    relative to it). Raises ``ArtifactError`` with the action's message when ``if-no-files-found: error`` and
    nothing is left."""
    existing = sorted(existing)
    chosen: set[str] = set()
    lines = [line.strip() for line in patterns.splitlines() if line.strip()]
    for pattern in lines:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        matched = {name for name in existing if fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern + "/")}
        chosen = chosen - matched if negate else chosen | matched
    if not include_hidden:
        chosen = {name for name in chosen if not is_hidden(PurePosixPath(name))}
    if not chosen and if_no_files_found == "error":
        raise ArtifactError(NO_FILES_FOUND.format(path=", ".join(lines)))
    return sorted(chosen)


class ArtifactError(Exception):
    """An upload GitHub would fail."""
