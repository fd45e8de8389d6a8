"""The release pipeline's identities per stage: `pipeline/bootstrap.yaml` deployed (`make bootstrap-stage`) and, for the
offline rehearsal, rendered with offline names.

Three identity sets, each a stack of ``pipeline/bootstrap.yaml``:

- ``testing`` (pushes to main): deploys ``dog-breed-classifier-testing``;
- ``feature`` (pushes to ``feature/**``, and main's job that deletes a feature stack): deploys ``dog-breeds-*``,
  reads testing's approved models;
- ``prod`` (the ``prod`` environment's jobs, after approval): deploys ``dog-breed-classifier-prod``.

Each has a pipeline execution role (trusted by exactly its jobs' OIDC subjects), a CloudFormation execution role
(may create only roles that carry the set's permissions boundary), that boundary, and an artifacts bucket;
testing's set also a registry reader role, trusted by the ``prod`` environment's jobs only, that may read testing's
approved, served model and nothing else (prod's job proves its candidate against testing's registry with it). The
scope (the name prefix every resource of the set starts with) comes from samconfig.toml (``ops.stages``).

    python -m ops.bootstrap deploy --stage testing --repository ORG/REPO [--existing-oidc-provider ARN]
    python -m ops.bootstrap variables --stage testing      # the repository variables, from the deployed stack
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from offline_stack.sam_template import load_template
from ops.stages import FEATURE_STACK_PREFIX, read_stage

BOOTSTRAP_TEMPLATE = Path(__file__).resolve().parent.parent / "pipeline" / "bootstrap.yaml"
IDENTITY_SETS = ("testing", "feature", "prod")
PROD_ENVIRONMENT = "prod"
OIDC_PROVIDER_PATH = "oidc-provider/token.actions.githubusercontent.com"
REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")


def bootstrap_stack_name(identity_set: str) -> str:
    """The bootstrap stack of a set; its names start ``dog-breed-pipeline-``, outside every set's scope."""
    return f"dog-breed-pipeline-{identity_set}"


def scopes(identity_set: str) -> tuple[str, str]:
    """(StageScope, ModelSourceScope): the names the set may touch, and whose approved models it may read."""
    if identity_set not in IDENTITY_SETS:
        raise ValueError(f"unknown identity set {identity_set!r}: one of {', '.join(IDENTITY_SETS)}")
    testing = read_stage("testing").stack_name
    if identity_set == "feature":
        return FEATURE_STACK_PREFIX, testing
    own = read_stage(identity_set).stack_name
    return own, own


def stage_of(identity_set: str) -> str:
    """The samconfig.toml stage whose configuration the set deploys (feature stacks use testing's)."""
    return "testing" if identity_set == "feature" else identity_set


def parameters(identity_set: str, repository: str, existing_oidc_provider: str = "") -> dict[str, str]:
    """The bootstrap stack's parameter values for a set."""
    if not REPOSITORY.match(repository):
        raise ValueError(f"repository {repository!r}: expected ORG/REPO as in the repository's GitHub URL")
    scope, source = scopes(identity_set)
    org, repo = repository.split("/")
    return {
        "Stage": identity_set,
        "StageScope": scope,
        "ModelSourceScope": source,
        "GitHubOrg": org,
        "GitHubRepo": repo,
        "ProdEnvironment": PROD_ENVIRONMENT,
        "ExistingOidcProviderArn": existing_oidc_provider,
    }


@dataclass(frozen=True)
class Identities:
    """One set's identities as the bootstrap stack makes them (offline: with offline names)."""

    identity_set: str
    provider_arn: str
    pipeline_role_arn: str
    trust_policy: dict
    pipeline_policy: dict
    max_session_seconds: int
    cloudformation_role_arn: str
    cloudformation_policy: dict
    boundary_arn: str
    boundary_policy: dict
    artifacts_bucket: str
    scope: str
    region: str
    # testing's set only: the read-only role prod's job proves its candidate with (an identity of its own, with
    # this set's provider; None for the other sets)
    registry_reader: Identities | None = None


OFFLINE_ACCOUNT = "123456789012"


