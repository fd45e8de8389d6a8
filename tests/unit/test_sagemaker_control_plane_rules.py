"""SageMaker's refusals that the offline control plane adds to moto (``offline_stack/aws_rules/sagemaker.py``),
in tests/unit: moto in-process with the same rules installed as the control plane installs them, boto3 calling it.
tests/integration/test_aws_rules.py meets the same refusals through the deploy and start-training functions."""

from __future__ import annotations

import types

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from offline_stack import control_plane
from offline_stack.aws_rules import sagemaker as rules

ROLE = "arn:aws:iam::123456789012:role/endpoint"


@pytest.fixture
def sagemaker():
    rules.install(control_plane._emulating_lifecycles)  # as ControlPlane.start does (once per process)
    with mock_aws():
        from moto.sagemaker.models import sagemaker_backends

        client = boto3.client(
            "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        client.backend = sagemaker_backends["123456789012"]["us-east-1"]
        try:
            yield client
        finally:
            for instance_type in ("ml.m5.large", "ml.c5.large"):
                rules.set_endpoint_instance_quota(instance_type, None)


@pytest.fixture
def lifecycles():
    """This thread's requests are answered as the offline stack answers them (endpoints go through Updating)."""
    control_plane._SERVING.control_plane = types.SimpleNamespace(lifecycles_on=True, roles=None)
    yield
    del control_plane._SERVING.control_plane


def _model(client, name: str = "model", isolated: bool = False) -> str:
    container = {"Image": "image", "ModelDataUrl": "s3://bucket/model.tar.gz"}
    client.create_model(
        ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container, EnableNetworkIsolation=isolated
    )
    return name


def _config(client, name: str, instance_type: str = "ml.m5.large", count: int = 1, serverless: bool = False, **extra):
    variant = {"VariantName": "AllTraffic", "ModelName": "model"}
    if serverless:
        variant["ServerlessConfig"] = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    else:
        variant |= {"InstanceType": instance_type, "InitialInstanceCount": count}
    client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant], **extra)
    return name


def _refusal(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.response["Error"]["Code"], refused.value.response["Error"]["Message"]


# First in the file: the rules install once per process, so the run that ties their lines to tests sees this
# test's UpdateEndpoint calls there.
@pytest.mark.parametrize(
    ("status", "says"),
    [
        ("Failed", "in status Failed: DeleteEndpoint is the only operation that can be performed on a failed"),
        ("Creating", "Cannot update in-progress endpoint"),
        ("Updating", "Cannot update in-progress endpoint"),
        ("RollingBack", "Cannot update in-progress endpoint"),
    ],
)
def test_an_endpoint_is_updated_only_from_a_settled_state(sagemaker, status, says):
    _model(sagemaker)
    sagemaker.create_endpoint(EndpointName="e", EndpointConfigName=_config(sagemaker, "first"))
    _config(sagemaker, "second")
    sagemaker.backend.endpoints["e"].endpoint_status = status
    code, message = _refusal(lambda: sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="second"))
    assert code == "ValidationException" and says in message
    for settled in ("InService", "OutOfService", "UpdateRollbackFailed"):
        sagemaker.backend.endpoints["e"].endpoint_status = settled
        answer = sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="second")
        assert answer["EndpointArn"].endswith(":endpoint/e")


def test_endpoints_may_use_the_instance_quota_exactly_and_not_one_instance_more(sagemaker):
    assert rules.endpoint_instance_quota("ml.m5.large") == rules.DEFAULT_ENDPOINT_INSTANCE_QUOTA == 20
    rules.set_endpoint_instance_quota("ml.m5.large", 3)
    _model(sagemaker)
    sagemaker.create_endpoint(EndpointName="two", EndpointConfigName=_config(sagemaker, "two", count=2))
    sagemaker.create_endpoint(EndpointName="one", EndpointConfigName=_config(sagemaker, "one", count=1))  # 3 of 3
    sagemaker.create_endpoint(EndpointName="other-type", EndpointConfigName=_config(sagemaker, "c5", "ml.c5.large"))
    code, message = _refusal(
        lambda: sagemaker.create_endpoint(EndpointName="more", EndpointConfigName=_config(sagemaker, "more"))
    )
    assert code == "ResourceLimitExceeded"
    assert message == (
        "The account-level service limit 'ml.m5.large for endpoint usage' is 3 Instances, with current utilization "
        "of 3 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an increase "
        "for this quota."
    )
    rules.set_endpoint_instance_quota("ml.m5.large", None)
    assert rules.endpoint_instance_quota("ml.m5.large") == 20


def test_an_update_needs_an_endpoint_and_a_config_that_exist(sagemaker):
    _model(sagemaker)
    sagemaker.create_endpoint(EndpointName="e", EndpointConfigName=_config(sagemaker, "first"))
    for endpoint, config in (("missing", "first"), ("e", "missing")):
        code, message = _refusal(
            lambda e=endpoint, c=config: sagemaker.update_endpoint(EndpointName=e, EndpointConfigName=c)
        )
        assert message == "Could not find endpoint or endpoint configuration."


def test_an_endpoint_cannot_change_kind_in_place(sagemaker):
    _model(sagemaker)
    sagemaker.create_endpoint(EndpointName="e", EndpointConfigName=_config(sagemaker, "instances"))
    _config(sagemaker, "serverless", serverless=True)
    code, message = _refusal(lambda: sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="serverless"))
    assert code == "ValidationException" and "from an instance-based production variant to a serverless" in message


