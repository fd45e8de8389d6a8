"""What the demo found: ``report.md`` (training, per epoch, test numbers, curves, answers) and the answers printed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offline_stack.demo_steps import DemoResult


def write_report(result: DemoResult, job_dir: Path, work_dir: Path) -> None:
    """``report.md``: what was trained and how, per epoch, the test numbers, the plot, and the answers."""
    metrics_file = job_dir / "algo-1/output/data/metrics.json"
    curves = job_dir / "algo-1/output/data/training_curves.svg"
    if curves.exists():
        shutil.copy2(curves, work_dir / "training_curves.svg")
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    test, best = metrics.get("test", {}), metrics.get("best_epoch")
    lines = ["# Offline demo report", ""]
    if result.generated_data:
        lines += [
            "> **Generated data.** The images are synthetic (4 classes of coloured shapes named after breeds), so",
            "> the accuracy below says the pipeline works end to end, not how well a model tells dogs apart. Run",
            "> `DATA_DIR=~/dogImages make demo` for numbers that mean that.",
            "",
        ]
    ended = f"stopped early after epoch {metrics['history'][-1]['epoch']}" if metrics.get("stopped_early") else "ran"
    lines += [
        f"- training job `{result.training_job_name}` on {result.hosts} local hosts; {ended}; best epoch {best}",
        f"- test accuracy **{test.get('test_accuracy', float('nan')):.4f}**, "
        f"test loss **{test.get('test_loss', float('nan')):.4f}** (the best epoch's weights, on the test split)",
        f"- release gate: {result.gate}",
        f"- model `{result.model_artifacts}`; endpoint {result.endpoint_action}; "
        f"auto-scaling on `{result.scaling['resource_id']}`",
        f"- wall time {result.seconds:.0f} s",
        "",
        "## Hyperparameters",
        "",
        "| name | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in metrics.get("hyperparameters", {}).items()),
        "",
        "## Per epoch",
        "",
        "![training curves](training_curves.svg)",
        "",
        "| epoch | train loss | train accuracy | valid loss | valid accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in metrics.get("history", []):
        mark = " (best)" if row["epoch"] == best else ""
        lines.append(
            f"| {row['epoch']}{mark} | {row['train_loss']:.4f} | {row['train_accuracy']:.4f} "
            f"| {row['valid_loss']:.4f} | {row['valid_accuracy']:.4f} |"
        )
    if result.trials:
        lines += [
            "",
            "## Tuning on cached features",
            "",
            "| job | learning rate | feature cache (start-training / the job) | last valid loss "
            "| last valid accuracy |",
            "|---|---|---|---|---|",
        ]
        for trial in result.trials:
            rate = "extract features" if trial.learning_rate is None else f"{trial.learning_rate:g}"
            loss = "" if trial.valid_loss is None else f"{trial.valid_loss:.4f}"
            accuracy = "" if trial.valid_accuracy is None else f"{trial.valid_accuracy:.4f}"
            found = trial.feature_cache.split(" ")[0]
            lines.append(f"| `{trial.job_name}` | {rate} | {found} / {trial.job_said} | {loss} | {accuracy} |")
    lines += ["", "## The starter model on real photos", ""]
    measured = result.starter_on_photos
    if measured:
        lines += [
            f'The starter model (ImageNet\'s dog breeds and "not a dog", no training here) through its own serving '
            f"code on `{measured['photos_dir']}`: {measured['known']} photos of breeds it knows, of "
            f"{measured['photos']} (`make evaluate MODEL=... DATA_DIR=...` for the whole report and plots).",
            "",
            '| top-1 | top-5 | expected calibration error | dogs answered "not a dog" |',
            "|---|---|---|---|",
            f"| **{measured['top1']:.1%}** | {measured['top5']:.1%} | {measured['ece']:.3f} "
            f"| {measured['dogs_answered_not_a_dog']:.1%} |",
        ]
    else:
        lines.append("Not measured: no real labelled photos were found (set `SHARED_PHOTOS`; see docs/training.md).")
    lines += ["", "## Predictions", "", "| image | expected | top prediction | probability |", "|---|---|---|---|"]
    for prediction in result.predictions:
        top = prediction.answer.get("predictions", [{}])[0]
        probability = f"{top['probability']:.2f}" if "probability" in top else f"HTTP {prediction.status}"
        lines.append(f"| {prediction.image} | {prediction.expected or ''} | {top.get('breed', '')} | {probability} |")
    (work_dir / "report.md").write_text("\n".join(lines) + "\n")


def print_predictions(result: DemoResult, say=print) -> None:
    say("")
    say(f"{'image':32} {'expected':20} predictions (breed: probability)")
    for prediction in result.predictions:
        if prediction.status != 200:
            say(f"{prediction.image:32} {prediction.expected or '':20} HTTP {prediction.status}: {prediction.answer}")
            continue
        shown = ", ".join(f"{p['breed']}: {p['probability']:.2f}" for p in prediction.answer["predictions"])
        say(f"{prediction.image:32} {prediction.expected or '':20} {shown}")