def render(
    identity_set: str,
    repository: str,
    account: str = OFFLINE_ACCOUNT,
    region: str = "us-east-1",
    template: Path = BOOTSTRAP_TEMPLATE,
) -> Identities:
    """The bootstrap template for a set, resolved as CloudFormation would in ``account`` (offline names for what
    CloudFormation generates)."""
    document = load_template(template)
    values = parameters(identity_set, repository)
    defaults = {name: str(spec.get("Default", "")) for name, spec in document["Parameters"].items()}
    values = defaults | values
    stack = bootstrap_stack_name(identity_set)
    names = {
        "AWS::Partition": "aws",
        "AWS::Region": region,
        "AWS::AccountId": account,
        "GitHubOidcProvider": f"arn:aws:iam::{account}:{OIDC_PROVIDER_PATH}",
        "PipelineArtifactsBucket": f"{stack}-pipelineartifactsbucket-offline",
        "PermissionsBoundary": f"arn:aws:iam::{account}:policy/{stack}-PermissionsBoundary-offline",
        "CloudFormationExecutionRole.Arn": f"arn:aws:iam::{account}:role/{stack}-CloudFormationExecutionRole-offline",
        "PipelineExecutionRole.Arn": f"arn:aws:iam::{account}:role/{stack}-PipelineExecutionRole-offline",
        "RegistryReaderRole.Arn": f"arn:aws:iam::{account}:role/{stack}-RegistryReaderRole-offline",
    }
    names |= values
    names["PipelineArtifactsBucket.Arn"] = f"arn:aws:s3:::{names['PipelineArtifactsBucket']}"
    conditions = {
        "CreateOidcProvider": values["ExistingOidcProviderArn"] == "",
        "IsProd": identity_set == "prod",
        "IsFeature": identity_set == "feature",
        "IsTesting": identity_set == "testing",
    }
    resolve = _Resolver(names, conditions)
    resources = document["Resources"]
    pipeline_role = resources["PipelineExecutionRole"]["Properties"]
    cloudformation_role = resources["CloudFormationExecutionRole"]["Properties"]
    identities = Identities(
        identity_set=identity_set,
        provider_arn=names["GitHubOidcProvider"],
        pipeline_role_arn=names["PipelineExecutionRole.Arn"],
        trust_policy=resolve(pipeline_role["AssumeRolePolicyDocument"]),
        pipeline_policy=resolve(pipeline_role["Policies"][0]["PolicyDocument"]),
        max_session_seconds=int(resolve(pipeline_role["MaxSessionDuration"])),
        cloudformation_role_arn=names["CloudFormationExecutionRole.Arn"],
        cloudformation_policy=resolve(cloudformation_role["Policies"][0]["PolicyDocument"]),
        boundary_arn=names["PermissionsBoundary"],
        boundary_policy=resolve(resources["PermissionsBoundary"]["Properties"]["PolicyDocument"]),
        artifacts_bucket=names["PipelineArtifactsBucket"],
        scope=values["StageScope"],
        region=region,
    )
    reader = resources.get("RegistryReaderRole", {})
    if reader and conditions[reader["Condition"]]:
        properties = reader["Properties"]
        identities = replace(
            identities,
            registry_reader=replace(
                identities,
                identity_set=f"{identity_set}-registry-reader",
                pipeline_role_arn=names["RegistryReaderRole.Arn"],
                trust_policy=resolve(properties["AssumeRolePolicyDocument"]),
                pipeline_policy=resolve(properties["Policies"][0]["PolicyDocument"]),
                max_session_seconds=int(properties["MaxSessionDuration"]),
            ),
        )
    return identities


class _Resolver:
    """Ref, Sub, GetAtt and If over the bootstrap template, with the names CloudFormation would give."""

    def __init__(self, names: dict[str, str], conditions: dict[str, bool]) -> None:
        self.names, self.conditions = names, conditions

    def __call__(self, value):
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._name(argument)
            if key == "Fn::GetAtt":
                return self._name(".".join(argument))
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}!]+)\}", lambda match: self._name(match.group(1)), argument)
            if key == "Fn::If":
                condition, when_true, when_false = argument
                return self(when_true if self.conditions[condition] else when_false)
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value

    def _name(self, name: str) -> str:
        if name not in self.names:
            raise KeyError(f"pipeline/bootstrap.yaml names ${{{name}}}, which the offline rendering does not know")
        return self.names[name]


