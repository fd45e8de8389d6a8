"""The training-curves plot: loss and accuracy per epoch, train and valid, the best epoch marked.

matplotlib is imported when a plot is drawn, so the inference container, which serves the same package
without matplotlib, never needs it.
"""

from __future__ import annotations

from pathlib import Path

_SPLITS = {"train": "tab:blue", "valid": "tab:orange"}


def write_training_curves(
    history: list[dict],
    path: Path,
    best_epoch: int | None = None,
    stopped_early: bool = False,
    max_epochs: int | None = None,
) -> None:
    """Two panels, loss and accuracy against the epoch; the best epoch (lowest valid loss) marked, and where
    early stopping ended the run when it did."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure, panels = pyplot.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for panel, metric in zip(panels, ("loss", "accuracy"), strict=True):
        for split, colour in _SPLITS.items():
            panel.plot(epochs, [row[f"{split}_{metric}"] for row in history], marker="o", color=colour, label=split)
        if best_epoch:
            panel.axvline(best_epoch, color="tab:green", linestyle="--", label=f"best epoch ({best_epoch})")
        panel.set_xlabel("epoch")
        panel.set_ylabel(metric)
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        if metric == "accuracy":
            panel.set_ylim(0, 1.02)
        panel.grid(alpha=0.3)
        panel.legend()
    ended = f"stopped early at epoch {epochs[-1]}" if stopped_early and epochs else f"{len(epochs)} epochs"
    planned = f" of {max_epochs}" if stopped_early and max_epochs else ""
    figure.suptitle(f"Training curves: {ended}{planned}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
