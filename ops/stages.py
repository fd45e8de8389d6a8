"""The release pipeline's stages as `samconfig.toml` names them: one place to read a stage's stack, region and
parameters, for every tool that acts on a stage (`make integration-test`, `promote-model`, the offline rehearsal).

A stage is a `sam deploy --config-env <stage>` environment. A feature branch gets a stack of its own: the testing
stage's configuration under a name made from the branch (``feature_stack``), with its own endpoint and job prefix
so it shares nothing with testing in the same account.

    python -m ops.stages stack-name --stage testing [--branch BRANCH]
    python -m ops.stages parameter-overrides --stage testing [--branch BRANCH]

``parameter-overrides`` adds ``ArtifactsKeyUserArns`` from ``ARTIFACTS_KEY_USERS`` (the pipeline's roles and the
operators who use the stage's bucket: the workflow's deploy steps set it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

SAMCONFIG = Path(__file__).resolve().parent.parent / "samconfig.toml"
STAGES = ("testing", "prod")
# Every feature branch's stack name starts so: the feature pipeline identities may touch these names and no other
# (pipeline/bootstrap.yaml); testing's and prod's stacks must never start so.
FEATURE_STACK_PREFIX = "dog-breeds-"


@dataclass(frozen=True)
class Stage:
    name: str
    stack_name: str
    region: str
    parameter_overrides: dict[str, str]


def feature_stack(branch: str) -> tuple[str, dict[str, str]]:
    """A feature branch's stack name and the names it must not share with testing: ``dog-breeds-<branch>-<hash>``
    (lower case, at most 50 characters, so it is a valid endpoint name too); the job prefix is 32 at most. Both
    start with ``FEATURE_STACK_PREFIX``, the feature pipeline identity's scope."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-") or "branch"
    digest = hashlib.sha256(branch.encode()).hexdigest()[:6]
    name = f"{FEATURE_STACK_PREFIX}{slug[:32].strip('-')}-{digest}"
    return name, {"EndpointName": name, "JobNamePrefix": f"{FEATURE_STACK_PREFIX}{slug[:14].strip('-')}-{digest}"}


def read_stage(
    name: str, stack_name: str | None = None, samconfig: Path = SAMCONFIG, branch: str | None = None
) -> Stage:
    """The ``[<name>]`` environment of samconfig.toml; ``branch``: that configuration as the branch's own stack;
    ``stack_name``: a stack already named (a feature stack, by its name)."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}: samconfig.toml has {', '.join(STAGES)}")
    environment = tomllib.loads(samconfig.read_text()).get(name)
    if environment is None:
        raise ValueError(f"samconfig.toml has no [{name}] environment")
    shared = environment.get("global", {}).get("parameters", {})
    deploy = environment.get("deploy", {}).get("parameters", {})
    overrides = dict(pair.split("=", 1) for pair in shlex.split(deploy.get("parameter_overrides", "")) if "=" in pair)
    if branch:
        stack_name, names = feature_stack(branch)
        overrides |= names
    return Stage(name, stack_name or shared["stack_name"], shared.get("region", "us-east-1"), overrides)


# A principal as aws:PrincipalArn names it: an account's root, or a role or user with its path (never a session)
PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(root|(role|user)/[\w+=,.@/-]+)")


def key_users(listed: str) -> str:
    """``ARTIFACTS_KEY_USERS`` (comma-separated, empty items dropped: an unset repository variable is empty) as the
    stack's ``ArtifactsKeyUserArns``; ``ValueError`` names an item that is not a principal's ARN."""
    users = [item.strip() for item in listed.split(",") if item.strip()]
    for user in users:
        if not PRINCIPAL_ARN.fullmatch(user):
            raise ValueError(
                f"ARTIFACTS_KEY_USERS: {user!r} is not a principal's ARN; accepted: arn:aws:iam::<account>:root, "
                ":role/<path/>name or :user/<path/>name (a role's ARN, not an assumed-role session's)"
            )
    return ",".join(dict.fromkeys(users))


def add_stage_arguments(parser, required: bool = True) -> None:
    """``--stage`` and ``--branch``, as every tool that acts on a stage takes them (``read_stage``'s arguments)."""
    parser.add_argument("--stage", choices=STAGES, required=required, **({} if required else {"default": "testing"}))
    parser.add_argument("--branch", default="", help="a feature branch: its own stack of the stage's configuration")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a stage's stack name or parameter overrides, for make")
    parser.add_argument("what", choices=("stack-name", "parameter-overrides", "region"))
    add_stage_arguments(parser)
    args = parser.parse_args(argv)
    stage = read_stage(args.stage, branch=args.branch or None)
    if args.what == "stack-name":
        print(stage.stack_name)
    elif args.what == "region":
        print(stage.region)
    else:
        overrides = dict(stage.parameter_overrides)
        try:  # who uses the stack's artifacts key besides its roles: from the environment, as the workflow sets it
            if users := key_users(os.environ.get("ARTIFACTS_KEY_USERS", "")):
                overrides["ArtifactsKeyUserArns"] = users
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(" ".join(shlex.quote(f"{key}={value}") for key, value in overrides.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
