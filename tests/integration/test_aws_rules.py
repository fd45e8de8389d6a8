"""The offline control plane says no where SageMaker says no (offline_stack/aws_rules/sagemaker.py), and the
functions take the path SageMaker allows: each rule through boto3 on loopback, then the function that meets it.

moto alone would update a Failed endpoint, change an auto-scaled variant's instance type, start a second job of
one name and never run out of instances; every test here failed against moto alone.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from offline_stack.aws_rules import sagemaker as sagemaker_rules
from offline_stack.control_plane import sagemaker_state
from offline_stack.sam_template import SamTemplate
from offline_stack.sample_events import SAMPLE_PACKAGES
from tests.conftest import load_event

ENDPOINT_NAME = SamTemplate.load().parameters["EndpointName"]


@pytest.fixture
def quota():
    """Set the offline account's endpoint-instance quota for one instance type; back to the default after."""
    changed: list[str] = []

    def set_quota(instance_type: str, instances: int) -> None:
        changed.append(instance_type)
        sagemaker_rules.set_endpoint_instance_quota(instance_type, instances)

    yield set_quota
    for instance_type in changed:
        sagemaker_rules.set_endpoint_instance_quota(instance_type, None)


def _config(sagemaker, name: str, instance_type: str, count: int = 1) -> str:
    model = sagemaker.describe_endpoint_config(EndpointConfigName=_serving(sagemaker))["ProductionVariants"][0]
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model["ModelName"],
                "InstanceType": instance_type,
                "InitialInstanceCount": count,
            }
        ],
    )
    return name


def _serving(sagemaker) -> str:
    return sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)["EndpointConfigName"]


def _code(error: pytest.ExceptionInfo) -> str:
    return error.value.response["Error"]["Code"]


def test_a_failed_endpoint_refuses_updates_and_the_deploy_function_deletes_it_then_creates_it(
    control_function, control_plane
):
    sagemaker = control_plane.client("sagemaker")
    with control_function("DeployEndpointFunction") as function:
        function.invoke(load_event("deploy-endpoint-approved.json"))
        sagemaker_state().endpoints[ENDPOINT_NAME].endpoint_status = "Failed"  # what a model that cannot load does
        # SageMaker refuses any update of a Failed endpoint
        other = _config(sagemaker, f"{ENDPOINT_NAME}-by-hand", "ml.m5.large")
        with pytest.raises(ClientError, match="only operation") as refusal:
            sagemaker.update_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=other)
        assert _code(refusal) == "ValidationException"
        # so the deploy function deletes it (the pipeline waits), and the next deploy creates it again
        deleted = function.invoke(load_event("deploy-endpoint-another-approved-on-c5.json"))
        assert deleted["action"] == "deleted-failed"
        assert ENDPOINT_NAME not in {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]}
        created = function.invoke(load_event("deploy-endpoint-another-approved-on-c5.json"))
    assert created["action"] == "created"
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)["EndpointStatus"] == "InService"


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"])
def test_an_endpoint_in_progress_refuses_updates(control_function, control_plane, status):
    sagemaker = control_plane.client("sagemaker")
    with control_function("DeployEndpointFunction") as function:
        function.invoke(load_event("deploy-endpoint-approved.json"))
    sagemaker_state().endpoints[ENDPOINT_NAME].endpoint_status = status
    other = _config(sagemaker, f"{ENDPOINT_NAME}-by-hand", "ml.m5.large")
    with pytest.raises(ClientError, match="in-progress") as refusal:
        sagemaker.update_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=other)
    assert _code(refusal) == "ValidationException"


