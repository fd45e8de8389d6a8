"""The control-plane functions against moto in server mode on loopback, as template.yaml wires them."""

from __future__ import annotations

import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from offline_stack.sam_template import SamTemplate
from offline_stack.sample_events import OFFLINE_BUCKET, SAMPLE_PACKAGES, SAMPLE_TRAINING_JOB
from tests.conftest import ENDPOINT_NAME, TEMPLATE_ROLES, load_event
from tests.event_expectations import CONTROL_EVENTS, EXPECTATIONS
from tests.support.control_outcomes import assert_control_outcome, code_channel

IMAGE_PREFIX = "763104351884.dkr.ecr.us-east-1.amazonaws.com/"


@pytest.mark.parametrize("event_name", CONTROL_EVENTS)
def test_control_event_gives_the_expected_outcome(event_name, control_function, control_plane):
    expected = EXPECTATIONS[event_name]
    event = load_event(event_name)
    with control_function(expected.function) as function:
        if expected.error_type:
            with pytest.raises(Exception) as refusal:
                function.invoke(event)
            # The refusal is the declared type and names what was wrong in the event
            assert type(refusal.value).__name__ == expected.error_type
            assert any(field in str(refusal.value) for field in event)
        else:
            assert_control_outcome(expected.function, event, function.invoke(event), control_plane)


def test_bad_event_names_every_problem(control_function):
    with control_function("StartTrainingFunction") as function, pytest.raises(Exception) as refusal:
        function.invoke(load_event("start-training-bad.json"))
    message = str(refusal.value)
    assert "unknown field 'colour'" in message
    assert "unknown hyperparameter(s) ['lr']" in message
    assert "instance_count: must be a whole number from 1 to 100" in message


def test_start_training_creates_the_job_with_the_original_defaults(control_function, control_plane):
    with control_function("StartTrainingFunction") as function:
        result = function.invoke(load_event("start-training.json"))
    job = control_plane.client("sagemaker").describe_training_job(TrainingJobName=result["training_job_name"])
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 6
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE_PREFIX + "pytorch-training:2.8.0-cpu-py312"
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert job["HyperParameters"]["epochs"] == "5" and job["HyperParameters"]["learning-rate"] == "0.01"
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{OFFLINE_BUCKET}/data/"
    assert job["RoleArn"].endswith(":role/dog-breed-classifier/dog-breed-classifier-SageMakerExecutionRole")
    assert result["training_job_name"].startswith("dog-breeds-")


def test_two_starts_make_two_uniquely_named_jobs(control_function, control_plane):
    with control_function("StartTrainingFunction") as function:
        names = {function.invoke(load_event("start-training.json"))["training_job_name"] for _ in range(2)}
    assert len(names) == 2


def test_without_source_jobs_run_the_code_deployed_with_the_function_stored_once(control_function, control_plane):
    # Given the artifacts bucket versioned, as the template makes it
    s3 = control_plane.client("s3")
    s3.put_bucket_versioning(Bucket=OFFLINE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    # When two jobs start from events that name no training code
    with control_function("StartTrainingFunction") as function:
        names = [function.invoke({})["training_job_name"] for _ in range(2)]
    sagemaker = control_plane.client("sagemaker")
    sources = {code_channel(sagemaker.describe_training_job(TrainingJobName=name)) for name in names}
    # Then both run the deployed code (training_jobs/ of this checkout) from one content address, written once
    assert len(sources) == 1
    source = sources.pop()
    key = source.removeprefix(f"s3://{OFFLINE_BUCKET}/")
    assert_control_outcome("StartTrainingFunction", {}, {"training_job_name": names[0]}, control_plane)
    versions = s3.list_object_versions(Bucket=OFFLINE_BUCKET, Prefix=key).get("Versions", [])
    assert len(versions) == 1


def test_a_function_deployed_without_its_training_code_says_so(control_function, tmp_path):
    with (
        control_function("StartTrainingFunction", TRAINING_CODE_DIR=str(tmp_path)) as function,
        pytest.raises(Exception) as refusal,
    ):
        function.invoke({})
    assert type(refusal.value).__name__ == "SettingsError"
    assert str(tmp_path) in str(refusal.value) and "train.py" in str(refusal.value)


def _deployed(control_plane, name=ENDPOINT_NAME):
    sagemaker = control_plane.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return endpoint, config, model


def test_deploy_of_an_approved_version_creates_model_config_and_endpoint(control_function, control_plane):
    with control_function("DeployEndpointFunction") as function:
        result = function.invoke(load_event("deploy-endpoint-approved.json"))
    endpoint, config, model = _deployed(control_plane)
    assert result["action"] == "created"
    assert endpoint["EndpointConfigName"] == result["endpoint_config_name"]
    variant = config["ProductionVariants"][0]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "AllTraffic",
        "ml.m5.large",
        1,
    )
    container = model["PrimaryContainer"]
    assert container["Image"] == IMAGE_PREFIX + "pytorch-inference:2.6.0-cpu-py312"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    package = control_plane.client("sagemaker").describe_model_package(ModelPackageName=SAMPLE_PACKAGES[0])
    assert container["ModelDataUrl"] == package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert container["ModelDataUrl"].startswith(f"s3://{OFFLINE_BUCKET}/models/sha256/")


