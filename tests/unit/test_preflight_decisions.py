"""`make preflight`'s decisions at their edges, with no network: each check's arithmetic and boundary.

The AWS answers are botocore Stubber responses (the real client and its parsing, no endpoint called), shaped as
AWS documents them; tests/integration/test_preflight.py runs the same checks against moto on loopback.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from dog_breeds.settings import SERVERLESS_MINIMUM_MEMORY_MB
from ops import preflight
from ops.preflight import (
    BLOCKER,
    MINIMUM_UNRESERVED,
    OK,
    WARNING,
    Finding,
    check_debugger,
    check_endpoint_name,
    check_instances,
    check_lambda_concurrency,
    check_serverless,
    current_reservation,
    other_serverless_endpoints,
    run_preflight,
    sagemaker_quotas,
    stack_exists,
    table,
)

REGION = "eu-west-1"
CONCURRENCY = "Maximum total concurrency that can be allocated across all serverless endpoints"
PROVISIONED = "Maximum total provisioned concurrency that can be allocated across all serverless endpoints"
ENDPOINTS = "Maximum number of serverless endpoints"


def _client(service: str) -> tuple:
    client = boto3.client(service, region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
    return client, Stubber(client)


def _lambda(unreserved: int, reserved_now: int | None, total: int = 1000):
    client, stub = _client("lambda")
    limits = {"ConcurrentExecutions": total, "UnreservedConcurrentExecutions": unreserved}
    stub.add_response("get_account_settings", {"AccountLimit": limits})
    if reserved_now is None:
        stub.add_client_error("get_function_concurrency", "ResourceNotFoundException", http_status_code=404)
    else:
        stub.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": reserved_now})
    stub.activate()
    return client


@pytest.mark.parametrize(
    ("unreserved", "reserved_now", "reserved", "verdict", "left"),
    [
        (MINIMUM_UNRESERVED + 2, None, "2", OK, MINIMUM_UNRESERVED),  # exactly what Lambda keeps back: allowed
        (MINIMUM_UNRESERVED + 2, None, "3", BLOCKER, MINIMUM_UNRESERVED - 1),
        (MINIMUM_UNRESERVED - 3, 5, "2", OK, MINIMUM_UNRESERVED),  # an update gives its own 5 back first
        (MINIMUM_UNRESERVED - 3, 4, "2", BLOCKER, MINIMUM_UNRESERVED - 1),
    ],
)
def test_a_reservation_must_leave_lambdas_minimum_unreserved(unreserved, reserved_now, reserved, verdict, left):
    finding = check_lambda_concurrency(_lambda(unreserved, reserved_now), reserved, "stack-predict")
    assert finding.verdict == verdict
    assert f"reserving {reserved} leaves {left}" in finding.found
    assert ("this function reserves" in finding.found) is bool(reserved_now)
    assert bool(finding.fix) is (verdict == BLOCKER)
    if verdict == BLOCKER:
        assert "PredictReservedConcurrency=none" in finding.fix and f"needs {MINIMUM_UNRESERVED}" in finding.found


def test_no_reservation_is_always_fine_and_says_what_the_account_has():
    client, stub = _client("lambda")
    limits = {"ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10}
    stub.add_response("get_account_settings", {"AccountLimit": limits})
    stub.activate()
    assert check_lambda_concurrency(client, "none", "stack-predict") == Finding(
        "Lambda concurrency", "10 in all, 10 unreserved", OK
    )


def test_the_functions_reservation_is_zero_when_it_has_none_and_other_errors_are_raised():
    client, stub = _client("lambda")
    stub.add_response("get_function_concurrency", {})
    stub.add_client_error("get_function_concurrency", "ResourceNotFoundException", http_status_code=404)
    stub.add_client_error("get_function_concurrency", "AccessDeniedException", http_status_code=403)
    stub.activate()
    assert current_reservation(client, "f") == 0
    assert current_reservation(client, "f") == 0
    with pytest.raises(Exception, match="AccessDenied"):
        current_reservation(client, "f")


def test_every_page_of_quotas_is_read():
    client, stub = _client("service-quotas")

    def quota(name: str, value: float) -> dict:
        return {"ServiceCode": "sagemaker", "QuotaCode": f"L-{len(name)}", "QuotaName": name, "Value": value}

    stub.add_response(
        "list_service_quotas", {"Quotas": [quota("a", 1.0)], "NextToken": "t"}, {"ServiceCode": "sagemaker"}
    )
    stub.add_response(
        "list_service_quotas", {"Quotas": [quota("bb", 2.0)]}, {"ServiceCode": "sagemaker", "NextToken": "t"}
    )
    stub.activate()
    assert sagemaker_quotas(client) == {"a": 1.0, "bb": 2.0}


@pytest.mark.parametrize(
    ("quota", "needed", "wanted", "verdict"),
    [(4.0, 4, 4, OK), (3.0, 4, 4, BLOCKER), (4.0, 4, 6, WARNING), (6.0, 4, 6, OK), (3.0, 4, 6, BLOCKER)],
)
def test_instances_needed_must_fit_the_quota_and_wanted_should(quota, needed, wanted, verdict):
    name = "ml.m5.large for endpoint usage"
    finding = check_instances({name: quota}, "endpoint", "ml.m5.large", needed, wanted)
    assert finding.verdict == verdict
    assert finding.found.startswith(f"{name}: {int(quota)}; this deploy uses {needed}")
    assert ("(up to" in finding.found) is (wanted > needed)
    assert finding.found.endswith("both fleets of a blue/green release")
    assert finding.fix == (
        ""
        if verdict == OK
        else f"ask Service Quotas for {name} = {max(needed, wanted)}, or choose another instance type or count"
    )


def test_training_quotas_say_nothing_of_fleets_and_an_unknown_type_is_a_warning():
    training = check_instances({"ml.m5.2xlarge for training job usage": 6.0}, "training job", "ml.m5.2xlarge", 6, 6)
    assert training == Finding(
        "SageMaker training job", "ml.m5.2xlarge for training job usage: 6; this deploy uses 6", OK
    )
    unknown = check_instances({}, "training job", "ml.m5.2xlargee", 1, 1)
    assert unknown.verdict == WARNING and "'ml.m5.2xlargee for training job usage'" in unknown.found


def test_debugger_asked_for_is_a_warning():
    assert check_debugger("true").verdict == WARNING and "2026-07-30" in check_debugger("true").fix
    assert check_debugger("false") == Finding("SageMaker Debugger", "not asked for", OK)


def _serverless(**overrides: str) -> dict[str, str]:
    return {
        "DataCapturePercent": "0",
        "ServerlessMemorySizeMB": str(SERVERLESS_MINIMUM_MEMORY_MB),
        "ServerlessMaxConcurrency": "10",
        "ServerlessProvisionedConcurrency": "0",
        **overrides,
    }


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.check: finding for finding in findings}


def test_serverless_memory_at_the_minimum_passes_and_below_it_is_a_blocker():
    quotas = {CONCURRENCY: 100.0, ENDPOINTS: 5.0}
    assert "serverless memory" not in _by_check(check_serverless(quotas, _serverless(), REGION, []))
    small = _by_check(
        check_serverless(quotas, _serverless(ServerlessMemorySizeMB=str(SERVERLESS_MINIMUM_MEMORY_MB - 1)), REGION, [])
    )
    assert small["serverless memory"].verdict == BLOCKER


def test_serverless_with_data_capture_is_a_blocker():
    quotas = {CONCURRENCY: 100.0, ENDPOINTS: 5.0}
    findings = _by_check(check_serverless(quotas, _serverless(DataCapturePercent="1"), REGION, []))
    assert findings["serverless endpoint"].verdict == BLOCKER
    assert "serverless endpoint" not in _by_check(check_serverless(quotas, _serverless(), REGION, []))


@pytest.mark.parametrize(
    ("in_use", "verdict", "fix"),
    [
        (90, OK, ""),
        (91, BLOCKER, "ServerlessMaxConcurrency=9 or ask for more"),
        (100, BLOCKER, "ask Service Quotas for more concurrency"),
    ],
)
def test_serverless_concurrency_is_shared_with_the_accounts_other_serverless_endpoints(in_use, verdict, fix):
    others = [{"MaxConcurrency": in_use - 1}, {"MaxConcurrency": 1}]
    findings = _by_check(check_serverless({CONCURRENCY: 100.0, ENDPOINTS: 5.0}, _serverless(), REGION, others))
    concurrency = findings["serverless concurrency"]
    assert (concurrency.verdict, concurrency.fix) == (verdict, fix)
    assert concurrency.found == f"quota 100; other serverless endpoints use {in_use}; this one needs 10"


def test_provisioned_concurrency_has_a_quota_of_its_own_and_the_endpoint_count_one_too():
    quotas = {CONCURRENCY: 100.0, PROVISIONED: 2.0, ENDPOINTS: 2.0}
    others = [{"MaxConcurrency": 5, "ProvisionedConcurrency": 1}]
    findings = _by_check(check_serverless(quotas, _serverless(ServerlessProvisionedConcurrency="1"), REGION, others))
    assert findings["serverless provisioned concurrency"].found.startswith("quota 2; other serverless endpoints use 1")
    assert findings["serverless provisioned concurrency"].verdict == OK
    assert findings["serverless concurrency"].found.startswith("quota 100; other serverless endpoints use 5")
    assert findings["serverless endpoints"].verdict == OK  # 1 other + this one = 2
    full = _by_check(check_serverless(quotas, _serverless(), REGION, [*others, {}]))
    assert full["serverless endpoints"].verdict == BLOCKER
    assert full["serverless endpoints"].fix == "ask Service Quotas for more endpoints"
    assert "serverless provisioned concurrency" not in full


def test_a_missing_serverless_quota_is_a_warning_and_an_unlisted_region_a_blocker():
    findings = _by_check(check_serverless({}, _serverless(), "il-central-1", []))
    assert findings["serverless concurrency"].verdict == WARNING
    assert findings["serverless Region"].verdict == BLOCKER
    assert _by_check(check_serverless({}, _serverless(), REGION, []))["serverless Region"].verdict == OK


def test_other_serverless_endpoints_leave_out_this_stacks_own_and_instance_variants():
    client, stub = _client("sagemaker")
    endpoints = [
        {
            "EndpointName": name,
            "EndpointArn": f"arn:aws:sagemaker:{REGION}:1:endpoint/{name}",
            "CreationTime": "2026-01-01",
            "LastModifiedTime": "2026-01-01",
            "EndpointStatus": "InService",
        }
        for name in ("own", "other")
    ]
    stub.add_response("list_endpoints", {"Endpoints": endpoints})
    stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": "other",
            "EndpointArn": endpoints[1]["EndpointArn"],
            "EndpointConfigName": "other-config",
            "EndpointStatus": "InService",
            "CreationTime": "2026-01-01",
            "LastModifiedTime": "2026-01-01",
        },
    )
    variants = [
        {"VariantName": "a", "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 7}},
        {"VariantName": "b", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"},
    ]
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": "other-config",
            "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/x",
            "ProductionVariants": variants,
            "CreationTime": "2026-01-01",
        },
    )
    stub.activate()
    assert other_serverless_endpoints(client, "own") == [{"MemorySizeInMB": 3072, "MaxConcurrency": 7}]


@pytest.mark.parametrize(("exists", "stack", "verdict"), [(False, False, OK), (True, True, OK), (True, False, WARNING)])
def test_an_endpoint_name_taken_outside_the_stack_is_flagged(exists, stack, verdict):
    client, stub = _client("sagemaker")
    if exists:
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "e",
                "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/e",
                "EndpointConfigName": "c",
                "EndpointStatus": "InService",
                "CreationTime": "2026-01-01",
                "LastModifiedTime": "2026-01-01",
            },
        )
    else:
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    stub.activate()
    finding = check_endpoint_name(client, "e", stack)
    assert finding.verdict == verdict
    assert ("exists (InService)" in finding.found) is exists


def test_a_stack_that_cannot_be_described_does_not_exist():
    client, stub = _client("cloudformation")
    stub.add_client_error("describe_stacks", "ValidationError", "Stack with id s does not exist")
    stub.add_response("describe_stacks", {"Stacks": []})
    stub.activate()
    assert stack_exists(client, "s") is False
    assert stack_exists(client, "s") is True


class _Recorder:
    """Stand-ins for the checks run_preflight calls: what it asked each for (its own arithmetic is the test)."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple] = []
        for name in ("check_lambda_concurrency", "check_instances", "check_debugger", "check_endpoint_name"):
            monkeypatch.setattr(preflight, name, self._record(name))
        monkeypatch.setattr(preflight, "sagemaker_quotas", lambda client: {})
        monkeypatch.setattr(preflight, "stack_exists", lambda client, name: True)
        monkeypatch.setattr(
            preflight, "other_serverless_endpoints", lambda client, name: self.calls.append(("others", name)) or []
        )
        monkeypatch.setattr(preflight, "check_serverless", self._record("check_serverless"))

    def _record(self, name):
        def record(*args):
            self.calls.append(
                (name, *args[1:]) if name in ("check_lambda_concurrency", "check_endpoint_name") else (name, *args)
            )
            return [Finding(name, "", OK)] if name == "check_serverless" else Finding(name, "", OK)

        return record


