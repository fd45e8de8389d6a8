"""The pipeline's own definition (statemachine/pipeline.asl.json), executed offline through every branch.

moto's Step Functions interpreter runs the file as deployed (poll intervals 1 s); its Lambda tasks run the
template's functions, its SageMaker tasks reach moto, and the jobs and endpoints they poll change state as
real local training and model containers progress. Nothing here is stubbed.
"""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest

from local.demo import QUICK_HYPERPARAMETERS, write_demo_data
from local.offline_stack import OfflineStack

GOOD_TRAINING = {"hyperparameters": QUICK_HYPERPARAMETERS, "instance_count": 1, "instance_type": "ml.m5.xlarge"}
# Learns nothing: test accuracy stays near chance (1 in 4 generated breeds)
POOR_TRAINING = {**GOOD_TRAINING, "hyperparameters": {**QUICK_HYPERPARAMETERS, "epochs": 1, "learning-rate": 1e-9}}
GATE = {"GateMinimumTestAccuracy": "0.5", "GateMaximumAccuracyRegression": "0.02"}


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with OfflineStack(
        tmp_path_factory.mktemp("pipeline"), log=quiet, quiet_functions=True, max_hosts=1, parameter_overrides=GATE
    ) as stack:
        write_demo_data(stack, None, say=quiet)
        yield stack


@pytest.fixture(scope="module")
def released(stack):
    """The happy path, once: a good model trained, registered, approved, deployed and scaled."""
    execution = stack.pipeline.run({"training": GOOD_TRAINING}, say=quiet, timeout_seconds=600)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    return execution


def package(stack, arn: str) -> dict:
    return stack.sagemaker.describe_model_package(ModelPackageName=arn)


def serving_config(stack) -> str:
    return stack.sagemaker.describe_endpoint(EndpointName=stack.template.parameters["EndpointName"])[
        "EndpointConfigName"
    ]


