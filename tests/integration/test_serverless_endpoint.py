"""EndpointKind=serverless through the offline stack: a real model container started on demand, SageMaker's
concurrency limit answered as ThrottlingException and by the API as 429 with Retry-After, scale to zero and the
cold start after it, and a switch of kind from the instance endpoint with the API answering all along.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from offline_stack.aws_rules.cloudwatch import NAMESPACE, MetricQuery, moto_datapoints
from offline_stack.demo_steps import deploy_starter_model
from offline_stack.sample_events import sample_api_event
from offline_stack.stack import OfflineStack
from tests.support.artifacts import broken_package

PHOTO = (Path(__file__).resolve().parent.parent / "data" / "photos" / "dog.128.jpg").read_bytes()
SERVERLESS_NAME = "dog-breed-classifier-serverless"


# These tests count cold starts and concurrency slots. On a loaded 2-core machine a cold start of the starter model can
# outlast the predict function's 10 s read timeout; botocore then retries while the first attempt still holds the
# slot (AWS would do the same), which is a test of the timeout, not of what these tests check: a longer read timeout.
PATIENT = {"ENDPOINT_READ_TIMEOUT_SECONDS": "120"}


def patient_stack(tmp_path, overrides: dict[str, str]) -> OfflineStack:
    """An offline stack with these parameters whose predict function waits out a cold start (``PATIENT``)."""
    return OfflineStack(
        tmp_path,
        log=lambda line: None,
        quiet_functions=True,
        parameter_overrides=overrides,
        function_environment=PATIENT,
    )


def predict(stack: OfflineStack) -> dict:
    """POST /predictions as API Gateway delivers it, to a fresh PredictFunction (the stack's parameters now)."""
    return stack.invoke("PredictFunction", sample_api_event(PHOTO, "image/jpeg"))


def test_switching_to_serverless_keeps_the_api_answering_and_retires_the_instance_endpoint(tmp_path):
    with OfflineStack(tmp_path, log=lambda line: None, quiet_functions=True) as stack:
        first = deploy_starter_model(stack, say=lambda line: None)
        assert predict(stack)["statusCode"] == 200
        stack.update_parameters({"EndpointKind": "serverless", "ServerlessMaxConcurrency": "2"})
        # the stack names the serverless endpoint before the pipeline has made it: the instance one answers
        assert predict(stack)["statusCode"] == 200
        deployment = stack.invoke("DeployEndpointFunction", {"model_package_arn": first["model_package_arn"]})
        assert (deployment["endpoint_name"], deployment["replaces"]) == (SERVERLESS_NAME, "dog-breed-classifier")
        config = stack.sagemaker.describe_endpoint_config(EndpointConfigName=deployment["endpoint_config_name"])
        assert config["ProductionVariants"][0]["ServerlessConfig"]["MaxConcurrency"] == 2
        model = stack.sagemaker.describe_model(ModelName=deployment["model_name"])
        assert model["EnableNetworkIsolation"] is False  # serverless models cannot run isolated
        stack.settle_endpoints()
        assert predict(stack)["statusCode"] == 200
        assert stack.endpoints.serverless(SERVERLESS_NAME).cold_starts  # the serverless endpoint answered
        retired = stack.invoke("DeployEndpointFunction", {"retire_endpoint": "dog-breed-classifier"})
        assert retired["action"] == "deleted"
        names = [e["EndpointName"] for e in stack.sagemaker.list_endpoints()["Endpoints"]]
        assert names == [SERVERLESS_NAME]
        assert predict(stack)["statusCode"] == 200


def test_sagemaker_refuses_to_update_an_instance_endpoint_into_a_serverless_one(tmp_path):
    with OfflineStack(tmp_path, log=lambda line: None, quiet_functions=True) as stack:
        deploy_starter_model(stack, say=lambda line: None)
        sagemaker = stack.sagemaker
        serving = sagemaker.describe_endpoint(EndpointName="dog-breed-classifier")["EndpointConfigName"]
        model = sagemaker.describe_endpoint_config(EndpointConfigName=serving)["ProductionVariants"][0]["ModelName"]
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": model,
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
        }
        # the model runs isolated: a serverless config of it is refused; so is data capture with serverless
        with pytest.raises(Exception, match="Network isolation is not supported"):
            sagemaker.create_endpoint_config(EndpointConfigName="serverless-of-isolated", ProductionVariants=[variant])
        sagemaker.create_model(
            ModelName="open-model",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/any",
            PrimaryContainer={"Image": "x", "ModelDataUrl": f"s3://{stack.bucket}/models/open-model/model.tar.gz"},
        )
        variant["ModelName"] = "open-model"
        capture = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 5,
            "DestinationS3Uri": f"s3://{stack.bucket}/x",
            "CaptureOptions": [{"CaptureMode": "Input"}],
        }
        with pytest.raises(Exception, match="DataCaptureConfig is not supported"):
            sagemaker.create_endpoint_config(
                EndpointConfigName="captured", ProductionVariants=[variant], DataCaptureConfig=capture
            )
        sagemaker.create_endpoint_config(EndpointConfigName="serverless-config", ProductionVariants=[variant])
        with pytest.raises(Exception, match="instance-based production variant to a serverless one"):
            sagemaker.update_endpoint(EndpointName="dog-breed-classifier", EndpointConfigName="serverless-config")


