"""The post-deploy suite's view of a stage: its stack's outputs, and how a caller signs for its API.

Run by `make integration-test STAGE=testing|prod [STACK_NAME=...]`, which writes the stack's outputs
(``aws cloudformation describe-stacks``, through ``ops.stack_outputs``) to ``STACK_OUTPUTS_FILE``. The same suite
runs against a deployed stage (the pipeline) and an offline stack (``make pipeline-rehearsal``, whose stacks publish
their outputs in the offline CloudFormation): nothing in it knows which.

Credentials: ``AuthMode=IAM`` signs with the caller's AWS credentials (the pipeline's role: it needs
``execute-api:Invoke`` on the ``PredictionsRouteArn`` output); ``AuthMode=JWT`` needs ``API_TOKEN``, a token of the
stack's issuer for one of its audiences.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from offline_stack.api_client import Signer, bearer, sigv4


@dataclass(frozen=True)
class DeployedStage:
    outputs: dict[str, str]
    auth_mode: str
    sign: Signer | None
    region: str
    credentials: dict[str, str]  # AuthMode=IAM: the caller's (AWS_ACCESS_KEY_ID, ...)

    @property
    def api_url(self) -> str:
        return self.outputs["ApiUrl"].rstrip("/")


def _outputs() -> dict[str, str]:
    path = os.environ.get("STACK_OUTPUTS_FILE")
    if not path or not Path(path).is_file():
        raise pytest.UsageError(
            "STACK_OUTPUTS_FILE must name the stack's outputs (JSON): run `make integration-test STAGE=testing`"
        )
    outputs = json.loads(Path(path).read_text())
    missing = {"ApiUrl", "ApiAuthMode", "EndpointName"} - set(outputs)
    if missing:
        raise pytest.UsageError(f"the stack's outputs lack {sorted(missing)}: is it this project's template?")
    return outputs


@pytest.fixture(scope="session")
def stage() -> DeployedStage:
    outputs = _outputs()
    region = outputs["ApiUrl"].split(".")[2] if ".execute-api." in outputs["ApiUrl"] else "us-east-1"
    mode, caller = outputs["ApiAuthMode"], {}
    if mode == "IAM":
        credentials = boto3.session.Session().get_credentials()
        if credentials is None:
            raise pytest.UsageError("AuthMode=IAM: the suite signs with your AWS credentials, and found none")
        frozen = credentials.get_frozen_credentials()
        caller = {
            "AWS_ACCESS_KEY_ID": frozen.access_key,
            "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
            "AWS_SESSION_TOKEN": frozen.token or "",
        }
        sign = sigv4(caller, region)
    elif mode == "JWT":
        token = os.environ.get("API_TOKEN", "")
        if not token:
            raise pytest.UsageError("AuthMode=JWT: set API_TOKEN to a token of the stack's issuer for its audience")
        sign = bearer(token)
    else:
        sign = None
    return DeployedStage(outputs, mode, sign, region, caller)
