"""`make pipeline-rehearsal`: the release workflow's steps, as GitHub and AWS would run them, against offline stages.

First the plan (``offline_stack/pipeline_plan.py``): the workflow read for a push to main, a push to a feature
branch and that branch's deletion; every job that runs is given the identity GitHub and AWS would give it (its OIDC
token through the trust of the role it names, rendered from ``pipeline/bootstrap.yaml``), its files only through
artifacts, and ``make deploy-stage`` judged as CloudFormation would judge it. Anything refused there fails the
rehearsal with GitHub's or AWS's words, before a process starts.

Then each job's make steps run, in the workflow's order, as that job's pipeline role: every stage (testing, prod,
a feature branch's stack) is a ``stage_server`` process of its own, as each lives in an account of its own, in
which the pipeline roles are principals held to their policies (``aws_rules/iam.py``) and the stack's own roles
carry the stage's permissions boundary. What runs for real: ``train-stage`` (testing trains, judges and deploys
when it has no approved model for this commit's training code), ``integration-test`` (the post-deploy suite,
signing as the job's role), ``export-model`` and ``promote-model`` (the approved model, its digest, the target's
pipeline releasing it), ``destroy-stage``; with ``--full`` also ``build`` and ``package`` (SAM's own commands,
packaging into the stage's offline artifacts bucket). What stands in for AWS: ``deploy-stage`` starts the stage's
stack offline instead of ``sam deploy`` (the plan has judged the deploy's IAM); ``lint``/``test`` are not re-run
(``make test`` runs this rehearsal; ``make lint`` is its own target).

Two things a person does once, and the rehearsal does as that person (the operator) before the runs: upload the
data set testing's training pipeline reads (``make upload-data``), and prod's golden set that every promotion into
prod is re-scored on (``make upload-golden``); here small generated ones.

tests/unit/test_workflows.py fails when a job calls a target this file has no way to run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from offline_stack.aws_rules.github import Trigger
from offline_stack.pipeline_plan import REPOSITORY, RUNS, WORKFLOW, JobPlan, Plan, Step, plan_workflow
from offline_stack.sam_template import PROJECT_ROOT
from ops.bootstrap import BOOTSTRAP_TEMPLATE, IDENTITY_SETS, Identities, render
from ops.stages import key_users

OFFLINE_PATH = os.pathsep.join(str(PROJECT_ROOT / part) for part in (".", "layers/shared/python", "training_jobs"))
# How each target is rehearsed: "run" (the make target itself), "stand-in" (deploy-stage), "covered" (not re-run),
# "full" (run with --full only)
TARGETS = {
    "lint": "covered",
    "test": "covered",
    "build": "full",
    "package": "full",
    "deploy-stage": "stand-in",
    "train-stage": "run",
    "integration-test": "run",
    "export-model": "run",
    "promote-model": "run",
    "destroy-stage": "run",
    "record-release": "run",
    "rollback-stage": "run",
}
# --rehearse-a-failed-release: main is pushed again, and that release's prod integration tests fail (as a broken
# release's would); the job's failure steps must put prod back as it was
FAILED_RELEASE_RUN = "push to main again, prod's tests fail"
FAILING_STEP = ("deploy-prod", "integration-test")


@dataclass
class Outcome:
    step: Step
    result: str  # ok, skipped, FAILED
    detail: str = ""
    seconds: float = 0.0


class OfflineStages:
    """The stage_server processes, one per stack, started when a step first needs one."""

    def __init__(self, work_dir: Path, identities: dict[str, Identities]) -> None:
        self.work_dir, self.identities = work_dir, identities
        self.running: dict[str, tuple[subprocess.Popen, dict]] = {}
        # (stage, branch) -> what the workflow's deploy-stage step of that stack sets as ARTIFACTS_KEY_USERS
        self.key_users: dict[tuple[str, str], str] = {}

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
            identities = directory / "identities.json"
            identities.write_text(json.dumps(self._account(stage, branch)))
            command = [sys.executable, "-m", "offline_stack.stage_server", "--stage", stage, "--branch", branch]
            command += ["--work-dir", str(directory), "--ready-file", str(ready), "--identities", str(identities)]
            # the stack as its deploy-stage step makes it: the key's users are the ones that step names
            if users := key_users(self.key_users.get((stage, branch), "")):
                command += ["--parameter-overrides", f"ArtifactsKeyUserArns={users}"]
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
            deployer = self.identities["feature" if branch else stage]
            _create_bucket(self.running[key][1], deployer.artifacts_bucket)  # what the bootstrap stack made
        return self.running[key][1]

    def _account(self, stage: str, branch: str) -> dict:
        """Who acts in the stage's account: every pipeline role (each held to its own policy; a shared account is
        the hard case), and the boundary of the identity set that deploys this stack."""
        deployer = "feature" if branch else stage
        roles = [
            {"name": f"{name}-pipeline", "arn": i.pipeline_role_arn, "policy": i.pipeline_policy}
            for name, i in self.identities.items()
        ]
        roles += [
            {
                "name": i.registry_reader.identity_set,
                "arn": i.registry_reader.pipeline_role_arn,
                "policy": i.registry_reader.pipeline_policy,
            }
            for i in self.identities.values()
            if i.registry_reader
        ]
        return {"roles": roles, "boundary": self.identities[deployer].boundary_policy}

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


def _create_bucket(stage: dict, bucket: str) -> None:
    """A bucket in the stage's account, made as its operator (an administrator, as the bootstrap's deployer is)."""
    import boto3

    environment = stage["environment"]
    s3 = boto3.client(
        "s3",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        region_name=environment["AWS_REGION"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment.get("AWS_SESSION_TOKEN"),
    )
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)


def upload_data_set(environment: dict[str, str], bucket: str, work_dir: Path) -> None:
    """What a person does once per testing account (``make upload-data``): a small generated data set here."""
    import boto3

    from offline_stack.synthetic_images import write_image_folder

    session = boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment.get("AWS_SESSION_TOKEN"),
        region_name=environment["AWS_REGION"],
    )
    s3 = session.client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"])
    data = write_image_folder(work_dir / "data", {"train": 30, "valid": 10, "test": 10})
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, "data/" + path.relative_to(data).as_posix())


def upload_golden_set(environment: dict[str, str], bucket: str, work_dir: Path) -> None:
    """What a person does once per prod account (``make upload-golden``): photos of the same breeds the training
    data has, drawn apart from it (another seed), that prod re-scores every promotion on."""
    import boto3

    from offline_stack.synthetic_images import write_image_folder
    from ops.upload_golden import upload_golden_set as mirror

    session = boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment.get("AWS_SESSION_TOKEN"),
        region_name=environment["AWS_REGION"],
    )
    photos = write_image_folder(work_dir, {"golden": 6}, seed=2024) / "golden"
    mirror(session.client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"]), bucket, photos)


class Rehearsal:
    def __init__(self, work_dir: Path, full: bool, identities: dict[str, Identities], say=print) -> None:
        self.work_dir, self.full, self.say = work_dir, full, say
        self.identities = identities
        self.stages = OfflineStages(work_dir / "stages", identities)
        self.promotion = work_dir / "promotion"
        self.release = work_dir / "previous-release"
        self.data_uploaded: set[str] = set()

    def run(self, plan: Plan) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for job in plan.jobs:
            for step in (step for step in job.steps if step.target == "deploy-stage"):
                self.stages.key_users[(step.stage, step.branch)] = step.environment.get("ARTIFACTS_KEY_USERS", "")
        try:
            for job in plan.jobs:
                if job.result == "skipped":
                    continue
                for step in job.steps:
                    outcomes.append(self._step(job, step))
                    if outcomes[-1].result == "FAILED":
                        # GitHub ends the job here, then runs its ``if: failure()`` steps
                        outcomes += [self._step(job, failure_step) for failure_step in job.on_failure]
                        return outcomes
        finally:
            self.stages.close()
        return outcomes

    def _step(self, job: JobPlan, step: Step) -> Outcome:
        started = time.monotonic()
        try:
            if job.run == FAILED_RELEASE_RUN and (step.job, step.target) == FAILING_STEP:
                result, detail = "FAILED", "(drill: this release's prod integration tests fail)"
            else:
                result, detail = self._rehearse(job, step)
        except Exception as failure:  # noqa: BLE001 (a step's failure is reported and ends the rehearsal)
            result, detail = "FAILED", str(failure)[-2000:]
        outcome = Outcome(step, result, detail, time.monotonic() - started)
        where = f"{step.stage}" + (f" ({step.branch})" if step.branch else "")
        identity = step.identity.identity_set if step.identity else "no credentials"
        self.say(
            f"  [{job.run}] [{job.name} as {identity}] {step.command}  [{where}]  {outcome.result} "
            f"({outcome.seconds:.1f} s) {outcome.detail}"
        )
        return outcome

    def _rehearse(self, job: JobPlan, step: Step) -> tuple[str, str]:
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
        environment = self._as_step(step, stage)
        if step.target == "package":
            return self._make(step, environment)
        if step.target == "deploy-stage":
            outputs = stage["outputs"]
            if step.stage == "testing" and not step.branch and "testing" not in self.data_uploaded:
                upload_data_set(stage["environment"], outputs["ArtifactsBucketName"], self.work_dir / "data-set")
                self.data_uploaded.add("testing")
            if step.stage == "prod" and "prod" not in self.data_uploaded:
                upload_golden_set(stage["environment"], outputs["ArtifactsBucketName"], self.work_dir / "golden-set")
                self.data_uploaded.add("prod")
            return "ok", f"(stand-in for sam deploy: {outputs['ApiUrl']}, auth {outputs['ApiAuthMode']})"
        if step.target == "train-stage":  # the stack's pipeline, on the rehearsal's small budget
            from offline_stack.demo_steps import QUICK_HYPERPARAMETERS

            quick = {"training": {"hyperparameters": QUICK_HYPERPARAMETERS, "instance_count": 1}}
            environment = environment | {"TRAINING_INPUT": json.dumps(quick)}
        extra = {}
        if step.target == "destroy-stage":
            extra = {"ARGS": "--capture-grace-seconds 0 --poll-seconds 0.5"}
        outcome = self._make(step, environment, extra)
        if step.target == "destroy-stage" and outcome[0] == "ok":
            self.stages.stop(step.stage, step.branch)
        return outcome

    @staticmethod
    def _as_step(step: Step, stage: dict) -> dict[str, str]:
        """The stage's endpoints with the credentials the step's job holds at that step (never the operator's)."""
        environment = dict(stage["environment"])
        if step.identity is None:
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                environment.pop(name, None)
            return environment
        return environment | stage["identities"][step.identity.pipeline_role_arn]

    def _make(self, step: Step, environment: dict[str, str], extra: dict[str, str] | None = None) -> tuple[str, str]:
        variables = step.variables | {"PROMOTION_DIR": str(self.promotion), "RELEASE_DIR": str(self.release)}
        variables |= extra or {}
        command = ["make", "--no-print-directory", step.target, *(f"{k}={v}" for k, v in variables.items())]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env = {**inherited, **environment, **step.environment}
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
    parser.add_argument("--workflow", type=Path, default=WORKFLOW, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", type=Path, default=BOOTSTRAP_TEMPLATE, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rehearse-a-failed-release",
        action="store_true",
        help="push main again and fail that release's prod tests: prod must be rolled back (the run then fails)",
    )
    args = parser.parse_args(argv)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    (args.work_dir / "logs").mkdir(parents=True)
    runs = RUNS
    if args.rehearse_a_failed_release:
        runs += ((FAILED_RELEASE_RUN, Trigger("push", "refs/heads/main", REPOSITORY)),)
    plan = plan_workflow(args.workflow, runs=runs, bootstrap=args.bootstrap)
    steps = plan.steps
    shown = args.workflow.relative_to(PROJECT_ROOT) if args.workflow.is_relative_to(PROJECT_ROOT) else args.workflow
    print(f"Rehearsing {shown} as {REPOSITORY}: {len(steps)} make steps in {len(plan.jobs)} jobs of {len(runs)} runs")
    for job in plan.jobs:
        identity = f"as {job.identity.identity_set}'s pipeline role" if job.identity else "no AWS credentials"
        print(f"  plan [{job.run}] {job.name}: {job.result}" + ("" if job.result == "skipped" else f", {identity}"))
    if plan.refusals:
        print("FAILED: GitHub or AWS would refuse:")
        for refusal in plan.refusals:
            print(f"  {refusal}")
        (args.work_dir / "outcomes.json").write_text(json.dumps({"refusals": plan.refusals}, indent=2))
        return 1
    identities = {s: render(s, REPOSITORY, template=args.bootstrap) for s in IDENTITY_SETS}
    rehearsal = Rehearsal(args.work_dir, args.full, identities)
    started = time.monotonic()
    outcomes = rehearsal.run(plan)
    failed = [o for o in outcomes if o.result == "FAILED"]
    ran, skipped = sum(o.result == "ok" for o in outcomes), sum(o.result == "skipped" for o in outcomes)
    verdict = "FAILED" if failed or len(outcomes) < len(steps) else "passed"
    print(
        f"{verdict}: {ran} steps ran, {skipped} skipped, {len(failed)} failed, {max(len(steps) - len(outcomes), 0)} "
        f"not reached, in {time.monotonic() - started:.0f} s (logs: {args.work_dir / 'logs'})"
    )
    (args.work_dir / "outcomes.json").write_text(
        json.dumps([{"job": o.step.job, "command": o.step.command, "result": o.result} for o in outcomes], indent=2)
    )
    return 1 if failed or len(outcomes) < len(steps) else 0


if __name__ == "__main__":
    sys.exit(main())
