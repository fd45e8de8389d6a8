"""`make destroy` end to end against moto on loopback: after it, nothing of the stack's is left anywhere.

The stack is a stand-in created in moto's CloudFormation (its bucket, its EndpointName parameter and
ArtifactsBucketName output); the endpoint, configs, models and auto-scaling are made by the real
DeployEndpointFunction and RegisterAutoscalingFunction; `sam delete` itself runs against moto too.
"""

from __future__ import annotations

import json
import threading
import time

from offline_stack.control_plane import sagemaker_state
from ops.destroy import destroy, run_sam_delete
from tests.conftest import ENDPOINT_NAME, load_event

STACK = "destroy-test"
NAMES = ("cloudformation", "application-autoscaling", "cloudwatch", "sagemaker", "s3", "logs")
# Offline nothing needs time to settle: no grace for data capture, quick polls
QUICK = {"capture_grace_seconds": 0, "poll_seconds": 0.1}
STAND_IN_TEMPLATE = {
    "Parameters": {"EndpointName": {"Type": "String", "Default": ENDPOINT_NAME}},
    "Resources": {
        "ArtifactsBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": "destroy-test-artifacts", "VersioningConfiguration": {"Status": "Enabled"}},
        }
    },
    "Outputs": {"ArtifactsBucketName": {"Value": {"Ref": "ArtifactsBucket"}}},
}


def destroy_with_sam_delete(control_plane, monkeypatch) -> tuple[int, list[str]]:
    """``make destroy``'s run against the control plane, ``sam delete`` included (pointed at moto like every other
    client): its exit code and what it said."""
    for name, value in control_plane.environment().items():
        monkeypatch.setenv(name, value)
    names = ("cloudformation", "application-autoscaling", "cloudwatch", "sagemaker", "s3", "logs")
    said: list[str] = []
    code = destroy({name: control_plane.client(name) for name in names}, STACK, run_sam_delete, said.append, **QUICK)
    return code, said


def test_destroy_leaves_nothing_behind(control_plane, control_function, monkeypatch):
    # Given a stack whose versioned bucket holds objects, old versions and a delete marker
    cloudformation, s3 = control_plane.client("cloudformation"), control_plane.client("s3")
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(STAND_IN_TEMPLATE))
    # (moto's CloudFormation leaves VersioningConfiguration out; the real template's bucket is versioned)
    s3.put_bucket_versioning(Bucket="destroy-test-artifacts", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket="destroy-test-artifacts", Key="training-output/model.tar.gz", Body=body)
    s3.delete_object(Bucket="destroy-test-artifacts", Key="training-output/model.tar.gz")
    s3.put_object(Bucket="destroy-test-artifacts", Key="data/train/x.jpg", Body=b"jpeg")
    # And an endpoint with two models and auto-scaling, made by the pipeline's own functions
    with control_function("DeployEndpointFunction") as function:
        function.invoke(load_event("deploy-endpoint-approved.json"))
        function.invoke(load_event("deploy-endpoint-another-approved-on-c5.json"))
    with control_function("RegisterAutoscalingFunction") as function:
        function.invoke(load_event("register-autoscaling.json"))
    # And the serverless endpoint a switch of EndpointKind made beside it (each kind has its own name)
    with control_function("DeployEndpointFunction", ENDPOINT_KIND="serverless") as function:
        assert function.invoke(load_event("deploy-endpoint-approved.json"))["replaces"] is not None
    # When destroy runs (sam delete included, pointed at moto like every other client)
    code, said = destroy_with_sam_delete(control_plane, monkeypatch)
    # Then listing each service for the stack's names returns nothing
    assert code == 0, said
    sagemaker = control_plane.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    scaling = control_plane.client("application-autoscaling")
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert "destroy-test-artifacts" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    stacks = cloudformation.list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == STACK] == ["DELETE_COMPLETE"]
    assert any("emptied s3://destroy-test-artifacts (4 object" in line for line in said), said


