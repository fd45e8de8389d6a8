"""``make destroy``: remove the stack and everything the pipeline created outside it, so nothing keeps billing.

The training pipeline creates the endpoint, its endpoint configs and models, and the auto-scaling target
and policy (with the CloudWatch alarms target tracking makes) outside CloudFormation, so `sam delete`
alone leaves them running; and `sam delete` cannot remove the versioned artifacts bucket while it holds
objects. In order:

1. training, tuning and golden-set scoring (transform) jobs of the stack's prefix that are still running are
   stopped, and awaited (a stopping job still writes its model or answers to the bucket);
2. scaling policies and target, their alarms;
3. the endpoint, awaited until SageMaker has deleted it, then a grace period for data capture's last files
   (SageMaker writes captured requests to S3 in batches);
4. every endpoint config and model of the endpoint (all pages of them), and the release gate's scoring models;
5. the endpoint's log group and the stack's training jobs' log streams (``/aws/sagemaker/TrainingJobs`` is
   shared by every job of the account: only this stack's streams go);
6. every object version and delete marker of the bucket (and of the access-log bucket, when the stack keeps
   one), then `sam delete`.

Training jobs themselves stay as history (SageMaker keeps them and they cost nothing).

    python -m ops.destroy [--stack-name dog-breed-classifier] [--yes] [--capture-grace-seconds 120] [--poll-seconds 15]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

VARIANT = "AllTraffic"
RUNNING = ("InProgress", "Stopping")


def stack_facts(cloudformation, stack_name: str) -> tuple[str, str, str]:
    """(endpoint name, artifacts bucket, job name prefix) from the stack's parameters and outputs."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return (
        parameters.get("EndpointName", "dog-breed-classifier"),
        outputs["ArtifactsBucketName"],
        parameters.get("JobNamePrefix", "dog-breeds"),
    )


def _pages(client, operation: str, key: str, **parameters) -> Iterator[dict]:
    """Every item of a listing, page after page (NextToken; SageMaker's listings answer 10 at a time unless told)."""
    while True:
        answer = getattr(client, operation)(**parameters)
        yield from answer.get(key, [])
        if not answer.get("NextToken"):
            return
        parameters["NextToken"] = answer["NextToken"]


def wait_until(done: Callable[[], bool], timeout_seconds: float, poll_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_seconds:g} s; run make destroy again")
        time.sleep(poll_seconds)


def stop_running_jobs(sagemaker, prefix: str, say: Callable[[str], None], poll_seconds: float = 15) -> None:
    """Stop the prefix's training and tuning jobs that are still running, and wait until they have stopped."""
    kinds = (
        (
            "list_hyper_parameter_tuning_jobs",
            "HyperParameterTuningJobSummaries",
            "HyperParameterTuningJobName",
            "HyperParameterTuningJobStatus",
            "stop_hyper_parameter_tuning_job",
        ),
        ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "TrainingJobStatus", "stop_training_job"),
        # the release gate's golden-set scoring (Batch Transform) writes into the bucket too
        (
            "list_transform_jobs",
            "TransformJobSummaries",
            "TransformJobName",
            "TransformJobStatus",
            "stop_transform_job",
        ),
    )
    for listing, key, name_key, status_key, stop in kinds:
        running = [
            job[name_key]
            for status in RUNNING
            for job in _pages(sagemaker, listing, key, NameContains=prefix, StatusEquals=status)
            if job[name_key].startswith(f"{prefix}-") and job[status_key] in RUNNING
        ]
        for name in running:
            try:
                getattr(sagemaker, stop)(**{name_key: name})
                say(f"stopping {name}")
            except ClientError as exc:  # it ended meanwhile
                if exc.response["Error"]["Code"] != "ValidationException":
                    raise

        def stopped(names=running, listing=listing, key=key, name_key=name_key, status_key=status_key) -> bool:
            jobs = {job[name_key]: job[status_key] for job in _pages(sagemaker, listing, key, NameContains=prefix)}
            return all(jobs.get(name) not in RUNNING for name in names)

        wait_until(stopped, 3600, poll_seconds, f"stopping {len(running)} job(s)")


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


def _endpoint_exists(sagemaker, endpoint_name: str) -> bool:
    try:
        sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException":
            return False
        raise
    return True


