"""GitHub's rules as the rehearsal applies them (``offline_stack/aws_rules/github.py``): a job's OIDC subject, what
an artifact carries, and which jobs run for an event."""

from __future__ import annotations

import pytest

from offline_stack.aws_rules.github import (
    ArtifactError,
    Trigger,
    condition_holds,
    oidc_claims,
    uploaded_files,
)

REPOSITORY = "octo-org/octo-repo"


@pytest.mark.parametrize(
    "trigger, environment, subject",
    [
        (Trigger("push", "refs/heads/main", REPOSITORY), None, "repo:octo-org/octo-repo:ref:refs/heads/main"),
        (
            Trigger("push", "refs/heads/main", REPOSITORY),
            "Production",
            "repo:octo-org/octo-repo:environment:Production",
        ),
        (Trigger("pull_request", "refs/pull/1/merge", REPOSITORY), None, "repo:octo-org/octo-repo:pull_request"),
        (Trigger("pull_request", "refs/pull/1/merge", REPOSITORY), "prod", "repo:octo-org/octo-repo:environment:prod"),
        # a delete event runs on the default branch, whichever branch was deleted
        (Trigger("delete", "refs/heads/feature/x", REPOSITORY), None, "repo:octo-org/octo-repo:ref:refs/heads/main"),
        # ':' inside a value becomes %3A
        (
            Trigger("push", "refs/heads/main", REPOSITORY),
            "Production:V1",
            "repo:octo-org/octo-repo:environment:Production%3AV1",
        ),
    ],
)
def test_the_subject_follows_githubs_documented_forms(trigger, environment, subject):
    claims = oidc_claims(trigger, environment)
    assert claims["sub"] == subject
    assert claims["aud"] == "sts.amazonaws.com" and claims["iss"] == "https://token.actions.githubusercontent.com"


WORKSPACE = [".aws-sam/build/template.yaml", ".aws-sam/packaged-testing.yaml", ".promotion/model.tar.gz", "report.md"]


def test_hidden_files_stay_behind_unless_asked_for():
    assert uploaded_files(".promotion/", WORKSPACE, include_hidden=False) == []
    assert uploaded_files(".promotion/", WORKSPACE, include_hidden=True) == [".promotion/model.tar.gz"]
    assert uploaded_files(".aws-sam/packaged-*.yaml", WORKSPACE, include_hidden=True) == [
        ".aws-sam/packaged-testing.yaml"
    ]
    assert uploaded_files("report.md", WORKSPACE, include_hidden=False) == ["report.md"]


def test_an_empty_upload_fails_only_when_told_to():
    with pytest.raises(ArtifactError, match=r"No files were found with the provided path: \.promotion/\. No artifacts"):
        uploaded_files(".promotion/", WORKSPACE, include_hidden=False, if_no_files_found="error")
    assert uploaded_files(".promotion/", WORKSPACE, include_hidden=False, if_no_files_found="warn") == []


def test_exclusions_apply_after_inclusions():
    files = uploaded_files(".aws-sam/\n!.aws-sam/build/", WORKSPACE, include_hidden=True)
    assert files == [".aws-sam/packaged-testing.yaml"]


@pytest.mark.parametrize(
    "expression, trigger, holds",
    [
        ("github.ref == 'refs/heads/main'", Trigger("push", "refs/heads/main", REPOSITORY), True),
        ("github.ref == 'REFS/HEADS/MAIN'", Trigger("push", "refs/heads/main", REPOSITORY), True),  # ignores case
        ("github.event_name != 'delete'", Trigger("delete", "refs/heads/feature/x", REPOSITORY), False),
        (
            "github.event_name == 'delete' && github.event.ref_type == 'branch'"
            " && startsWith(github.event.ref, 'feature/')",
            Trigger("delete", "refs/heads/feature/x", REPOSITORY),
            True,
        ),
        ("startsWith(github.ref, 'refs/heads/feature/')", Trigger("delete", "refs/heads/feature/x", REPOSITORY), False),
        (
            "!(github.event_name == 'push') || github.ref_name == 'main'",
            Trigger("push", "refs/heads/a", REPOSITORY),
            False,
        ),
        ("${{ github.event_name == 'push' }}", Trigger("push", "refs/heads/a", REPOSITORY), True),
        (None, Trigger("push", "refs/heads/a", REPOSITORY), True),
    ],
)
def test_a_jobs_if_is_evaluated_as_github_does(expression, trigger, holds):
    assert condition_holds(expression, trigger.context()) is holds


@pytest.mark.parametrize("expression", ["always()", "github.ref == ", "contains(github.ref, 'x')", "vars.X == 'y'"])
def test_an_expression_the_rehearsal_cannot_read_is_refused_not_guessed(expression):
    with pytest.raises(ValueError):
        condition_holds(expression, Trigger("push", "refs/heads/main", REPOSITORY).context())
