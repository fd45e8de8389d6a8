"""What `sam local invoke` and `sam local start-api` call, served from a container of the project's own.

    python -m offline_stack.sam_local_services --work-dir DIR --ports 5000 8080     # run by offline_stack/sam_local.py

The offline stack (moto for S3, SageMaker and Application Auto Scaling; the SageMaker Runtime server with a
model container) listening on every interface of its container, so the Lambda containers SAM starts on the
same Docker network reach it by the container's name. Before it says it is ready it:

1. serves a trained model on the stack's endpoint (registered as an Approved version, as everything deployed is):
   the artifact cached in ``DIR/model.tar.gz``, or, the first time, a small CNN trained here on the demo's
   generated breeds (``QUICK_HYPERPARAMETERS``, about 15 s on 2 cores: what SAM's path needs is a real model behind
   a real endpoint, not accuracy) and then cached;
2. creates what the sample events in events/ refer to (the bucket, training data, a Completed job, the Approved
   versions the deploy events name).

Then it writes ``DIR/ready.json`` and serves until stopped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import threading
from pathlib import Path

from offline_stack.demo_steps import QUICK_HYPERPARAMETERS, write_demo_data
from offline_stack.sam_template import PSEUDO_PARAMETERS
from offline_stack.sample_events import create_event_inputs, create_sample_packages, create_sample_training_job
from offline_stack.stack import OfflineStack
from ops.register_model import register_approved


def train(stack: OfflineStack, hyperparameters: dict, say=print) -> str:
    """StartTrainingFunction, then the job itself on this machine; returns its model.tar.gz URI."""
    job_name = stack.invoke("StartTrainingFunction", {"hyperparameters": hyperparameters, "instance_count": 2})[
        "training_job_name"
    ]
    say(f"{job_name}: running it locally as SageMaker would")
    outcome = stack.run_training_job(job_name)
    if not outcome.succeeded:
        raise RuntimeError(f"training failed: {outcome.failure_reason}")
    return outcome.model_artifacts


def deploy_and_scale(stack: OfflineStack, event: dict, say=print) -> None:
    """DeployEndpointFunction (the endpoint starts serving), then RegisterAutoscalingFunction."""
    deployment = stack.invoke("DeployEndpointFunction", event)
    stack.settle_endpoints()
    say(f"endpoint {deployment['endpoint_name']} {deployment['action']} ({deployment['endpoint_config_name']})")
    stack.invoke("RegisterAutoscalingFunction", {})


def serve_model(stack: OfflineStack, cache: Path, say=print) -> None:
    """The demo model, registered as an Approved version (the deploy function deploys nothing else) and deployed."""
    if cache.is_file():
        say(f"serving the cached model {cache}")
        body = cache.read_bytes()
    else:
        model_artifacts = train(stack, QUICK_HYPERPARAMETERS, say)
        bucket, _, key = model_artifacts.removeprefix("s3://").partition("/")
        body = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        cache.write_bytes(body)
        say(f"cached the trained model in {cache}")
    group, region = stack.template.parameters["EndpointName"], PSEUDO_PARAMETERS["AWS::Region"]
    package = register_approved(
        stack.sagemaker, stack.s3, stack.bucket, group, body, region, "the sam local demo model"
    )
    deploy_and_scale(stack, {"model_package_arn": package}, say)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--ports", type=int, nargs=2, required=True, metavar=("CONTROL_PLANE", "RUNTIME"))
    args = parser.parse_args(argv)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    ready = args.work_dir / "ready.json"
    ready.unlink(missing_ok=True)
    say = lambda line: print(line, flush=True)  # noqa: E731
    listen = ("0.0.0.0", *args.ports)  # noqa: S104 (every interface of the container's own network namespace)
    shutil.rmtree(args.work_dir / "stack", ignore_errors=True)
    with OfflineStack(args.work_dir / "stack", log=say, quiet_functions=True, listen=listen) as stack:
        write_demo_data(stack, None, say)
        create_sample_packages(stack.sagemaker, stack.s3)  # first: the deploy events name versions 1 and 2
        serve_model(stack, args.work_dir / "model.tar.gz", say)
        create_sample_training_job(stack.sagemaker, stack.s3)
        create_event_inputs(stack.s3)
        ready.write_text(json.dumps({"endpoint_name": stack.template.parameters["EndpointName"]}))
        say("ready")
        stopped.wait()
    ready.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
