"""Run the training entry points as SageMaker would run them: N host processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from offline_stack.loopback_server import free_port
from offline_stack.sam_template import PROJECT_ROOT

TRAINING_JOBS = PROJECT_ROOT / "training_jobs"
# Small and fast on a 2-core CPU, and still a real network that has to learn.
FAST_HYPERPARAMETERS = [
    "--architecture",
    "small_cnn",
    "--pretrained",
    "false",
    "--freeze-backbone",
    "false",
    "--epochs",
    "6",
    "--batch-size",
    "16",
    "--learning-rate",
    "0.01",
    "--image-size",
    "32",
    "--num-workers",
    "0",
]


@dataclass
class HostRun:
    host: str
    returncode: int
    output: str
    model_dir: Path
    output_data_dir: Path


def run_sagemaker_hosts(
    workdir: Path, channels: dict[str, Path], hosts: int = 2, extra_args=(), extra_env: dict | None = None
) -> list[HostRun]:
    """Start ``train.py`` once per host with the SM_* variables SageMaker sets; wait for all of them."""
    names = [f"algo-{i}" for i in range(1, hosts + 1)]
    port = free_port()
    processes = []
    for host in names:
        env = {
            **os.environ,
            "SM_HOSTS": json.dumps(names),
            "SM_CURRENT_HOST": host,
            # Every "host" is this machine: the master's name algo-1 would not resolve here.
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "SM_MODEL_DIR": str(workdir / host / "model"),
            "SM_OUTPUT_DATA_DIR": str(workdir / host / "output/data"),
            "SM_OUTPUT_DIR": str(workdir / host / "output"),
            "OMP_NUM_THREADS": "1",
            **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()},
            **(extra_env or {}),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "train.py", *FAST_HYPERPARAMETERS, *extra_args],
                cwd=TRAINING_JOBS,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    runs = []
    for host, process in zip(names, processes, strict=True):
        output, _ = process.communicate(timeout=600)
        runs.append(HostRun(host, process.returncode, output, workdir / host / "model", workdir / host / "output/data"))
    return runs


def run_entry_point(script: str, *arguments: str, env: dict | None = None, timeout: int = 600):
    """Run ``training_jobs/<script>`` as a user would, from that folder."""
    return subprocess.run(
        [sys.executable, script, *arguments],
        cwd=TRAINING_JOBS,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def plotted_series(svg: Path) -> int:
    """How many curves the training-curves plot draws (each a polyline with a point per epoch)."""
    from xml.etree import ElementTree

    lines = ElementTree.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}polyline")
    return sum(1 for line in lines if line.get("points"))