def remove_endpoint(
    sagemaker,
    endpoint_name: str,
    say: Callable[[str], None],
    capture_grace_seconds: float = 120,
    poll_seconds: float = 15,
) -> None:
    """Delete the endpoint and wait until it is gone (and its data capture has written its last files), then
    its configs and models."""
    if _endpoint_exists(sagemaker, endpoint_name):
        sagemaker.delete_endpoint(EndpointName=endpoint_name)
        say(f"deleting endpoint {endpoint_name}")
        wait_until(
            lambda: not _endpoint_exists(sagemaker, endpoint_name), 1800, poll_seconds, "the endpoint's deletion"
        )
        say(f"deleted endpoint {endpoint_name}; waiting {capture_grace_seconds:g} s for data capture's last files")
        time.sleep(capture_grace_seconds)
    # Configs and models are named <endpoint>-<11 hex> by the deploy function.
    for config in list(
        _pages(sagemaker, "list_endpoint_configs", "EndpointConfigs", NameContains=endpoint_name, MaxResults=10)
    ):
        if config["EndpointConfigName"].startswith(f"{endpoint_name}-"):
            sagemaker.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
            say(f"deleted endpoint config {config['EndpointConfigName']}")
    for model in list(_pages(sagemaker, "list_models", "Models", NameContains=endpoint_name, MaxResults=10)):
        if model["ModelName"].startswith(f"{endpoint_name}-"):
            sagemaker.delete_model(ModelName=model["ModelName"])
            say(f"deleted model {model['ModelName']}")


def remove_scoring_models(sagemaker, prefix: str, say: Callable[[str], None]) -> None:
    """The models the release gate made to score candidates on the golden set (``<prefix>-golden-<12 hex>``)."""
    for model in list(_pages(sagemaker, "list_models", "Models", NameContains=f"{prefix}-golden-", MaxResults=10)):
        if model["ModelName"].startswith(f"{prefix}-golden-"):
            sagemaker.delete_model(ModelName=model["ModelName"])
            say(f"deleted model {model['ModelName']}")


def remove_sagemaker_logs(logs, endpoint_name: str, prefix: str, say: Callable[[str], None]) -> None:
    """The endpoint's log group, and this stack's streams in the account's shared training-job log group."""
    for group in (f"/aws/sagemaker/Endpoints/{endpoint_name}", f"/aws/sagemaker/Endpoints/{endpoint_name}-serverless"):
        try:
            logs.delete_log_group(logGroupName=group)
            say(f"deleted log group {group}")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
    group = "/aws/sagemaker/TrainingJobs"
    try:
        streams = [
            stream["logStreamName"]
            for stream in _pages(
                logs, "describe_log_streams", "logStreams", logGroupName=group, logStreamNamePrefix=f"{prefix}-"
            )
        ]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        streams = []
    for stream in streams:
        logs.delete_log_stream(logGroupName=group, logStreamName=stream)
    if streams:
        say(f"deleted {len(streams)} training log stream(s) of {prefix}-* in {group}")


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


def destroy(
    clients: dict,
    stack_name: str,
    sam_delete: Callable[[str], int],
    say=print,
    capture_grace_seconds: float = 120,
    poll_seconds: float = 15,
) -> int:
    endpoint_name, bucket, prefix = stack_facts(clients["cloudformation"], stack_name)
    stop_running_jobs(clients["sagemaker"], prefix, say, poll_seconds)
    remove_scaling(clients["application-autoscaling"], clients["cloudwatch"], endpoint_name, say)
    # EndpointKind=serverless has an endpoint of its own name (no capture, no scaling); either kind may exist
    serverless = f"{endpoint_name}-serverless"
    remove_endpoint(clients["sagemaker"], serverless, say, capture_grace_seconds=0, poll_seconds=poll_seconds)
    remove_endpoint(clients["sagemaker"], endpoint_name, say, capture_grace_seconds, poll_seconds)
    remove_scoring_models(clients["sagemaker"], prefix, say)
    remove_sagemaker_logs(clients["logs"], endpoint_name, prefix, say)
    empty_bucket(clients["s3"], bucket, say)
    access_logs = access_logs_bucket(clients["cloudformation"], stack_name)
    if access_logs:  # ArtifactsBucketAccessLogs=true: the log bucket must be empty for sam delete too
        empty_bucket(clients["s3"], access_logs, say)
    return sam_delete(stack_name)


def access_logs_bucket(cloudformation, stack_name: str) -> str | None:
    """The stack's access-log bucket, when it keeps one (output ``AccessLogsBucketName``)."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs.get("AccessLogsBucketName")


def run_sam_delete(stack_name: str) -> int:
    sam = str(Path(sys.executable).with_name("sam"))
    return subprocess.run([sam, "delete", "--stack-name", stack_name, "--no-prompts"]).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", default="dog-breed-classifier")
    parser.add_argument("--yes", action="store_true", help="do not ask before deleting")
    parser.add_argument(
        "--capture-grace-seconds",
        type=float,
        default=120,
        help="after the endpoint is gone, wait this long for data capture's last files before emptying the bucket",
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=15, help="how often to look whether jobs stopped and the endpoint went"
    )
    args = parser.parse_args(argv)
    if args.capture_grace_seconds < 0:
        parser.error("--capture-grace-seconds must be 0 or more")
    if args.poll_seconds <= 0:
        parser.error("--poll-seconds must be more than 0")
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
        "logs": session.client("logs"),
    }
    try:
        return destroy(
            clients,
            args.stack_name,
            run_sam_delete,
            capture_grace_seconds=args.capture_grace_seconds,
            poll_seconds=args.poll_seconds,
        )
    except (ClientError, TimeoutError) as exc:
        print(f"destroy stopped: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
