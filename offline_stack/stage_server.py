"""One stage of the release pipeline, deployed offline: what `sam deploy --config-env <stage>` makes, on loopback.

    python -m offline_stack.stage_server --stage testing [--branch BRANCH] --work-dir DIR --ready-file FILE

The stage's stack (samconfig.toml's ``[<stage>]``: its stack name and parameter overrides) runs as an
``OfflineStack`` in this process, with its API open and its pipeline ready to execute, and publishes its outputs
in its own offline CloudFormation under its stack name, as a deployed stack does. So the tools a pipeline runs
after a deploy (`make integration-test`, `make promote-model`) read the stack's outputs with
``describe-stacks`` here exactly as in AWS, through ``AWS_ENDPOINT_URL``. Each stage is a process of its own: its
control plane is its own, as two stages in two accounts share nothing.

When it is up it writes ``--ready-file`` (JSON: the environment a tool needs to reach it, and the outputs),
then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import warnings
from pathlib import Path

from offline_stack.sam_template import PSEUDO_PARAMETERS
from ops.stages import STAGES, read_stage


def published_outputs(stack) -> dict[str, str]:
    """The template's Outputs, with the offline values of what they name."""
    template, api = stack.template, stack.api
    region, account = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
    endpoint = template.parameters["EndpointName"]
    return {
        "ApiUrl": api.url,
        "PredictionsApiUrl": f"{api.url}/predictions",
        "ApiAuthMode": template.parameters["AuthMode"],
        "EndpointName": endpoint,
        "PredictionsRouteArn": f"arn:aws:execute-api:{region}:{account}:offline/$default/POST/predictions",
        "ArtifactsBucketName": stack.bucket,
        "TrainingPipelineArn": stack.pipeline.state_machine_arn,
        "ModelPackageGroupName": endpoint,
        "SageMakerExecutionRoleArn": template.arn("SageMakerExecutionRole"),
    }


def publish(stack, stack_name: str, outputs: dict[str, str]) -> None:
    """A stack of that name in the offline CloudFormation, with the template's parameter values and these outputs."""
    parameters = stack.template.parameters
    body = {
        "Description": "Outputs of the offline stage (offline_stack/stage_server.py)",
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {"Published": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    stack.control_plane.client("cloudformation").create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": k, "ParameterValue": v or " "} for k, v in parameters.items()],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--branch", default="", help="a feature branch: its own stack of the stage's configuration")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--parameter-overrides", default="", help="KEY=VALUE ... on top of the stage's")
    parser.add_argument(
        "--identities",
        type=Path,
        help="JSON: the pipeline's roles in this account ([{name, arn, policy}]) and the boundary ({boundary}) "
        "the stack's roles carry; each is held to its policy, and its credentials are in the ready file",
    )
    args = parser.parse_args(argv)
    stage = read_stage(args.stage, branch=args.branch or None)
    # moto's CloudFormation creates nothing for the placeholder resource the published stack needs, and says so
    warnings.filterwarnings("ignore", message="Tried to parse AWS::CloudFormation::WaitConditionHandle")
    # One stack per process, as one stack per name per account: its names and ARNs are made from it
    PSEUDO_PARAMETERS["AWS::StackName"] = stage.stack_name
    overrides = stage.parameter_overrides | dict(pair.split("=", 1) for pair in args.parameter_overrides.split())

    from offline_stack.stack import OfflineStack  # after the stack name is set

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    args.work_dir.mkdir(parents=True, exist_ok=True)
    log_file = (args.work_dir / "stage.log").open("a")
    log = lambda line: print(line, file=log_file, flush=True)  # noqa: E731
    pipeline_roles, boundary = _identities(args.identities)
    stack = OfflineStack(
        args.work_dir,
        log=log,
        quiet_functions=True,
        parameter_overrides=overrides,
        other_roles=pipeline_roles,
        boundary=boundary,
    )
    with stack:
        stack.open_api()
        outputs = published_outputs(stack)
        publish(stack, stage.stack_name, outputs)
        environment = {**stack.control_plane.environment(), "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": stack.runtime.url}
        ready = {"stack_name": stage.stack_name, "environment": environment, "outputs": outputs}
        ready["identities"] = {role.arn: role.environment() for role in pipeline_roles}
        partial = args.ready_file.with_suffix(".partial")
        partial.write_text(json.dumps(ready, indent=2))
        partial.replace(args.ready_file)
        stop.wait()
    return 0


def _identities(path: Path | None):
    """The pipeline roles and the stack's boundary from ``--identities`` (none: the operator alone, no boundary)."""
    from offline_stack.aws_rules.iam import Policy, Roles

    if path is None:
        return [], None
    described = json.loads(path.read_text())
    roles = [Roles.principal(r["name"], r["arn"], [r["policy"]]) for r in described.get("roles", [])]
    boundary = Policy([described["boundary"]]) if described.get("boundary") else None
    return roles, boundary


if __name__ == "__main__":
    sys.exit(main())