def test_deploying_the_same_model_again_changes_nothing(control_function, control_plane):
    with control_function("DeployEndpointFunction") as function:
        first = function.invoke(load_event("deploy-endpoint-approved.json"))
        second = function.invoke(load_event("deploy-endpoint-approved.json"))
    sagemaker = control_plane.client("sagemaker")
    assert (first["action"], second["action"]) == ("created", "unchanged")
    assert first["endpoint_config_name"] == second["endpoint_config_name"]
    assert len(sagemaker.list_models()["Models"]) == 1
    assert len(sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_by_default_an_endpoint_keeps_nothing_of_its_requests(control_function, control_plane):
    with control_function("DeployEndpointFunction") as function:
        deployed = function.invoke(load_event("deploy-endpoint-approved.json"))
    config = control_plane.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=deployed["endpoint_config_name"]
    )
    assert not config.get("DataCaptureConfig")  # (moto answers {} for none)


def test_a_new_model_updates_the_existing_endpoint_blue_green(control_function, control_plane):
    sagemaker = control_plane.client("sagemaker")
    # (with data capture opted in at 5 %, as DataCapturePercent=5 deploys it)
    with control_function("DeployEndpointFunction", DATA_CAPTURE_PERCENT="5") as function:
        # Given an endpoint serving the first model
        first = function.invoke(load_event("deploy-endpoint-approved.json"))
        sent: list[dict] = []  # what the function asks of SageMaker (recorded, not stubbed: moto answers)
        function.module.sagemaker.client.meta.events.register(
            "provide-client-params.sagemaker.UpdateEndpoint", lambda params, **_: sent.append(dict(params))
        )
        # When another model (on another instance type) is deployed
        second = function.invoke(load_event("deploy-endpoint-another-approved-on-c5.json"))
    # Then a new config was made and the endpoint was updated to it, not deleted and re-created
    configs = {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]}
    assert second["action"] == "updated"
    assert configs == {first["endpoint_config_name"], second["endpoint_config_name"]}
    assert [
        (call["EndpointName"], call["EndpointConfigName"], call["RetainAllVariantProperties"]) for call in sent
    ] == [(ENDPOINT_NAME, second["endpoint_config_name"], True)]
    # with the template's guardrails: one instance has no canary (it would be the whole fleet), so all at once,
    # baking 600 s, rolled back by the stack's two alarms
    guardrails = sent[0]["DeploymentConfig"]
    routing = guardrails["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}
    alarms = [alarm["AlarmName"] for alarm in guardrails["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == [f"{ENDPOINT_NAME}-model-failures", f"{ENDPOINT_NAME}-latency-p99"]
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)["LastDeploymentConfig"] == guardrails
    # and data capture at the 5 % asked for, under data-capture/ in the project's bucket
    capture = sagemaker.describe_endpoint_config(EndpointConfigName=second["endpoint_config_name"])["DataCaptureConfig"]
    assert (capture["InitialSamplingPercentage"], capture["DestinationS3Uri"]) == (
        5,
        f"s3://{OFFLINE_BUCKET}/data-capture",
    )
    new_config = sagemaker.describe_endpoint_config(EndpointConfigName=second["endpoint_config_name"])
    assert new_config["ProductionVariants"][0]["InstanceType"] == "ml.c5.large"
    assert (
        sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)["EndpointConfigName"] == second["endpoint_config_name"]
    )


@pytest.mark.parametrize(
    "event",
    [
        {"model_data_url": f"s3://{OFFLINE_BUCKET}/training-output/{SAMPLE_TRAINING_JOB}/output/model.tar.gz"},
        {"training_job_name": SAMPLE_TRAINING_JOB},
    ],
)
def test_deploy_refuses_anything_but_a_registry_version_and_says_what_to_do(control_function, control_plane, event):
    with control_function("DeployEndpointFunction") as function, pytest.raises(Exception) as refusal:
        function.invoke(event)
    assert type(refusal.value).__name__ == "InvalidEventError"
    assert "deploys come from the model registry" in str(refusal.value)
    assert "release gate" in str(refusal.value) and "make register-model" in str(refusal.value)
    assert control_plane.client("sagemaker").list_models()["Models"] == []


def test_deploy_refuses_a_version_that_is_not_approved(control_function, control_plane):
    sagemaker = control_plane.client("sagemaker")
    sagemaker.update_model_package(ModelPackageArn=SAMPLE_PACKAGES[0], ModelApprovalStatus="Rejected")
    with control_function("DeployEndpointFunction") as function, pytest.raises(Exception) as refusal:
        function.invoke(load_event("deploy-endpoint-approved.json"))
    assert type(refusal.value).__name__ == "InvalidEventError"
    assert "is Rejected; only an Approved version deploys" in str(refusal.value)
    assert sagemaker.list_models()["Models"] == []


def _served_model(control_plane) -> tuple[str, str]:
    """(key, SHA-256) of the first sample version's model, as its registry version records them."""
    package = control_plane.client("sagemaker").describe_model_package(ModelPackageName=SAMPLE_PACKAGES[0])
    url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    return url.split(f"{OFFLINE_BUCKET}/", 1)[1], package["CustomerMetadataProperties"]["artifact_sha256"]


def test_no_one_overwrites_or_hides_a_model_so_a_new_instance_downloads_the_approved_bytes(control_plane):
    """The bucket policy refuses, to an administrator too, a write without If-None-Match and a delete by name under
    models/sha256/ (a conditional write finds the key taken): what a scale-out instance downloads, as the endpoint's
    role, keeps the digest the registry recorded."""
    s3 = control_plane.client("s3")  # the operator: an administrator of the account
    key, digest = _served_model(control_plane)
    with pytest.raises(ClientError, match="with an explicit deny in a resource-based policy"):
        s3.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=b"another model")
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=b"another model", IfNoneMatch="*")
    with pytest.raises(ClientError, match="explicit deny"):
        s3.delete_object(Bucket=OFFLINE_BUCKET, Key=key)
    endpoint_role = TEMPLATE_ROLES.by_logical_id["SageMakerEndpointRole"]
    downloaded = control_plane.client_as(endpoint_role, "s3").get_object(Bucket=OFFLINE_BUCKET, Key=key)["Body"]
    assert hashlib.sha256(downloaded.read()).hexdigest() == digest
    s3.put_object(Bucket=OFFLINE_BUCKET, Key="data/train/002.Afghan_hound/2.jpg", Body=b"a photo")  # data: no rule


