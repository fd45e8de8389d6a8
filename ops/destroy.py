"""``make destroy``: remove the stack and everything the pipeline created outside it, so nothing keeps billing.

The training pipeline creates the endpoint, its endpoint configs and models, and the auto-scaling target
and policy (with the CloudWatch alarms target tracking makes) outside CloudFormation, so `sam delete`
alone leaves them running; and `sam delete` cannot remove the versioned artifacts bucket while it holds
objects. In order: scaling policies and target, their alarms, the endpoint, its configs and models, every
object version and delete marker of the bucket, then `sam delete`. Training jobs stay as history (SageMaker
keeps them and they cost nothing).

    python -m ops.destroy [--stack-name dog-breed-classifier] [--yes]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

VARIANT = "AllTraffic"


def stack_facts(cloudformation, stack_name: str) -> tuple[str, str]:
    """(endpoint name, artifacts bucket) from the stack's parameters and outputs."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return parameters.get("EndpointName", "dog-breed-classifier"), outputs["ArtifactsBucketName"]


def remove_scaling(scaling, cloudwatch, endpoint_name: str, say: Callable[[str], None]) -> None:
    resource_id = f"endpoint/{endpoint_name}/variant/{VARIANT}"
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource_id)
    for policy in policies["ScalingPolicies"]:
        scaling.delete_scaling_policy(
            PolicyName=policy["PolicyName"],
            ServiceNamespace="sagemaker",
            ResourceId=resource_id,
            ScalableDimension=policy["ScalableDimension"],
        )
        say(f"deleted scaling policy {policy['PolicyName']}")
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource_id])
    for target in targets["ScalableTargets"]:
        scaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=resource_id, ScalableDimension=target["ScalableDimension"]
        )
        say(f"deregistered scalable target {resource_id}")
    # AWS deletes target tracking's alarms with the policy; any left behind are named after the resource.
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"TargetTracking-{resource_id}")["MetricAlarms"]
    if alarms:
        cloudwatch.delete_alarms(AlarmNames=[alarm["AlarmName"] for alarm in alarms])
        say(f"deleted {len(alarms)} alarm(s)")


def remove_endpoint(sagemaker, endpoint_name: str, say: Callable[[str], None]) -> None:
    try:
        sagemaker.delete_endpoint(EndpointName=endpoint_name)
        say(f"deleted endpoint {endpoint_name}")
    except ClientError as exc:
        if "Could not find" not in str(exc) and exc.response["Error"]["Code"] != "ValidationException":
            raise
    # Configs and models are named <endpoint>-<12 hex> by the deploy function.
    for config in sagemaker.list_endpoint_configs(NameContains=endpoint_name)["EndpointConfigs"]:
        if config["EndpointConfigName"].startswith(f"{endpoint_name}-"):
            sagemaker.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
            say(f"deleted endpoint config {config['EndpointConfigName']}")
    for model in sagemaker.list_models(NameContains=endpoint_name)["Models"]:
        if model["ModelName"].startswith(f"{endpoint_name}-"):
            sagemaker.delete_model(ModelName=model["ModelName"])
            say(f"deleted model {model['ModelName']}")


def empty_bucket(s3, bucket: str, say: Callable[[str], None]) -> int:
    """Delete every object version and delete marker; returns how many were deleted."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", [])]
        keys += [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers", [])]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
        deleted += len(keys)
    say(f"emptied s3://{bucket} ({deleted} object versions and delete markers)")
    return deleted


def destroy(clients: dict, stack_name: str, sam_delete: Callable[[str], int], say=print) -> int:
    endpoint_name, bucket = stack_facts(clients["cloudformation"], stack_name)
    remove_scaling(clients["application-autoscaling"], clients["cloudwatch"], endpoint_name, say)
    remove_endpoint(clients["sagemaker"], endpoint_name, say)
    empty_bucket(clients["s3"], bucket, say)
    return sam_delete(stack_name)


def run_sam_delete(stack_name: str) -> int:
    sam = str(Path(sys.executable).with_name("sam"))
    return subprocess.run([sam, "delete", "--stack-name", stack_name, "--no-prompts"]).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", default="dog-breed-classifier")
    parser.add_argument("--yes", action="store_true", help="do not ask before deleting")
    args = parser.parse_args(argv)
    if not args.yes and input(f"Delete stack {args.stack_name}, its endpoint, models and data? [y/N] ") != "y":
        print("nothing deleted")
        return 1
    session = boto3.session.Session()
    clients = {
        "cloudformation": session.client("cloudformation"),
        "application-autoscaling": session.client("application-autoscaling"),
        "cloudwatch": session.client("cloudwatch"),
        "sagemaker": session.client("sagemaker"),
        "s3": session.client("s3"),
    }
    try:
        return destroy(clients, args.stack_name, run_sam_delete)
    except ClientError as exc:
        print(f"destroy stopped: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
