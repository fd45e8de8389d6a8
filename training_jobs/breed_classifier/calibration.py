"""Probabilities that mean what they say: temperature scaling, and the calibration error that measures it.

A network trained on cross-entropy is usually over-confident: of the answers it gives with probability 0.9, fewer than
90 % are right. Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017) divides the
logits by one number ``T`` fitted on the validation split, after training, by minimising the negative log-likelihood.
It changes no answer's rank (top-1 and top-5 stay the same), only how sure the answers say they are. The training job
stores ``T`` in the artifact (``model_config.json``), and serving divides by it (``inference.py``).

The expected calibration error (ECE) measures the result: the answers are put in ``bins`` equal-width bins by their
top-1 probability, and ECE is the mean, weighted by each bin's share of the answers, of the gap between the bin's
mean probability and its accuracy. 0 is perfect; 0.05 means the stated probabilities are off by five points on
average. The functions below take plain numbers, so ``make evaluate`` measures served answers with the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

TEMPERATURE_BOUNDS = (0.05, 20.0)  # a fitted value outside this means the validation split is too small to trust
DEFAULT_BINS = 15


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The ``T`` that minimises the negative log-likelihood of ``softmax(logits / T)`` on ``labels``; 1.0 when there
    is nothing to fit on."""
    if logits.numel() == 0 or logits.shape[0] < 2:
        return 1.0
    logits, labels = logits.detach().float(), labels.detach().long()
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")
    loss = nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss(logits / log_t.exp(), labels)
        value.backward()
        return value

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    if not math.isfinite(temperature):
        return 1.0
    return min(max(temperature, TEMPERATURE_BOUNDS[0]), TEMPERATURE_BOUNDS[1])


def reliability(confidences: Sequence[float], correct: Sequence[bool], bins: int = DEFAULT_BINS) -> list[dict]:
    """Per equal-width bin of top-1 probability: its bounds, how many answers fell in it, their mean probability
    and their accuracy (empty bins included, with count 0)."""
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} probabilities but {len(correct)} outcomes")
    rows = [
        {"lower": i / bins, "upper": (i + 1) / bins, "count": 0, "confidence": 0.0, "accuracy": 0.0}
        for i in range(bins)
    ]
    for confidence, right in zip(confidences, correct, strict=True):
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"a probability must be within [0, 1], not {confidence}")
        row = rows[min(int(confidence * bins), bins - 1)]  # 1.0 falls in the last bin
        row["count"] += 1
        row["confidence"] += confidence
        row["accuracy"] += float(right)
    for row in rows:
        if row["count"]:
            row["confidence"] /= row["count"]
            row["accuracy"] /= row["count"]
    return rows


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = DEFAULT_BINS
) -> float:
    """Mean gap between stated probability and accuracy, weighted by each bin's share of the answers."""
    total = len(confidences)
    if not total:
        return 0.0
    return sum(
        row["count"] / total * abs(row["confidence"] - row["accuracy"])
        for row in reliability(confidences, correct, bins)
    )


def calibration_of(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """The ECE of ``softmax(logits / temperature)``'s top-1 answers on ``labels``."""
    probabilities = torch.softmax(logits.float() / temperature, dim=1)
    confidence, predicted = probabilities.max(dim=1)
    return expected_calibration_error(confidence.tolist(), (predicted == labels).tolist())
