"""`make preflight` against moto on loopback: each blocker it claims to find, found, with its fix.

SageMaker and CloudFormation are moto's. moto 5 implements neither Lambda's GetAccountSettings nor
SageMaker's Service Quotas (only the VPC ones), so those two calls are botocore Stubber responses,
as AWS documents them, for an account with small quotas.
"""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from offline_stack.sam_template import SamTemplate
from ops.preflight import BLOCKER, OK, WARNING, check_serverless, main, other_serverless_endpoints, run_preflight

SMALL_ACCOUNT_QUOTAS = {
    "ml.m5.2xlarge for training job usage": 2.0,
    "ml.m5.large for endpoint usage": 0.0,
    "ml.c5.large for endpoint usage": 4.0,
}


def _quotas(quotas: dict[str, float]) -> list[dict]:
    return [
        {"ServiceCode": "sagemaker", "QuotaCode": f"L-TEST{number:04d}", "QuotaName": name, "Value": value}
        for number, (name, value) in enumerate(quotas.items())
    ]


@pytest.fixture
def clients(control_plane):
    lambda_client = control_plane.client("lambda")
    quotas_client = control_plane.client("service-quotas")
    lambda_stub, quotas_stub = Stubber(lambda_client), Stubber(quotas_client)

    def account(total: int, unreserved: int, quotas: dict[str, float], reserved_now: int | None = None) -> dict:
        lambda_stub.add_response(
            "get_account_settings",
            {"AccountLimit": {"ConcurrentExecutions": total, "UnreservedConcurrentExecutions": unreserved}},
        )
        if reserved_now is None:  # no stack yet: no function
            lambda_stub.add_client_error("get_function_concurrency", "ResourceNotFoundException", http_status_code=404)
        else:
            lambda_stub.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": reserved_now})
        quotas_stub.add_response(
            "list_service_quotas",
            {"Quotas": _quotas(quotas)},
            {"ServiceCode": "sagemaker"},
        )
        lambda_stub.activate()
        quotas_stub.activate()
        return {
            "lambda": lambda_client,
            "service-quotas": quotas_client,
            "sagemaker": control_plane.client("sagemaker"),
            "cloudformation": control_plane.client("cloudformation"),
        }

    return account


def _verdicts(findings) -> dict[str, str]:
    return {finding.check: finding.verdict for finding in findings}


def test_a_new_account_with_small_quotas_is_told_every_blocker_with_its_fix(clients, capsys):
    # Given a new account: 10 Lambda executions in all, 2 training and 0 endpoint instances of the defaults
    code = main([], clients=clients(10, 10, SMALL_ACCOUNT_QUOTAS))
    printed = capsys.readouterr().out
    # Then preflight fails, naming each blocker and how to fix it
    assert code == 1
    assert "Lambda concurrency" in printed and "PredictReservedConcurrency=none" in printed
    assert "ml.m5.2xlarge for training job usage: 2; this deploy uses 6" in printed
    assert "ml.m5.large for endpoint usage: 0; this deploy uses 2 (up to 6), both fleets of a blue/green" in printed
    assert "3 blocker(s)" in printed


def test_the_fixes_it_suggests_make_it_pass(clients):
    parameters = SamTemplate.load(
        overrides={
            "PredictReservedConcurrency": "none",
            "TrainingInstanceCount": "2",
            "EndpointInstanceType": "ml.c5.large",
            "ScalingMaxCapacity": "2",
        }
    ).parameters
    findings = run_preflight(clients(10, 10, SMALL_ACCOUNT_QUOTAS), parameters, "dog-breed-classifier")
    assert set(_verdicts(findings).values()) == {OK}


def test_debugger_and_a_scaling_maximum_over_quota_are_warnings(clients):
    parameters = SamTemplate.load(
        overrides={"TrainingUseDebugger": "true", "ScalingMaxCapacity": "6", "EndpointInstanceType": "ml.c5.large"}
    ).parameters
    findings = _verdicts(run_preflight(clients(1000, 1000, SMALL_ACCOUNT_QUOTAS), parameters, "stack"))
    assert findings["SageMaker Debugger"] == WARNING
    assert findings["SageMaker endpoint"] == WARNING  # 4 instances allowed, a release at 6 needs 12
    assert findings["SageMaker training job"] == BLOCKER


def test_a_release_needs_room_for_the_new_fleet_beside_the_old_one(clients):
    # Given room for exactly the serving instance: the first deploy works, the first release would fail mid-way
    quotas = {**SMALL_ACCOUNT_QUOTAS, "ml.c5.large for endpoint usage": 1.0}
    parameters = SamTemplate.load(overrides={"EndpointInstanceType": "ml.c5.large", "ScalingMaxCapacity": "1"})
    finding = next(
        f for f in run_preflight(clients(1000, 1000, quotas), parameters.parameters, "s") if "endpoint" in f.check
    )
    assert finding.verdict == BLOCKER and "uses 2" in finding.found


def test_spot_training_is_checked_against_the_spot_quota(clients):
    quotas = {"ml.m5.2xlarge for training job usage": 10.0, "ml.m5.2xlarge for spot training job usage": 0.0}
    spot = SamTemplate.load(overrides={"TrainingUseSpot": "true"}).parameters
    findings = {f.check: f for f in run_preflight(clients(1000, 1000, quotas), spot, "s")}
    assert findings["SageMaker spot training job"].verdict == BLOCKER
    assert "ml.m5.2xlarge for spot training job usage: 0" in findings["SageMaker spot training job"].found


