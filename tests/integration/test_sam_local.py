"""Every event in events/ through SAM's own container path, arranged as `make local-invoke` arranges it.

`make build`, then the project's services container (a trained model, the SageMaker Runtime server, moto) on
the project's Docker network, and `sam local invoke --docker-network` reaching it by container name
(offline_stack/sam_local.py). What only this path checks: the built artifact and its dependencies, the handler string,
the layers mounted at /opt, the environment SAM injects, and the newcomer's commands themselves. The
expectations are the same table the in-process runner uses (tests/event_expectations.py). Needs a running
Docker engine and the Lambda base image (`make lambda-image` builds it offline); without them these tests
skip, and the in-process invoker still covers every event (test_predict_events.py, test_control_plane.py).
"""

from __future__ import annotations

import base64
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

from breed_classifier.labels import breed_name
from dog_breeds.adapters.clients import AWS_SERVICES
from offline_stack import sam_local
from offline_stack.api_client import post_image
from offline_stack.loopback_server import free_port
from offline_stack.sam_template import PROJECT_ROOT
from offline_stack.sample_events import SAMPLE_IMAGE_CLASSES
from offline_stack.synthetic_images import CLASS_FOLDERS
from tests.conftest import EVENTS_DIR
from tests.event_expectations import EXPECTATIONS
from tests.support.control_outcomes import assert_control_outcome

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


def last_json_line(result: subprocess.CompletedProcess) -> dict:
    """What `sam local invoke` prints last: the function's answer."""
    last_line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    try:
        return json.loads(last_line)
    except ValueError:
        raise AssertionError(f"no JSON answer from sam local invoke:\n{result.stdout}\n{result.stderr}") from None


def sam_invoke(build_dir: Path, function: str, event: Path, env_vars: Path) -> dict:
    command = [SAM, "local", "invoke", function, "--template-file", str(build_dir / "template.yaml")]
    command += ["--event", str(event), "--env-vars", str(env_vars), "--skip-pull-image"]
    return last_json_line(subprocess.run(command, capture_output=True, text=True, timeout=300, env=SAM_ENVIRONMENT))