@pytest.mark.parametrize("key", ["pretrained/efficientnet.pth", "code/training_jobs-" + "0" * 64 + "/sourcedir.tar.gz"])
def test_the_weights_and_the_training_code_are_written_once_by_anyone(control_plane, key):
    s3 = control_plane.client("s3")
    with pytest.raises(ClientError, match="explicit deny"):
        s3.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=b"bytes")
    s3.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=b"bytes", IfNoneMatch="*")
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=b"other bytes", IfNoneMatch="*")


def test_a_multi_object_delete_is_judged_key_by_key_and_answers_each(control_plane):
    """DeleteObjects naming a model by name, a model version and a data photo: S3 refuses the model's key alone (a
    delete marker would hide it) and deletes the rest, answering each key in the response."""
    s3 = control_plane.client("s3")
    key, _ = _served_model(control_plane)
    photo = "data/train/003.Airedale_terrier/3.jpg"
    s3.put_object(Bucket=OFFLINE_BUCKET, Key=photo, Body=b"a photo")
    weights = "pretrained/multi-delete.pth"
    # the seeded bucket is not versioned: an object's version id is "null" (a deployed stack's bucket is versioned)
    version = s3.put_object(Bucket=OFFLINE_BUCKET, Key=weights, Body=b"w", IfNoneMatch="*").get("VersionId", "null")
    answer = s3.delete_objects(
        Bucket=OFFLINE_BUCKET,
        Delete={"Objects": [{"Key": key}, {"Key": photo}, {"Key": weights, "VersionId": version}]},
    )
    assert [(e["Key"], e["Code"]) for e in answer.get("Errors", [])] == [(key, "AccessDenied")]
    assert sorted(d["Key"] for d in answer["Deleted"]) == sorted([photo, weights])
    assert s3.head_object(Bucket=OFFLINE_BUCKET, Key=key)["ContentLength"] > 0  # the model is still there


