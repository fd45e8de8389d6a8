"""Every event in events/ through SAM's own container path: `sam build`, then `sam local invoke`.

What only this path checks: the built artifact and its dependencies, the handler string, the layer
mounted at /opt, the environment SAM injects. The expectations are the same table the in-process
runner uses (tests/event_expectations.py). Needs a running Docker engine and the Lambda base image
(`make lambda-image` builds it offline); without them these tests skip, and the in-process invoker
still covers every event (test_predict_events.py, test_control_plane.py).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from local.demo import post_image
from local.lambda_invoker import LambdaFunction
from local.loopback_server import free_port
from local.sam_template import PROJECT_ROOT, load_template
from tests.conftest import ENDPOINT_NAME, EVENTS_DIR
from tests.event_expectations import EXPECTATIONS
from tests.support.control_outcomes import assert_control_outcome
from tests.support.control_plane import seed_control_plane
from tests.support.models import CANNED_BREEDS, CannedModel

SAM = str(Path(sys.executable).with_name("sam"))
BASE_IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"


def _docker_problem() -> str | None:
    if not shutil.which("docker"):
        return "no docker client on PATH"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "no Docker engine answers (CI starts one in .ci/run)"
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        return f"no {BASE_IMAGE} image (make lambda-image builds it offline)"
    if not shutil.which("python3.12") or subprocess.run(["python3.12", "--version"], capture_output=True).returncode:
        return "sam build needs python3.12 on PATH"
    return None


PROBLEM = _docker_problem()
pytestmark = [pytest.mark.docker, pytest.mark.skipif(PROBLEM is not None, reason=f"sam local invoke: {PROBLEM}")]
# SAM asks STS for the account: with no network, one attempt fails fast instead of retrying for seconds.
SAM_ENVIRONMENT = {
    **os.environ,
    "AWS_MAX_ATTEMPTS": "1",
    "SAM_CLI_TELEMETRY": "0",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


def sam_build(source: Path, build_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            SAM,
            "build",
            "--template-file",
            str(source / "template.yaml"),
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(build_dir.parent / "cache"),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
        env=SAM_ENVIRONMENT,
    )


def sam_invoke(build_dir: Path, function: str, event: Path, env_vars: Path) -> dict:
    result = subprocess.run(
        [
            SAM,
            "local",
            "invoke",
            function,
            "--template-file",
            str(build_dir / "template.yaml"),
            "--event",
            str(event),
            "--env-vars",
            str(env_vars),
            "--skip-pull-image",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=SAM_ENVIRONMENT,
    )
    last_line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    try:
        return json.loads(last_line)
    except ValueError:
        raise AssertionError(f"no JSON answer from sam local invoke:\n{result.stdout}\n{result.stderr}") from None


LOOPBACK_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")


def declare_loopback_variables(build_dir: Path) -> None:
    """Declare the endpoint-URL variables in the *built* template (this test's copy only).

    `sam local invoke --env-vars` ignores names the template does not declare, and the real template
    has no business declaring endpoint overrides; the source template.yaml is untouched.
    """
    path = build_dir / "template.yaml"
    template = load_template(path)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
            variables.update({name: "" for name in LOOPBACK_VARIABLES})
    path.write_text(yaml.safe_dump(template, sort_keys=False))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    result = sam_build(PROJECT_ROOT, build_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    declare_loopback_variables(build_dir)
    return build_dir


def bridge_gateway() -> str:
    """This machine's own address on Docker's default bridge (the network namespace the engine made).

    SAM 1.170 accepts ``--docker-network host`` but still runs the container on the default bridge, so
    the functions reach the test servers at the bridge's gateway: an address of this machine, inside the
    network the CI run's own engine created. Nothing else listens there; the servers exist only for this test.
    """
    subnet = subprocess.run(
        ["docker", "network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return str(next(ipaddress.ip_network(subnet).hosts()))


@pytest.fixture(scope="module")
def servers():
    """SageMaker Runtime and the control plane (moto), listening where the function containers reach them."""
    from local.control_plane import ControlPlane
    from local.endpoint_server import EndpointServer

    gateway = bridge_gateway()
    with EndpointServer(host=gateway) as runtime, ControlPlane(host=gateway) as control_plane:
        runtime.serve(ENDPOINT_NAME, CannedModel())
        yield runtime, control_plane


@pytest.fixture(scope="module")
def env_vars(servers, tmp_path_factory) -> Path:
    """Every function's environment as the in-process invoker resolves it, pointed at the loopback servers."""
    runtime, control_plane = servers
    loopback = {**control_plane.environment(), "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime.url}
    variables = {}
    for function in sorted({row.function for row in EXPECTATIONS.values()}):
        resolved = LambdaFunction(function, environment=loopback).environment
        variables[function] = {k: v for k, v in resolved.items() if not k.startswith("AWS_LAMBDA_")}
    path = tmp_path_factory.mktemp("env") / "env.json"
    path.write_text(json.dumps(variables))
    return path


# Deploys of the one endpoint must not race each other; everything else is independent.
SEQUENTIAL_EVENTS = ("deploy-endpoint-from-job.json", "deploy-endpoint-from-model-data.json")


@pytest.fixture(scope="module")
def answers(built, servers, env_vars) -> dict[str, dict]:
    """Every event's answer from `sam local invoke`, run a few at a time (each starts a container)."""
    _, control_plane = servers
    seed_control_plane(control_plane)

    def invoke(event_name: str) -> dict:
        return sam_invoke(built, EXPECTATIONS[event_name].function, EVENTS_DIR / event_name, env_vars)

    independent = [name for name in sorted(EXPECTATIONS) if name not in SEQUENTIAL_EVENTS]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(independent, pool.map(invoke, independent), strict=True))
    results.update({name: invoke(name) for name in SEQUENTIAL_EVENTS})
    return results


@pytest.mark.parametrize("event_name", sorted(EXPECTATIONS))
def test_event_through_sam_local_invoke(event_name, answers, servers):
    expected, answer = EXPECTATIONS[event_name], answers[event_name]
    if expected.status is not None:
        body = json.loads(answer["body"])
        assert answer["statusCode"] == expected.status, body
        if expected.error_code:
            assert body["error"]["code"] == expected.error_code
        else:
            assert [p["breed"] for p in body["predictions"]] == [b for b, _, _ in CANNED_BREEDS[: expected.top_k]]
    elif expected.error_type:
        assert answer.get("errorType") == expected.error_type, answer
    else:
        assert "errorType" not in answer, answer
        event = json.loads((EVENTS_DIR / event_name).read_text())
        later = event_name in SEQUENTIAL_EVENTS[:-1]
        assert_control_outcome(expected.function, event, answer, servers[1], later_deploys=later)


def test_a_broken_handler_path_fails_under_sam(tmp_path):
    # Given a copy of the project whose template names a handler that does not exist
    copy = tmp_path / "broken"
    copy.mkdir()
    for part in ("template.yaml", "functions", "layers", "events"):
        source = PROJECT_ROOT / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy / part)
    template = (copy / "template.yaml").read_text()
    (copy / "template.yaml").write_text(template.replace("Handler: app.lambda_handler", "Handler: app.missing", 1))
    # When it is built and invoked
    assert sam_build(copy, tmp_path / "build").returncode == 0
    env = tmp_path / "env.json"
    env.write_text("{}")
    answer = sam_invoke(tmp_path / "build", "PredictFunction", copy / "events/predict-bad-top-k.json", env)
    # Then the runtime reports the handler missing instead of answering
    assert answer.get("errorType") == "Runtime.HandlerNotFound", answer