@pytest.fixture(scope="module")
def services():
    """`make build`, then the project's services container, started afresh (a clean control plane)."""
    built = subprocess.run(["make", "--no-print-directory", "build"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    sam_local.down(say=lambda line: None)
    yield sam_local.up(say=lambda line: None)
    sam_local.down(say=lambda line: None)


def sam_local_invoke(function: str, event: Path) -> dict:
    """`sam local invoke` exactly as `make local-invoke` runs it: the project's network, template copy, env file."""
    return last_json_line(
        subprocess.run(
            [*sam_local.sam_arguments("invoke"), function, "--event", str(event)],
            capture_output=True,
            text=True,
            timeout=300,
            env=SAM_ENVIRONMENT,
        )
    )


# Deploys of the one endpoint must not race each other; everything else is independent.
# In the pipeline's order: deploy, deploy another model on another instance type (which takes the variant out of
# auto-scaling, as SageMaker requires), then register auto-scaling again
SEQUENTIAL_EVENTS = (
    "deploy-endpoint-approved.json",
    "deploy-endpoint-another-approved-on-c5.json",
    "register-autoscaling.json",
)
# Deploys that another deploy of the same endpoint followed, so it may serve the later one's config
FOLLOWED_BY_ANOTHER_DEPLOY = ("deploy-endpoint-approved.json",)


@pytest.fixture(scope="module")
def answers(services) -> dict[str, dict]:
    """Every event's answer from `sam local invoke`, run a few at a time (each starts a container)."""

    def invoke(event_name: str) -> dict:
        return sam_local_invoke(EXPECTATIONS[event_name].function, EVENTS_DIR / event_name)

    independent = [name for name in sorted(EXPECTATIONS) if name not in SEQUENTIAL_EVENTS]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(independent, pool.map(invoke, independent), strict=True))
    results.update({name: invoke(name) for name in SEQUENTIAL_EVENTS})
    return results


DEMO_BREEDS = [breed_name(folder) for folder in CLASS_FOLDERS]


def assert_trained_model_answer(event_name: str, body: dict, top_k: int) -> None:
    """The demo model (trained in the services container on the generated breeds) answered this image."""
    predictions = body["predictions"]
    assert len(predictions) == min(top_k, len(DEMO_BREEDS))
    assert {p["breed"] for p in predictions} <= set(DEMO_BREEDS)
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
    assert predictions[0]["breed"] == DEMO_BREEDS[SAMPLE_IMAGE_CLASSES[event_name]]


@pytest.mark.parametrize("event_name", sorted(EXPECTATIONS))
def test_event_through_sam_local_invoke(event_name, answers, services):
    expected, answer = EXPECTATIONS[event_name], answers[event_name]
    if expected.status is not None:
        body = json.loads(answer["body"])
        assert answer["statusCode"] == expected.status, body
        if expected.error_code:
            assert body["error"]["code"] == expected.error_code
        else:
            assert_trained_model_answer(event_name, body, expected.top_k)
    elif expected.error_type:
        assert answer.get("errorType") == expected.error_type, answer
    else:
        assert "errorType" not in answer, answer
        event = json.loads((EVENTS_DIR / event_name).read_text())
        later = event_name in FOLLOWED_BY_ANOTHER_DEPLOY
        assert_control_outcome(expected.function, event, answer, services, later_deploys=later)


def test_make_local_invoke_answers_200_with_the_trained_models_breeds(services):
    # Given a fresh clone's README command, with the services container already up
    # When the newcomer runs it on a prediction event
    result = subprocess.run(
        ["make", "--no-print-directory", "local-invoke", "FUNCTION=PredictFunction", "EVENT=events/predict-jpeg.json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=SAM_ENVIRONMENT,
    )
    # Then SAM's own invoke answers 200 with the served model's predictions
    answer = last_json_line(result)
    assert answer["statusCode"] == 200, answer
    assert_trained_model_answer("predict-jpeg.json", json.loads(answer["body"]), top_k=3)


def test_a_broken_handler_path_fails_under_sam(tmp_path):
    # Given a copy of the project whose template names a handler that does not exist
    copy = tmp_path / "broken"
    copy.mkdir()
    for part in ("template.yaml", "functions", "layers", "training_jobs", "events"):
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


def test_sam_local_start_api_answers_real_http_requests(services):
    # Given `sam local start-api` serving the built template on a loopback port, as `make start-api` runs it
    port = free_port()
    command = [*sam_local.sam_arguments("start-api"), "--disable-authorizer", "--host", "127.0.0.1"]
    api = subprocess.Popen(
        [*command, "--port", str(port)],
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
    assert_trained_model_answer("predict-jpeg.json", ok_body, top_k=3)
    assert (refused_status, refused_body["error"]["code"]) == (415, "UnsupportedMediaType")


def test_make_build_ships_bytecode_the_lambda_runtime_can_use_unchecked(services):
    # Given `make build` (run by the services fixture): Lambda cannot write .pyc files into /opt or /var/task
    built = PROJECT_ROOT / ".aws-sam" / "build"
    for source in (built / "SharedLayer/python/botocore/client.py", built / "PredictFunction/app.py"):
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        # Then each module has python3.12 bytecode beside it, valid whatever the zip does to timestamps
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{compiled}: not an unchecked hash-based .pyc (flags {flags:#b})"


def test_make_build_ships_only_the_aws_models_the_functions_call(services):
    # Given `make build` (run by the services fixture), after which every sam local test above invoked the functions
    data = PROJECT_ROOT / ".aws-sam" / "build" / "SharedLayer" / "python" / "botocore" / "data"
    # Then the layer's botocore holds the models of the called services only (plus its own endpoint files)
    assert {folder.name for folder in data.iterdir() if folder.is_dir()} == AWS_SERVICES
    assert (data / "endpoints.json").is_file()
