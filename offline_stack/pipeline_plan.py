"""The release workflow read as GitHub and AWS would run it: which jobs run for which event, as which identity, with
which files, for how long, and what each would be refused.

``plan_workflow`` reads ``.github/workflows/pipeline.yaml`` for three runs (a push to main, a push to a feature
branch, that branch deleted) and, for every job that runs, checks what GitHub and AWS check before and while it
runs, with their own rules (``offline_stack/aws_rules/github.py``, ``sts.py``, ``iam.py``):

- the OIDC token GitHub issues the job (its ``sub`` from the job's ``environment`` or the run's ref) is let in by
  the trust policy of the role it names, rendered from ``pipeline/bootstrap.yaml`` (``ops.bootstrap``), for the
  session it asks, within the role's maximum, and the job cannot outlive its credentials (``timeout-minutes``);
- files reach a job only through artifacts (upload-artifact's hidden-file rule, download by name from a job it
  needs, kept long enough for an approval to wait): every make step finds the files it needs in its own job;
- ``make deploy-stage``, which cannot run offline (CloudFormation and the SAM transform exist only in AWS), is
  judged as AWS would judge it: the pipeline role may pass the CloudFormation role and change that stack, and the
  CloudFormation role may create every role of the template, with the boundary the template gives it.

A refusal carries GitHub's or AWS's own words. Nothing here starts a process: it runs in milliseconds, so the
rehearsal (``pipeline_rehearsal.py``) plans first and runs make steps only when nothing would be refused.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from offline_stack import sam_template
from offline_stack.aws_rules import github, sts
from offline_stack.aws_rules.iam import Permission, Policy
from offline_stack.sam_template import PROJECT_ROOT, TEMPLATE_PATH, SamTemplate
from ops.bootstrap import BOOTSTRAP_TEMPLATE, IDENTITY_SETS, Identities, offline_variables, render
from ops.stages import read_stage

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "pipeline.yaml"
REPOSITORY = "octo-org/dog-breed-classifier"  # the repository the rehearsal stands in for
REHEARSAL_BRANCH = "feature/rehearsal"
RUNS = (
    ("push to main", github.Trigger("push", "refs/heads/main", REPOSITORY)),
    (f"push to {REHEARSAL_BRANCH}", github.Trigger("push", f"refs/heads/{REHEARSAL_BRANCH}", REPOSITORY)),
    (f"{REHEARSAL_BRANCH} deleted", github.Trigger("delete", f"refs/heads/{REHEARSAL_BRANCH}", REPOSITORY)),
)
# What a make target needs in its job's workspace and what it leaves there ({STAGE}: the step's STAGE). Jobs share
# no files: a file one job makes reaches another only as an artifact.
WORKSPACE = {
    "build": ((), (".aws-sam/build/template.yaml",)),
    "package": ((".aws-sam/build/template.yaml",), (".aws-sam/packaged-{STAGE}.yaml",)),
    "deploy-stage": ((".aws-sam/packaged-{STAGE}.yaml",), ()),
    "export-model": ((), (".promotion/model.tar.gz", ".promotion/record.json")),
    "promote-model": ((".promotion/model.tar.gz", ".promotion/record.json"), ()),
}
# The make targets that call AWS: they need the job's credentials
AWS_TARGETS = {
    "record-release",
    "rollback-stage",
    "package",
    "deploy-stage",
    "train-stage",
    "integration-test",
    "export-model",
    "promote-model",
    "destroy-stage",
}
EXPIRED_TOKEN = "ExpiredToken: The security token included in the request is expired"  # noqa: S105 (AWS's message)


@dataclass(frozen=True)
class Step:
    """One ``make`` step of a job, as that run resolves it."""

    job: str
    target: str
    variables: dict[str, str]  # STAGE=... on the make command line
    environment: dict[str, str]  # the job's and step's env:, expressions resolved for the run
    run: str = ""
    # whose credentials the step has: those of the last configure-aws-credentials before it in its job
    identity: Identities | None = field(default=None, compare=False)

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
class JobPlan:
    run: str
    trigger: github.Trigger
    name: str
    result: str  # success, skipped, failure (refused)
    identity: Identities | None = None
    steps: list[Step] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    on_failure: list[Step] = field(default_factory=list)  # steps with ``if: failure()``: run once a step failed


@dataclass
class Plan:
    jobs: list[JobPlan]

    @property
    def steps(self) -> list[Step]:
        return [step for job in self.jobs if job.result != "skipped" for step in job.steps]

    @property
    def refusals(self) -> list[str]:
        return [f"[{job.run}] {job.name}: {refusal}" for job in self.jobs for refusal in job.refusals]


@dataclass(frozen=True)
class Artifact:
    job: str
    files: tuple[str, ...]  # relative to the upload's root, as upload-artifact stores them
    retention_days: int


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


def _needed_by(workflow: dict, name: str) -> set[str]:
    """Every job ``name`` needs, directly or through others."""
    found: set[str] = set()
    pending = _needs(workflow["jobs"][name])
    while pending:
        need = pending.pop()
        if need not in found:
            found.add(need)
            pending += _needs(workflow["jobs"][need])
    return found


def _resolve(value, context: dict[str, str]) -> str:
    """A workflow expression as the run sees it: the github context and the repository variables."""
    text = str(value)
    while "${{" in text:
        start = text.index("${{")
        end = text.index("}}", start)
        expression = text[start + 3 : end].strip()
        if expression not in context:
            raise ValueError(f"the rehearsal cannot resolve ${{{{ {expression} }}}} in the workflow")
        text = text[:start] + context[expression] + text[end + 2 :]
    return text


def plan_workflow(
    path: Path = WORKFLOW,
    repository: str = REPOSITORY,
    runs=RUNS,
    template: Path = TEMPLATE_PATH,
    variables: dict[str, str] | None = None,
    bootstrap: Path = BOOTSTRAP_TEMPLATE,
) -> Plan:
    """Every run's jobs, each checked as GitHub and AWS would; ``variables``: the repository's (default: what the
    offline bootstrap stacks print); ``bootstrap``: the identities' template."""
    workflow = yaml.safe_load(path.read_text())
    identities = {s: render(s, repository, template=bootstrap) for s in IDENTITY_SETS}
    assumable = [*identities.values(), *(i.registry_reader for i in identities.values() if i.registry_reader)]
    by_role = {identity.pipeline_role_arn: identity for identity in assumable}
    offline = variables or offline_variables(repository, bootstrap)
    values = {f"vars.{name}": value for name, value in offline.items()}
    jobs: list[JobPlan] = []
    for run, trigger in runs:
        results: dict[str, str] = {}
        artifacts: dict[str, Artifact] = {}
        context = {key: value for key, value in trigger.context().items()} | values
        for name in ordered_jobs(workflow):
            job = workflow["jobs"][name]
            if any(results.get(need) != "success" for need in _needs(job)):
                plan = JobPlan(run, trigger, name, "skipped")  # GitHub skips a job whose needs did not succeed
            elif not github.condition_holds(job.get("if"), trigger.context()):
                plan = JobPlan(run, trigger, name, "skipped")
            else:
                plan = _plan_job(workflow, name, run, trigger, context, by_role, artifacts, template)
            results[name] = plan.result
            jobs.append(plan)
    return Plan(jobs)