def test_an_instance_type_change_of_an_auto_scaled_variant_is_refused_and_the_deploy_deregisters_first(
    control_function, control_plane
):
    sagemaker = control_plane.client("sagemaker")
    scaling = control_plane.client("application-autoscaling")
    resource = f"endpoint/{ENDPOINT_NAME}/variant/AllTraffic"
    with control_function("DeployEndpointFunction") as deploy, control_function("RegisterAutoscalingFunction") as scale:
        deploy.invoke(load_event("deploy-endpoint-approved.json"))  # ml.m5.large
        scale.invoke(load_event("register-autoscaling.json"))
        # SageMaker refuses an update that changes an auto-scaled variant's instance type
        bigger = _config(sagemaker, f"{ENDPOINT_NAME}-by-hand", "ml.c5.large")
        with pytest.raises(ClientError, match="must be deregistered as scalable targets") as refusal:
            sagemaker.update_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=bigger)
        assert _code(refusal) == "ValidationException"
        # but a new model on the same instance type is allowed
        same_type = _config(sagemaker, f"{ENDPOINT_NAME}-same-type", "ml.m5.large")
        sagemaker.update_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=same_type)
        # The deploy function takes the variant out of auto-scaling first, then updates
        updated = deploy.invoke(load_event("deploy-endpoint-another-approved-on-c5.json"))  # ml.c5.large
        assert (updated["action"], updated["autoscaling_deregistered"]) == ("updated", True)
        assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
        assert _serving(sagemaker) == updated["endpoint_config_name"]
        # and the pipeline's next step registers it again
        scale.invoke(load_event("register-autoscaling.json"))
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    assert len(targets["ScalableTargets"]) == 1


def test_a_blue_green_update_needs_room_for_both_fleets_in_the_instance_quota(control_function, control_plane, quota):
    sagemaker = control_plane.client("sagemaker")
    with control_function("DeployEndpointFunction", ENDPOINT_INSTANCE_COUNT="2") as function:
        quota("ml.m5.large", 3)
        function.invoke(load_event("deploy-endpoint-approved.json"))  # 2 of 3 instances
        serving = _serving(sagemaker)
        # A new model needs a second fleet of 2 beside the first: 4 > 3
        newer = {"model_package_arn": SAMPLE_PACKAGES[1], "instance_type": "ml.m5.large"}
        with pytest.raises(Exception, match="ResourceLimitExceeded") as refusal:
            function.invoke(newer)
        assert "ml.m5.large for endpoint usage" in str(refusal.value)
        assert _serving(sagemaker) == serving  # the old model still serves
        # With room for both fleets it goes through
        quota("ml.m5.large", 4)
        assert function.invoke(newer)["action"] == "updated"


def test_a_new_endpoint_beyond_the_instance_quota_is_refused(control_function, control_plane, quota):
    quota("ml.m5.large", 1)
    with (
        control_function("DeployEndpointFunction", ENDPOINT_INSTANCE_COUNT="2") as function,
        pytest.raises(Exception, match="ResourceLimitExceeded"),
    ):
        function.invoke(load_event("deploy-endpoint-approved.json"))
    assert control_plane.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_training_job_names_are_unique_and_a_retried_start_finds_the_job_it_started(control_function, control_plane):
    sagemaker = control_plane.client("sagemaker")
    event = {**load_event("start-training.json"), "idempotency_token": "pipeline-run-42"}
    with control_function("StartTrainingFunction") as function:
        first = function.invoke(event)
        # SageMaker refuses a second job of a name
        request = sagemaker.describe_training_job(TrainingJobName=first["training_job_name"])
        with pytest.raises(ClientError) as refusal:
            sagemaker.create_training_job(
                TrainingJobName=first["training_job_name"],
                AlgorithmSpecification=request["AlgorithmSpecification"],
                RoleArn=request["RoleArn"],
                OutputDataConfig=request["OutputDataConfig"],
                ResourceConfig=request["ResourceConfig"],
                StoppingCondition=request["StoppingCondition"],
            )
        assert _code(refusal) == "ResourceInUse"
        # A retry with the same token (what Step Functions or Lambda sends again) starts nothing new
        again = function.invoke(event)
        other = function.invoke({**event, "idempotency_token": "pipeline-run-43"})
    assert (first["started"], again["started"], other["started"]) == (True, False, True)
    assert again["training_job_name"] == first["training_job_name"] != other["training_job_name"]
    names = [job["TrainingJobName"] for job in sagemaker.list_training_jobs()["TrainingJobSummaries"]]
    assert sorted(names).count(first["training_job_name"]) == 1
