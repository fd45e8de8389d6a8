"""``make reliability``: every part with its full budget, one table printed, the same as JSON.

python -m reliability [--small] [--work-dir .offline/reliability]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from offline_stack.lambda_invoker import LambdaFunction
from offline_stack.sam_template import PROJECT_ROOT
from reliability.faults import DRILL_FUNCTION_ENVIRONMENT, DRILLS, run_drills
from reliability.fuzz_predict import fuzz_predict_handler
from reliability.image_corpus import PEAK_RSS_LIMIT_MB, build_corpus, measure_corpus
from reliability.load import (
    LoadResult,
    apply_throttle,
    blue_green_under_load,
    calibrate,
    route_throttle_for,
    run_load,
)
from reliability.schema_fuzz import fuzz_schema
from reliability.served_stack import served_stack, write_artifact


@dataclass(frozen=True)
class Budget:
    fuzz_examples: int
    full_corpus: bool
    drills: tuple[str, ...]
    drill_seconds: float
    load_requests: int
    schema_examples: int


FULL = Budget(2000, True, tuple(DRILLS), 3.0, 2000, 200)
SMALL = Budget(300, False, ("container-killed", "endpoint-throttling", "model-5xx"), 1.0, 300, 20)


@dataclass
class Row:
    part: str
    measure: str
    value: str
    target: str
    passed: bool


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def add(self, part: str, measure: str, value, target: str, passed: bool) -> None:
        self.rows.append(Row(part, measure, str(value), target, passed))

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def table(self) -> str:
        widths = [max(len(getattr(row, name)) for row in self.rows) for name in ("part", "measure", "value", "target")]
        header = ["part", "measure", "value", "target"]
        widths = [max(width, len(title)) for width, title in zip(widths, header, strict=True)]
        lines = ["  ".join(title.ljust(width) for title, width in zip(header, widths, strict=True)) + "  result"]
        for row in self.rows:
            cells = (row.part, row.measure, row.value, row.target)
            lines.append(
                "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
                + ("  pass" if row.passed else "  FAIL")
            )
        return "\n".join(lines)


def add_lambda_throttles(report: Report, part: str, measure: str, load: LoadResult) -> None:
    """The row of the requests Lambda throttled (API Gateway's 500) out of those the route admitted."""
    report.add(
        part,
        measure,
        f"{load.lambda_throttles} of {load.admitted} admitted",
        f"<= {load.lambda_throttles_allowed} (1 %)",
        load.lambda_throttles <= load.lambda_throttles_allowed,
    )


def corpus_table(outcomes: list[dict]) -> str:
    """One line per corpus image: what the endpoint answered, and the model process's peak RSS for it."""
    lines = [f"{'corpus image':34} {'status':>6} {'code':18} {'peak RSS MB':>11} {'ms':>8}"]
    for outcome in outcomes:
        lines.append(
            f"{outcome['name']:34} {outcome['status']:>6} {outcome['code'] or '-':18} "
            f"{outcome['peak_rss_mb']:>11} {outcome['milliseconds']:>8}"
        )
    return "\n".join(lines)


def sample_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 90, 60)).save(buffer, "JPEG")
    return buffer.getvalue()