def test_the_functions_own_reservation_is_not_counted_twice_on_an_update(clients):
    # Given a stack whose function reserves 2 now, in an account with exactly 100 unreserved left
    findings = _verdicts(run_preflight(clients(102, 100, SMALL_ACCOUNT_QUOTAS, 2), SamTemplate.load().parameters, "s"))
    # Then keeping the reservation at 2 leaves 100 unreserved: allowed
    assert findings["Lambda concurrency"] == OK


def test_a_new_reservation_that_leaves_less_than_100_unreserved_is_a_blocker(clients):
    findings = _verdicts(run_preflight(clients(101, 101, SMALL_ACCOUNT_QUOTAS), SamTemplate.load().parameters, "s"))
    assert findings["Lambda concurrency"] == BLOCKER


def test_an_endpoint_of_the_same_name_outside_the_stack_is_flagged(clients, control_plane):
    sagemaker = control_plane.client("sagemaker")
    sagemaker.create_model(
        ModelName="m", PrimaryContainer={"Image": "x"}, ExecutionRoleArn="arn:aws:iam::123456789012:role/r"
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    sagemaker.create_endpoint(EndpointName="dog-breed-classifier", EndpointConfigName="c")
    findings = run_preflight(clients(1000, 1000, SMALL_ACCOUNT_QUOTAS), SamTemplate.load().parameters, "no-such-stack")
    finding = next(f for f in findings if f.check == "endpoint name")
    assert finding.verdict == WARNING and "choose another EndpointName" in finding.fix


SERVERLESS_QUOTA = "Maximum total concurrency that can be allocated across all serverless endpoints"


@pytest.mark.parametrize(
    ("quota", "overrides", "check", "verdict"),
    [
        (10.0, {}, "serverless concurrency", OK),
        (5.0, {}, "serverless concurrency", BLOCKER),  # the template's ServerlessMaxConcurrency is 10
        (None, {}, "serverless concurrency", WARNING),
        (10.0, {"DataCapturePercent": "5"}, "serverless endpoint", BLOCKER),
    ],
)
def test_a_serverless_endpoint_is_checked_against_the_serverless_quota_not_instances(
    clients, quota, overrides, check, verdict
):
    quotas = {**SMALL_ACCOUNT_QUOTAS, **({SERVERLESS_QUOTA: quota} if quota is not None else {})}
    parameters = SamTemplate.load(overrides={"EndpointKind": "serverless", **overrides}).parameters
    findings = run_preflight(clients(1000, 1000, quotas), parameters, "dog-breed-classifier")
    verdicts = _verdicts(findings)
    assert verdicts[check] == verdict
    assert verdicts["serverless Region"] == OK  # the offline control plane's us-east-1
    # ml.m5.large for endpoint usage is 0 in this account: no instance is asked for, so it is not a blocker
    assert not any(f.check.startswith("ml.m5.large for endpoint") for f in findings)


def test_other_serverless_endpoints_share_the_accounts_concurrency_and_endpoint_count(clients, control_plane, capsys):
    sagemaker = control_plane.client("sagemaker")
    sagemaker.create_model(
        ModelName="another-app", PrimaryContainer={"Image": "x"}, ExecutionRoleArn="arn:aws:iam::123456789012:role/r"
    )
    serverless = {"MemorySizeInMB": 3072, "MaxConcurrency": 8, "ProvisionedConcurrency": 2}
    sagemaker.create_endpoint_config(
        EndpointConfigName="another-app",
        ProductionVariants=[{"VariantName": "v", "ModelName": "another-app", "ServerlessConfig": serverless}],
    )
    sagemaker.create_endpoint(EndpointName="another-app", EndpointConfigName="another-app")
    try:
        quotas = {
            **SMALL_ACCOUNT_QUOTAS,
            SERVERLESS_QUOTA: 15.0,  # 8 in use + this stack's 10 > 15
            "Maximum total provisioned concurrency that can be allocated across all serverless endpoints": 3.0,
            "Maximum number of serverless endpoints": 1.0,  # the other app's is the one
        }
        overrides = {"EndpointKind": "serverless", "ServerlessProvisionedConcurrency": "2"}
        findings = {
            f.check: f
            for f in run_preflight(
                clients(1000, 1000, quotas), SamTemplate.load(overrides=overrides).parameters, "dog-breed-classifier"
            )
        }
        concurrency = findings["serverless concurrency"]
        assert concurrency.verdict == BLOCKER and concurrency.fix.startswith("ServerlessMaxConcurrency=7")
        assert "other serverless endpoints use 8" in concurrency.found
        assert findings["serverless provisioned concurrency"].verdict == BLOCKER  # 2 + 2 > 3
        assert findings["serverless endpoints"].verdict == BLOCKER  # 1 + 1 > 1
        # this stack's own serverless endpoint is not counted against itself (an update replaces it)
        own = other_serverless_endpoints(sagemaker, "another-app")
        assert own == []
    finally:
        sagemaker.delete_endpoint(EndpointName="another-app")


def test_a_region_without_serverless_inference_and_too_little_memory_are_blockers():
    parameters = SamTemplate.load(overrides={"EndpointKind": "serverless"}).parameters
    quotas = {SERVERLESS_QUOTA: 100.0, "Maximum number of serverless endpoints": 10.0}
    verdicts = _verdicts(check_serverless(quotas, parameters, "il-central-1", []))
    assert verdicts["serverless Region"] == BLOCKER
    assert _verdicts(check_serverless(quotas, parameters, "eu-west-1", [])) == {
        "serverless Region": OK,
        "serverless concurrency": OK,
        "serverless endpoints": OK,
    }
    small = {**parameters, "ServerlessMemorySizeMB": "2048"}
    memory = next(f for f in check_serverless(quotas, small, "eu-west-1", []) if f.check == "serverless memory")
    assert memory.verdict == BLOCKER and "3072" in memory.fix
