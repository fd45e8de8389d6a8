"""An offline stack serving a model: an artifact deployed through DeployEndpointFunction, the API open.

Building the artifact directly (random weights, no training) keeps the set-up to seconds: what is
measured here is the serving path, which does not care how good the weights are.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

from breed_classifier.artifact import save_artifact
from breed_classifier.model import ModelConfig, build_model
from offline_stack.stack import OfflineStack
from offline_stack.synthetic_images import CLASS_FOLDERS


def write_artifact(model_dir: Path, architecture: str = "small_cnn", image_size: int = 64, seed: int = 0) -> Path:
    """A deployable artifact with untrained weights (``seed`` makes two of them differ)."""
    import torch

    torch.manual_seed(seed)
    config = ModelConfig.for_architecture(architecture, len(CLASS_FOLDERS), image_size)
    save_artifact(model_dir, build_model(config), config, list(CLASS_FOLDERS))
    return model_dir


def upload_artifact(stack: OfflineStack, model_dir: Path, key: str) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for entry in sorted(model_dir.iterdir()):
            tar.add(entry, arcname=entry.name)
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{stack.bucket}/{key}"


def deploy(stack: OfflineStack, model_dir: Path, name: str) -> dict:
    """Deploy an artifact through the template's DeployEndpointFunction, then serve it locally."""
    return deploy_uploaded(stack, upload_artifact(stack, model_dir, f"training-output/{name}/output/model.tar.gz"))


def deploy_uploaded(stack: OfflineStack, model_data_url: str) -> dict:
    """Register an artifact already in S3 as an Approved version, deploy it and wait until the endpoint settles."""
    bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
    body = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    package = stack.register_model(body, f"reliability: {key}")
    deployment = stack.invoke("DeployEndpointFunction", {"model_package_arn": package})
    stack.settle_endpoints()
    return deployment


@contextlib.contextmanager
def served_stack(work_dir: Path, function_environment: dict[str, str] | None = None, architecture: str = "small_cnn"):
    """An OfflineStack with a model deployed and the API front open; closes everything on exit."""
    with OfflineStack(
        work_dir, log=lambda line: None, quiet_functions=True, function_environment=function_environment
    ) as stack:
        deploy(stack, write_artifact(work_dir / "artifact-a", architecture), "model-a")
        stack.open_api()
        yield stack
