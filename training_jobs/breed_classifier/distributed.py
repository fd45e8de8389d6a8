"""Who this process is in a data-parallel job, and the collective operations the loop needs.

Rank, world size and master come from torchrun's variables when present (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``), else from SageMaker's ``SM_HOSTS``/``SM_CURRENT_HOST`` (master = the
first host, port 7777: on CPU instances SageMaker's ``distribution`` options do not apply, so the
script runs once on every host), else this is a single process. ``MASTER_ADDR``/``MASTER_PORT``
also override SageMaker's master, which is how several "hosts" run on one machine's loopback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

SAGEMAKER_MASTER_PORT = 7777


class DistributedSetupError(ValueError):
    """The environment describes a distributed job inconsistently."""


@dataclass(frozen=True)
class ProcessGroupSpec:
    rank: int
    world_size: int
    master_addr: str
    master_port: int

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect_process_group(env: Mapping[str, str] | None = None) -> ProcessGroupSpec:
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return ProcessGroupSpec(
            int(env["RANK"]),
            int(env["WORLD_SIZE"]),
            env.get("MASTER_ADDR", "127.0.0.1"),
            int(env.get("MASTER_PORT", "29500")),
        )
    if env.get("SM_HOSTS") and env.get("SM_CURRENT_HOST"):
        hosts = json.loads(env["SM_HOSTS"])
        current = env["SM_CURRENT_HOST"]
        if current not in hosts:
            raise DistributedSetupError(f"SM_CURRENT_HOST={current!r} is not in SM_HOSTS={hosts}")
        return ProcessGroupSpec(
            hosts.index(current),
            len(hosts),
            env.get("MASTER_ADDR", hosts[0]),
            int(env.get("MASTER_PORT", SAGEMAKER_MASTER_PORT)),
        )
    return ProcessGroupSpec(0, 1, "127.0.0.1", 0)


def start_process_group(spec: ProcessGroupSpec, timeout_seconds: float = 600) -> None:
    if spec.is_distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(
            backend,
            init_method=f"tcp://{spec.master_addr}:{spec.master_port}",
            rank=spec.rank,
            world_size=spec.world_size,
            timeout=timedelta(seconds=timeout_seconds),
        )


def stop_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def sum_across_processes(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over every process (identity when single-process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def gather_from_processes(value):
    """Every process's ``value``, in rank order (a list of one outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered
