"""The training-curves plot: loss and accuracy per epoch, train and valid, the best epoch marked.

Written as SVG by this module alone: a training job runs with network isolation, so nothing can be installed
at container start, and the plot needs no plotting library the training image may lack.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

_SPLITS = {"train": "#1f77b4", "valid": "#ff7f0e"}
_BEST = "#2ca02c"
_PANEL_WIDTH, _PANEL_HEIGHT, _MARGIN, _TOP = 420, 300, 56, 48
_WIDTH = 2 * _PANEL_WIDTH + 40


def write_training_curves(
    history: list[dict],
    path: Path,
    best_epoch: int | None = None,
    stopped_early: bool = False,
    max_epochs: int | None = None,
) -> None:
    """Two panels, loss and accuracy against the epoch; the best epoch (lowest valid loss) marked, and where
    early stopping ended the run when it did."""
    epochs = [row["epoch"] for row in history]
    ended = f"stopped early at epoch {epochs[-1]}" if stopped_early and epochs else f"{len(epochs)} epochs"
    planned = f" of {max_epochs}" if stopped_early and max_epochs else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_TOP + _PANEL_HEIGHT + 20}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="24" text-anchor="middle" font-size="15">'
        f"Training curves: {escape(ended + planned)}</text>",
    ]
    for index, metric in enumerate(("loss", "accuracy")):
        series = {split: [float(row[f"{split}_{metric}"]) for row in history] for split in _SPLITS}
        limits = (0.0, 1.02) if metric == "accuracy" else _padded([v for values in series.values() for v in values])
        parts += _panel(index * (_PANEL_WIDTH + 40), metric, epochs, series, limits, best_epoch)
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def _panel(left, metric, epochs, series, limits, best_epoch) -> list[str]:
    x0, x1 = left + _MARGIN, left + _PANEL_WIDTH - 10
    y0, y1 = _TOP + _PANEL_HEIGHT - 40, _TOP
    first, last = (min(epochs), max(epochs)) if epochs else (1, 1)
    span = max(last - first, 1)
    low, high = limits

    def x(epoch: float) -> float:
        return x0 + (epoch - first) / span * (x1 - x0) if last > first else (x0 + x1) / 2

    def y(value: float) -> float:
        return y0 - (value - low) / (high - low) * (y0 - y1)

    out = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#444"/>']
    for tick in _ticks(low, high):
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for epoch in _integer_ticks(first, last):
        out.append(f'<text x="{x(epoch):.1f}" y="{y0 + 16}" text-anchor="middle">{epoch}</text>')
    out.append(f'<text x="{(x0 + x1) / 2}" y="{y0 + 34}" text-anchor="middle">epoch</text>')
    out.append(
        f'<text x="{left + 14}" y="{(y0 + y1) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 {left + 14} {(y0 + y1) / 2})">{metric}</text>'
    )
    legend = list(_SPLITS.items())
    if best_epoch:
        out.append(
            f'<line x1="{x(best_epoch):.1f}" x2="{x(best_epoch):.1f}" y1="{y1}" y2="{y0}" stroke="{_BEST}" '
            'stroke-dasharray="6 4"/>'
        )
        legend.append((f"best epoch ({best_epoch})", _BEST))
    for split, colour in _SPLITS.items():
        drawn = [(x(e), y(v)) for e, v in zip(epochs, series[split], strict=True) if math.isfinite(v)]
        points = " ".join(f"{px:.1f},{py:.1f}" for px, py in drawn)
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in drawn]
    for row, (label, colour) in enumerate(legend):
        ly = y1 + 16 + row * 16
        out.append(
            f'<line x1="{x1 - 120}" x2="{x1 - 100}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{x1 - 94}" y="{ly}">{escape(label)}</text>')
    return out


def _padded(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)] or [0.0, 1.0]
    low, high = min(0.0, min(finite)), max(finite)
    return low, high * 1.05 if high > low else low + 1.0


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if raw <= m * step)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def _integer_ticks(first: int, last: int, most: int = 10) -> list[int]:
    stride = max(1, math.ceil((last - first + 1) / most))
    return list(range(first, last + 1, stride))
