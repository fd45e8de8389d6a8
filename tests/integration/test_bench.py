"""`make bench` keeps working: a small budget of every measurement, its table and files (no time is judged)."""

import json
import os

from benchmarks.__main__ import main

TARGETS = (
    "endpoint request, 500x375 JPEG",
    "endpoint request, 12MP JPEG",
    "fast path vs eager fp32",
    "ResNet-50 alone",
    "throughput per instance",
    "opt-in bf16",
    "cold start",
    "predict handler overhead, p50",
    "predict handler overhead, course-style / project",
    "training step, frozen ResNet-50",
    "DDP efficiency",
    "cost per 1M predictions on ml.m5.large",
    "cheapest measured option per 1M predictions",
    "training, frozen ResNet-50",
    "4-trial tuning, frozen ResNet-50",
)


def test_a_small_bench_prints_every_target_with_a_verdict_and_writes_json_and_markdown(tmp_path, capsys):
    environment = dict(os.environ)
    assert main(["--small", "--output", str(tmp_path)]) == 0
    assert dict(os.environ) == environment  # nothing leaks into the tests that run after it
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "bench.json").read_text())
    rows = {row["target"]: row for row in report["targets"]}
    for target in TARGETS:
        row = next(row for name, row in rows.items() if name.startswith(target))
        assert row["result"] in ("pass", "FAIL", "n/a") and row["target"] in printed
    # The served path agrees with eager fp32: the one row that is about answers, not time
    agreement = report["fast_path_agreement"]
    assert agreement["top1_identical"] and agreement["max_abs_delta_p"] <= 1e-3
    assert report["matmul_peak_gflops"] > 0 and (tmp_path / "bench.md").read_text() == printed
    # Every serving layout answered through the local endpoint (each a real model server process)
    assert {row["runtime"] for row in report["throughput"]} == {"course-style", "torchscript", "bf16"}
    assert all(row["images_per_second"] > 0 for row in report["throughput"])
    # What a million predictions cost, for every layout, both architectures and serverless; the container start
    costs = report["costs_per_million"]
    assert len(costs) == len(report["throughput"]) + 2 + 1 and all(row["usd"] > 0 for row in costs)
    assert any(row["option"].startswith("serverless") for row in costs)
    assert report["endpoint_cold_start"]["project"]["median_ms"] > 0
    # Training's cost: both recipes ran, each tuning trial too
    training = report["training_cost"]
    assert training["run"]["course_style"]["seconds"] > 0 and training["run"]["project"]["seconds"] > 0
    assert 0 <= training["accuracy_pretrained"]["project"] <= 1