def test_training_jobs_stay_as_history(control_plane, control_function, monkeypatch):
    cloudformation = control_plane.client("cloudformation")
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(STAND_IN_TEMPLATE))
    jobs_before = control_plane.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    names = ("cloudformation", "application-autoscaling", "cloudwatch", "sagemaker", "s3", "logs")
    destroy({name: control_plane.client(name) for name in names}, STACK, lambda stack: 0, lambda line: None, **QUICK)
    assert control_plane.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == jobs_before
    assert jobs_before, "the seeded control plane has a training job"


def test_running_jobs_are_stopped_and_awaited_before_the_bucket_is_emptied(control_plane):
    cloudformation = control_plane.client("cloudformation")
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(STAND_IN_TEMPLATE))
    (job,) = sagemaker_state().training_jobs.values()  # the seeded job, as if it were still training
    job.training_job_status = "InProgress"

    def sagemaker_stops_it() -> None:  # a stopped job uploads its model, then is Stopped
        while job.training_job_status != "Stopping":
            time.sleep(0.05)
        time.sleep(0.5)
        job.training_job_status = "Stopped"

    stopper = threading.Thread(target=sagemaker_stops_it)
    stopper.start()
    said: list[str] = []
    destroy({name: control_plane.client(name) for name in NAMES}, STACK, lambda stack: 0, said.append, **QUICK)
    stopper.join()
    assert job.training_job_status == "Stopped"
    stopping = next(i for i, line in enumerate(said) if line.startswith(f"stopping {job.training_job_name}"))
    emptied = next(i for i, line in enumerate(said) if line.startswith("emptied"))
    assert stopping < emptied


def test_every_page_of_configs_and_models_and_the_sagemaker_logs_of_the_stack_go(control_plane, control_function):
    cloudformation, sagemaker, logs = (control_plane.client(n) for n in ("cloudformation", "sagemaker", "logs"))
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(STAND_IN_TEMPLATE))
    with control_function("DeployEndpointFunction") as function:
        model = function.invoke(load_event("deploy-endpoint-approved.json"))["model_name"]
    for number in range(12):  # more than one page of SageMaker's listings (10)
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{ENDPOINT_NAME}-extra{number:02d}",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
    logs.create_log_group(logGroupName=f"/aws/sagemaker/Endpoints/{ENDPOINT_NAME}")
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    for stream in ("dog-breeds-run-1/algo-1", "dog-breeds-run-2/algo-1", "another-project-job/algo-1"):
        logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
    destroy({name: control_plane.client(name) for name in NAMES}, STACK, lambda stack: 0, lambda line: None, **QUICK)
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker")["logGroups"]]
    assert groups == ["/aws/sagemaker/TrainingJobs"]  # shared by every job of the account
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["another-project-job/algo-1"]


def test_a_stack_that_keeps_access_logs_has_its_log_bucket_emptied_too(control_plane, monkeypatch):
    # Given a stack with ArtifactsBucketAccessLogs=true: a second bucket holding the access logs
    cloudformation, s3 = control_plane.client("cloudformation"), control_plane.client("s3")
    template = json.loads(json.dumps(STAND_IN_TEMPLATE))
    template["Resources"]["AccessLogsBucket"] = {
        "Type": "AWS::S3::Bucket",
        "Properties": {"BucketName": "destroy-test-access-logs"},
    }
    template["Outputs"]["AccessLogsBucketName"] = {"Value": {"Ref": "AccessLogsBucket"}}
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    s3.put_object(Bucket="destroy-test-access-logs", Key="artifacts/2026-12-03-16-00-00-ABC", Body=b"a log line")
    # When destroy runs
    code, said = destroy_with_sam_delete(control_plane, monkeypatch)
    # Then both buckets were emptied and are gone with the stack
    assert code == 0, said
    assert any("emptied s3://destroy-test-access-logs (1 object" in line for line in said), said
    assert "destroy-test-access-logs" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