def repository_variables(identity_set: str, outputs: dict[str, str]) -> dict[str, str]:
    """The repository variables the workflow reads for a set, from the bootstrap stack's outputs."""
    prefix = identity_set.upper()
    return {
        f"{prefix}_REGION": read_stage(stage_of(identity_set)).region,
        f"{prefix}_PIPELINE_EXECUTION_ROLE": outputs["PipelineExecutionRoleArn"],
        f"{prefix}_CLOUDFORMATION_EXECUTION_ROLE": outputs["CloudFormationExecutionRoleArn"],
        f"{prefix}_ARTIFACTS_BUCKET": outputs["ArtifactsBucketName"],
        f"{prefix}_PERMISSIONS_BOUNDARY": outputs["PermissionsBoundaryArn"],
    } | (
        {f"{prefix}_REGISTRY_READER_ROLE": outputs["RegistryReaderRoleArn"]}
        if "RegistryReaderRoleArn" in outputs
        else {}
    )


def offline_variables(repository: str, template: Path = BOOTSTRAP_TEMPLATE) -> dict[str, str]:
    """Every repository variable the workflow reads, as the offline bootstrap stacks would print them."""
    variables: dict[str, str] = {}
    for identity_set in IDENTITY_SETS:
        identities = render(identity_set, repository, template=template)
        outputs = {
            "PipelineExecutionRoleArn": identities.pipeline_role_arn,
            "CloudFormationExecutionRoleArn": identities.cloudformation_role_arn,
            "ArtifactsBucketName": identities.artifacts_bucket,
            "PermissionsBoundaryArn": identities.boundary_arn,
        }
        if identities.registry_reader:
            outputs["RegistryReaderRoleArn"] = identities.registry_reader.pipeline_role_arn
        variables |= repository_variables(identity_set, outputs)
    # the people who upload data and golden photos: offline, the operator (the account's root)
    operator = f"arn:aws:iam::{OFFLINE_ACCOUNT}:root"
    return variables | {"TESTING_OPERATORS": operator, "PROD_OPERATORS": operator}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="deploy a stage's pipeline identities, or print its variables")
    parser.add_argument("what", choices=("deploy", "variables", "parameters"))
    parser.add_argument("--stage", choices=IDENTITY_SETS, required=True, help="the identity set")
    parser.add_argument("--repository", default="", help="ORG/REPO on GitHub (deploy)")
    parser.add_argument("--existing-oidc-provider", default="", help="the account's GitHub OIDC provider ARN")
    parser.add_argument("--aws", default="aws", help="the AWS CLI to run")
    args = parser.parse_args(argv)
    region = read_stage(stage_of(args.stage)).region
    stack = bootstrap_stack_name(args.stage)
    if args.what in ("deploy", "parameters"):
        try:
            values = parameters(args.stage, args.repository, args.existing_oidc_provider)
        except ValueError as error:
            parser.error(str(error))
        if args.what == "parameters":
            print(" ".join(f"{key}={value}" for key, value in values.items()))
            return 0
        command = [args.aws, "cloudformation", "deploy", "--region", region, "--stack-name", stack]
        command += ["--template-file", str(BOOTSTRAP_TEMPLATE), "--capabilities", "CAPABILITY_IAM"]
        command += ["--no-fail-on-empty-changeset", "--parameter-overrides"]
        command += [f"{key}={value}" for key, value in values.items()]
        subprocess.run(command, check=True)
    described = subprocess.run(
        [args.aws, "cloudformation", "describe-stacks", "--region", region, "--stack-name", stack, "--output", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in json.loads(described.stdout)["Stacks"][0].get("Outputs", [])}
    print("Repository variables (Settings > Secrets and variables > Actions > Variables):")
    for name, value in repository_variables(args.stage, outputs).items():
        print(f"  {name}={value}")
    if args.stage != "feature":
        print(
            f"  {args.stage.upper()}_OPERATORS=<the role ARNs, with their paths, of whoever runs make upload-data, "
            "upload-golden, register-model or captured on this stage; comma-separated; they may use its bucket's key>"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
