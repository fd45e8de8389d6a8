"""The API's protection as deployed: each AuthMode renders, lints, and guards the route as it says.

Each variant is the template with its parameter values in force (conditions evaluated, branches
chosen) and is checked by cfn-lint as CloudFormation would receive it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from offline_stack.sam_template import SamTemplate

CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))
JWT = {"AuthMode": "JWT", "JwtIssuer": "https://issuer.example.com/pool", "JwtAudience": "app-client-1,app-client-2"}
VARIANTS = {
    "IAM": {},
    "JWT": JWT,
    "NONE": {"AuthMode": "NONE"},
    "NONE with CORS": {"AuthMode": "NONE", "CorsAllowedOrigins": "https://app.example.com"},
    "unreserved concurrency": {"PredictReservedConcurrency": "none"},
    "Debugger on": {"TrainingUseDebugger": "true"},
    "access logs kept": {"ArtifactsBucketAccessLogs": "true"},
}


def _render(overrides: dict[str, str]) -> dict:
    return SamTemplate.load(overrides=overrides).rendered()


def _lint(document: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(document))
    return subprocess.run(
        [CFN_LINT, "--regions", "us-east-1", "--", str(path)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_renders_and_lints(variant, tmp_path):
    result = _lint(_render(VARIANTS[variant]), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_iam_is_the_default_and_signs_every_request():
    resources = _render({})["Resources"]
    assert resources["PredictionsRoute"]["Properties"]["AuthorizationType"] == "AWS_IAM"
    assert "AuthorizerId" not in resources["PredictionsRoute"]["Properties"]
    assert "PredictionsJwtAuthorizer" not in resources
    assert "CorsConfiguration" not in resources["PredictionsApi"]["Properties"]


def test_jwt_mode_checks_the_issuer_and_audience_given():
    resources = _render(JWT)["Resources"]
    route = resources["PredictionsRoute"]["Properties"]
    assert route["AuthorizationType"] == "JWT" and route["AuthorizerId"] == {"Ref": "PredictionsJwtAuthorizer"}
    configuration = resources["PredictionsJwtAuthorizer"]["Properties"]["JwtConfiguration"]
    assert configuration == {"Issuer": {"Ref": "JwtIssuer"}, "Audience": {"Ref": "JwtAudience"}}


def test_jwt_mode_without_an_issuer_is_refused_before_anything_is_created():
    rule = SamTemplate.load().document["Rules"]["JwtNeedsIssuerAndAudience"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "JWT"]}
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]} in [a["Assert"] for a in rule["Assertions"]]


def test_none_is_an_explicit_opt_out():
    assert _render({"AuthMode": "NONE"})["Resources"]["PredictionsRoute"]["Properties"]["AuthorizationType"] == "NONE"
    assert SamTemplate.load().parameters["AuthMode"] == "IAM"


def test_cors_allows_only_the_origins_given():
    cors = _render(VARIANTS["NONE with CORS"])["Resources"]["PredictionsApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == {"Ref": "CorsAllowedOrigins"} and cors["AllowMethods"] == ["GET", "POST"]


def test_every_request_is_throttled_and_logged_as_json():
    resources = _render({})["Resources"]
    stage = resources["PredictionsStage"]["Properties"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    log_line = stage["AccessLogSettings"]["Format"].replace("$context.", "")
    assert set(json.loads(log_line)) >= {"requestId", "status", "integrationError", "ip"}
    assert resources["PredictionsApiAccessLogs"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_default_throttle_answers_429_before_lambda_would_throttle():
    # Little's law: at most burst + rate x duration requests run at once; that must fit the reserved concurrency
    parameters = SamTemplate.load().parameters
    reserved, burst = int(parameters["PredictReservedConcurrency"]), int(parameters["ApiThrottleBurstLimit"])
    rate, assumed_p99_seconds = float(parameters["ApiThrottleRateLimit"]), 0.25
    assert burst >= 1 and burst + rate * assumed_p99_seconds <= reserved


def test_only_the_api_may_invoke_the_function_and_only_on_its_routes():
    resources = _render({"AuthMode": "IAM"})["Resources"]
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert {p["Principal"] for p in permissions} == {"apigateway.amazonaws.com"}
    assert sorted(p["SourceArn"]["Fn::Sub"].split("${PredictionsApi}")[1] for p in permissions) == [
        "/*/GET/",
        "/*/GET/openapi.json",
        "/*/POST/predictions",
    ]
    # The contract and the web page are public whatever AuthMode is; predictions stay signed
    assert resources["OpenApiRoute"]["Properties"]["AuthorizationType"] == "NONE"
    assert resources["WebPageRoute"]["Properties"]["AuthorizationType"] == "NONE"
    assert resources["PredictionsRoute"]["Properties"]["AuthorizationType"] == "AWS_IAM"


@pytest.mark.parametrize(("value", "reserved"), [("2", "2"), ("none", None)])
def test_reserved_concurrency_can_be_left_unreserved_for_new_accounts(value, reserved):
    # Lambda refuses a reservation that leaves fewer than 100 unreserved executions; "none" reserves nothing
    function = _render({"PredictReservedConcurrency": value})["Resources"]["PredictFunction"]["Properties"]
    if reserved:
        assert function["ReservedConcurrentExecutions"] == {"Ref": "PredictReservedConcurrency"}
    else:
        assert "ReservedConcurrentExecutions" not in function
