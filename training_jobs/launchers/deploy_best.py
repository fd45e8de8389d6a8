"""Deploy the best training job of a tuning job, through the stack's release gate and deploy-endpoint function.

    python -m launchers.deploy_best --tuning-job NAME --gate-function <stack>-release-gate \
        --deploy-function <DeployEndpointFunctionName output>

There is one deploy path (blue/green update, idempotent): the DeployEndpointFunction, which deploys only Approved
versions of the model registry. This launcher finds the best job, has the release gate judge and register it (as the
pipeline's JudgeCandidate step does), and deploys the version it approved, instead of a second, SDK-side way.
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


def _invoke(lambda_client, function_name: str, event: dict) -> dict:
    answer = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event))
    result = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        raise DeployFailedError(f"{function_name}: {result.get('errorType')}: {result.get('errorMessage')}")
    return result


def deploy(lambda_client, gate_function: str, deploy_function: str, training_job_name: str) -> dict:
    """The gate judges and registers the job's model; an approved version is deployed, a rejected one is not."""
    judged = _invoke(lambda_client, gate_function, {"training_job_name": training_job_name})
    if judged["decision"] != "Approved":
        raise DeployFailedError(f"the release gate did not approve {training_job_name}: {judged['reason']}")
    return _invoke(lambda_client, deploy_function, judged["deploy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tuning-job", required=True)
    parser.add_argument("--gate-function", required=True, help="the stack's release gate (<stack>-release-gate)")
    parser.add_argument("--deploy-function", required=True, help="the stack's DeployEndpointFunctionName output")
    args = parser.parse_args(argv)
    try:
        job = best_training_job(boto3.client("sagemaker"), args.tuning_job)
        print(json.dumps(deploy(boto3.client("lambda"), args.gate_function, args.deploy_function, job), indent=2))
    except DeployFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
