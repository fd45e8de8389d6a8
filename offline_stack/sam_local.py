"""`make local-invoke` and `make start-api`: SAM's own commands, answered by a model served in a local container.

    python -m offline_stack.sam_local up                       # network + services container, ready to answer
    python -m offline_stack.sam_local invoke FUNCTION EVENT    # e.g. PredictFunction events/predict-jpeg.json
    python -m offline_stack.sam_local start-api [--port 3000]  # sam local start-api on 127.0.0.1
    python -m offline_stack.sam_local down                     # remove the container and the network

How the pieces meet, and why (docs/sam-local.md):

- The project creates a Docker network (``dog-breeds-local``) and runs ``offline_stack.sam_local_services`` in a
  container on it (``dog-breeds-services``): moto for the control plane, the SageMaker Runtime server and a
  model container serving a trained model. SAM attaches each Lambda container to that network
  (``--docker-network``), so functions reach the services by container name, and nothing else: no address of
  the host, no port outside what the project started. The host sees the two ports on 127.0.0.1 only.
- The services container runs this checkout's ``.venv`` (mounted read-only, with the interpreter it was made
  from) on the Lambda base image's Debian userland: nothing is downloaded or copied. That needs a Linux host
  whose .venv can run in Debian bookworm; ``SAM_LOCAL_SERVICES_IMAGE`` names another image with the same
  libraries.
- ``sam local invoke --env-vars`` only sets variables the template declares, and the deployed template has no
  business declaring endpoint overrides. So SAM runs a copy of the *built* template,
  ``.aws-sam/build/template-local.yaml``, that declares ``AWS_ENDPOINT_URL`` and
  ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` for every function, with ``.offline/sam-local/env.json`` giving
  every function its template values plus those two (``BUCKET_NAME`` resolved, not the literal
  "ArtifactsBucket").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from offline_stack.control_plane import ControlPlane
from offline_stack.lambda_invoker import LambdaFunction
from offline_stack.sam_template import PROJECT_ROOT, PSEUDO_PARAMETERS, SamTemplate, load_template

NETWORK = "dog-breeds-local"
CONTROL_PLANE_PORT, RUNTIME_PORT = 5000, 8080  # inside the services container
SERVICES = "dog-breeds-services"
LAMBDA_BASE_IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"
IMAGE = os.environ.get("SAM_LOCAL_SERVICES_IMAGE", LAMBDA_BASE_IMAGE)
WORK_DIR = PROJECT_ROOT / ".offline" / "sam-local"
BUILD_DIR = PROJECT_ROOT / ".aws-sam" / "build"
LOCAL_TEMPLATE = BUILD_DIR / "template-local.yaml"
ENV_FILE = WORK_DIR / "env.json"
ENDPOINT_VARIABLES = {
    "AWS_ENDPOINT_URL": f"http://{SERVICES}:{CONTROL_PLANE_PORT}",
    "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": f"http://{SERVICES}:{RUNTIME_PORT}",
}
READY_TIMEOUT_SECONDS = 900  # the first start trains the demo model


class SamLocalError(RuntimeError):
    """Something the local path needs is missing; the message says what and how to get it."""


def docker(*arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *arguments], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise SamLocalError(f"docker {' '.join(arguments[:2])} failed: {result.stderr.strip()}")
    return result


def check_prerequisites() -> None:
    if not shutil.which("docker") or docker("info", check=False).returncode != 0:
        raise SamLocalError("no Docker engine answers: start one (sam local needs it too)")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        raise SamLocalError(f"no {IMAGE} image: `docker pull {IMAGE}`, or `make lambda-image` (offline, as root)")
    if not (BUILD_DIR / "template.yaml").is_file():
        raise SamLocalError("no built template in .aws-sam/build: run `make build` first")


class Services:
    """The services container as the host sees it: its published ports and a moto client for the tests."""

    def __init__(self) -> None:
        self.control_plane_url = self._published(CONTROL_PLANE_PORT)
        self.runtime_url = self._published(RUNTIME_PORT)

    @staticmethod
    def _published(port: int) -> str:
        address = docker("port", SERVICES, f"{port}/tcp").stdout.split()[0]
        return f"http://{address}"

    def client(self, service: str):
        return ControlPlane.session().client(service, endpoint_url=self.control_plane_url)


def _running() -> bool:
    state = docker("container", "inspect", "--format", "{{.State.Running}}", SERVICES, check=False)
    return state.returncode == 0 and state.stdout.strip() == "true"


def up(say=print) -> Services:
    """Start the network and the services container unless they run already; return once it is ready."""
    check_prerequisites()
    ready = WORK_DIR / "ready.json"
    if docker("network", "inspect", NETWORK, check=False).returncode != 0:
        docker("network", "create", NETWORK)
    if not (_running() and ready.is_file()):
        docker("rm", "--force", SERVICES, check=False)
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        ready.unlink(missing_ok=True)
        docker(*_run_arguments())
        first = not (WORK_DIR / "model.tar.gz").is_file()
        say(
            f"started {SERVICES} on network {NETWORK}; "
            + ("training the demo model in it (first time, about a minute)" if first else "serving the cached model")
            + f" (docker logs -f {SERVICES} to watch)"
        )
        _wait_until_ready(ready)
    _write_local_template()
    _write_env_file()
    return Services()


def _run_arguments() -> list[str]:
    root, interpreter = str(PROJECT_ROOT), Path(sys.base_prefix)
    python = PROJECT_ROOT / ".venv" / "bin" / "python"
    return [
        "run",
        "--detach",
        "--name",
        SERVICES,
        "--network",
        NETWORK,
        "--user",
        f"{os.getuid()}:{os.getgid()}",
        "--publish",
        f"127.0.0.1::{CONTROL_PLANE_PORT}",
        "--publish",
        f"127.0.0.1::{RUNTIME_PORT}",
        "--volume",
        f"{root}:{root}:ro",
        "--volume",
        f"{interpreter}:{interpreter}:ro",
        "--volume",
        f"{WORK_DIR}:{WORK_DIR}",
        "--workdir",
        root,
        "--env",
        "HOME=/tmp",
        "--env",
        f"PYTHONPATH={root}:{root}/layers/shared/python:{root}/training_jobs",
        "--env",
        "PYTHONDONTWRITEBYTECODE=1",
        "--entrypoint",
        str(python),
        IMAGE,
        "-m",
        "offline_stack.sam_local_services",
        "--work-dir",
        str(WORK_DIR),
        "--ports",
        str(CONTROL_PLANE_PORT),
        str(RUNTIME_PORT),
    ]


def _wait_until_ready(ready: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not ready.is_file():
        if not _running() or time.monotonic() > deadline:
            logs = docker("logs", "--tail", "40", SERVICES, check=False)
            raise SamLocalError(f"{SERVICES} did not become ready:\n{logs.stdout}{logs.stderr}")
        time.sleep(1)


def _write_local_template() -> None:
    template = load_template(BUILD_DIR / "template.yaml")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
            variables.update(dict.fromkeys(ENDPOINT_VARIABLES, ""))
    LOCAL_TEMPLATE.write_text(yaml.safe_dump(template, sort_keys=False))


def _write_env_file() -> None:
    template = SamTemplate.load()
    functions = [i for i, r in template.resources.items() if r["Type"] == "AWS::Serverless::Function"]
    variables = {
        name: {**LambdaFunction(name, template).declared_environment, **ENDPOINT_VARIABLES} for name in functions
    }
    ENV_FILE.write_text(json.dumps(variables, indent=2))


def sam_arguments(command: str) -> list[str]:
    """The flags every `sam local` command here takes."""
    arguments = [
        str(Path(sys.executable).with_name("sam")),
        "local",
        command,
        "--template-file",
        str(LOCAL_TEMPLATE),
        "--env-vars",
        str(ENV_FILE),
        "--docker-network",
        NETWORK,
        "--region",
        PSEUDO_PARAMETERS["AWS::Region"],
    ]
    if docker("image", "inspect", LAMBDA_BASE_IMAGE, check=False).returncode == 0:
        arguments.append("--skip-pull-image")  # the base image is here (pulled, or built by make lambda-image)
    return arguments


def invoke(function: str, event: Path, say=print) -> int:
    if not event.is_file():
        raise SamLocalError(f"no event file {event}: pick one of events/*.json")
    up(say)
    command = [*sam_arguments("invoke"), function, "--event", str(event)]
    say("$ " + " ".join(command))
    return subprocess.run(command).returncode


def start_api(port: int, say=print) -> int:
    up(say)
    # SAM emulates Lambda authorizers only: the route's IAM (or JWT) auth is API Gateway's to check.
    command = [*sam_arguments("start-api"), "--host", "127.0.0.1", "--port", str(port), "--disable-authorizer"]
    say("$ " + " ".join(command))
    say(
        "The model behind it is a small CNN trained on the demo's generated breeds (it checks SAM's wiring; "
        "for answers about real photos, `make serve` runs the starter model). Then, for example:"
    )
    say(f"  curl -s 'http://127.0.0.1:{port}/predictions?top_k=3' -H 'Content-Type: application/json' \\")
    say("""      -d '{"image": "'$(base64 -w0 tests/data/photos/dog.128.jpg)'"}'""")
    try:
        return subprocess.run(command).returncode
    except KeyboardInterrupt:
        return 0


def down(say=print) -> None:
    docker("rm", "--force", SERVICES, check=False)
    docker("network", "rm", NETWORK, check=False)
    (WORK_DIR / "ready.json").unlink(missing_ok=True)
    say(f"removed {SERVICES} and {NETWORK} (the cached model stays in {WORK_DIR})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the services container (idempotent)")
    invoking = commands.add_parser("invoke", help="sam local invoke FUNCTION with the EVENT file")
    invoking.add_argument("function", help="a function's logical ID, e.g. PredictFunction")
    invoking.add_argument("event", type=Path, help="an event file, e.g. events/predict-jpeg.json")
    api = commands.add_parser("start-api", help="sam local start-api on 127.0.0.1")
    api.add_argument("--port", type=int, default=3000)
    commands.add_parser("down", help="remove the services container and the network")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            services = up()
            print(f"control plane (moto): {services.control_plane_url}; SageMaker Runtime: {services.runtime_url}")
            return 0
        if args.command == "invoke":
            functions = [i for i, r in SamTemplate.load().resources.items() if r["Type"] == "AWS::Serverless::Function"]
            if args.function not in functions:
                print(f"error: {args.function!r} is not a function of template.yaml: {functions}", file=sys.stderr)
                return 2
            return invoke(args.function, args.event)
        if args.command == "start-api":
            return start_api(args.port)
        down()
        return 0
    except SamLocalError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
