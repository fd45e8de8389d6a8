"""A training run's progress and checkpoints: the best epoch so far, early stopping, and what may be resumed.

Early stopping: the epoch with the lowest valid loss is the best (an equal loss is no improvement, NaN never
is); training stops once ``patience`` epochs have passed since it. A checkpoint records the progress and is
resumed only by the run that wrote it (same job, classes and hyperparameters, but for ``_RESUMABLE_CHANGES``),
loaded as tensors and plain values only.
"""

from __future__ import annotations

import copy
import math
import os
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


@dataclass
class Progress:
    """The epochs so far and the best one: what a checkpoint keeps, and what early stopping decides on."""

    history: list[dict] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    stopped_early: bool = False
    first_epoch: int = 1

    @classmethod
    def resumed(cls, checkpoint: dict, setup: Any, emit: Callable[[str], None]) -> Progress:
        """Load the checkpoint's optimizer state into ``setup``; the progress it recorded."""
        setup.optimizer.load_state_dict(checkpoint["optimizer"])
        emit(f"resuming from the checkpoint after epoch {checkpoint['epoch']}")
        return cls(
            checkpoint["history"],
            checkpoint["best_loss"],
            checkpoint["best_epoch"],
            checkpoint["best_model"],
            first_epoch=checkpoint["epoch"] + 1,
        )

    def record(self, row: dict, network: nn.Module, patience: int) -> bool:
        """Add an epoch's row; keep its weights if it is the best so far. True when patience has run out."""
        self.history.append(row)
        if row["valid_loss"] < self.best_loss:
            self.best_loss, self.best_epoch = row["valid_loss"], row["epoch"]
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in network.state_dict().items()})
            return False
        self.stopped_early = row["epoch"] - self.best_epoch >= patience
        return self.stopped_early

    def checkpoint(self, epoch: int, setup: Any, identity: dict) -> dict:
        return {
            "run": identity,
            "epoch": epoch,
            "model": setup.network.state_dict(),
            "optimizer": setup.optimizer.state_dict(),
            "history": self.history,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_model": self.best_state,
        }


CHECKPOINT_FILE = "checkpoint.pt"
# What may change between a run and its resumption (more epochs, more patience, other loader workers)
_RESUMABLE_CHANGES = ("epochs", "patience", "num_workers")


class CheckpointRefusedError(Exception):
    """The checkpoint folder holds a file that is not a plain checkpoint; training stops rather than run it."""


def run_identity(run: Any, classes: list[str]) -> dict:
    """What a checkpoint must have been written by to be resumed: this job, these classes, these hyperparameters.

    A checkpoint folder can hold another run's file (a reused S3 prefix, a reused --checkpoint-dir); resuming it
    would quietly train on from someone else's weights.
    """
    hyperparameters = {k: v for k, v in asdict(run.hyperparameters).items() if k not in _RESUMABLE_CHANGES}
    return {"job": run.run_name or "", "classes": list(classes), "hyperparameters": hyperparameters}


def load_checkpoint(
    checkpoint_dir: Path | None, device, identity: dict, emit: Callable[[str], None] = print
) -> dict | None:
    """The checkpoint to resume from, or None. Loaded as tensors and plain values only (``weights_only``): a file
    in the checkpoint folder is data that anyone who can write the S3 prefix controls, never code to run."""
    path = checkpoint_dir / CHECKPOINT_FILE if checkpoint_dir else None
    if path is None or not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointRefusedError(
            f"{path} holds more than tensors and plain values, so it was not loaded (a checkpoint this code "
            f"writes never does; someone may have tampered with it): {str(exc).splitlines()[0][:200]}. "
            "Delete it to start over."
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("run") != identity:
        written_by = (checkpoint.get("run") or {}).get("job") or "a run without a job name"
        emit(f"not resuming: {path} was written by another run ({written_by}, other classes or hyperparameters)")
        return None
    return checkpoint


def save_checkpoint(checkpoint_dir: Path, state: dict) -> None:
    """Written whole or not at all: a spot interruption mid-write leaves the previous checkpoint."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    partial = checkpoint_dir / f".{CHECKPOINT_FILE}.partial"
    torch.save(state, partial)
    os.replace(partial, checkpoint_dir / CHECKPOINT_FILE)
