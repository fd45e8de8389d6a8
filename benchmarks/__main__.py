"""``make bench``: the project's code against course-style baselines, measured in one run, ratios and targets.

    python -m benchmarks [--small] [--output .offline/bench]

Prints one table (each target with its measured value and pass/fail) and writes it as ``bench.json`` and
``bench.md``. Nothing here fails on a time: a target that is missed is reported, not raised. ``--small`` uses
a few rounds of each (what ``make test`` runs, to keep the benchmarks working, not to judge them).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from benchmarks import measure, throughput, training_cost

FULL_ROUNDS = {"request": 15, "model": 20, "cold": 15, "handler": 200, "train": 6, "load_seconds": 15, "containers": 5}
SMALL_ROUNDS = {"request": 2, "model": 2, "cold": 2, "handler": 10, "train": 1, "load_seconds": 2, "containers": 1}
# What a million predictions cost is priced on this instance type and serverless memory (ops/capacity_plan.PRICES)
PRICED_INSTANCE = "ml.m5.large"
PRICED_SERVERLESS_MB = 3072


# The run is flagged busy when the machine's matmul peak at its end differs from the start's by more than this
BUSY_DRIFT = 0.2


def run(rounds: dict[str, int], small: bool = False) -> dict:
    peak = measure.matmul_peak_gflops()
    requests = measure.endpoint_requests(rounds["request"])
    model = measure.model_alone(rounds["model"])
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__},
        "matmul_peak_gflops": peak,
        "endpoint_requests": requests,
        "model_alone": model,
        "architectures": measure.architectures(rounds["model"]),
        "training_steps": measure.training_steps(rounds["train"]),
        "ddp": measure.ddp_efficiency(rounds["train"] * 2),
        "fast_path_agreement": measure.fast_path_agreement(),
        "reduced_precision": measure.reduced_precision_speed(rounds["model"]),
        "cold_start": measure.cold_start(rounds["cold"]),
        "handler_overhead": measure.handler_overhead(rounds["handler"]),
        "throughput": throughput.throughput_per_instance(measure.photo_jpegs()["500x375"], rounds["load_seconds"]),
        "endpoint_cold_start": throughput.container_cold_start(rounds["containers"]),
        "training_cost": training_cost.training_cost(small),
        "matmul_peak_gflops_at_end": measure.matmul_peak_gflops(),
    }


def costs_per_million(results: dict) -> list[dict]:
    """What a million predictions cost, from this run's measurements and the dated price table: each serving layout
    on one PRICED_INSTANCE kept busy (images/s per instance), each architecture at batch 1 on one stream, and a
    serverless endpoint billed for the project's measured request time (500x375 JPEG)."""
    from ops.capacity_plan import PRICES, Traffic, serverless_endpoint_cost

    hourly = PRICES.endpoint_per_hour[PRICED_INSTANCE]
    rows = [
        {"option": f"{PRICED_INSTANCE}, {row['layout']}", "usd": 1e6 / row["images_per_second"] / 3600 * hourly}
        for row in results["throughput"]
    ]
    rows += [
        {
            "option": f"{PRICED_INSTANCE}, {row['architecture']} model alone ({row['runtime']}, batch 1, no decoding)",
            "usd": 1e6 / row["served_images_per_second_batch1"] / 3600 * hourly,
        }
        for row in results["architectures"]
    ]
    request = next(row for row in results["endpoint_requests"] if row["image"] == "500x375")
    seconds = request["project"].median_ms / 1000
    million_a_month = Traffic(
        requests_per_day=1e6 / (730 / 24), peak_rps=1, model_seconds=seconds, serverless_seconds=seconds
    )
    rows.append(
        {
            "option": f"serverless {PRICED_SERVERLESS_MB} MB, ResNet-50 fp32 "
            f"({request['project'].median_ms:.0f} ms a request)",
            "usd": serverless_endpoint_cost(PRICED_SERVERLESS_MB, million_a_month),
        }
    )
    return rows


