"""`make demo`: train -> deploy -> scale -> predict on this machine, with no AWS account.

    python -m offline_stack.demo [--data-dir DIR] [--work-dir .offline/demo] [--serve]

Makes a small generated data set (or uses ``--data-dir`` / ``DATA_DIR``, e.g. a real dogImages folder),
uploads it, and executes the pipeline's own definition (statemachine/pipeline.asl.json) in moto's Step
Functions: StartTrainingFunction, the training job (2 processes as 2 hosts), ReleaseGateFunction (registry
and gate), DeployEndpointFunction, RegisterAutoscalingFunction, printing each state as it is entered.
Then it sends sample images through the local API and prints the answers. ``--serve`` keeps the stack
up and prints curl commands. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from offline_stack.demo_report import print_predictions
from offline_stack.demo_steps import PHOTOS, read_demo_hyperparameters, run_demo
from offline_stack.sam_template import PROJECT_ROOT
from offline_stack.stack import OfflineStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ["DATA_DIR"]) if os.environ.get("DATA_DIR") else None
    )
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / ".offline" / "demo")
    parser.add_argument("--serve", action="store_true", help="keep the stack up after the demo")
    args = parser.parse_args(argv)
    if args.data_dir and not all((args.data_dir / split).is_dir() for split in ("train", "valid")):
        print(
            f"error: {args.data_dir} needs train/ and valid/ folders of class folders (test/ optional), "
            "as in dogImages",
            file=sys.stderr,
        )
        return 2
    try:
        hyperparameters = read_demo_hyperparameters(os.environ.get("DEMO_HYPERPARAMETERS", ""))
        if args.data_dir is not None and "dog-gate" not in json.loads(os.environ.get("DEMO_HYPERPARAMETERS") or "{}"):
            hyperparameters["dog-gate"] = True  # your photos are dogs: "not a dog" for what is not one
    except ValueError as exc:  # one line, and the previous run's report stays where it is
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C and `kill` both end in the same clean shutdown (SIGINT is ignored when started in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    args.work_dir.mkdir(parents=True)
    try:
        log = lambda line: print(f"      {line}", flush=True)  # noqa: E731
        # `make serve` opens the API (AuthMode=NONE) so the web page in a browser can post; `make demo` signs (IAM).
        overrides = {"AuthMode": "NONE"} if args.serve else {}
        with OfflineStack(args.work_dir, log=log, quiet_functions=True, parameter_overrides=overrides) as stack:
            result = run_demo(stack, args.data_dir, hyperparameters, say=lambda line: print(line, flush=True))
            print_predictions(result)
            print(
                f"\nDone in {result.seconds:.0f} s. Report: {args.work_dir / 'report.md'}; training curves: "
                f"{args.work_dir / 'training_curves.svg'}; jobs: {args.work_dir / 'jobs'}"
            )
            if args.serve:
                serve_forever(stack)
    except KeyboardInterrupt:
        print("\nstopped; every server and process it started is stopped too")
    return 0


def serve_forever(stack: OfflineStack) -> None:
    sample = PHOTOS / "dog.128.jpg"
    url = stack.api.url
    print(
        f"""
The API is up at {url}/predictions (Ctrl-C to stop), serving the starter model (ImageNet's dog breeds).
It is open (AuthMode=NONE) so a browser can post to it; `make demo` and a deployed stack sign (AuthMode=IAM).
Open {url}/ in a browser to try it with a photo; its contract is at {url}/openapi.json.
Try it with a photo of your own dog, or:

  curl -s -X POST '{url}/predictions?top_k=3' -H 'Content-Type: image/jpeg' --data-binary @{sample}
  curl -s -X POST '{url}/predictions' -H 'Content-Type: application/json' -d '{{"image": "'$(base64 -w0 {sample})'"}}'
  curl -s -X POST '{url}/predictions' -H 'Content-Type: image/gif' --data-binary @{sample}   # 415

(SageMaker Runtime: {stack.runtime.url}; control plane (moto): {stack.control_plane.url})
""",
        flush=True,
    )
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
