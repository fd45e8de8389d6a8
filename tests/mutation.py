"""``make mutation``: mutate every module that decides something and score what ``tests/unit`` alone catches.

    python -m tests.mutation [--base REF] [--modules PATH,PATH] [--workers 2]

pytest-gremlins mutates each module (comparisons, arithmetic, booleans, boundaries, returns) and runs the unit
tests that cover the mutated line. Only ``tests/unit``: a developer who runs it before committing must see a
decision error there, not in the integration suite 20 minutes later. Each module's score is kept in
``.offline/mutation/scores.json`` (a run updates the modules it ran), printed as one table with the survivors,
and the run fails when a module scores under ``TARGET``. ``--base REF`` runs only the modules changed since REF
(incremental); ``--modules`` names them. docs/testing.md publishes the scores and why each survivor is left.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REPORT = PROJECT_ROOT / "coverage" / "gremlins" / "gremlins.json"
SCORES = PROJECT_ROOT / ".offline" / "mutation" / "scores.json"
TARGET = 85.0
MUTANT_TIMEOUT_SECONDS = 20
UNUSED_PLUGINS = ("schemathesis", "hypothesispytest", "anyio")
# Every module with logic that decides something a user would notice, tested by tests/unit.
MODULES = (
    "layers/shared/python/dog_breeds/image_request.py",
    "layers/shared/python/dog_breeds/errors.py",
    "layers/shared/python/dog_breeds/http_api.py",
    "layers/shared/python/dog_breeds/settings.py",
    "layers/shared/python/dog_breeds/deploy_endpoint.py",
    "layers/shared/python/dog_breeds/register_autoscaling.py",
    "layers/shared/python/dog_breeds/release_gate.py",
    "layers/shared/python/dog_breeds/golden_set.py",
    "layers/shared/python/dog_breeds/start_training.py",
    "layers/shared/python/dog_breeds/control_events.py",
    "layers/shared/python/dog_breeds/adapters/sagemaker_endpoint.py",
    "layers/shared/python/dog_breeds/adapters/image_download.py",
    "training_jobs/inference.py",
    "training_jobs/breed_classifier/preprocessing.py",
    "training_jobs/breed_classifier/progress.py",
    "training_jobs/breed_classifier/fast_path.py",
    "training_jobs/breed_classifier/artifact.py",
    "ops/capacity_plan.py",
    "ops/promote_model.py",
    "ops/stages.py",
    "ops/preflight.py",
    "ops/destroy.py",
    "training_jobs/breed_classifier/training.py",
    "training_jobs/breed_classifier/feature_cache.py",
    "training_jobs/breed_classifier/distributed.py",
    "offline_stack/serverless_capacity.py",
    "offline_stack/supervision.py",
    "offline_stack/aws_rules/api_gateway.py",
    "offline_stack/aws_rules/sagemaker.py",
    "offline_stack/aws_rules/cloudwatch.py",
    "offline_stack/aws_rules/step_functions.py",
    "offline_stack/aws_rules/iam.py",
)


def changed_since(base: str) -> list[str]:
    command = ["git", "diff", "--name-only", base, "--", *MODULES]
    names = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [module for module in MODULES if module in names]


def run(modules: list[str], workers: int) -> dict[str, dict]:
    """Mutate ``modules`` against tests/unit; each module's counts and survivors."""
    REPORT.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "tests/unit",
        "--gremlins",
        f"--gremlin-targets={','.join(modules)}",
        f"--gremlin-workers={workers}",
        # One test process a mutant, not --gremlin-batch: a batch runs the union of its mutants' tests, so one
        # import-time mutant (whole suite) in a batch makes every mutant of it time out (measured: ops/stages.py,
        # 12 mutants, 9 min and 1 killed batched; 3.4 min and all killed one process each)
        # A mutant's tests take seconds; one that no unit test runs gets the whole suite, and gives up sooner
        f"--gremlin-mutant-timeout={MUTANT_TIMEOUT_SECONDS}",
        "--gremlin-report=console,json",
    ]
    # Each mutant's test process loads no plugin tests/unit does not use: schemathesis and hypothesis's plugins
    # cost 2 of the 4 seconds a process takes to start (tests/integration uses them, not tests/unit)
    addopts = f"{os.environ.get('PYTEST_ADDOPTS', '')} {' '.join(f'-p no:{name}' for name in UNUSED_PLUGINS)}"
    subprocess.run(command, cwd=PROJECT_ROOT, check=False, env={**os.environ, "PYTEST_ADDOPTS": addopts.strip()})
    if not REPORT.is_file():
        raise SystemExit(f"pytest-gremlins wrote no report ({REPORT}): see its output above")
    return score(json.loads(REPORT.read_text()), modules)


