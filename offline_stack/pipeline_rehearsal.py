"""`make pipeline-rehearsal`: the release pipeline's own steps, in its own order, against offline stages.

It reads ``.github/workflows/pipeline.yaml``, orders its jobs as GitHub would (``needs``, then file order), and runs
each step's ``make`` target with the step's variables, in a shell whose AWS endpoints are the offline stage the
step names. Each stage (testing, prod, a feature branch's stack) is a ``stage_server`` process of its own, as each
lives in an account of its own: its control plane, bucket, registry, endpoint and API are its own, and its stack's
outputs answer ``describe-stacks`` under the stage's stack name.

What runs for real: ``integration-test`` (the post-deploy suite, signing its requests), ``export-model`` and
``promote-model`` (the approved model, its digest, the target's pipeline releasing it), ``destroy-stage``; with
``--full`` also ``build`` and ``package`` (SAM's own commands, packaging into the stage's offline bucket). What
stands in for AWS: ``deploy-stage`` starts the stage's stack offline instead of ``sam deploy`` (CloudFormation
and the SAM transform exist only in AWS), and ``lint``/``test`` are not re-run (``make test`` runs this
rehearsal; ``make lint`` is its own target). Before the first integration test of testing, the rehearsal does what
a team does once after its first deploy and the workflow does not: it trains a first model in testing, through
testing's own pipeline, on a small generated data set.

tests/unit/test_workflows.py fails when a job calls a target this file has no way to run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from offline_stack.sam_template import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "pipeline.yaml"
OFFLINE_PATH = os.pathsep.join(str(PROJECT_ROOT / part) for part in (".", "layers/shared/python", "training_jobs"))
REHEARSAL_BRANCH = "feature/rehearsal"
# How each target is rehearsed: "run" (the make target itself), "stand-in" (deploy-stage), "covered" (not re-run)
TARGETS = {
    "lint": "covered",
    "test": "covered",
    "build": "full",
    "package": "full",
    "deploy-stage": "stand-in",
    "integration-test": "run",
    "export-model": "run",
    "promote-model": "run",
    "destroy-stage": "run",
}
_EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


@dataclass(frozen=True)
class Step:
    job: str
    target: str
    variables: dict[str, str]  # STAGE=... on the make command line
    environment: dict[str, str]  # the job's and step's env:, expressions resolved for the rehearsal

    @property
    def command(self) -> str:
        return " ".join(["make", self.target, *(f"{k}={v}" for k, v in self.variables.items())])

    @property
    def stage(self) -> str:
        return self.variables.get("STAGE", "testing")

    @property
    def branch(self) -> str:
        return self.environment.get("FEATURE_BRANCH", "")


@dataclass
class Outcome:
    step: Step
    result: str  # ok, skipped, FAILED
    detail: str = ""
    seconds: float = 0.0


def _resolve(value: str, stage_values: dict[str, str]) -> str:
    """A workflow expression as the rehearsal sees it: the branch it rehearses, the offline stages' variables."""

    def one(match: re.Match) -> str:
        expression = match.group(1)
        if expression in ("github.ref_name", "github.event.ref"):
            return REHEARSAL_BRANCH
        if expression.startswith("vars."):
            return stage_values.get(expression.removeprefix("vars."), "")
        raise ValueError(f"the rehearsal cannot resolve ${{{{ {expression} }}}} in the workflow")

    return _EXPRESSION.sub(one, str(value))


def ordered_jobs(workflow: dict) -> list[str]:
    """The jobs in an order GitHub may run them: each after its ``needs``, otherwise in file order."""
    jobs = workflow["jobs"]
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [name for name, job in jobs.items() if name not in done and set(_needs(job)) <= set(done)]
        if not ready:
            raise ValueError(f"the workflow's needs form a cycle among {sorted(set(jobs) - set(done))}")
        done.append(ready[0])
    return done


def _needs(job: dict) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def workflow_steps(path: Path = WORKFLOW, stage_values: dict[str, str] | None = None) -> list[Step]:
    """Every ``make`` step of the workflow, jobs in order; any other ``run:`` is an error (the YAML stays thin)."""
    workflow = yaml.safe_load(path.read_text())
    values = stage_values or {}
    steps = []
    for job_name in ordered_jobs(workflow):
        job = workflow["jobs"][job_name]
        job_environment = {k: _resolve(v, values) for k, v in (job.get("env") or {}).items()}
        for step in job.get("steps", []):
            if "run" not in step:
                continue
            words = shlex.split(step["run"])
            if not words or words[0] != "make" or len(words) < 2:
                raise ValueError(f"job {job_name} runs {step['run']!r}: every step of the pipeline is a make target")
            variables = dict(word.split("=", 1) for word in words[2:])
            environment = job_environment | {k: _resolve(v, values) for k, v in (step.get("env") or {}).items()}
            steps.append(Step(job_name, words[1], variables, environment))
    return steps