PARAMETERS = {
    "TrainingInstanceCount": "6",
    "EndpointInstanceCount": "2",
    "TrainingUseSpot": "false",
    "ScalingMaxCapacity": "3",
    "EndpointKind": "instances",
    "EndpointName": "ep",
    "PredictReservedConcurrency": "2",
    "TrainingInstanceType": "ml.m5.2xlarge",
    "EndpointInstanceType": "ml.m5.large",
    "TrainingUseDebugger": "false",
}


def test_a_release_needs_both_fleets_at_the_count_and_at_the_scaling_maximum(monkeypatch):
    recorder = _Recorder(monkeypatch)
    sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
    run_preflight(
        {"lambda": None, "service-quotas": None, "sagemaker": sagemaker, "cloudformation": None}, PARAMETERS, "st"
    )
    assert ("check_lambda_concurrency", "2", "st-predict") in recorder.calls
    assert ("check_instances", {}, "training job", "ml.m5.2xlarge", 6, 6) in recorder.calls
    assert ("check_instances", {}, "endpoint", "ml.m5.large", 4, 6) in recorder.calls  # 2 x 2, 2 x max(2, 3)
    assert ("check_endpoint_name", "ep", True) in recorder.calls


def test_spot_training_uses_the_spot_quota_and_serverless_its_own_endpoint(monkeypatch):
    recorder = _Recorder(monkeypatch)
    sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
    parameters = {**PARAMETERS, "TrainingUseSpot": "true", "EndpointKind": "serverless", "ScalingMaxCapacity": "1"}
    run_preflight(
        {"lambda": None, "service-quotas": None, "sagemaker": sagemaker, "cloudformation": None}, parameters, "st"
    )
    assert ("check_instances", {}, "spot training job", "ml.m5.2xlarge", 6, 6) in recorder.calls
    assert not any(call[:3] == ("check_instances", {}, "endpoint") for call in recorder.calls)
    assert ("others", "ep-serverless") in recorder.calls and (
        "check_endpoint_name",
        "ep-serverless",
        True,
    ) in recorder.calls


def test_the_table_aligns_its_columns_and_shows_each_fix():
    lines = table([Finding("a", "found it", OK), Finding("longer", "x", BLOCKER, "do this")]).splitlines()
    assert lines == ["a       ok       found it", "longer  BLOCKER  x         -> do this"]


def test_main_exits_1_on_a_blocker_0_without_and_2_on_an_unknown_parameter(monkeypatch, capsys):
    monkeypatch.setattr(
        preflight, "run_preflight", lambda clients, parameters, stack: [Finding("c", "f", BLOCKER, "x")]
    )
    assert preflight.main([], clients={}) == 1
    assert "1 blocker(s): the deploy or the pipeline would fail" in capsys.readouterr().out
    monkeypatch.setattr(preflight, "run_preflight", lambda clients, parameters, stack: [Finding("c", "f", WARNING)])
    assert preflight.main([], clients={}) == 0
    assert preflight.main(["--parameter-overrides", "NoSuchParameter=1"], clients={}) == 2
