"""pipeline/bootstrap.yaml: one stack per identity set (testing, feature, prod), each role trusted by exactly the
GitHub subjects of its jobs, its policies the files in policies/pipeline/, linted clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from offline_stack.aws_rules import github, sts
from offline_stack.sam_template import PROJECT_ROOT, load_template
from ops.bootstrap import BOOTSTRAP_TEMPLATE, IDENTITY_SETS, offline_variables, parameters, render, scopes
from tests.support.policy_documents import as_policy_document

REPOSITORY = "octo-org/dog-breeds"
DOCUMENT = load_template(BOOTSTRAP_TEMPLATE)
RESOURCES = DOCUMENT["Resources"]
BIN = Path(sys.executable).parent
EMBEDDED = {
    "registry-reader": RESOURCES["RegistryReaderRole"]["Properties"]["Policies"][0]["PolicyDocument"],
    "permissions-boundary": RESOURCES["PermissionsBoundary"]["Properties"]["PolicyDocument"],
    "cloudformation-execution": RESOURCES["CloudFormationExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"],
    "pipeline-execution": RESOURCES["PipelineExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"],
}


def test_every_pipeline_policy_file_is_the_bootstraps_and_vice_versa():
    files = {
        path.stem: json.loads(path.read_text()) for path in (PROJECT_ROOT / "policies" / "pipeline").glob("*.json")
    }
    assert set(files) == set(EMBEDDED)
    for name, document in EMBEDDED.items():
        assert as_policy_document(document) == files[name], f"pipeline/bootstrap.yaml's copy of {name}.json differs"


def test_cfn_lint_reports_nothing():
    result = subprocess.run([BIN / "cfn-lint", BOOTSTRAP_TEMPLATE], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _admits(identity_set: str, subject_of: github.Trigger | None, environment: str | None = None, **claims) -> bool:
    identities = render(identity_set, REPOSITORY)
    token = github.oidc_claims(subject_of, environment) | claims if subject_of else claims
    try:
        sts.assume_role_with_web_identity(identities.trust_policy, identities.provider_arn, token, 3600, 14400)
    except sts.StsRefusal:
        return False
    return True


MAIN = github.Trigger("push", "refs/heads/main", REPOSITORY)
FEATURE = github.Trigger("push", "refs/heads/feature/x", REPOSITORY)
DELETED = github.Trigger("delete", "refs/heads/feature/x", REPOSITORY)
PULL = github.Trigger("pull_request", "refs/pull/7/merge", REPOSITORY)
OTHER_BRANCH = github.Trigger("push", "refs/heads/release", REPOSITORY)


@pytest.mark.parametrize(
    "identity_set, trigger, environment, admitted",
    [
        ("testing", MAIN, None, True),
        ("testing", FEATURE, None, False),
        ("testing", MAIN, "prod", False),
        ("testing", PULL, None, False),
        ("testing", OTHER_BRANCH, None, False),
        ("feature", FEATURE, None, True),
        ("feature", DELETED, None, True),  # a delete event's jobs run on main
        ("feature", MAIN, "prod", False),
        ("feature", PULL, None, False),
        ("feature", OTHER_BRANCH, None, False),
        ("prod", MAIN, "prod", True),
        ("prod", FEATURE, "prod", True),  # GitHub's environment branch rules decide this one (docs/pipeline.md)
        ("prod", MAIN, None, False),
        ("prod", FEATURE, None, False),
        ("prod", MAIN, "Prod-2", False),
        ("prod", PULL, None, False),
    ],
)
def test_each_role_trusts_exactly_its_jobs_subjects(identity_set, trigger, environment, admitted):
    assert _admits(identity_set, trigger, environment) is admitted


@pytest.mark.parametrize(
    "trigger, environment, admitted",
    [(MAIN, "prod", True), (FEATURE, "prod", True), (MAIN, None, False), (FEATURE, None, False), (PULL, None, False)],
)
def test_testings_registry_reader_trusts_only_the_prod_environments_jobs(trigger, environment, admitted):
    reader = render("testing", REPOSITORY).registry_reader
    token = github.oidc_claims(trigger, environment)
    try:
        sts.assume_role_with_web_identity(reader.trust_policy, reader.provider_arn, token, 1800, 3600)
    except sts.StsRefusal:
        assert not admitted
    else:
        assert admitted
    assert render("prod", REPOSITORY).registry_reader is None and render("feature", REPOSITORY).registry_reader is None


def test_testings_registry_reader_may_read_and_nothing_more():
    actions = {
        action
        for statement in render("testing", REPOSITORY).registry_reader.pipeline_policy["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert all(action.split(":")[1].startswith(("Describe", "List", "Get")) for action in actions), actions


@pytest.mark.parametrize("identity_set", IDENTITY_SETS)
def test_no_role_trusts_another_repository_or_audience(identity_set):
    environment = "prod" if identity_set == "prod" else None
    for repository in ("evil/dog-breeds", "octo-org/dog-breeds-fork", "octo-org/dog"):
        trigger = github.Trigger("push", "refs/heads/main", repository)
        assert not _admits(identity_set, trigger, environment), repository
    assert not _admits(identity_set, MAIN, environment, aud="https://github.com/octo-org")


def test_sessions_fit_the_longest_job_and_no_more_than_iam_allows():
    for identity_set in IDENTITY_SETS:
        identities = render(identity_set, REPOSITORY)
        assert 3600 <= identities.max_session_seconds <= 43200
        assert sts.session_refusal(identities.max_session_seconds, identities.max_session_seconds) is None
        assert sts.session_refusal(identities.max_session_seconds + 1, identities.max_session_seconds)
        assert sts.session_refusal(899, identities.max_session_seconds)


def test_each_set_is_scoped_to_its_own_stacks_and_reads_only_its_model_source():
    assert scopes("testing") == ("dog-breed-classifier-testing", "dog-breed-classifier-testing")
    assert scopes("prod") == ("dog-breed-classifier-prod", "dog-breed-classifier-prod")
    assert scopes("feature") == ("dog-breeds-", "dog-breed-classifier-testing")
    variables = offline_variables(REPOSITORY)
    for prefix in ("TESTING", "FEATURE", "PROD"):
        for name in ("REGION", "PIPELINE_EXECUTION_ROLE", "CLOUDFORMATION_EXECUTION_ROLE", "ARTIFACTS_BUCKET"):
            assert variables[f"{prefix}_{name}"], f"{prefix}_{name}"
        assert variables[f"{prefix}_PERMISSIONS_BOUNDARY"].startswith("arn:aws:iam::123456789012:policy/")


@pytest.mark.parametrize("repository", ["octo-org", "octo-org/", "/repo", "octo org/repo", "a/b/c", ""])
def test_a_malformed_repository_is_refused_with_what_is_accepted(repository):
    with pytest.raises(ValueError, match="expected ORG/REPO"):
        parameters("testing", repository)