def targets(results: dict) -> list[dict]:
    """Each target of issue #11: what was measured, the bar, and whether it was met."""
    rows = []

    def add(name: str, value: float | None, bar: str, met: bool | None, unit: str = "x") -> None:
        shown = "not built" if value is None else f"{value:.2f}{unit}"
        rows.append(
            {"target": name, "measured": shown, "bar": bar, "result": {True: "pass", False: "FAIL"}.get(met, "n/a")}
        )

    for row in results["endpoint_requests"]:
        ratio = row["course_style"].median_ms / row["project"].median_ms
        bar = 3.0 if row["image"] == "12MP" else 1.5
        add(f"endpoint request, {row['image']} JPEG, vs course-style (median)", ratio, f">= {bar}x", ratio >= bar)
    agreement = results["fast_path_agreement"]
    add(
        f"fast path vs eager fp32: top-1 identical on {agreement['images']} images, max |delta p|",
        agreement["max_abs_delta_p"],
        "identical, <= 1e-3",
        agreement["top1_identical"] and agreement["max_abs_delta_p"] <= 1e-3,
        unit="",
    )
    model = results["model_alone"]
    share = model["gflop_per_image"] / (model["project"].median_ms / 1000) / results["matmul_peak_gflops"]
    add("ResNet-50 alone, share of the measured fp32 matmul peak", share * 100, ">= 90%", share >= 0.9, unit="%")
    layouts = results["throughput"]
    course = next(row for row in layouts if row["runtime"] == "course-style")["images_per_second"]
    fp32 = max((row for row in layouts if row["runtime"] == "torchscript"), key=lambda row: row["images_per_second"])
    ratio = fp32["images_per_second"] / course
    add(f"throughput per instance, fp32 ({fp32['layout']}), vs course-style", ratio, ">= 2x", ratio >= 2)
    for row in layouts:
        if row["runtime"] == "bf16":
            add(
                f"throughput per instance, {row['layout']}, vs course-style",
                row["images_per_second"] / course,
                "reported",
                None,
            )
    reduced = results["reduced_precision"]
    speed = reduced["fp32_batch1"].median_ms / reduced["bf16_batch1"].median_ms
    add(
        f"opt-in bf16 vs served fp32, ResNet-50 batch 1 (top-1 agreement {agreement['bf16_top1_agreement']:.2f}, "
        f"max |delta p| {agreement['bf16_max_abs_delta_p']:.3f})",
        speed,
        "reported",
        None,
    )
    cold = results["cold_start"]
    ratio = cold["import_handler"].median_ms / cold["import_boto3"].median_ms
    add("cold start: import the predict handler / import boto3 (whole processes)", ratio, "<= 1.3x", ratio <= 1.3)
    floor = cold["import_handler"].median_ms / cold["boto3_and_client"].median_ms
    add(
        "cold start: import the predict handler / import boto3 and create its sagemaker-runtime client",
        floor,
        "<= 1.3x",
        floor <= 1.3,
    )
    handler = results["handler_overhead"]
    overhead = handler["project_overhead_ms"]
    add("predict handler overhead, p50", overhead, "<= 1 ms", overhead <= 1.0, unit=" ms")
    below = handler["course_style_overhead_ms"] / overhead
    add("predict handler overhead, course-style / project", below, ">= 50x", below >= 50)
    steps = results["training_steps"]
    speedup = steps["channels_last"] / steps["contiguous_format"]
    add("training step, frozen ResNet-50: channels_last / default (images/s)", speedup, "> 1x (reported)", speedup > 1)
    costs = costs_per_million(results)
    course_cost = next(row["usd"] for row in costs if "course-style" in row["option"])
    served_cost = min(row["usd"] for row in costs if "fp32" in row["option"] and row["option"].startswith("ml."))
    add(
        f"cost per 1M predictions on {PRICED_INSTANCE}: course-style / fp32 served (busy instance)",
        course_cost / served_cost,
        ">= 2x",
        course_cost / served_cost >= 2,
    )
    served = [row for row in costs if "model alone" not in row["option"]]  # whole requests: decode, HTTP, model
    cheapest = min(served, key=lambda row: row["usd"])
    add(f"cheapest measured option per 1M predictions: {cheapest['option']}", cheapest["usd"], "reported", None, " USD")
    cost = results["training_cost"]
    run_ratio = cost["run"]["course_style"]["seconds"] / cost["run"]["project"]["seconds"]
    accuracy = cost["accuracy_pretrained"]
    points = 100 * (accuracy["project"] - accuracy["course_style"])
    add(
        f"training, frozen ResNet-50, {cost['epochs']} epochs: course-style / feature cache (wall time; valid accuracy "
        f"{points:+.1f} points with EfficientNet-Lite0's ImageNet weights)",
        run_ratio,
        ">= 5x, accuracy within 1 point",
        run_ratio >= 5 and points >= -1,
    )
    tuning = cost["tuning_seconds"]["course_style"] / cost["tuning_seconds"]["project"]
    add("4-trial tuning, frozen ResNet-50: course-style / feature cache (wall time)", tuning, ">= 8x", tuning >= 8)
    efficiency = results["ddp"]["efficiency"]
    add("DDP efficiency at 2 processes (frozen ResNet-50, gloo on loopback)", efficiency, ">= 0.9", efficiency >= 0.9)
    return rows


