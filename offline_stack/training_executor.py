"""Run a training job the way SageMaker would, from the CreateTrainingJob request in the control plane.

Channels are copied from the bucket into the job's folder, the source tarball is unpacked, and the
entry point runs once per instance as a local process with the ``SM_*`` variables SageMaker sets
(``SM_HOSTS`` ``["algo-1", ...]``, ``SM_CURRENT_HOST``, channel and model folders), the hyperparameters
as ``--name value`` arguments, and ``MASTER_ADDR=127.0.0.1`` because every "host" is this machine. The
instance count is capped at the CPU count (with a message). Rank 0's model folder is packed as
``model.tar.gz`` and uploaded to ``<S3OutputPath>/<job>/output/model.tar.gz``, as SageMaker does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from offline_stack.aws_rules.sagemaker import (
    CHANNELS_PATH,
    empty_channel_refusal,
    isolated_environment,
    isolated_training_refusal,
)
from offline_stack.loopback_server import free_port

LogLine = Callable[[str], None]


@dataclass
class TrainingOutcome:
    job_name: str
    succeeded: bool
    hosts: int
    model_artifacts: str | None
    failure_reason: str | None
    job_dir: Path
    stopped: bool = False
    final_metrics: dict[str, float] = field(default_factory=dict)  # as SageMaker reads them from the log


class LocalTrainingExecutor:
    """Runs control-plane training jobs on this machine; ``s3`` and ``sagemaker`` reach the control plane."""

    def __init__(
        self,
        sagemaker,
        s3,
        work_dir: Path,
        log: LogLine = print,
        max_hosts: int | None = None,
        s3_as: Callable[[str], Any] | None = None,
    ) -> None:
        """``s3_as(role_arn)``: an S3 client acting as that role, as a job's instances do with its RoleArn
        (without it, ``s3`` serves every job)."""
        self.sagemaker, self.s3, self.work_dir, self.log = sagemaker, s3, Path(work_dir), log
        self.s3_as = s3_as
        self.max_hosts = max_hosts or os.cpu_count() or 1
        self.running: set[subprocess.Popen] = set()  # host processes of jobs in progress
        self._streams: dict[subprocess.Popen, threading.Thread] = {}  # each host's output, copied to its log

    def close(self) -> None:
        """Stop every host process still running (the stack is closing, on success or on failure)."""
        for process in list(self.running):
            self._stop(process)

    def run(self, job_name: str, should_stop: Callable[[], bool] = lambda: False) -> TrainingOutcome:
        """Run the job to its end; ``should_stop`` is polled, and stops every host when it says so."""
        job = self.sagemaker.describe_training_job(TrainingJobName=job_name)
        s3 = self.s3_as(job["RoleArn"]) if self.s3_as else self.s3  # the instances act as the job's role
        job_dir = self.work_dir / job_name
        requested = job["ResourceConfig"]["InstanceCount"]
        hosts = [f"algo-{i}" for i in range(1, min(requested, self.max_hosts) + 1)]
        if len(hosts) < requested:
            self.log(
                f"{requested} instances requested; running {len(hosts)} local processes (this machine has "
                f"{self.max_hosts} CPUs)"
            )
        sources = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job.get("InputDataConfig", [])}
        channels = {
            name: self._download_prefix(s3, uri, job_dir / "input/data" / name) for name, uri in sources.items()
        }
        refusal = empty_channel_refusal(
            {name: (uri, sum(1 for p in channels[name].rglob("*") if p.is_file())) for name, uri in sources.items()}
        )
        if refusal:
            self.log(f"training job {job_name} failed: {refusal}")
            return TrainingOutcome(job_name, False, len(hosts), None, refusal, job_dir)
        hyperparameters = {k: json.loads(v) if _is_json(v) else v for k, v in job.get("HyperParameters", {}).items()}
        code_dir = self._fetch_code(job, s3, hyperparameters["sagemaker_submit_directory"], channels, job_dir)
        refusal = isolated_training_refusal(job, code_dir)
        if refusal:
            self.log(f"training job {job_name} failed: {refusal}")
            return TrainingOutcome(job_name, False, len(hosts), None, refusal, job_dir)
        program = hyperparameters["sagemaker_program"]
        arguments = [
            item
            for name, value in hyperparameters.items()
            if not name.startswith("sagemaker_")
            for item in (f"--{name}", str(value))
        ]
        port = free_port()
        processes = {
            host: self._start_host(job, host, hosts, job_dir, code_dir, program, arguments, channels, port)
            for host in hosts
        }
        failure = self._wait(processes, job_dir, should_stop)
        for process in processes.values():  # a host's last lines (its test metrics) reach its log before it is read
            stream = self._streams.pop(process, None)
            if stream is not None:
                stream.join(timeout=60)
        metrics = final_metrics(job_dir / "algo-1" / "training.log", job["AlgorithmSpecification"])
        if failure == _STOPPED:
            self.log(f"training job {job_name} stopped")
            return TrainingOutcome(
                job_name, False, len(hosts), None, None, job_dir, stopped=True, final_metrics=metrics
            )
        if failure:
            self.log(f"training job {job_name} failed: {failure}")
            return TrainingOutcome(job_name, False, len(hosts), None, failure, job_dir)
        artifacts = self._upload_model(s3, job, job_name, job_dir / "algo-1/model", job_dir / "model.tar.gz")
        self.log(f"training job {job_name} completed; model at {artifacts}")
        return TrainingOutcome(job_name, True, len(hosts), artifacts, None, job_dir, final_metrics=metrics)

    def _start_host(self, job, host, hosts, job_dir, code_dir, program, arguments, channels, port) -> subprocess.Popen:
        host_dir = job_dir / host
        env = isolated_environment(
            job,
            {
                **os.environ,
                "SM_HOSTS": json.dumps(hosts),
                "SM_CURRENT_HOST": host,
                # the training toolkit's description of the job (train.py reads the job's name from it)
                "SM_TRAINING_ENV": json.dumps({"job_name": job_dir.name, "hosts": hosts, "current_host": host}),
                "SM_MODEL_DIR": str(host_dir / "model"),
                "SM_OUTPUT_DIR": str(host_dir / "output"),
                "SM_OUTPUT_DATA_DIR": str(host_dir / "output/data"),
                "SM_CHANNELS": json.dumps(sorted(channels)),
                **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()},
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                # One core per process: the processes share this machine's CPUs.
                "OMP_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1",
            },
        )
        env.pop("PYTHONPATH", None)  # only what the source tarball holds is importable, as in the container
        process = subprocess.Popen(
            [sys.executable, program, *arguments],
            cwd=code_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.running.add(process)
        stream = threading.Thread(target=self._stream, args=(host, process, host_dir), daemon=True)
        stream.start()
        self._streams[process] = stream
        return process

    def _stream(self, host: str, process: subprocess.Popen, host_dir: Path) -> None:
        host_dir.mkdir(parents=True, exist_ok=True)
        with (host_dir / "training.log").open("w") as log_file:
            for line in process.stdout:
                log_file.write(line)
                self.log(f"[{host}] {line.rstrip()}")

    def _wait(
        self, processes: dict[str, subprocess.Popen], job_dir: Path, should_stop: Callable[[], bool]
    ) -> str | None:
        """Wait for every host; if one fails, stop the others (they would block on the lost peer)."""
        pending = dict(processes)
        failure = None
        try:
            while pending and failure is None:
                if should_stop():
                    failure = _STOPPED
                    break
                for host, process in list(pending.items()):
                    try:
                        code = process.wait(timeout=0.5)
                    except subprocess.TimeoutExpired:
                        continue
                    del pending[host]
                    if code != 0:
                        reason_file = job_dir / host / "output/failure"
                        reason = reason_file.read_text() if reason_file.exists() else "see its training.log"
                        failure = f"{host} exited with code {code}: {reason}"
        finally:
            for process in processes.values():
                self._stop(process)
        return failure

    def _stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.running.discard(process)

    @staticmethod
    def _download_prefix(s3, uri: str, target: Path) -> Path:
        bucket, prefix = _split(uri)
        target.mkdir(parents=True, exist_ok=True)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                # a prefix that is a whole key (a file channel) gives the file by its own name
                relative = item["Key"][len(prefix) :].lstrip("/") or item["Key"].rsplit("/", 1)[-1]
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(destination))
        return target

    def _fetch_code(self, job: dict, s3, submit: str, channels: dict[str, Path], job_dir: Path) -> Path | None:
        """The unpacked code: from S3 (the toolkit downloads it, which isolation forbids: see aws_rules) or from a
        channel's file (``/opt/ml/input/data/<channel>/<file>``); None when no channel holds that file."""
        target = job_dir / "code"
        if submit.startswith("s3://"):
            return None if job.get("EnableNetworkIsolation") else self._unpack_source(s3, submit, target)
        channel, _, name = submit.removeprefix(CHANNELS_PATH).partition("/")
        archive = channels[channel] / name if submit.startswith(CHANNELS_PATH) and channel in channels else None
        if archive is None or not archive.is_file():
            return None
        return self._unpack_archive(archive, target)

    @staticmethod
    def _unpack_source(s3, uri: str, target: Path) -> Path:
        bucket, key = _split(uri)
        archive = target.with_suffix(".tar.gz")
        target.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(archive))
        return LocalTrainingExecutor._unpack_archive(archive, target)

    @staticmethod
    def _unpack_archive(archive: Path, target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        return target

    @staticmethod
    def _upload_model(s3, job: dict, job_name: str, model_dir: Path, archive: Path) -> str:
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(model_dir.iterdir()):
                tar.add(path, arcname=path.name)
        bucket, prefix = _split(job["OutputDataConfig"]["S3OutputPath"])
        key = f"{prefix.rstrip('/')}/{job_name}/output/model.tar.gz".lstrip("/")
        # with the key the job names (OutputDataConfig.KmsKeyId), as SageMaker writes it
        key_id = job["OutputDataConfig"].get("KmsKeyId")
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id} if key_id else None
        s3.upload_file(str(archive), bucket, key, ExtraArgs=encryption)
        return f"s3://{bucket}/{key}"


_STOPPED = "stopped on request"


def final_metrics(log_file: Path, algorithm: dict) -> dict[str, float]:
    """Each metric's last value in rank 0's log, read with the job's MetricDefinitions (SageMaker's way)."""
    found: dict[str, float] = {}
    if not log_file.exists():
        return found
    definitions = [(d["Name"], re.compile(d["Regex"])) for d in algorithm.get("MetricDefinitions", [])]
    for line in log_file.read_text(errors="replace").splitlines():
        for name, pattern in definitions:
            if match := pattern.search(line):
                found[name] = float(match.group(1))
    return found


def _split(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.netloc, parts.path.lstrip("/")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
