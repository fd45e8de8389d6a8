"""Deploy the best training job of a tuning job, through the stack's deploy-endpoint function.

    python -m launchers.deploy_best --tuning-job NAME --deploy-function FUNCTION_NAME

There is one deploy path (blue/green update, idempotent): the DeployEndpointFunction. This launcher
finds the best job and invokes it, instead of a second, SDK-side way to deploy.
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3


class DeployFailedError(RuntimeError):
    pass


def best_training_job(sagemaker_client, tuning_job_name: str) -> str:
    job = sagemaker_client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job_name)
    best = job.get("BestTrainingJob")
    if not best:
        raise DeployFailedError(
            f"tuning job {tuning_job_name} has no best training job yet ({job['HyperParameterTuningJobStatus']})"
        )
    return best["TrainingJobName"]


def deploy(lambda_client, function_name: str, training_job_name: str) -> dict:
    answer = lambda_client.invoke(
        FunctionName=function_name, Payload=json.dumps({"training_job_name": training_job_name})
    )
    result = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        raise DeployFailedError(f"{result.get('errorType')}: {result.get('errorMessage')}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tuning-job", required=True)
    parser.add_argument("--deploy-function", required=True, help="the stack's DeployEndpointFunctionName output")
    args = parser.parse_args(argv)
    try:
        job = best_training_job(boto3.client("sagemaker"), args.tuning_job)
        print(json.dumps(deploy(boto3.client("lambda"), args.deploy_function, job), indent=2))
    except DeployFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