def _plain(value):
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def busy(results: dict) -> float | None:
    """How far the matmul peak moved between the run's start and end, when more than BUSY_DRIFT (None: quiet)."""
    start, end = results["matmul_peak_gflops"], results.get("matmul_peak_gflops_at_end", results["matmul_peak_gflops"])
    drift = abs(end - start) / start
    return drift if drift > BUSY_DRIFT else None


def summary(results: dict, rows: list[dict]) -> list[str]:
    """The report's head: the run, whether the machine was busy, and the targets table."""
    drift = busy(results)
    noisy = " (busy run)" if drift is not None else ""
    lines = [
        f"# make bench, {results['when']}",
        "",
        f"fp32 matmul peak measured in this run: {results['matmul_peak_gflops']:.0f} GFLOP/s at its start, "
        f"{results.get('matmul_peak_gflops_at_end', results['matmul_peak_gflops']):.0f} at its end "
        f"({results['machine']['cpu_count']} threads, torch {results['machine']['torch']}).",
        *(
            [
                "",
                f"**The machine was busy**: the peak moved {drift:.0%} during the run (more than {BUSY_DRIFT:.0%}), so "
                "every timed row below is marked (busy run) and may be off either way; run again on a quiet machine.",
            ]
            if drift is not None
            else []
        ),
        "",
        "| target | measured | bar | result |",
        "|---|---|---|---|",
        *[
            f"| {r['target']} | {r['measured']} | {r['bar']} | {r['result']}{noisy if r['result'] != 'n/a' else ''} |"
            for r in rows
        ],
    ]
    return lines