def test_past_max_concurrency_sagemaker_throttles_and_the_api_answers_429_with_retry_after(tmp_path):
    overrides = {"EndpointKind": "serverless", "ServerlessMaxConcurrency": "1"}
    with patient_stack(tmp_path, overrides) as stack:
        deployment = deploy_starter_model(stack, say=lambda line: None)
        assert deployment["endpoint_name"] == SERVERLESS_NAME
        capacity = stack.endpoints.serverless(SERVERLESS_NAME)
        assert not capacity.warm  # nothing runs until the first request

        # the first request waits for a cold start and is answered
        assert predict(stack)["statusCode"] == 200
        assert len(capacity.cold_starts) == 1 and capacity.cold_starts[0] > 0

        # a second request while one is in flight is refused at once: MaxConcurrency is 1
        started, answers = threading.Event(), []
        original = capacity._warm

        def slow_warm():
            model = original()
            started.set()
            time.sleep(3.0)  # hold the one slot
            return model

        capacity._warm = slow_warm
        holder = threading.Thread(target=lambda: answers.append(predict(stack)))
        holder.start()
        assert started.wait(60)
        throttled = predict(stack)
        holder.join()
        capacity._warm = original
        assert answers[0]["statusCode"] == 200
        assert throttled["statusCode"] == 429 and throttled["headers"]["Retry-After"] == "1"
        assert json.loads(throttled["body"])["error"]["code"] == "Throttled"
        assert capacity.throttled >= 1  # (botocore may retry once more: ENDPOINT_MAX_ATTEMPTS=2)

        # idle past the period: scaled to zero; the next request cold-starts again. The period is shortened only
        # now: with it short from the start, a loaded machine's gap between two requests above (each to a fresh
        # PredictFunction) could pass it, and the container scaled to zero in between (CI saw 3 cold starts)
        capacity.idle_seconds = 1.5
        deadline = time.monotonic() + 30
        while capacity.warm and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not capacity.warm
        assert predict(stack)["statusCode"] == 200
        assert len(capacity.cold_starts) == 2


def test_a_container_past_its_memory_is_killed_with_its_request_and_the_next_one_cold_starts(tmp_path):
    overrides = {"EndpointKind": "serverless"}
    with patient_stack(tmp_path, overrides) as stack:
        deploy_starter_model(stack, say=lambda line: None)
        capacity = stack.endpoints.serverless(SERVERLESS_NAME)
        assert predict(stack)["statusCode"] == 200  # EfficientNet-Lite0 fits in 3072 MB
        capacity.memory_bytes = 1024 * 1024  # as if MemorySizeInMB were 1: the model cannot fit
        answer = predict(stack)
        assert answer["statusCode"] == 502  # ModelError from SageMaker: the model failed to answer
        assert not capacity.warm
        capacity.memory_bytes = 3072 * 1024 * 1024
        assert predict(stack)["statusCode"] == 200
        assert len(capacity.cold_starts) == 2


def test_a_serverless_release_whose_model_answers_5xx_is_rolled_back_by_the_serverless_metric_set(tmp_path):
    overrides = {"EndpointKind": "serverless", "ServerlessMaxConcurrency": "4"}
    with patient_stack(tmp_path, overrides) as stack:
        deploy_starter_model(stack, say=lambda line: None)
        serving = stack.sagemaker.describe_endpoint(EndpointName=SERVERLESS_NAME)["EndpointConfigName"]
        model = stack.sagemaker.describe_endpoint_config(EndpointConfigName=serving)["ProductionVariants"][0]
        model_data = stack.sagemaker.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]["ModelDataUrl"]
        bad_release = broken_package(stack, "serverless-5xx", serving_model_data=model_data)
        stack.control_plane.emulate_lifecycles()  # the update goes through Updating: blue/green, bake, alarms
        runtime = stack.control_plane.session().client("sagemaker-runtime", endpoint_url=stack.runtime.url)
        since = datetime.now(UTC) - timedelta(seconds=1)
        stop, failed = threading.Event(), []

        def clients() -> None:  # traffic during the bake, as the API's callers would send it
            while not stop.is_set():
                try:
                    runtime.invoke_endpoint(EndpointName=SERVERLESS_NAME, ContentType="image/jpeg", Body=PHOTO)
                except runtime.exceptions.ModelError:
                    failed.append(time.monotonic())
                time.sleep(0.05)

        traffic = threading.Thread(target=clients)
        traffic.start()
        try:
            deployment = stack.invoke("DeployEndpointFunction", {"model_package_arn": bad_release})
            assert deployment["action"] == "updated"
            stack.settle_endpoints()
        finally:
            stop.set()
            traffic.join()
        # Then the serverless alarm (Invocation5XXErrors) rolled the update back; the old model serves
        endpoint = stack.sagemaker.describe_endpoint(EndpointName=SERVERLESS_NAME)
        assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", serving)
        assert "model-failures" in endpoint["FailureReason"], endpoint["FailureReason"]
        assert failed, "the bad release answered errors during its bake"
        # And the endpoint published what a serverless endpoint publishes: no InvocationModelErrors
        stack.endpoints.metrics.flush()
        read = moto_datapoints(since)
        dimensions = (("EndpointName", SERVERLESS_NAME), ("VariantName", "AllTraffic"))
        held = {
            name: read(MetricQuery("m", NAMESPACE, name, dimensions, "Sum"))
            for name in ("InvocationModelErrors", "Invocation5XXErrors", "ModelSetupTime")
        }
        assert held["InvocationModelErrors"] == [] and sum(held["Invocation5XXErrors"]) >= 1
        assert len(held["ModelSetupTime"]) >= 2  # the first deploy's cold start, and the bad release's
        assert predict(stack)["statusCode"] == 200