def workflow_steps(path: Path = WORKFLOW) -> list[Step]:
    """The make steps of every job that runs, runs in order (``plan_workflow(path).steps``)."""
    return plan_workflow(path).steps


def _plan_job(workflow, name, run, trigger, context, by_role, artifacts, template) -> JobPlan:
    job = workflow["jobs"][name]
    plan = JobPlan(run, trigger, name, "success")
    last_credentials: dict | None = None
    job_environment = {key: _resolve(value, context) for key, value in (job.get("env") or {}).items()}
    workspace: set[str] = set()
    region = ""
    for step in job.get("steps", []):
        if plan.refusals:
            break  # GitHub ends a job at its first failing step
        uses = step.get("uses", "").split("@")[0]
        inputs = {key: _resolve(value, context) for key, value in (step.get("with") or {}).items()}
        if uses == "aws-actions/configure-aws-credentials":
            plan.identity, region = _assume(job, trigger, inputs, by_role, plan.refusals)
            last_credentials = inputs
        elif uses == "actions/upload-artifact":
            _upload(name, inputs, workspace, artifacts, plan.refusals)
        elif uses == "actions/download-artifact":
            _download(workflow, name, job, inputs, workspace, artifacts, plan.refusals)
        elif "run" in step:
            words = shlex.split(step["run"])
            if not words or words[0] != "make" or len(words) < 2:
                raise ValueError(f"job {name} runs {step['run']!r}: every step of the pipeline is a make target")
            variables = dict(word.split("=", 1) for word in words[2:])
            environment = job_environment | {k: _resolve(v, context) for k, v in (step.get("env") or {}).items()}
            made = Step(name, words[1], variables, environment, run, plan.identity)
            if "if" in step:
                if str(step["if"]).strip().removeprefix("${{").removesuffix("}}").strip() != "failure()":
                    raise ValueError(f"job {name}: a step's if: other than failure() is not rehearsed: {step['if']!r}")
                plan.on_failure.append(made)
            else:
                plan.steps.append(made)
            _check_make_step(made, workspace, plan.identity, region, template, plan.refusals)
    expiring = _lasting_refusal(job, last_credentials) if plan.identity and last_credentials is not None else None
    if not plan.refusals and expiring is not None:
        plan.refusals.append(expiring)
    if plan.refusals:
        plan.result = "failure"
    return plan