def test_an_auto_scaled_variant_keeps_its_instance_type_until_it_is_deregistered(sagemaker):
    _model(sagemaker)
    sagemaker.create_endpoint(EndpointName="e", EndpointConfigName=_config(sagemaker, "m5", count=2))
    scaling = boto3.client("application-autoscaling", region_name="us-east-1")
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/e/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    scaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=3)
    _config(sagemaker, "c5", "ml.c5.large")
    code, message = _refusal(lambda: sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="c5"))
    assert 'The variant(s) "[AllTraffic]" must be deregistered as scalable targets' in message
    sagemaker.update_endpoint(EndpointName="e", EndpointConfigName=_config(sagemaker, "m5-again"))  # same type: fine
    scaling.deregister_scalable_target(**target)
    sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="c5")


def test_a_blue_green_update_needs_room_for_both_fleets_and_the_old_one_counts_until_it_is_gone(sagemaker, lifecycles):
    rules.set_endpoint_instance_quota("ml.m5.large", 4)
    _model(sagemaker)
    sagemaker.create_endpoint(EndpointName="e", EndpointConfigName=_config(sagemaker, "first", count=2))
    sagemaker.backend.endpoints["e"].endpoint_status = "InService"
    _config(sagemaker, "three", count=3)
    code, message = _refusal(lambda: sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="three"))
    assert code == "ResourceLimitExceeded" and "current utilization of 2 Instances and a request delta of 3" in message
    deployment = {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}}
    }
    sagemaker.update_endpoint(
        EndpointName="e", EndpointConfigName=_config(sagemaker, "second", count=2), DeploymentConfig=deployment
    )
    endpoint = sagemaker.backend.endpoints["e"]
    assert endpoint.endpoint_status == "Updating" and endpoint.previous_fleet == rules.Fleet("ml.m5.large", 2)
    assert endpoint.last_deployment_config == deployment and endpoint.endpoint_config_name == "second"
    assert rules.fleets_in_use(sagemaker.backend) == [rules.Fleet("ml.m5.large", 2), rules.Fleet("ml.m5.large", 2)]
    endpoint.endpoint_status = "InService"  # the old fleet is gone once the update ends
    assert rules.fleets_in_use(sagemaker.backend) == [rules.Fleet("ml.m5.large", 2)]


def test_an_update_that_retains_the_variant_keeps_its_instance_count_and_takes_the_new_capture(sagemaker):
    _model(sagemaker)
    sagemaker.create_endpoint(EndpointName="e", EndpointConfigName=_config(sagemaker, "first", count=3))
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 5,
        "DestinationS3Uri": "s3://bucket/data-capture",
        "CaptureOptions": [{"CaptureMode": "Input"}],
    }
    _config(sagemaker, "one", count=1, DataCaptureConfig=capture)
    sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="one", RetainAllVariantProperties=True)
    endpoint = sagemaker.backend.endpoints["e"]
    assert endpoint.production_variants[0]["CurrentInstanceCount"] == 3 and endpoint.endpoint_status == "InService"
    assert rules.fleets_in_use(sagemaker.backend) == [rules.Fleet("ml.m5.large", 3)]  # what runs, not the config
    assert endpoint.data_capture_config["InitialSamplingPercentage"] == 5
    assert not hasattr(endpoint, "previous_fleet")  # moto alone (no offline lifecycle): updated at once
    sagemaker.update_endpoint(EndpointName="e", EndpointConfigName=_config(sagemaker, "two", count=2))
    assert sagemaker.backend.endpoints["e"].production_variants[0]["CurrentInstanceCount"] == 2


def test_a_serverless_config_refuses_an_isolated_model_and_data_capture(sagemaker):
    _model(sagemaker, "model", isolated=True)
    code, message = _refusal(lambda: _config(sagemaker, "serverless", serverless=True))
    assert message == "Network isolation is not supported for models deployed to serverless endpoints."
    sagemaker.delete_model(ModelName="model")
    _model(sagemaker, "model", isolated=False)
    capture = {
        "InitialSamplingPercentage": 5,
        "DestinationS3Uri": "s3://b/c",
        "CaptureOptions": [{"CaptureMode": "Input"}],
    }
    code, message = _refusal(lambda: _config(sagemaker, "captured", serverless=True, DataCaptureConfig=capture))
    assert message == "DataCaptureConfig is not supported for endpoint configs with serverless production variants."
    _config(sagemaker, "plain", serverless=True)
    # a model the rules cannot find is not taken for an isolated one: SageMaker's own answer says it is missing
    variant = {"VariantName": "AllTraffic", "ModelName": "absent"} | {
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    }
    code, message = _refusal(
        lambda: sagemaker.create_endpoint_config(EndpointConfigName="absent", ProductionVariants=[variant])
    )
    assert "Could not find model" in message and "isolation" not in message


def test_a_training_job_name_is_used_once(sagemaker):
    job = {
        "TrainingJobName": "job-1",
        "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    sagemaker.create_training_job(**job)
    code, message = _refusal(lambda: sagemaker.create_training_job(**job))
    assert code == "ResourceInUse"
    assert message.endswith("already exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1)")
    sagemaker.create_training_job(**{**job, "TrainingJobName": "job-2"})