class OfflineStages:
    """The stage_server processes, one per stack, started when a step first needs one."""

    def __init__(self, work_dir: Path, say) -> None:
        self.work_dir, self.say = work_dir, say
        self.running: dict[str, tuple[subprocess.Popen, dict]] = {}

    @staticmethod
    def key(stage: str, branch: str) -> str:
        return f"{stage}:{branch}" if branch else stage

    def ensure(self, stage: str, branch: str = "") -> dict:
        key = self.key(stage, branch)
        if key not in self.running:
            directory = self.work_dir / re.sub(r"[^a-z0-9]+", "-", key)
            ready = directory / "ready.json"
            directory.mkdir(parents=True, exist_ok=True)
            ready.unlink(missing_ok=True)
            command = [sys.executable, "-m", "offline_stack.stage_server", "--stage", stage]
            command += ["--branch", branch, "--work-dir", str(directory), "--ready-file", str(ready)]
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": OFFLINE_PATH}, stdin=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 180
            while not ready.is_file():
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"the offline {key} stage did not start (log: {directory / 'stage.log'})")
                time.sleep(0.2)
            self.running[key] = (process, json.loads(ready.read_text()))
        return self.running[key][1]

    def stop(self, stage: str, branch: str = "") -> None:
        entry = self.running.pop(self.key(stage, branch), None)
        if entry is not None:
            _terminate(entry[0])

    def close(self) -> None:
        for key in list(self.running):
            _terminate(self.running.pop(key)[0])


