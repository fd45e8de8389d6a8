"""``make preflight``: what a deploy with these parameters would run into in this account, before it does.

Reads the account's Lambda concurrency (GetAccountSettings, and the function's own reservation if the stack
exists), the SageMaker quotas for the chosen training and endpoint instance types (Service Quotas: spot or
on-demand training, and endpoint instances for both fleets of a blue/green release; for a serverless endpoint its
Region, memory, and the concurrency and endpoint-count quotas other serverless endpoints already use), whether
Debugger is asked for, and whether the endpoint name is already taken by something outside the stack. Prints one
table; exits 1 when something would fail (a blocker), 0 otherwise.

    python -m ops.preflight [--stack-name dog-breed-classifier] [--parameter-overrides Name=Value ...]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError

from dog_breeds.settings import SERVERLESS_MINIMUM_MEMORY_MB
from offline_stack.aws_rules.sagemaker import SERVERLESS_REGIONS
from offline_stack.sam_template import SamTemplate

# Lambda refuses a reservation that leaves fewer unreserved executions than this for the rest of the account.
MINIMUM_UNRESERVED = 100
BLOCKER, WARNING, OK = "BLOCKER", "warning", "ok"


@dataclass(frozen=True)
class Finding:
    check: str
    found: str
    verdict: str
    fix: str = ""


def check_lambda_concurrency(lambda_client, reserved: str, function_name: str) -> Finding:
    limits = lambda_client.get_account_settings()["AccountLimit"]
    total, unreserved = limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]
    found = f"{total} in all, {unreserved} unreserved"
    if reserved == "none":
        return Finding("Lambda concurrency", found, OK)
    # An update replaces the function's own reservation, which the unreserved count already leaves out
    own = current_reservation(lambda_client, function_name)
    if own:
        found += f" (this function reserves {own} now)"
    left = unreserved + own - int(reserved)
    if left < MINIMUM_UNRESERVED:
        return Finding(
            "Lambda concurrency",
            f"{found}; reserving {reserved} leaves {left} (Lambda needs {MINIMUM_UNRESERVED})",
            BLOCKER,
            "deploy with PredictReservedConcurrency=none, or ask for a higher Lambda concurrency quota",
        )
    return Finding("Lambda concurrency", f"{found}; reserving {reserved} leaves {left}", OK)


def current_reservation(lambda_client, function_name: str) -> int:
    """The function's reserved concurrency now; 0 when it has none or does not exist yet."""
    try:
        answer = lambda_client.get_function_concurrency(FunctionName=function_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return 0
        raise
    return int(answer.get("ReservedConcurrentExecutions", 0))


def sagemaker_quotas(quotas_client) -> dict[str, float]:
    """Every SageMaker quota of the account by name (``ml.m5.large for endpoint usage`` and so on)."""
    found: dict[str, float] = {}
    for page in quotas_client.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        found.update({quota["QuotaName"]: quota["Value"] for quota in page["Quotas"]})
    return found


def check_instances(quotas: dict[str, float], usage: str, instance_type: str, needed: int, wanted: int) -> Finding:
    """``needed`` instances must fit the quota; ``wanted`` (e.g. the scaling maximum) should."""
    name = f"{instance_type} for {usage} usage"
    check = f"SageMaker {usage}"
    if name not in quotas:
        return Finding(check, f"no quota named {name!r}", WARNING, "check the instance type's spelling and region")
    quota = int(quotas[name])
    found = f"{name}: {quota}; this deploy uses {needed}" + (f" (up to {wanted})" if wanted > needed else "")
    if usage == "endpoint":
        found += ", both fleets of a blue/green release"
    fix = f"ask Service Quotas for {name} = {max(needed, wanted)}, or choose another instance type or count"
    if quota < needed:
        return Finding(check, found, BLOCKER, fix)
    if quota < wanted:
        return Finding(check, found, WARNING, fix)
    return Finding(check, found, OK)


def check_debugger(use_debugger: str) -> Finding:
    if use_debugger == "true":
        return Finding(
            "SageMaker Debugger",
            "asked for (TrainingUseDebugger=true)",
            WARNING,
            "closed to new customers since 2026-07-30: jobs fail unless this account has used it",
        )
    return Finding("SageMaker Debugger", "not asked for", OK)


def check_serverless(
    quotas: dict[str, float], parameters: dict[str, str], region: str, others: list[dict]
) -> list[Finding]:
    """EndpointKind=serverless: what SageMaker Serverless Inference would refuse, before the deploy does.

    ``others``: the ServerlessConfig of every other serverless endpoint in the account and Region, whose concurrency
    and count the quotas share with this one (Service Quotas: "... across all serverless endpoints"). The Region must
    be one Serverless Inference exists in (``aws_rules.sagemaker.SERVERLESS_REGIONS``), the memory must hold the
    model's decode budget, and there is no data capture (the template's rule refuses the deploy; said here first).
    """
    findings = []
    if int(parameters["DataCapturePercent"]):
        fix = "serverless has no data capture: 0"
        findings.append(
            Finding("serverless endpoint", f"DataCapturePercent={parameters['DataCapturePercent']}", BLOCKER, fix)
        )
    if region in SERVERLESS_REGIONS:
        findings.append(Finding("serverless Region", f"{region} has Serverless Inference", OK))
    else:
        findings.append(
            Finding(
                "serverless Region",
                f"{region} is not among the {len(SERVERLESS_REGIONS)} Regions the developer guide lists (2026-12)",
                BLOCKER,
                "deploy in a listed Region, or EndpointKind=instances (if AWS has added it since, update the list)",
            )
        )
    memory = int(parameters["ServerlessMemorySizeMB"])
    if memory < SERVERLESS_MINIMUM_MEMORY_MB:
        findings.append(
            Finding(
                "serverless memory",
                f"ServerlessMemorySizeMB={memory}; decoding the largest accepted image takes about 2 GB",
                BLOCKER,
                f"ServerlessMemorySizeMB={SERVERLESS_MINIMUM_MEMORY_MB} or more",
            )
        )
    wanted = int(parameters["ServerlessMaxConcurrency"])
    in_use = sum(int(config.get("MaxConcurrency", 0)) for config in others)
    findings.append(
        _serverless_quota(quotas, ("concurrency",), "concurrency", in_use, wanted, "ServerlessMaxConcurrency")
    )
    provisioned = int(parameters["ServerlessProvisionedConcurrency"])
    if provisioned:
        in_use = sum(int(config.get("ProvisionedConcurrency", 0)) for config in others)
        findings.append(
            _serverless_quota(
                quotas,
                ("provisioned",),
                "provisioned concurrency",
                in_use,
                provisioned,
                "ServerlessProvisionedConcurrency",
            )
        )
    findings.append(_serverless_quota(quotas, ("number", "endpoints"), "endpoints", len(others), 1, ""))
    return findings


def _serverless_quota(
    quotas: dict[str, float], words: tuple[str, ...], what: str, in_use: int, wanted: int, parameter: str
) -> Finding:
    """``wanted`` more of ``what`` beside the ``in_use`` of other serverless endpoints, against the quota whose name
    has "serverless" and ``words`` (provisioned concurrency has a quota of its own, so plain concurrency's excludes
    it)."""
    check = f"serverless {what}"

    def matches(name: str) -> bool:
        name = name.lower()
        if "provisioned" in name and "provisioned" not in words:
            return False
        return "serverless" in name and all(word in name for word in words)

    quota = next((value for name, value in sorted(quotas.items()) if matches(name)), None)
    if quota is None:
        return Finding(check, f"no serverless {what} quota listed", WARNING, "check it in Service Quotas")
    found = f"quota {int(quota)}; other serverless endpoints use {in_use}; this one needs {wanted}"
    if in_use + wanted > quota:
        room = max(0, int(quota) - in_use)
        fix = f"{parameter}={room} or ask for more" if parameter and room else f"ask Service Quotas for more {what}"
        return Finding(check, found, BLOCKER, fix)
    return Finding(check, found, OK)


def other_serverless_endpoints(sagemaker, own_endpoint_name: str) -> list[dict]:
    """The ServerlessConfig of every serverless endpoint in the account and Region but this stack's own."""
    configs = []
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for endpoint in page["Endpoints"]:
            if endpoint["EndpointName"] == own_endpoint_name:
                continue  # an update replaces it: its share is this deploy's
            config_name = sagemaker.describe_endpoint(EndpointName=endpoint["EndpointName"])["EndpointConfigName"]
            variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
            configs += [variant["ServerlessConfig"] for variant in variants if "ServerlessConfig" in variant]
    return configs


def check_endpoint_name(sagemaker, endpoint_name: str, stack_exists: bool) -> Finding:
    try:
        status = sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"]
    except ClientError:
        return Finding("endpoint name", f"{endpoint_name} is free", OK)
    if stack_exists:
        return Finding("endpoint name", f"{endpoint_name} exists ({status}); the pipeline will update it", OK)
    return Finding(
        "endpoint name",
        f"{endpoint_name} exists ({status}) and no stack of this name does",
        WARNING,
        "the pipeline would replace that endpoint's model: choose another EndpointName",
    )


def stack_exists(cloudformation, stack_name: str) -> bool:
    try:
        cloudformation.describe_stacks(StackName=stack_name)
    except ClientError:
        return False
    return True


def run_preflight(clients: dict, parameters: dict[str, str], stack_name: str) -> list[Finding]:
    quotas = sagemaker_quotas(clients["service-quotas"])
    training_count = int(parameters["TrainingInstanceCount"])
    endpoint_count = int(parameters["EndpointInstanceCount"])
    # Spot jobs count against their own quota ("<type> for spot training job usage"), not the on-demand one
    training_usage = "spot training job" if parameters["TrainingUseSpot"] == "true" else "training job"
    # A release starts the new fleet beside the old one (blue/green): twice the serving count, at the peak too
    scaled_out = max(endpoint_count, int(parameters["ScalingMaxCapacity"]))
    serverless = parameters["EndpointKind"] == "serverless"
    endpoint_name = f"{parameters['EndpointName']}-serverless" if serverless else parameters["EndpointName"]
    return [
        check_lambda_concurrency(clients["lambda"], parameters["PredictReservedConcurrency"], f"{stack_name}-predict"),
        check_instances(quotas, training_usage, parameters["TrainingInstanceType"], training_count, training_count),
        *(
            check_serverless(
                quotas,
                parameters,
                clients["sagemaker"].meta.region_name,
                other_serverless_endpoints(clients["sagemaker"], endpoint_name),
            )
            if serverless
            else [
                check_instances(
                    quotas, "endpoint", parameters["EndpointInstanceType"], 2 * endpoint_count, 2 * scaled_out
                )
            ]
        ),
        check_debugger(parameters["TrainingUseDebugger"]),
        check_endpoint_name(clients["sagemaker"], endpoint_name, stack_exists(clients["cloudformation"], stack_name)),
    ]


def table(findings: list[Finding]) -> str:
    widths = [max(len(getattr(f, name)) for f in findings) for name in ("check", "verdict", "found")]
    lines = []
    for finding in findings:
        line = f"{finding.check:{widths[0]}}  {finding.verdict:{widths[1]}}  {finding.found:{widths[2]}}"
        lines.append((line + (f"  -> {finding.fix}" if finding.fix else "")).rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None, clients: dict | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", default="dog-breed-classifier")
    parser.add_argument("--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.parameter_overrides)
    try:
        parameters = SamTemplate.load(overrides=overrides).parameters
    except KeyError as exc:
        print(f"preflight: {exc.args[0]}", file=sys.stderr)
        return 2
    if clients is None:
        session = boto3.session.Session()
        clients = {
            "lambda": session.client("lambda"),
            "service-quotas": session.client("service-quotas"),
            "sagemaker": session.client("sagemaker"),
            "cloudformation": session.client("cloudformation"),
        }
    findings = run_preflight(clients, parameters, args.stack_name)
    print(table(findings))
    blockers = [finding for finding in findings if finding.verdict == BLOCKER]
    print(f"\n{len(blockers)} blocker(s)" + (": the deploy or the pipeline would fail" if blockers else ""))
    return 1 if blockers else 0


if __name__ == "__main__":
    raise SystemExit(main())
