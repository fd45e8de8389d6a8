"""Fixtures shared by all suites: events from events/, the local endpoint server, template functions."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from offline_stack.aws_rules.iam import Roles
from offline_stack.control_plane import DUMMY_CREDENTIALS, ControlPlane
from offline_stack.endpoint_server import EndpointServer
from offline_stack.lambda_invoker import LambdaFunction
from offline_stack.sam_template import PROJECT_ROOT, SamTemplate
from tests.support.control_plane import seed_control_plane
from tests.support.models import CannedModel

# What the Makefile exports, so that `pytest` alone behaves like `make test`: no SAM telemetry, no
# retried account look-ups offline, no SDK v2 banner, and python3.12 beside the dev Python on pyenv.
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
os.environ.setdefault("AWS_MAX_ATTEMPTS", "1")
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
if shutil.which("pyenv") and "PYENV_VERSION" not in os.environ:
    _versions = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
    _python312 = next((v for v in _versions if v.startswith("3.12.")), None)
    _current = subprocess.run(["pyenv", "version-name"], capture_output=True, text=True).stdout.strip().split(":")[0]
    if _python312 and _current:
        os.environ["PYENV_VERSION"] = f"{_current}:{_python312}"

EVENTS_DIR = PROJECT_ROOT / "events"
ENDPOINT_NAME = SamTemplate.load().parameters["EndpointName"]


def load_event(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text())


def response_json(response: dict) -> dict:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return json.loads(body)


@pytest.fixture
def endpoint_server():
    """A SageMaker Runtime server on loopback serving the canned model under the template's endpoint name."""
    with EndpointServer() as server:
        server.serve(ENDPOINT_NAME, CannedModel())
        yield server


@pytest.fixture
def predict_function(endpoint_server):
    """Open PredictFunction environments (cold starts) that reach ``endpoint_server``."""

    @contextlib.contextmanager
    def open_function(**environment: str):
        variables = {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_server.url, **environment}
        with LambdaFunction("PredictFunction", environment=variables) as function:
            yield function

    return open_function


def all_event_files() -> list[Path]:
    return sorted(EVENTS_DIR.glob("*.json"))


TEMPLATE_ROLES = Roles.from_template(SamTemplate.load())


@pytest.fixture(scope="session")
def control_plane_server():
    """moto on loopback, holding every request a template role signs to that role's policy (aws_rules.iam)."""
    with ControlPlane() as server:
        server.enforce_roles(TEMPLATE_ROLES)
        yield server


@pytest.fixture
def control_plane(control_plane_server):
    """moto on loopback, emptied and seeded with what the sample events refer to; emptied again after the test.

    moto's backends are one per process: what a test leaves (an endpoint of the stack's name made by hand, say)
    would otherwise be there for the next offline stack, as an endpoint outside the stack is in a real account."""
    control_plane_server.reset()
    seed_control_plane(control_plane_server)
    yield control_plane_server
    control_plane_server.reset()


@pytest.fixture
def control_function(control_plane):
    """Open a control-plane function (a cold start) whose boto3 clients reach the control plane as its own role."""

    @contextlib.contextmanager
    def open_function(logical_id: str, **environment: str):
        role = TEMPLATE_ROLES.for_function(SamTemplate.load(), logical_id).environment()
        with LambdaFunction(logical_id, environment={**control_plane.environment(), **role, **environment}) as function:
            yield function

    return open_function
