"""The pipeline's own definition (statemachine/pipeline.asl.json), executed offline through every branch.

moto's Step Functions interpreter runs the file as deployed (poll intervals 1 s); its Lambda tasks run the
template's functions, its SageMaker tasks reach moto, and the jobs and endpoints they poll change state as
real local training and model containers progress. Nothing here is stubbed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from offline_stack.aws_rules.iam import Policy, Roles
from offline_stack.aws_rules.step_functions import EVENTS_PER_STATE, HISTORY_EVENT_LIMIT, events_by_state_type
from offline_stack.demo_steps import QUICK_HYPERPARAMETERS, write_demo_data
from offline_stack.sam_template import PROJECT_ROOT
from offline_stack.stack import OfflineStack
from offline_stack.synthetic_images import CLASS_FOLDERS, class_image, encoded_image
from ops.captured_requests import captured_requests
from tests.support.artifacts import add_file, broken_package

PHOTOS = PROJECT_ROOT / "tests" / "data" / "photos"

GOOD_TRAINING = {"hyperparameters": QUICK_HYPERPARAMETERS, "instance_count": 1, "instance_type": "ml.m5.xlarge"}
# Learns nothing: test accuracy stays near chance (1 in 4 generated breeds)
POOR_TRAINING = {**GOOD_TRAINING, "hyperparameters": {**QUICK_HYPERPARAMETERS, "epochs": 1, "learning-rate": 1e-9}}
GATE = {"GateMinimumTestAccuracy": "0.5", "GateMaximumAccuracyRegression": "0.02"}
# Updates go through the guardrails as in AWS, with a bake of seconds instead of minutes
# Five instances: the canary is one of them (20 %); offline one container serves the whole fleet
ROLLOUT = {
    "RolloutCanaryPercent": "20",
    "RolloutBakeSeconds": "2",
    "DataCapturePercent": "100",
    "EndpointInstanceCount": "5",
    # the offline operator (the account's root) reads the captured requests back: make captured
    "CapturedRequestReaderArns": "arn:aws:iam::123456789012:root",
}
AWS_CLI = PROJECT_ROOT / ".venv-awscli" / "bin" / "aws"  # installed by make setup
BROKEN_TRANSFORM = b"\n\ndef transform_fn(*arguments, **options):\n    raise RuntimeError('a bad release')\n"


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with OfflineStack(
        tmp_path_factory.mktemp("pipeline"),
        log=quiet,
        quiet_functions=True,
        max_hosts=1,
        parameter_overrides=GATE | ROLLOUT,
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


def with_a_release_note(artifact: bytes) -> bytes:
    """The same model with one more file: other bytes (another content address, another release), same answers."""
    archive = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as good,
        tarfile.open(fileobj=archive, mode="w:gz") as tar,
    ):
        for member in good.getmembers():
            tar.addfile(member, good.extractfile(member) if member.isfile() else None)
        add_file(tar, "RELEASE-NOTE.txt", b"the same weights, released again")
    return archive.getvalue()


def approved_package(stack, name: str, artifact: bytes) -> str:
    """``artifact`` registered as an Approved version, as a person releases one (``make register-model``)."""
    return stack.register_model(artifact, f"released by hand: {name}")


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
    print(f"\ngate, accepted: {registered['ApprovalDescription']}")
    model_data_url = registered["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    # And the package's model is a write-once copy of the judged bytes, named by their SHA-256 (what the deploy
    # function and a promotion prove the bytes against), not the job's mutable output key
    digest = registered["CustomerMetadataProperties"]["artifact_sha256"]
    assert model_data_url == f"s3://{stack.bucket}/models/sha256/{digest}/model.tar.gz"
    bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
    artifact = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert digest == hashlib.sha256(artifact).hexdigest()
    # And it records which serving code those bytes hold: the SHA-256 of the code/inference.py the endpoint runs
    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as archive:
        serving_code = archive.extractfile("code/inference.py").read()
    assert registered["CustomerMetadataProperties"]["serving_code_sha256"] == hashlib.sha256(serving_code).hexdigest()
    trained = registered["CustomerMetadataProperties"]["trained_model_data_url"]
    assert trained.endswith("/output/model.tar.gz") and trained.split("/", 3)[3].startswith("training-output/")
    # And the endpoint serves that model's config
    assert serving_config(stack) == released.output["deployment"]["endpoint_config_name"]


def test_a_candidate_below_the_threshold_is_rejected_and_the_serving_model_stays(stack, released):
    serving = serving_config(stack)
    execution = stack.pipeline.run({"training": POOR_TRAINING}, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "CandidateRejected")
    assert "rejected by threshold" in execution.cause and "< 0.5000" in execution.cause
    print(f"\ngate, rejected by threshold: {execution.cause}")
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
    print(f"\ngate, rejected by regression: {execution.cause}")
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
    print(f"\ngate, overridden: {release.output['candidate']['reason']}; now serving {candidate}")
    assert serving_config(stack) == release.output["deployment"]["endpoint_config_name"]


def test_a_release_that_cannot_start_is_rolled_back_and_the_old_model_keeps_serving(stack, released):
    serving = serving_config(stack)
    execution = stack.pipeline.run({"release_model_package_arn": broken_package(stack, "broken-update")}, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "EndpointUpdateRolledBack")
    endpoint = stack.sagemaker.describe_endpoint(EndpointName=stack.template.parameters["EndpointName"])
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", serving)
    assert "did not start" in endpoint["FailureReason"]


def test_a_training_job_that_fails_ends_the_pipeline_with_its_failure_reason(stack):
    # class folders but no train/ valid/: the job starts, train.py says so and exits
    execution = stack.pipeline.run({"training": {**GOOD_TRAINING, "data_prefix": "data/train/"}}, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "TrainingJobFailed")
    assert "exited with code" in execution.cause
    assert "JudgeCandidate" not in execution.states


@pytest.mark.parametrize(
    "data_prefix",
    [
        "data/no-such-split/",  # nothing under the prefix
        "no-such-data/",  # outside what the execution role may list
    ],
)
def test_a_channel_with_nothing_the_role_can_list_is_refused_when_the_job_is_created(stack, data_prefix):
    # CreateTrainingJob itself refuses it (a ValidationException, no job is created): the pipeline fails at its
    # first step with AWS's words, never reaching a training job (aws_rules/sagemaker.py, empty_channel_on_create)
    execution = stack.pipeline.run({"training": {**GOOD_TRAINING, "data_prefix": data_prefix}}, say=quiet)
    assert (execution.status, execution.error) == ("FAILED", "AwsRequestRefusedError")
    assert "No S3 objects found under S3 URL" in execution.cause and data_prefix in execution.cause
    assert "s3:ListBucket" in execution.cause
    assert "WaitForTraining" not in execution.states


def test_the_interpreter_calls_as_the_state_machines_role_and_meets_its_refusals(stack):
    # Step Functions calls each task as the state machine's role; offline, the control plane holds the
    # interpreter's signed requests to that role's policy, so a statement missing from it fails the execution
    # as it would in AWS (every other execution here runs as the role with its whole policy)
    policy = json.loads((PROJECT_ROOT / "policies" / "pipeline-state-machine.json").read_text())
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "InvokeThePipelineFunctions"]
    held = [
        dataclasses.replace(role, policy=Policy([stack.template.resolve(policy)]))
        if role.logical_id == "TrainingPipelineRole"
        else role
        for role in stack.roles.by_key.values()
    ]
    stack.control_plane.enforce_roles(Roles(held))
    try:
        execution = stack.pipeline.run({"training": GOOD_TRAINING}, say=quiet, timeout_seconds=120)
    finally:
        stack.control_plane.enforce_roles(stack.roles)
    assert (execution.status, execution.states[-1]) == ("FAILED", "PipelineFailed"), execution.states
    assert "TrainingPipelineRole" in execution.cause and "lambda:InvokeFunction" in execution.cause, execution.cause
    assert "AccessDenied" in f"{execution.error} {execution.cause}"
    assert "WaitForTraining" not in execution.states


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


def test_a_release_that_answers_errors_under_traffic_is_rolled_back_by_its_alarm_within_the_canary(stack, released):
    endpoint_name = stack.template.parameters["EndpointName"]
    serving = serving_config(stack)
    model_data = stack.sagemaker.describe_model(ModelName=serving)["PrimaryContainer"]["ModelDataUrl"]
    bad_release = broken_package(stack, "errors-under-traffic", serving_model_data=model_data)
    runtime = stack.control_plane.session().client("sagemaker-runtime", endpoint_url=stack.runtime.url)
    image = (PHOTOS / "dog.128.jpg").read_bytes()
    outcomes: list[tuple[float, bool]] = []
    stop = threading.Event()

    def clients() -> None:  # continuous traffic, as the API's callers would send it
        while not stop.is_set():
            try:
                runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType="image/jpeg", Body=image)
                outcomes.append((time.monotonic(), True))
            except runtime.exceptions.ModelError:
                outcomes.append((time.monotonic(), False))

    traffic = threading.Thread(target=clients)
    traffic.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        execution = stack.pipeline.run({"release_model_package_arn": bad_release}, say=quiet)
        time.sleep(1)
    finally:
        stop.set()
        traffic.join()
    # Then the alarm rolled the update back, and the old model serves
    assert (execution.status, execution.error) == ("FAILED", "EndpointUpdateRolledBack")
    endpoint = stack.sagemaker.describe_endpoint(EndpointName=endpoint_name)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", serving)
    assert "went to ALARM" in endpoint["FailureReason"] and "model-failures" in endpoint["FailureReason"]
    assert endpoint["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    # And clients saw failures only from the canary's share of traffic, only while it took traffic
    rollout = stack.endpoints.rollouts[-1]
    assert rollout.config_name != serving and "model-failures" in rollout.outcome
    during = [ok for at, ok in outcomes if rollout.canary_started <= at <= rollout.ended]
    failures = during.count(False)
    canary_share = int(ROLLOUT["RolloutCanaryPercent"]) / 100
    assert 0 < failures <= canary_share * len(during) + 1, (failures, len(during))
    assert all(ok for at, ok in outcomes if at > rollout.ended + 0.5), "after the rollback every request succeeds"
    print(
        f"\nrollback under traffic: {len(outcomes)} requests sent, {[ok for _, ok in outcomes].count(False)} failed, "
        f"all {failures} while the canary took {canary_share:.0%} of traffic ({len(during)} requests then); "
        f"rolled back {rollout.ended - rollout.canary_started:.2f} s after the canary started "
        f"({rollout.ended - started:.1f} s after the release began, container start included)"
    )


def test_bad_images_sent_during_a_bake_do_not_roll_back_a_good_release(stack, released):
    # InvocationModelErrors counts the 4xx the model answers to a client's bad image; the rollback alarm must not
    endpoint_name = stack.template.parameters["EndpointName"]
    serving = serving_config(stack)
    model_data = stack.sagemaker.describe_model(ModelName=serving)["PrimaryContainer"]["ModelDataUrl"]
    bucket, _, key = model_data.removeprefix("s3://").partition("/")
    serving_bytes = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    good_release = approved_package(stack, "good-release", with_a_release_note(serving_bytes))
    runtime = stack.control_plane.session().client("sagemaker-runtime", endpoint_url=stack.runtime.url)
    client_errors: list[int] = []
    stop = threading.Event()

    def careless_clients() -> None:  # uploads that are not images, all through the bake
        while not stop.is_set():
            try:
                runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType="image/jpeg", Body=b"not a photo")
            except runtime.exceptions.ModelError as error:
                client_errors.append(error.response["OriginalStatusCode"])
            time.sleep(0.05)

    traffic = threading.Thread(target=careless_clients)
    traffic.start()
    try:
        execution = stack.pipeline.run({"release_model_package_arn": good_release}, say=quiet)
    finally:
        stop.set()
        traffic.join()
    threshold = int(stack.template.parameters["RollbackErrorsPerMinute"])
    assert len(client_errors) > threshold and all(400 <= status < 500 for status in client_errors)
    # Then the release went through, and the new model serves
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert serving_config(stack) != serving and stack.endpoints.rollouts[-1].outcome == "completed"
    # And CloudWatch counted them as InvocationModelErrors, all of them 4xx (what the old alarm tripped on)
    stack.endpoints.metrics.flush()  # what is buffered reaches CloudWatch within a second anyway
    counted = {
        metric: sum(
            point["Sum"]
            for point in stack.cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=[
                    {"Name": "EndpointName", "Value": endpoint_name},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
                StartTime=datetime.now(UTC) - timedelta(hours=1),
                EndTime=datetime.now(UTC) + timedelta(minutes=1),
                Period=3600,
                Statistics=["Sum"],
            )["Datapoints"]
        )
        for metric in ("InvocationModelErrors", "Invocation4XXErrors")
    }
    assert counted["InvocationModelErrors"] >= len(client_errors) > threshold
    assert counted["Invocation4XXErrors"] >= len(client_errors)


def test_data_capture_keeps_what_the_endpoint_was_asked_and_what_it_answered(stack, released):
    endpoint_name = stack.template.parameters["EndpointName"]
    runtime = stack.control_plane.session().client("sagemaker-runtime", endpoint_url=stack.runtime.url)
    image = (PHOTOS / "cat.70.jpg").read_bytes()
    answers = [
        json.loads(
            runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType="image/jpeg", Body=image)["Body"].read()
        )
        for _ in range(3)
    ]
    # Then `make captured` (ops/captured_requests.py) reads them back from the bucket, with their predictions
    deadline, found = time.monotonic() + 15, []
    while time.monotonic() < deadline and not (found and found[0].input_bytes == len(image)):
        found = captured_requests(stack.s3, stack.bucket, endpoint_name, limit=3)
        time.sleep(0.5)
    assert [(r.content_type, r.input_bytes) for r in found] == [("image/jpeg", len(image))] * 3
    assert found[0].predictions == answers[-1]["predictions"]
    config = stack.sagemaker.describe_endpoint_config(EndpointConfigName=serving_config(stack))["DataCaptureConfig"]
    assert config["InitialSamplingPercentage"] == 100
    assert config["DestinationS3Uri"] == f"s3://{stack.bucket}/data-capture"


def test_the_aws_cli_shows_the_registry_and_the_guardrails_of_the_offline_stack(stack, released):
    # Given the real AWS CLI pointed at the offline control plane
    environment = {**os.environ, **stack.control_plane.environment()}
    endpoint_name = stack.template.parameters["EndpointName"]

    def aws(*arguments: str) -> dict:
        command = [str(AWS_CLI), "--endpoint-url", stack.control_plane.url, "--output", "json", *arguments]
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    packages = aws("sagemaker", "list-model-packages", "--model-package-group-name", endpoint_name)
    statuses = {package["ModelApprovalStatus"] for package in packages["ModelPackageSummaryList"]}
    assert {"Approved", "Rejected"} <= statuses
    endpoint = aws("sagemaker", "describe-endpoint", "--endpoint-name", endpoint_name)
    guardrails = endpoint["LastDeploymentConfig"]
    canary = guardrails["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"]
    assert canary == {"Type": "INSTANCE_COUNT", "Value": 1}  # 20 % of 5 instances
    alarms = {alarm["AlarmName"] for alarm in guardrails["AutoRollbackConfiguration"]["Alarms"]}
    assert alarms == {f"{endpoint_name}-model-failures", f"{endpoint_name}-latency-p99"}
    assert endpoint["DataCaptureConfig"]["EnableCapture"] is True


def test_each_state_writes_the_history_events_the_budget_counts(stack, released):
    # offline_stack/aws_rules/step_functions.py counts the training poll loop's events from these numbers
    types = {name: state["Type"] for name, state in json.loads(stack.pipeline.definition)["States"].items()}
    runs = events_by_state_type(released.history, types)
    for (kind, written), count in runs.items():
        if kind in ("Succeed", "Fail"):  # the end of the execution: not in the loop the budget counts
            continue
        assert written == EVENTS_PER_STATE[kind], f"{count} run(s) of a {kind} state wrote {written} events"
    assert {kind for kind, _ in runs} >= {"Task", "Wait", "Choice", "Pass"}
    print(f"\nhistory of a whole release offline: {len(released.history)} events ({HISTORY_EVENT_LIMIT} allowed)")


def test_a_candidate_perfect_on_its_test_split_but_wrong_on_the_golden_photos_is_rejected(stack, released):
    # Given a golden set in the bucket (make upload-golden) that the model has never seen: generated shapes filed
    # under the next breed's folder, so a model that learnt the shapes names every one wrong, and the real photos
    # under the first breed
    rng = random.Random(11)
    golden = {
        f"golden/{CLASS_FOLDERS[(index + 1) % 4]}/shape-{index}-{n}.jpg": encoded_image(class_image(index, rng))
        for index in range(4)
        for n in range(2)
    }
    golden |= {f"golden/{CLASS_FOLDERS[0]}/{path.name}": path.read_bytes() for path in sorted(PHOTOS.iterdir())}
    golden = {key: body for key, body in golden.items() if key.endswith((".jpg", ".png"))}
    for key, body in golden.items():
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
    serving = serving_config(stack)
    try:
        # When a good model is trained (its job logs a near-perfect test accuracy on its own test split)
        execution = stack.pipeline.run({"training": GOOD_TRAINING}, say=quiet)
    finally:
        for key in golden:
            stack.s3.delete_object(Bucket=stack.bucket, Key=key)
    # Then the gate scored it on the golden photos, through Batch Transform, and refused it there
    assert (execution.status, execution.error) == ("FAILED", "CandidateRejected"), execution.cause
    assert "rejected on the golden set: top-1" in execution.cause and "< threshold 0.5000" in execution.cause
    print(f"\ngate, rejected on the golden set: {execution.cause}")
    assert {"WaitForGoldenScores", "JudgeOnGoldenSet"} <= set(execution.states)
    rejected = stack.sagemaker.list_model_packages(
        ModelPackageGroupName=stack.template.parameters["EndpointName"],
        ModelApprovalStatus="Rejected",
        SortBy="CreationTime",
        SortOrder="Descending",
    )["ModelPackageSummaryList"][0]
    recorded = package(stack, rejected["ModelPackageArn"])["CustomerMetadataProperties"]
    assert float(recorded["test:accuracy"]) >= 0.9, "its own log said it was (nearly) perfect"
    assert float(recorded["golden:accuracy"]) < 0.5 and recorded["golden:photos"] == str(len(golden))
    assert "golden:serving_accuracy" in recorded, "the serving model was scored on the same photos"
    # And the answers are the container's own, one .out per photo, written as the scoring role
    jobs = stack.sagemaker.list_transform_jobs(NameContains="-golden-")["TransformJobSummaries"]
    assert {job["TransformJobStatus"] for job in jobs} == {"Completed"} and len(jobs) == 2
    for job in jobs:
        answers = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"golden-scores/{job['TransformJobName']}/")
        assert len(answers["Contents"]) == len(golden)
    # And the endpoint still serves the model it served
    assert serving_config(stack) == serving


def test_no_principal_but_the_scoring_role_can_write_answers_the_gate_reads(stack):
    # Forged answers under golden-scores/ would let a weak candidate pass: the bucket policy refuses every writer but
    # Batch Transform's role, the operator (the account itself) included, and the training jobs' role
    forged = b'{"predictions": [{"breed": "Affenpinscher", "class_index": 0, "probability": 1.0}]}'
    training = stack.control_plane.client_as(stack.roles.by_logical_id["SageMakerExecutionRole"], "s3")
    for writer in (stack.s3, training):
        with pytest.raises(ClientError, match="AccessDenied"):
            writer.put_object(
                Bucket=stack.bucket, Key="golden-scores/dog-breeds-golden-x-y/001.A/a.jpg.out", Body=forged
            )
    scoring = stack.control_plane.client_as(stack.roles.by_logical_id["SageMakerGoldenScoringRole"], "s3")
    scoring.put_object(Bucket=stack.bucket, Key="golden-scores/dog-breeds-golden-x-y/001.A/a.jpg.out", Body=forged)