def _assume(job, trigger, inputs, by_role, refusals) -> tuple[Identities | None, str]:
    """configure-aws-credentials: the job's token, exchanged for the named role's credentials."""
    if (job.get("permissions") or {}).get("id-token") != "write":
        refusals.append(github.NO_ID_TOKEN)
        return None, ""
    role = inputs.get("role-to-assume", "")
    identity = by_role.get(role)
    if identity is None:
        refusals.append(f"{sts.NOT_AUTHORIZED} ({role or 'no role'} is no pipeline role of pipeline/bootstrap.yaml)")
        return None, ""
    claims = github.oidc_claims(trigger, job.get("environment"), inputs.get("audience", github.DEFAULT_AUDIENCE))
    duration = int(inputs.get("role-duration-seconds", github.DEFAULT_ROLE_DURATION_SECONDS))
    try:
        sts.assume_role_with_web_identity(
            identity.trust_policy, identity.provider_arn, claims, duration, identity.max_session_seconds
        )
    except sts.StsRefusal as refusal:
        refusals.append(str(refusal))
        return None, ""
    return identity, inputs.get("aws-region", "")


def _lasting_refusal(job: dict, inputs: dict) -> str | None:
    """The credentials a job ends with are used until the job's end: they must last its timeout-minutes. (Earlier
    ones are replaced by the next configure-aws-credentials step, so their steps need only fit in their own.)"""
    duration = int(inputs.get("role-duration-seconds", github.DEFAULT_ROLE_DURATION_SECONDS))
    timeout = int(job.get("timeout-minutes", github.DEFAULT_JOB_TIMEOUT_MINUTES))
    if timeout * 60 > duration:
        return (
            f"{EXPIRED_TOKEN}: the job may run {timeout} minutes (timeout-minutes) but its credentials last "
            f"{duration} s (role-duration-seconds), so a step past that is refused"
        )
    return None


def _root(pattern: str, files: list[str]) -> str:
    """The folder upload-artifact stores a path's files relative to: a folder named whole, else the folder of the
    part before the first wildcard (or of the one file named)."""
    pattern = pattern.strip().rstrip("/")
    if "*" not in pattern and "?" not in pattern and any(f.startswith(pattern + "/") for f in files):
        return pattern
    fixed = pattern.split("*")[0].split("?")[0]
    return fixed.rsplit("/", 1)[0] if "/" in fixed else ""


def _upload(name, inputs, workspace, artifacts, refusals) -> None:
    patterns = inputs.get("path", "")
    try:
        files = github.uploaded_files(
            patterns,
            workspace,
            str(inputs.get("include-hidden-files", "false")).lower() == "true",
            inputs.get("if-no-files-found", "warn"),
        )
    except github.ArtifactError as error:
        refusals.append(str(error))
        return
    root = _root(patterns.strip().splitlines()[0], files)
    stored = tuple(f.removeprefix(root + "/") if root else f for f in files)
    retention = int(inputs.get("retention-days", 90))
    artifacts[inputs["name"]] = Artifact(name, stored, retention)


def _download(workflow, name, job, inputs, workspace, artifacts, refusals) -> None:
    artifact = artifacts.get(inputs.get("name", ""))
    if artifact is None or artifact.job not in _needed_by(workflow, name):
        refusals.append(f"Unable to download artifact(s): Artifact not found for name: {inputs.get('name')}")
        return
    if job.get("environment") and artifact.retention_days <= github.APPROVAL_WAIT_DAYS:
        refusals.append(
            f"artifact {inputs['name']} expires after {artifact.retention_days} days, but a job waiting for the "
            f"{job['environment']} environment's approval may wait {github.APPROVAL_WAIT_DAYS} days"
        )
    target = inputs.get("path", ".").rstrip("/")
    workspace |= {f"{target}/{file}" for file in artifact.files}