def test_only_the_training_role_writes_the_feature_cache_and_nobody_reads_captured_requests(control_plane):
    """A poisoned cache is refused by the job's digest check (test_feature_cache_training.py); before that, the
    bucket policy lets no principal but the training role write there, an administrator included. Captured
    requests (people's photos) are readable by nobody unless CapturedRequestReaderArns names them."""
    s3 = control_plane.client("s3")  # the operator: an administrator of the account
    features = "feature-cache/0123/extract-job/output/model.tar.gz"
    with pytest.raises(ClientError, match="with an explicit deny in a resource-based policy"):
        s3.put_object(Bucket=OFFLINE_BUCKET, Key=features, Body=b"forged features")
    training = control_plane.client_as(TEMPLATE_ROLES.by_logical_id["SageMakerExecutionRole"], "s3")
    training.put_object(Bucket=OFFLINE_BUCKET, Key=features, Body=b"extracted features")
    captured = f"data-capture/{ENDPOINT_NAME}/AllTraffic/2026/12/07/15/captured.jsonl"
    endpoint = control_plane.client_as(TEMPLATE_ROLES.by_logical_id["SageMakerEndpointRole"], "s3")
    endpoint.put_object(Bucket=OFFLINE_BUCKET, Key=captured, Body=b"{}")  # SageMaker writes them as this role
    with pytest.raises(ClientError, match="explicit deny"):
        s3.get_object(Bucket=OFFLINE_BUCKET, Key=captured)


def test_an_administrator_the_key_policy_does_not_name_reads_and_writes_no_object(control_plane):
    """Every object is encrypted with the stack's key, which only the stack's roles and ArtifactsKeyUserArns use:
    an administrator with s3:* whom the key policy does not name is refused by KMS (reading means changing the key
    policy first, which CloudTrail records); the metadata a HEAD returns needs no key."""
    kms, s3 = control_plane.client("kms"), control_plane.client("s3")
    unnamed = SamTemplate.load()  # ArtifactsKeyUserArns left empty
    key = unnamed.arn("ArtifactsKey")
    photo = "data/train/001.Affenpinscher/1.jpg"
    assert s3.head_object(Bucket=OFFLINE_BUCKET, Key=photo)["SSEKMSKeyId"] == key  # the bucket's default key
    named = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    unnamed_policy = unnamed.resolve(unnamed.resources["ArtifactsKey"]["Properties"]["KeyPolicy"])
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(unnamed_policy))
    try:
        refused = rf"not authorized to perform: kms:Decrypt on resource: {key} because no resource-based policy"
        with pytest.raises(ClientError, match=refused):
            s3.get_object(Bucket=OFFLINE_BUCKET, Key=photo)
        with pytest.raises(ClientError, match="not authorized to perform: kms:GenerateDataKey"):
            s3.put_object(Bucket=OFFLINE_BUCKET, Key="data/train/001.Affenpinscher/2.jpg", Body=b"another photo")
        assert s3.head_object(Bucket=OFFLINE_BUCKET, Key=photo)["ContentLength"] > 0
        # the training role (the stack's path) reads it
        training = control_plane.client_as(TEMPLATE_ROLES.by_logical_id["SageMakerExecutionRole"], "s3")
        assert training.get_object(Bucket=OFFLINE_BUCKET, Key=photo)["Body"].read() == b"a photo"
    finally:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=named)


