"""Metric log lines: one format, and the regexes SageMaker (and the tuner) read them with.

Every launcher imports ``METRIC_DEFINITIONS`` from here instead of writing its own regexes.
"""

from __future__ import annotations

import re

_NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
METRIC_NAMES = (
    "train:loss",
    "train:accuracy",
    "valid:loss",
    "valid:accuracy",
    "test:loss",
    "test:accuracy",
    # Throughput, so training stays observable without SageMaker Debugger's profiler (closed to new customers):
    # images per second over all hosts, and per training step the compute time and the wait for the data loader.
    "train:images_per_second",
    "train:step_seconds",
    "train:data_wait_seconds",
)
METRIC_DEFINITIONS = [{"Name": name, "Regex": rf"{name.replace(':', '_')}={_NUMBER}"} for name in METRIC_NAMES]
# What hyperparameter tuning minimises.
OBJECTIVE_METRIC = "valid:loss"


def metric_line(**values: float) -> str:
    """``metric_line(epoch=1, train_loss=0.5)`` -> ``"epoch=1 train_loss=0.500000"``."""
    return " ".join(f"{k}={v}" if isinstance(v, int) else f"{k}={v:.6f}" for k, v in values.items())


def parse_metric_line(line: str) -> dict[str, float]:
    return {d["Name"]: float(m.group(1)) for d in METRIC_DEFINITIONS if (m := re.search(d["Regex"], line))}