def _check_make_step(step: Step, workspace: set[str], identity, region, template, refusals) -> None:
    needs, makes = WORKSPACE.get(step.target, ((), ()))
    for file in (need.format(STAGE=step.stage) for need in needs):
        if file not in workspace:
            refusals.append(
                f"{step.command}: {file} is not in this job's workspace (jobs share no files; only an artifact "
                "carries one from another job)"
            )
    workspace |= {made.format(STAGE=step.stage) for made in makes}
    if step.target not in AWS_TARGETS:
        return
    if identity is None:
        refusals.append(
            f"{step.command}: calls AWS, but no configure-aws-credentials step before it gave the job credentials"
        )
        return
    stage = read_stage(step.stage, branch=step.branch or None)
    if region and region != stage.region:
        refusals.append(
            f"{step.command}: credentials for {region}, but samconfig.toml puts the stage in {stage.region}"
        )
    if step.target in ("deploy-stage", "rollback-stage"):  # both hand the stack to the CloudFormation role
        refusals += deploy_refusals(
            identity,
            stage.stack_name,
            stage.parameter_overrides,
            step.environment,
            template,
            check_roles=step.target == "deploy-stage",  # a rollback deploys the template that served before
        )


def deploy_refusals(
    identity: Identities,
    stack_name: str,
    overrides: dict[str, str],
    environment: dict[str, str],
    template_path: Path = TEMPLATE_PATH,
    check_roles: bool = True,
) -> list[str]:
    """What AWS would refuse of ``sam deploy`` of ``template_path`` as ``stack_name`` by this identity: the pipeline
    role hands the stack to the CloudFormation role it names, which then creates each of the template's roles."""
    account, region = "123456789012", identity.region
    pipeline, cloudformation = Policy([identity.pipeline_policy]), Policy([identity.cloudformation_policy])
    pipeline_session = f"arn:aws:sts::{account}:assumed-role/{identity.pipeline_role_arn.rsplit('/', 1)[1]}/github"
    cloudformation_role = environment.get("CLOUDFORMATION_ROLE", "")
    needed = [
        Permission("iam:PassRole", cloudformation_role, {"iam:PassedToService": "cloudformation.amazonaws.com"}),
        Permission("cloudformation:CreateChangeSet", f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/0"),
        Permission(
            "cloudformation:ExecuteChangeSet", f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/0"
        ),
    ]
    refusals = [_denied(pipeline_session, permission) for permission in needed if not pipeline.allows(permission)]
    if refusals or cloudformation_role != identity.cloudformation_role_arn:
        return refusals or [f"CLOUDFORMATION_ROLE {cloudformation_role!r} is not the stage's CloudFormation role"]
    if not check_roles:
        return []
    boundary = environment.get("PERMISSIONS_BOUNDARY", "")
    parameters = overrides | ({"PermissionsBoundaryArn": boundary} if boundary else {})
    session = f"arn:aws:sts::{account}:assumed-role/{cloudformation_role.rsplit('/', 1)[1]}/AWSCloudFormation"
    saved = dict(sam_template.PSEUDO_PARAMETERS)
    sam_template.PSEUDO_PARAMETERS["AWS::StackName"] = stack_name
    try:
        template = SamTemplate.load(template_path, overrides=parameters)
        resources = template.rendered()["Resources"]
        for logical_id, resource in template.resources.items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            rendered = resources.get(logical_id)
            if rendered is None:
                continue  # its Condition is false in this stage
            role_boundary = template.resolve(rendered["Properties"].get("PermissionsBoundary", ""))
            context = {"iam:PermissionsBoundary": role_boundary} if role_boundary else {}
            arn = template.arn(logical_id)
            for action in ("iam:CreateRole", "iam:PutRolePolicy"):
                permission = Permission(action, arn, context)
                if not cloudformation.allows(permission):  # the stack fails, and rolls back, at the first
                    return [f"{logical_id}: CREATE_FAILED: {_denied(session, permission)}"]
        for logical_id, resource in template.resources.items():  # a key is created with the tags it is judged by
            if resource["Type"] != "AWS::KMS::Key" or logical_id not in resources:
                continue
            tags = {tag["Key"]: tag["Value"] for tag in template.resolve(resource["Properties"].get("Tags", []))}
            permission = Permission("kms:CreateKey", "*", {f"aws:RequestTag/{k}": v for k, v in tags.items()})
            if not cloudformation.allows(permission):
                return [f"{logical_id}: CREATE_FAILED: {_denied(session, permission)}"]
    finally:
        sam_template.PSEUDO_PARAMETERS.clear()
        sam_template.PSEUDO_PARAMETERS.update(saved)
    return refusals


def _denied(session: str, permission: Permission) -> str:
    return (
        f"User: {session} is not authorized to perform: {permission.action} on resource: {permission.resource} "
        f"because no identity-based policy allows the {permission.action} action"
    )