def test_an_overwritten_model_object_is_not_deployed(control_function, control_plane):
    """An administrator removes the bucket policy and replaces an approved model's bytes: the digest read before
    CreateModel differs from the one its key and its version record, and nothing is created."""
    sagemaker, s3 = control_plane.client("sagemaker"), control_plane.client("s3")
    key, _ = _served_model(control_plane)
    s3.delete_bucket_policy(Bucket=OFFLINE_BUCKET)
    s3.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=b"another model")
    with control_function("DeployEndpointFunction") as function, pytest.raises(Exception) as refusal:
        function.invoke(load_event("deploy-endpoint-approved.json"))
    assert type(refusal.value).__name__ == "ModelIntegrityError"
    assert "the object was overwritten; not deployed" in str(refusal.value)
    assert sagemaker.list_models()["Models"] == []


def test_autoscaling_registers_target_tracking_per_minute_metric_idempotently(control_function, control_plane):
    with control_function("RegisterAutoscalingFunction") as function:
        function.invoke(load_event("register-autoscaling.json"))
        result = function.invoke(load_event("register-autoscaling.json"))
    scaling = control_plane.client("application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        (f"endpoint/{ENDPOINT_NAME}/variant/AllTraffic", 1, 3)
    ]
    assert len(policies) == 1 and policies[0]["PolicyName"] == result["policy_name"]
    configuration = policies[0]["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["TargetValue"] == 15
    assert (
        configuration["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert (configuration["ScaleInCooldown"], configuration["ScaleOutCooldown"]) == (30, 30)


def test_a_spot_job_keeps_checkpoints_in_s3_and_may_wait_longer_than_it_runs(control_function):
    with control_function("StartTrainingFunction") as function:
        sent: list[dict] = []  # the request as sent to SageMaker (moto keeps only part of it)
        function.module.sagemaker.client.meta.events.register(
            "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(dict(params))
        )
        result = function.invoke(load_event("start-training-spot.json"))
    (request,) = sent
    job_name = result["training_job_name"]
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"]["S3Uri"] == f"s3://{OFFLINE_BUCKET}/checkpoints/{job_name}"
    stopping = request["StoppingCondition"]
    assert stopping["MaxWaitTimeInSeconds"] > stopping["MaxRuntimeInSeconds"]


def test_debugger_is_off_unless_asked_for(control_function):
    # Debugger is closed to new customers: a default job must not ask for it; an event (or the parameter) may
    with control_function("StartTrainingFunction") as function:
        sent: list[dict] = []
        function.module.sagemaker.client.meta.events.register(
            "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(dict(params))
        )
        function.invoke(load_event("start-training.json"))
        function.invoke({**load_event("start-training.json"), "use_debugger": True})
    default, asked = sent
    assert not {"DebugHookConfig", "DebugRuleConfigurations", "ProfilerRuleConfigurations"} & set(default)
    assert default["ProfilerConfig"] == {"DisableProfiler": True}
    assert [rule["RuleConfigurationName"] for rule in asked["DebugRuleConfigurations"]] == [
        "VanishingGradient",
        "Overfit",
        "Overtraining",
        "PoorWeightInitialization",
    ]
    assert asked["ProfilerConfig"]["ProfilingIntervalInMilliseconds"] == 500