def markdown(results: dict, rows: list[dict]) -> str:
    lines = summary(results, rows)
    lines += [
        "",
        "| request | course-style median / p90 (ms) | project median / p90 (ms) |",
        "|---|---|---|",
    ]
    for row in results["endpoint_requests"]:
        before, after = row["course_style"], row["project"]
        lines.append(
            f"| {row['image']} JPEG | {before.median_ms:.1f} / {before.p90_ms:.1f} | {after.median_ms:.1f} / "
            f"{after.p90_ms:.1f} ({row['runtime']}) |"
        )
    lines += [
        "",
        "| architecture | eager batch 1 (ms) | served batch 1 (ms) | served img/s, batch 1 | served img/s, batch 8 |",
    ]
    lines.append("|---|---|---|---|---|")
    for row in results["architectures"]:
        lines.append(
            f"| {row['architecture']} | {row['eager_batch1'].median_ms:.1f} | {row['served_batch1'].median_ms:.1f} "
            f"({row['runtime']}) | {row['served_images_per_second_batch1']:.1f} | "
            f"{row['served_images_per_second_batch8']:.1f} |"
        )
    lines += [
        "",
        "| serving layout (ResNet-50, 500x375 JPEG, through the local endpoint) | images/s per instance |",
        "|---|---|",
        *[f"| {row['layout']} | {row['images_per_second']:.1f} |" for row in results["throughput"]],
    ]
    steps = results["training_steps"]
    lines += [
        "",
        f"Training step, frozen ResNet-50, batch 16: {steps['contiguous_format']:.1f} images/s in the default memory "
        f"format, {steps['channels_last']:.1f} with channels_last (what training uses).",
    ]
    lines += [
        "",
        "| option (list prices, us-east-1) | USD per 1M predictions |",
        "|---|---|",
        *[f"| {row['option']} | {row['usd']:.2f} |" for row in costs_per_million(results)],
    ]
    cost = results["training_cost"]
    lines += [
        "",
        f"| training, ResNet-50 frozen, {cost['train_images']} images at {cost['image_size']} px, {cost['epochs']} "
        f"epochs | wall time (s) | train images/s | cost on {cost['instance']} (USD, this machine's time) |",
        "|---|---|---|---|",
        *[
            f"| {name.replace('_', '-')} | {row['seconds']:.1f} | {row['images_per_second']:.1f} | "
            f"{cost['cost_usd']['run_' + name]:.5f} |"
            for name, row in cost["run"].items()
        ],
        f"| 4-trial tuning, course-style | {cost['tuning_seconds']['course_style']:.1f} | | "
        f"{cost['cost_usd']['tuning_course_style']:.5f} |",
        f"| 4-trial tuning, feature cache | {cost['tuning_seconds']['project']:.1f} | | "
        f"{cost['cost_usd']['tuning_project']:.5f} |",
        "",
        f"Valid accuracy, EfficientNet-Lite0 with its ImageNet weights, same data and seed: course-style (random "
        f"augmentation every epoch) {cost['accuracy_pretrained']['course_style']:.3f}, feature cache (2 cached views) "
        f"{cost['accuracy_pretrained']['project']:.3f}.",
    ]
    containers = results["endpoint_cold_start"]
    lines += [
        "",
        f"Model container start until /ping answers (a serverless cold start, AWS's provisioning not included): "
        f"project {containers['project'].median_ms:.0f} ms (TorchScript built and warmed), course-style "
        f"{containers['course_style'].median_ms:.0f} ms.",
    ]
    cold, handler = results["cold_start"], results["handler_overhead"]
    lines += [
        "",
        f"Cold start (median of whole processes, {cold['as']}): `import boto3` {cold['import_boto3'].median_ms:.0f} "
        f"ms, `import boto3` and the `sagemaker-runtime` client {cold['boto3_and_client'].median_ms:.0f} ms, "
        f"`import app` (predict handler) {cold['import_handler'].median_ms:.0f} ms.",
        f"Predict handler overhead beyond the endpoint call ({handler['endpoint_call'].median_ms:.2f} ms on "
        f"loopback): project {handler['project_overhead_ms']:.2f} ms, course-style "
        f"{handler['course_style_overhead_ms']:.2f} ms.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="a few rounds of each (make test)")
    parser.add_argument("--output", type=Path, default=measure.PROJECT_ROOT / ".offline" / "bench")
    args = parser.parse_args(argv)
    results = run(SMALL_ROUNDS if args.small else FULL_ROUNDS, small=args.small)
    rows = targets(results)
    args.output.mkdir(parents=True, exist_ok=True)
    report = markdown(results, rows)
    (args.output / "bench.md").write_text(report)
    document = {
        **_plain(results),
        "costs_per_million": costs_per_million(results),
        "targets": rows,
        "busy_drift": busy(results),  # null: the matmul peak held within BUSY_DRIFT from start to end
    }
    (args.output / "bench.json").write_text(json.dumps(document, indent=2))
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
