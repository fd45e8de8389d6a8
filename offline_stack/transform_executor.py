"""Run a Batch Transform job the way SageMaker would, from the CreateTransformJob request in the control plane.

The job's model (``DescribeModel``) is downloaded as its execution role, as SageMaker does, and served by the same
local stand-in for the inference container an endpoint gets (``container_processes.ContainerProcess``); every
object under the input prefix, listed and read as that role, is sent to ``/invocations`` with the job's content
type and accept, one object a request (``BatchStrategy`` ``SingleRecord``, ``SplitType`` ``None``), and its answer is
written as that role where AWS writes it (``aws_rules.sagemaker.transform_output_key``: ``<output>/<path>.out``).
An object the container refuses fails the job, with the container's answer as ``FailureReason``, and only the
answers already written stay (AWS's rule, quoted in ``aws_rules/sagemaker.py``). ``StopTransformJob`` stops it
between objects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline_stack.aws_rules.sagemaker import transform_output_key
from offline_stack.container_processes import ContainerModel, ContainerProcess
from offline_stack.local_endpoints import LocalEndpoints

LogLine = Callable[[str], None]


class TransformFailed(Exception):
    """The job cannot finish; the message is its FailureReason."""


class LocalTransformExecutor:
    def __init__(
        self, sagemaker, s3, work_dir: Path, log: LogLine = print, s3_as: Callable[[str], Any] | None = None
    ) -> None:
        self.sagemaker, self.s3, self.work_dir, self.log, self.s3_as = sagemaker, s3, Path(work_dir), log, s3_as

    def run(self, job_name: str, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Answer every input object; how many were answered. ``TransformFailed`` says why the job failed."""
        job = self.sagemaker.describe_transform_job(TransformJobName=job_name)
        model = self.sagemaker.describe_model(ModelName=job["ModelName"])
        s3 = self.s3_as(model["ExecutionRoleArn"]) if self.s3_as else self.s3
        model_dir = LocalEndpoints._unpack(
            s3, model["PrimaryContainer"]["ModelDataUrl"], self.work_dir / job_name / "model"
        )
        input_uri = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        output = job["TransformOutput"]
        bucket = input_uri.removeprefix("s3://").partition("/")[0]
        keys = self.input_keys(s3, input_uri)
        self.log(f"transform job {job_name}: {len(keys)} objects through {job['ModelName']}")
        answered = 0
        with ContainerProcess(model_dir) as process:
            container = ContainerModel(process.url)
            for key in keys:
                if should_stop():
                    break
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                try:
                    answer, content_type = container.invoke(
                        body, job["TransformInput"]["ContentType"], output.get("Accept", "application/json"), ""
                    )
                except Exception as refused:  # one object failing fails the job
                    raise TransformFailed(f"ClientError: the container refused {key}: {refused}") from refused
                self.write_answer(s3, input_uri, key, output["S3OutputPath"], answer, content_type)
                answered += 1
        return answered

    @staticmethod
    def input_keys(s3, input_uri: str) -> list[str]:
        """Every object under the job's ``S3Prefix`` input, listed as the model's role."""
        bucket, _, prefix = input_uri.removeprefix("s3://").partition("/")
        return [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/")
        ]

    @staticmethod
    def write_answer(s3, input_uri: str, key: str, output_path: str, answer: bytes, content_type: str) -> None:
        out_bucket, out_key = transform_output_key(input_uri, key, output_path)
        s3.put_object(Bucket=out_bucket, Key=out_key, Body=answer, ContentType=content_type)