def test_sam_local_start_api_answers_real_http_requests(built, servers, env_vars):
    # Given `sam local start-api` serving the built template on a loopback port
    port = free_port()
    api = subprocess.Popen(
        [
            SAM,
            "local",
            "start-api",
            "--template-file",
            str(built / "template.yaml"),
            "--env-vars",
            str(env_vars),
            "--skip-pull-image",
            # SAM emulates Lambda authorizers only: the route's IAM (or JWT) auth is AWS's to check
            "--disable-authorizer",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=SAM_ENVIRONMENT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert api.poll() is None, api.stdout.read()
            time.sleep(0.5)
        api_url = f"http://127.0.0.1:{port}"
        image = base64.b64decode(json.loads((EVENTS_DIR / "predict-jpeg.json").read_text())["body"])
        # When a JSON image and a GIF are posted over HTTP (SAM 1.170's local HTTP API cannot take a raw
        # binary body: it fails with UnicodeDecodeError before the function runs; API Gateway and
        # `sam local invoke` with base64 events handle it, see test_event_through_sam_local_invoke)
        document = json.dumps({"image": base64.b64encode(image).decode()}).encode()
        ok_status, ok_body = post_image(api_url, document, "application/json", top_k=3)
        refused_status, refused_body = post_image(api_url, b"GIF89a", "image/gif")
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        output, _ = api.communicate(timeout=30)
    # Then the API answers as the contract says
    assert ok_status == 200, output[-3000:]
    assert [p["breed"] for p in ok_body["predictions"]] == [b for b, _, _ in CANNED_BREEDS[:3]]
    assert (refused_status, refused_body["error"]["code"]) == (415, "UnsupportedMediaType")
