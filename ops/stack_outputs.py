"""A stack's outputs as JSON: what `make integration-test` hands the post-deploy suite (``STACK_OUTPUTS_FILE``).

    python -m ops.stack_outputs --stage testing [--branch BRANCH] --output outputs.json

Reads ``describe-stacks`` with the caller's credentials (the offline rehearsal's stacks answer it too, through
``AWS_ENDPOINT_URL``). A stack that does not exist, or is not in a complete state, is an error that says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from ops.stages import add_stage_arguments, read_stage

USABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")


def stack_outputs(stack_name: str, region: str) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", region_name=region)
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise SystemExit(f"error: stack {stack_name} in {region}: {error.response['Error']['Message']}") from error
    if stack["StackStatus"] not in USABLE:
        raise SystemExit(f"error: stack {stack_name} is {stack['StackStatus']}; the suite needs one of {USABLE}")
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_stage_arguments(parser, required=False)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    stage = read_stage(args.stage, branch=args.branch or None)
    outputs = stack_outputs(stage.stack_name, stage.region)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(outputs, indent=2))
    print(f"{stage.stack_name} ({stage.region}): {len(outputs)} outputs -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