def test_serverless_to_instances_and_back_leaves_the_stack_updatable_and_the_api_answering(tmp_path):
    with patient_stack(tmp_path, {"EndpointKind": "serverless", "ServerlessMaxConcurrency": "2"}) as stack:
        package = deploy_starter_model(stack, say=lambda line: None)["model_package_arn"]
        assert predict(stack)["statusCode"] == 200
        for kind, serving, retired in (
            ("instances", "dog-breed-classifier", SERVERLESS_NAME),
            ("serverless", SERVERLESS_NAME, "dog-breed-classifier"),
        ):
            # sam deploy with the other kind: CloudFormation would refuse an update that re-creates a log group
            # SageMaker wrote meanwhile (StackUpdateFailed); the API answers from the old endpoint throughout
            stack.update_parameters({"EndpointKind": kind})
            assert predict(stack)["statusCode"] == 200
            deployment = stack.invoke("DeployEndpointFunction", {"model_package_arn": package})
            assert (deployment["endpoint_name"], deployment["replaces"]) == (serving, retired)
            stack.settle_endpoints()
            assert predict(stack)["statusCode"] == 200
            assert stack.invoke("DeployEndpointFunction", {"retire_endpoint": retired})["action"] == "deleted"
            assert [e["EndpointName"] for e in stack.sagemaker.list_endpoints()["Endpoints"]] == [serving]
            assert predict(stack)["statusCode"] == 200


def test_an_image_over_the_serverless_payload_limit_is_413_before_any_endpoint_call(tmp_path):
    with patient_stack(tmp_path, {"EndpointKind": "serverless"}) as stack:
        for size in (4_000_001, 4_100_000, 4_500_000):  # MaxImageBytes is 4 MiB: above 4 MB, below it, and 4.5 MB
            answer = stack.invoke("PredictFunction", sample_api_event(b"\xff\xd8\xff" + bytes(size - 3), "image/jpeg"))
            assert answer["statusCode"] == 413, (size, answer["body"])
            assert "4000000" in json.loads(answer["body"])["error"]["message"].replace(",", "")
        assert stack.runtime.invocations == 0  # refused by the function: SageMaker never saw it


def test_a_cold_start_longer_than_the_functions_wait_is_503_with_retry_after_then_answered_once_warm(tmp_path):
    # A cold start of SageMaker's (compute, image pull) plus the container's start outlasts the function's one wait
    # (3 s here, 25 s in the template): the caller is told to retry, and no second cold start is begun
    with OfflineStack(
        tmp_path,
        log=lambda line: None,
        quiet_functions=True,
        parameter_overrides={"EndpointKind": "serverless", "ServerlessMaxConcurrency": "1"},
        function_environment={"ENDPOINT_READ_TIMEOUT_SECONDS": "3"},
    ) as stack:
        deploy_starter_model(stack, say=lambda line: None)
        capacity = stack.endpoints.serverless(SERVERLESS_NAME)
        capacity.provisioning_seconds = 6.0
        first = predict(stack)
        assert first["statusCode"] == 503, first["body"]
        assert first["headers"]["Retry-After"] == "20"
        assert json.loads(first["body"])["error"]["code"] == "EndpointStarting"
        deadline = time.monotonic() + 120
        while not capacity.warm and time.monotonic() < deadline:
            time.sleep(0.2)
        assert predict(stack)["statusCode"] == 200
        assert len(capacity.cold_starts) == 1 and capacity.throttled == 0
