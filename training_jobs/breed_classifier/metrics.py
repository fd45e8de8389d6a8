"""Metric log lines: one format, and the regexes SageMaker (and the tuner) read them with.

Every launcher imports ``METRIC_DEFINITIONS`` from here instead of writing its own regexes.

A metric line starts with ``MARKER``, and each regex needs it: SageMaker's metric regex "searches the output of a
training job" (API reference, ``MetricDefinition``), with no promise that ``^`` anchors at a line, so the marker is
what no other line may carry. Every other line the training code prints goes through ``log_line``, which defuses
the marker and folds line breaks: a string from a checkpoint, a data set's file name or an error message cannot
print a line that reads as ``test:accuracy``, the number the release gate judges.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
MARKER = "#metrics#"
METRIC_DEFINITIONS = [
    {"Name": name, "Regex": rf"{MARKER}(?: [^ ]+)*? {name.replace(':', '_')}={_NUMBER}"} for name in METRIC_NAMES
]
# What hyperparameter tuning minimises.
OBJECTIVE_METRIC = "valid:loss"


class MetricLine(str):
    """A line ``metric_line`` made: the only kind printed with the marker."""


def metric_line(**values: float) -> MetricLine:
    """``metric_line(epoch=1, train_loss=0.5)`` -> ``"#metrics# epoch=1 train_loss=0.500000"``."""
    fields = " ".join(f"{k}={v}" if isinstance(v, int) else f"{k}={v:.6f}" for k, v in values.items())
    return MetricLine(f"{MARKER} {fields}")


def log_line(text: object) -> str:
    """Any other line, as it may be printed: one line, and no marker (so never read as a metric)."""
    return " ".join(str(text).splitlines()).replace(MARKER, "#metrics_#")


def defused(emit: Callable[[str], None]) -> Callable[[str], None]:
    """``emit`` that prints metric lines as they are and every other line through ``log_line``."""
    return lambda line: emit(line if isinstance(line, MetricLine) else log_line(line))


def parse_metric_line(line: str) -> dict[str, float]:
    return {d["Name"]: float(m.group(1)) for d in METRIC_DEFINITIONS if (m := re.search(d["Regex"], line))}