def score(report: dict, modules: list[str]) -> dict[str, dict]:
    """Each module's counts and survivors from pytest-gremlins' JSON report. A mutant no unit test runs counts
    as not killed; only one of a line that runs at import alone (not inside a function) is left out, and listed."""
    scored: dict[str, dict] = {}
    for module in modules:
        results = [r for r in report["results"] if _same(r["file_path"], module)]
        if not results:
            print(f"{module}: no mutant in the report, not scored", file=sys.stderr)
            continue
        in_functions = _function_bodies(module)
        at_import = [r for r in results if _no_test_runs_it(r) and not _inside(r["line_number"], in_functions)]
        scored_results = [r for r in results if r not in at_import]
        killed = sum(1 for r in scored_results if r["status"] == "zapped")
        scored[module] = {
            "mutants": len(scored_results),
            "killed": killed,
            "score": round(100 * killed / len(scored_results), 1) if scored_results else 100.0,
            "survivors": [_line(r) for r in scored_results if r["status"] != "zapped"],
            "at_import": [_line(r) for r in at_import],
            "date": datetime.now(UTC).date().isoformat(),
        }
    return scored


def _no_test_runs_it(result: dict) -> bool:
    """Coverage tied the mutated line to no unit test, so the tool ran the whole suite against it, which does
    not finish within the timeout: the mutant is an error with every test selected."""
    return result["status"] == "error" and len(result.get("selected_tests", [])) > 300


def _function_bodies(module: str) -> list[tuple[int, int]]:
    """The line ranges of every function and lambda body in ``module``: what runs after import."""
    tree = ast.parse((PROJECT_ROOT / module).read_text())
    bodies = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            bodies.append((node.body[0].lineno, node.end_lineno or node.lineno))
        elif isinstance(node, ast.Lambda):
            bodies.append((node.body.lineno, node.body.end_lineno or node.body.lineno))
    return bodies


def _inside(line: int, bodies: list[tuple[int, int]]) -> bool:
    return any(start <= line <= end for start, end in bodies)


def _line(result: dict) -> str:
    return f"line {result['line_number']}: {result['description']} ({result['status']})"


def _same(reported: str, module: str) -> bool:
    return Path(reported).resolve() == (PROJECT_ROOT / module).resolve() or reported.endswith(module)


def table(scores: dict[str, dict]) -> str:
    lines = ["| module | mutants | killed | score | date |", "|---|---|---|---|---|"]
    for module in MODULES:
        if module in scores:
            s = scores[module]
            lines.append(f"| `{module}` | {s['mutants']} | {s['killed']} | {s['score']:.1f} % | {s['date']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="only the modules changed since this git ref")
    parser.add_argument("--modules", help="comma-separated paths, from the list in this file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--from-report", type=Path, help="score this pytest-gremlins JSON report instead of running")
    args = parser.parse_args(argv)
    if args.modules:
        modules = [m.strip() for m in args.modules.split(",") if m.strip()]
        unknown = sorted(set(modules) - set(MODULES))
        if unknown:
            parser.error(f"not in the mutated modules: {unknown}; accepted: {list(MODULES)}")
    else:
        modules = changed_since(args.base) if args.base else list(MODULES)
    if not modules:
        print(f"no mutated module changed since {args.base}")
        return 0
    scores = json.loads(SCORES.read_text()) if SCORES.is_file() else {}
    if args.from_report:
        scores.update(score(json.loads(args.from_report.read_text()), modules))
    else:
        scores.update(run(modules, args.workers))
    SCORES.parent.mkdir(parents=True, exist_ok=True)
    SCORES.write_text(json.dumps(scores, indent=2))
    print(table(scores))
    below = {m: s for m, s in scores.items() if m in modules and s["score"] < TARGET}
    for module, s in scores.items():
        if module in modules and (s["survivors"] or s.get("at_import")):
            print(f"\n{module}: {len(s['survivors'])} not killed, {len(s.get('at_import', []))} at import (not scored)")
            print("\n".join(f"  {line}" for line in s["survivors"]))
            print("\n".join(f"  at import: {line}" for line in s.get("at_import", [])))
    if below:
        print(f"\nbelow {TARGET:.0f} %: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
