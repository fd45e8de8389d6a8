"""What a successful control-plane event must have done, checked in the control plane it ran against.

Used by every runner of the events (in-process and `sam local invoke`), so a function that answered
without doing its work fails both.
"""

from __future__ import annotations

from launchers.package_source import TRAINING_JOBS

from dog_breeds.training_code import code_key, source_tarball


def assert_control_outcome(
    function: str, event: dict, answer: dict, control_plane, later_deploys: bool = False
) -> None:
    """``later_deploys``: other deploys of the same endpoint ran after this one, so it may serve theirs."""
    sagemaker = control_plane.client("sagemaker")
    if function == "StartTrainingFunction":
        job = sagemaker.describe_training_job(TrainingJobName=answer["training_job_name"])
        resources = job["ResourceConfig"]
        assert resources["InstanceType"] == event.get("instance_type", "ml.m5.2xlarge")
        assert resources["InstanceCount"] == event.get("instance_count", 6)
        # the job runs isolated: its code is its 'code' channel, read as script mode's submit directory
        assert job["HyperParameters"]["sagemaker_submit_directory"] == '"/opt/ml/input/data/code/sourcedir.tar.gz"'
        source = code_channel(job)
        if "source_s3_uri" in event:
            assert source == event["source_s3_uri"]
        else:  # the code deployed with the function, stored under its content address
            bucket, _, key = source.removeprefix("s3://").partition("/")
            stored = control_plane.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            assert stored == source_tarball(TRAINING_JOBS) and key == code_key(stored)
    elif function == "DeployEndpointFunction":
        endpoint = sagemaker.describe_endpoint(EndpointName=answer["endpoint_name"])
        assert later_deploys or endpoint["EndpointConfigName"] == answer["endpoint_config_name"]
        config = sagemaker.describe_endpoint_config(EndpointConfigName=answer["endpoint_config_name"])
        assert config["ProductionVariants"][0]["InstanceType"] == event.get("instance_type", "ml.m5.large")
        model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        package = sagemaker.describe_model_package(ModelPackageName=event["model_package_arn"])
        assert package["ModelApprovalStatus"] == "Approved"  # only an approved version deploys, and its own model
        assert (
            model["PrimaryContainer"]["ModelDataUrl"]
            == package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        )
    elif function == "RegisterAutoscalingFunction":
        scaling = control_plane.client("application-autoscaling")
        targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        assert answer["resource_id"] in [target["ResourceId"] for target in targets]
        policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        assert answer["policy_name"] in [policy["PolicyName"] for policy in policies]
    else:
        raise AssertionError(f"no outcome check for {function}")


def code_channel(job: dict) -> str:
    """The S3 URI of a training job's code (its 'code' channel)."""
    (uri,) = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"] if c["ChannelName"] == "code"]
    return uri