def run(budget: Budget, work_dir: Path) -> Report:
    report = Report()
    image = sample_jpeg()
    corpus = measure_corpus(
        write_artifact(work_dir / "resnet50", "resnet50", image_size=224), build_corpus(budget.full_corpus), work_dir
    )
    peak = max(outcome.peak_rss_mb for outcome in corpus)
    report.details["corpus"] = [outcome.__dict__ for outcome in corpus]
    report.add(
        "corpus",
        f"{len(corpus)} nasty images, status 500",
        sum(o.status >= 500 for o in corpus),
        "0",
        not any(o.status >= 500 for o in corpus),
    )
    report.add(
        "corpus", "bodies leaking internals", sum(bool(o.leaks) for o in corpus), "0", not any(o.leaks for o in corpus)
    )
    report.add("corpus", "peak RSS of the model process (MB)", peak, f"< {PEAK_RSS_LIMIT_MB}", peak < PEAK_RSS_LIMIT_MB)

    with served_stack(work_dir / "stack", function_environment=DRILL_FUNCTION_ENVIRONMENT) as stack:
        with LambdaFunction("PredictFunction", stack.template, stack.environment) as function:
            fuzz = fuzz_predict_handler(function, budget.fuzz_examples)
        report.details["fuzz"] = {
            "statuses": dict(fuzz.statuses),
            "server_errors": fuzz.server_errors[:20],
            "leaking": fuzz.leaking[:20],
        }
        report.add(
            "fuzz",
            f"{fuzz.requests} generated requests, status 500",
            len(fuzz.server_errors),
            "0",
            not fuzz.server_errors,
        )
        report.add("fuzz", "bodies leaking internals", len(fuzz.leaking), "0", not fuzz.leaking)
        report.add("fuzz", "hangs", fuzz.hangs, "0", fuzz.hangs == 0)
        report.add("fuzz", "statuses seen", " ".join(f"{k}:{v}" for k, v in sorted(fuzz.statuses.items())), "-", True)

        # The contract's own fuzzer against the API that serves it, with the route open (as AuthMode=NONE): the
        # signature is not what it tests, and it cannot sign
        authorization, stack.api.authorization = stack.api.authorization, None
        try:
            schema = fuzz_schema(stack.api.url, budget.schema_examples)
        finally:
            stack.api.authorization = authorization
        report.details["schema"] = {"failures": schema.failures, "output": schema.output[-4000:]}
        report.add(
            "schema",
            f"schemathesis against openapi.json: {schema.cases} cases, failures",
            len(schema.failures),
            "0",
            schema.passed,
        )

        reserved = stack.api.pool.reserved_concurrency
        stack.api.pool.warm(reserved)
        p99 = calibrate(stack, image)
        rate, burst = route_throttle_for(reserved, p99)
        apply_throttle(stack, rate, burst)
        report.add("load", "calibrated p99 at reserved concurrency (ms)", round(p99 * 1000, 1), "-", True)
        report.add("load", "route throttle from the formula", f"rate {rate}/s, burst {burst}", "-", True)
        load = run_load(stack, image, budget.load_requests, 4 * reserved)
        report.details["load"] = {
            "statuses": dict(load.statuses),
            "seconds": load.seconds,
            "lambda_throttles": load.lambda_throttles,
        }
        report.add("load", f"{load.requests} requests, {load.clients} clients: lost", load.lost, "0", load.lost == 0)
        report.add("load", "answers other than 200/429, Lambda throttles apart", load.failures, "0", not load.failures)
        report.add("load", "200 / 429", f"{load.statuses[200]} / {load.statuses[429]}", "-", load.statuses[200] > 0)
        add_lambda_throttles(report, "load", "Lambda throttles (500s)", load)
        report.add(
            "load",
            "p50 / p95 / p99 of 200s (ms)",
            f"{load.percentile(0.5)} / {load.percentile(0.95)} / {load.percentile(0.99)}",
            "-",
            True,
        )
        during, action = blue_green_under_load(stack, image, 4 * reserved, work_dir)
        report.details["blue_green"] = {"statuses": dict(during.statuses), "lambda_throttles": during.lambda_throttles}
        report.add(
            "blue/green",
            f"endpoint {action} under load: {during.requests} requests, failed",
            during.failures + during.lost,
            "0",
            action == "updated" and not during.failures and not during.lost,
        )
        add_lambda_throttles(report, "blue/green", "Lambda throttles (500s) meanwhile", during)

        apply_throttle(stack, 50, 10)
        for drill in run_drills(stack, image, list(budget.drills), budget.drill_seconds):
            healed = drill.recovery_seconds is not None
            report.add(
                "faults",
                f"{drill.fault}: answers",
                drill.answers,
                drill.expected,
                500 not in drill.statuses and not drill.leaks,
            )
            report.add("faults", f"{drill.fault}: time to 200 (s)", drill.recovery_seconds, "recovers", healed)
            if drill.runtime_ping_failed is not None:
                failed_ping = drill.runtime_ping_failed
                report.add("faults", f"{drill.fault}: runtime /ping failed meanwhile", failed_ping, "True", failed_ping)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz, nasty images, faults and load against the offline stack.")
    parser.add_argument("--small", action="store_true", help="the small budget that make test runs")
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / ".offline/reliability.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reliability-") as work:
        report = run(SMALL if args.small else FULL, Path(work))
    print(corpus_table(report.details["corpus"]))
    print()
    print(report.table())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"rows": [row.__dict__ for row in report.rows], **report.details}, indent=2))
    print(f"\nwritten to {args.output}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