def broken_package(stack, name: str) -> str:
    """An approved package whose model cannot load (a model.pth that is not one): a bad release, on purpose."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        junk = b"not a model"
        info = tarfile.TarInfo("model.pth")
        info.size = len(junk)
        tar.addfile(info, io.BytesIO(junk))
    key = f"releases/{name}/model.tar.gz"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=archive.getvalue())
    group = stack.template.parameters["EndpointName"]
    if not stack.sagemaker.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]:
        stack.sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = stack.sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": "inference-image", "ModelDataUrl": f"s3://{stack.bucket}/{key}"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    return arn


def test_a_first_release_that_cannot_start_leaves_the_endpoint_failed_with_its_reason(stack):
    # Runs first (file order): the endpoint does not exist yet. moto's backends are per process, so a second
    # offline stack in this module would share them; this one starts from an empty control plane instead.
    execution = stack.pipeline.run({"release_model_package_arn": broken_package(stack, "broken-create")}, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "EndpointFailed")
    assert "did not start" in execution.cause
    endpoint = stack.sagemaker.describe_endpoint(EndpointName=stack.template.parameters["EndpointName"])
    assert endpoint["EndpointStatus"] == "Failed"


def test_a_good_model_is_registered_approved_deployed_and_scaled(stack, released):
    # Then every step ran in the file's order, and the candidate went through the gate
    for state in ("StartTraining", "JudgeCandidate", "GateDecision", "DeployEndpoint", "RegisterAutoscaling", "Done"):
        assert state in released.states
    candidate = released.output["candidate"]
    registered = package(stack, candidate["model_package_arn"])
    # And the registry holds the version, approved, with the job's test metrics and the gate's reasons
    assert registered["ModelApprovalStatus"] == "Approved"
    assert float(registered["CustomerMetadataProperties"]["test:accuracy"]) >= 0.5
    assert "approved: test accuracy" in registered["ApprovalDescription"]
    assert registered["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("/output/model.tar.gz")
    # And the endpoint serves that model's config
    assert serving_config(stack) == released.output["deployment"]["endpoint_config_name"]


def test_a_candidate_below_the_threshold_is_rejected_and_the_serving_model_stays(stack, released):
    serving = serving_config(stack)
    execution = stack.pipeline.run({"training": POOR_TRAINING}, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "CandidateRejected")
    assert "rejected by threshold" in execution.cause and "< 0.5000" in execution.cause
    assert "DeployEndpoint" not in execution.states[execution.states.index("JudgeCandidate") :]
    rejected = stack.sagemaker.list_model_packages(
        ModelPackageGroupName=stack.template.parameters["EndpointName"], ModelApprovalStatus="Rejected"
    )["ModelPackageSummaryList"]
    assert rejected, "the rejected candidate is in the registry, marked Rejected"
    assert serving_config(stack) == serving


def test_a_candidate_worse_than_the_serving_model_is_rejected_then_a_person_can_override(stack, released):
    # Given a gate whose threshold any model passes (sam deploy --parameter-overrides GateMinimumTestAccuracy=0)
    stack.update_parameters({"GateMinimumTestAccuracy": "0"})
    try:
        execution = stack.pipeline.run({"training": POOR_TRAINING}, say=quiet)
    finally:
        stack.update_parameters(GATE)
    # Then the candidate is rejected for regressing against the model the endpoint serves, named in the cause
    assert (execution.status, execution.error) == ("FAILED", "CandidateRejected")
    assert "rejected by regression" in execution.cause
    assert released.output["candidate"]["model_package_arn"] in execution.cause
    summaries = stack.sagemaker.list_model_packages(
        ModelPackageGroupName=stack.template.parameters["EndpointName"], SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    candidate = summaries[0]["ModelPackageArn"]
    assert package(stack, candidate)["ModelApprovalStatus"] == "Rejected"
    # When a person approves it (aws sagemaker update-model-package) and releases it through the pipeline
    stack.sagemaker.update_model_package(
        ModelPackageArn=candidate, ModelApprovalStatus="Approved", ApprovalDescription="override: needed for a demo"
    )
    release = stack.pipeline.run({"release_model_package_arn": candidate}, say=quiet)
    # Then it is deployed without training, and the override is recorded on the package
    assert release.status == "SUCCEEDED", (release.error, release.cause)
    assert "StartTraining" not in release.states and "ReleaseApprovedPackage" in release.states
    assert package(stack, candidate)["CustomerMetadataProperties"]["released_by"] == "override"
    assert serving_config(stack) == release.output["deployment"]["endpoint_config_name"]


def test_a_release_that_cannot_start_is_rolled_back_and_the_old_model_keeps_serving(stack, released):
    serving = serving_config(stack)
    execution = stack.pipeline.run({"release_model_package_arn": broken_package(stack, "broken-update")}, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "EndpointUpdateRolledBack")
    endpoint = stack.sagemaker.describe_endpoint(EndpointName=stack.template.parameters["EndpointName"])
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", serving)
    assert "did not start" in endpoint["FailureReason"]


def test_a_training_job_that_fails_ends_the_pipeline_with_its_failure_reason(stack):
    execution = stack.pipeline.run({"training": {**GOOD_TRAINING, "data_prefix": "no-such-data/"}}, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "TrainingJobFailed")
    assert "exited with code" in execution.cause
    assert "JudgeCandidate" not in execution.states


def test_a_training_job_stopped_by_a_person_ends_the_pipeline_as_stopped(stack):
    arn = stack.pipeline.start({"training": GOOD_TRAINING})
    deadline = time.monotonic() + 60
    job = None
    while not job and time.monotonic() < deadline:
        history = stack.pipeline.sfn.get_execution_history(executionArn=arn)["events"]
        started = [
            e
            for e in history
            if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "StartTraining"
        ]
        job = started and json.loads(started[0]["stateExitedEventDetails"]["output"])["started"]["training_job_name"]
        time.sleep(0.2)
    assert job, "the pipeline started a training job"
    # When a person stops it (aws sagemaker stop-training-job)
    stack.sagemaker.stop_training_job(TrainingJobName=job)
    execution = stack.pipeline.follow(arn, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "TrainingJobStopped")
    assert stack.sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Stopped"
