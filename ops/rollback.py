"""`make record-release` / `make rollback-stage`: a release that fails its tests leaves the stage serving what it
served before, template and model.

    python -m ops.rollback record  --stage prod --dir previous-release
    python -m ops.rollback restore --stage prod --dir previous-release --bucket <artifacts bucket> --role-arn <CFN role>

``record`` runs before the deploy: the stack's packaged template as it was deployed (``GetTemplate``, stage
``Original``: the SAM template with its code in S3), its parameter values, and the model package version its
endpoint serves (found through the endpoint, as the release gate finds it). ``restore`` runs only when a later step
failed (the workflow's ``if: failure()``): it deploys that template with those parameters again through the stage's
CloudFormation role (a change set, as ``sam deploy`` makes one), then releases that model version through the stage's
own pipeline (``release_model_package_arn``: blue/green with its alarms). A stage that served nothing before has
nothing to go back to: ``restore`` says so and fails, and the failed release stays for a person to judge.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from ops.promote_model import release, served_package
from ops.stack_outputs import stack_outputs
from ops.stages import add_stage_arguments, read_stage

RECORD = "previous-release.json"
SETTLED = {"UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "CREATE_COMPLETE"}


class RollbackRefused(Exception):
    """The stage cannot be rolled back; the message says why."""


def record(cloudformation, sagemaker, stack_name: str, directory: Path) -> dict:
    """What the stage serves now, written to ``directory``; ``{"stack": None}`` when there is no stack yet."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" not in error.response["Error"].get("Message", ""):
            raise
        stack = None
    saved: dict = {"stack": stack_name if stack else None}
    if stack:
        template = cloudformation.get_template(StackName=stack_name, TemplateStage="Original")["TemplateBody"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        saved |= {
            "template": template if isinstance(template, str) else json.dumps(template),
            "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
            "model_package_arn": served_package(sagemaker, outputs),
        }
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{RECORD}.partial"
    partial.write_text(json.dumps(saved, indent=2))
    partial.replace(directory / RECORD)
    return saved


def restore_template(cloudformation, s3, saved: dict, bucket: str, role_arn: str, timeout: float) -> str:
    """Deploy the recorded template and parameters again as the stage's CloudFormation role; the change set's name."""
    body = saved["template"].encode()
    key = f"rollback/{hashlib.sha256(body).hexdigest()}.template"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    url = f"https://{bucket}.s3.amazonaws.com/{key}"
    name = f"rollback-{int(time.time())}"
    cloudformation.create_change_set(
        StackName=saved["stack"],
        ChangeSetName=name,
        ChangeSetType="UPDATE",
        TemplateURL=url,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in saved["parameters"].items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        RoleARN=role_arn,
    )
    deadline = time.monotonic() + timeout
    while (change := cloudformation.describe_change_set(StackName=saved["stack"], ChangeSetName=name))["Status"] in (
        "CREATE_PENDING",
        "CREATE_IN_PROGRESS",
    ):
        _before(deadline, "the rollback's change set")
    if change["Status"] == "FAILED" and "didn't contain changes" in change.get("StatusReason", ""):
        return name  # the failed release did not change the template
    if change["Status"] != "CREATE_COMPLETE":
        raise RollbackRefused(f"the rollback's change set is {change['Status']}: {change.get('StatusReason', '')}")
    cloudformation.execute_change_set(StackName=saved["stack"], ChangeSetName=name)
    while (status := cloudformation.describe_stacks(StackName=saved["stack"])["Stacks"][0]["StackStatus"]) not in (
        SETTLED | {"UPDATE_ROLLBACK_FAILED", "ROLLBACK_COMPLETE"}
    ):
        _before(deadline, "the rollback's stack update")
    if status != "UPDATE_COMPLETE" and status not in SETTLED:
        raise RollbackRefused(f"the stack ended {status} while rolling back its template")
    return name


def _before(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise RollbackRefused(f"{what} did not finish in time; see the stack's events")
    time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("record", "restore"))
    add_stage_arguments(parser)
    parser.add_argument("--dir", type=Path, required=True, help="where record writes and restore reads")
    parser.add_argument("--bucket", default="", help="restore: the stage's artifacts bucket (the template goes there)")
    parser.add_argument("--role-arn", default="", help="restore: the stage's CloudFormation execution role")
    parser.add_argument("--timeout", type=float, default=3600, help="restore: seconds for each of its two waits")
    args = parser.parse_args(argv)
    stage = read_stage(args.stage, branch=args.branch or None)
    session = boto3.session.Session(region_name=stage.region)
    cloudformation = session.client("cloudformation")
    try:
        if args.action == "record":
            saved = record(cloudformation, session.client("sagemaker"), stage.stack_name, args.dir)
            serving = saved.get("model_package_arn") or "no model"
            what = f"its template, parameters and {serving}" if saved["stack"] else "no stack yet"
            print(f"recorded {stage.stack_name}: {what}")
            return 0
        if not (args.bucket and args.role_arn):
            parser.error("restore needs --bucket and --role-arn (PIPELINE_BUCKET and CLOUDFORMATION_ROLE)")
        path = args.dir / RECORD
        if not path.is_file():
            raise RollbackRefused(f"{path} is missing: make record-release runs before the deploy it would undo")
        saved = json.loads(path.read_text())
        if not saved["stack"]:
            raise RollbackRefused(f"{stage.stack_name} served nothing before this release: nothing to roll back to")
        change = restore_template(cloudformation, session.client("s3"), saved, args.bucket, args.role_arn, args.timeout)
        print(f"{stage.stack_name}: template and parameters of the previous release restored ({change})")
        if saved.get("model_package_arn"):
            pipeline = stack_outputs(stage.stack_name, stage.region)["TrainingPipelineArn"]
            stepfunctions = session.client("stepfunctions")
            execution = release(stepfunctions, pipeline, saved["model_package_arn"], args.timeout)
            if execution["status"] != "SUCCEEDED":
                raise RollbackRefused(f"releasing {saved['model_package_arn']} again ended {execution['status']}")
            print(f"{stage.stack_name}: rolled back to {saved['model_package_arn']}")
        return 0
    except (RollbackRefused, ClientError) as refused:
        print(f"error: {stage.stack_name}: {refused}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