def _terminate(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _session(environment: dict[str, str]):
    """A boto3 session as the operator of the offline stage ``environment`` describes."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment.get("AWS_SESSION_TOKEN"),
        region_name=environment["AWS_REGION"],
    )


def train_first_model(environment: dict[str, str], outputs: dict[str, str], work_dir: Path, say) -> None:
    """What a team does once in testing after its first deploy: upload data, run the training pipeline."""
    from offline_stack.demo_steps import QUICK_HYPERPARAMETERS
    from offline_stack.synthetic_images import write_image_folder

    session = _session(environment)
    s3 = session.client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"])
    data = write_image_folder(work_dir / "data", {"train": 30, "valid": 10, "test": 10})
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        s3.upload_file(str(path), outputs["ArtifactsBucketName"], "data/" + path.relative_to(data).as_posix())
    sfn = session.client("stepfunctions", endpoint_url=environment["AWS_ENDPOINT_URL"])
    training = {"training": {"hyperparameters": QUICK_HYPERPARAMETERS, "instance_count": 1}}
    arn = sfn.start_execution(
        stateMachineArn=outputs["TrainingPipelineArn"], name="first-model", input=json.dumps(training)
    )["executionArn"]
    deadline = time.monotonic() + 900
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError("testing's first training pipeline is still running after 900 s")
        time.sleep(0.5)
    if execution["status"] != "SUCCEEDED":
        raise RuntimeError(f"testing's first pipeline ended {execution['status']}: {execution.get('cause', '')[:300]}")
    say("        testing's first model trained, judged (approved) and deployed by its own pipeline")


class Rehearsal:
    def __init__(self, work_dir: Path, full: bool, say=print) -> None:
        self.work_dir, self.full, self.say = work_dir, full, say
        self.stages = OfflineStages(work_dir / "stages", say)
        self.trained: set[str] = set()
        self.promotion = work_dir / "promotion"

    def stage_values(self) -> dict[str, str]:
        """The repository variables the workflow reads, as the offline stages have them."""
        values = {}
        for stage in ("TESTING", "PROD"):
            role = f"arn:aws:iam::123456789012:role/{stage.lower()}"
            values |= {
                f"{stage}_REGION": "us-east-1",
                f"{stage}_PIPELINE_EXECUTION_ROLE": f"{role}-pipeline-execution",
                f"{stage}_CLOUDFORMATION_EXECUTION_ROLE": f"{role}-cloudformation-execution",
                f"{stage}_ARTIFACTS_BUCKET": f"{stage.lower()}-pipeline-artifacts",
            }
        return values

    def run(self, steps: list[Step]) -> list[Outcome]:
        outcomes = []
        try:
            for step in steps:
                started = time.monotonic()
                try:
                    result, detail = self._rehearse(step)
                except Exception as failure:  # noqa: BLE001 (a step's failure is reported and ends the rehearsal)
                    result, detail = "FAILED", str(failure)[-2000:]
                outcome = Outcome(step, result, detail, time.monotonic() - started)
                outcomes.append(outcome)
                where = f"{step.stage}" + (f" ({step.branch})" if step.branch else "")
                self.say(f"  [{step.job}] {step.command}  [{where}]  {result} ({outcome.seconds:.1f} s) {detail}")
                if result == "FAILED":
                    break
        finally:
            self.stages.close()
        return outcomes

    def _rehearse(self, step: Step) -> tuple[str, str]:
        kind = TARGETS.get(step.target)
        if kind is None:
            raise ValueError(f"the rehearsal has no way to run make {step.target}: add it to TARGETS")
        if kind == "covered":
            return "skipped", "(not re-run: make test runs this rehearsal; make lint is its own target)"
        if kind == "full" and not self.full:
            return "skipped", "(budget: BUDGET=full runs SAM's build and package too)"
        if step.target == "build":
            return self._make(step, {})
        stage = self.stages.ensure(step.stage, step.branch)
        environment = stage["environment"]
        if step.target == "package":
            s3 = _session(environment).client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"])
            bucket = step.environment["PIPELINE_BUCKET"]
            if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                s3.create_bucket(Bucket=bucket)  # what sam pipeline bootstrap made
            return self._make(step, environment)
        if step.target == "deploy-stage":
            outputs = stage["outputs"]
            if step.stage == "testing" and not step.branch and "testing" not in self.trained:
                train_first_model(environment, outputs, self.work_dir / "first-model", self.say)
                self.trained.add("testing")
            return "ok", f"(stand-in for sam deploy: {outputs['ApiUrl']}, auth {outputs['ApiAuthMode']})"
        extra = {}
        if step.target == "destroy-stage":
            extra = {"ARGS": "--capture-grace-seconds 0 --poll-seconds 0.5"}
        outcome = self._make(step, environment, extra)
        if step.target == "destroy-stage" and outcome[0] == "ok":
            self.stages.stop(step.stage, step.branch)
        return outcome

    def _make(self, step: Step, environment: dict[str, str], extra: dict[str, str] | None = None) -> tuple[str, str]:
        variables = step.variables | {"PROMOTION_DIR": str(self.promotion)} | (extra or {})
        command = ["make", "--no-print-directory", step.target, *(f"{k}={v}" for k, v in variables.items())]
        env = {**os.environ, **environment, **step.environment}
        env.pop("AWS_PROFILE", None)
        result = subprocess.run(
            command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL
        )
        log = self.work_dir / "logs" / f"{len(list((self.work_dir / 'logs').glob('*'))) + 1:02d}-{step.target}.log"
        log.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            return "FAILED", f"(exit {result.returncode}; {log})\n{(result.stdout + result.stderr)[-1500:]}"
        last = next((line for line in reversed(result.stdout.splitlines()) if line.strip()), "")
        return "ok", f"({last.strip()[:120]})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also run make build and make package (SAM, minutes)")
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / ".offline" / "rehearsal")
    args = parser.parse_args(argv)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    (args.work_dir / "logs").mkdir(parents=True)
    rehearsal = Rehearsal(args.work_dir, args.full)
    steps = workflow_steps(stage_values=rehearsal.stage_values())
    print(f"Rehearsing {WORKFLOW.relative_to(PROJECT_ROOT)}: {len(steps)} make steps, offline stages on loopback")
    started = time.monotonic()
    outcomes = rehearsal.run(steps)
    failed = [o for o in outcomes if o.result == "FAILED"]
    ran, skipped = sum(o.result == "ok" for o in outcomes), sum(o.result == "skipped" for o in outcomes)
    verdict = "FAILED" if failed or len(outcomes) < len(steps) else "passed"
    print(
        f"{verdict}: {ran} steps ran, {skipped} skipped, {len(failed)} failed, {len(steps) - len(outcomes)} not "
        f"reached, in {time.monotonic() - started:.0f} s (logs: {args.work_dir / 'logs'})"
    )
    (args.work_dir / "outcomes.json").write_text(
        json.dumps([{"job": o.step.job, "command": o.step.command, "result": o.result} for o in outcomes], indent=2)
    )
    return 1 if failed or len(outcomes) < len(steps) else 0


if __name__ == "__main__":
    sys.exit(main())
