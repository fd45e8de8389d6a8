"""The template as CloudFormation reads it: Rules use only rule functions, and every number has the bounds the
services (and the functions' own settings) hold it to, so a bad value fails before anything is created."""

from __future__ import annotations

import dataclasses
import re

import pytest

from dog_breeds import settings
from offline_stack.sam_template import SamTemplate

TEMPLATE = SamTemplate.load()
PARAMETERS = TEMPLATE.document["Parameters"]
# CloudFormation template reference, "Rule functions": what a rule's condition and assertions may use
RULE_FUNCTIONS = {
    "Fn::And",
    "Fn::Contains",
    "Fn::EachMemberEquals",
    "Fn::EachMemberIn",
    "Fn::Equals",
    "Fn::Not",
    "Fn::Or",
    "Fn::RefAll",
    "Fn::ValueOf",
    "Fn::ValueOfAll",
    "Ref",
}


def _functions(value) -> set[str]:
    if isinstance(value, dict):
        return {key for key in value if key == "Ref" or key.startswith("Fn::")} | {
            name for item in value.values() for name in _functions(item)
        }
    if isinstance(value, list):
        return {name for item in value for name in _functions(item)}
    return set()


@pytest.mark.parametrize("rule", sorted(TEMPLATE.document.get("Rules", {})))
def test_rules_use_only_rule_functions(rule):
    used = _functions(TEMPLATE.document["Rules"][rule])
    assert used <= RULE_FUNCTIONS, f"{rule} uses {sorted(used - RULE_FUNCTIONS)}, which Rules do not accept"


def _assertion_holds(assertion, parameters: dict[str, str]) -> bool:
    """A rule assertion evaluated as CloudFormation would (the functions this template uses)."""
    template = SamTemplate.load(overrides=parameters)

    def value(expression):
        if not isinstance(expression, dict):
            return expression
        ((name, argument),) = expression.items()
        if name == "Ref":
            spec = PARAMETERS[argument]
            text = template.parameters[argument]
            return text.split(",") if spec["Type"] == "CommaDelimitedList" else text
        if name == "Fn::Not":
            return not value(argument[0])
        if name == "Fn::Equals":
            return value(argument[0]) == value(argument[1])
        if name == "Fn::EachMemberEquals":
            return all(item == value(argument[1]) for item in value(argument[0]))
        raise AssertionError(f"no evaluator for {name}")

    return bool(value(assertion))


@pytest.mark.parametrize(
    ("parameters", "refused"),
    [
        ({"AuthMode": "JWT", "JwtIssuer": "https://issuer.example.com", "JwtAudience": ""}, True),
        ({"AuthMode": "JWT", "JwtIssuer": "", "JwtAudience": "app-client"}, True),
        ({"AuthMode": "JWT", "JwtIssuer": "https://issuer.example.com", "JwtAudience": "a,b"}, False),
    ],
)
def test_jwt_mode_without_an_issuer_or_an_audience_is_refused_by_the_rule(parameters, refused):
    rule = TEMPLATE.document["Rules"]["JwtNeedsIssuerAndAudience"]
    assert all(_assertion_holds(a["Assert"], parameters) for a in rule["Assertions"]) is not refused


NUMBERS = sorted(name for name, spec in PARAMETERS.items() if spec["Type"] == "Number")


@pytest.mark.parametrize("name", NUMBERS)
def test_every_number_is_bounded_on_both_sides(name):
    spec = PARAMETERS[name]
    assert "AllowedValues" in spec or {"MinValue", "MaxValue"} <= set(spec), f"{name} needs MinValue and MaxValue"
    if "AllowedValues" not in spec:
        assert spec["MinValue"] <= SamTemplate._typed_default(spec, str(spec["Default"])) <= spec["MaxValue"]


def _settings_bounds() -> dict[str, tuple[float | None, float | None]]:
    """Environment variable -> (minimum, maximum) the functions' settings accept."""
    bounds = {}
    for cls in (settings.TrainingDefaults, settings.EndpointDefaults, settings.ScalingDefaults, settings.GateSettings):
        for spec in dataclasses.fields(cls):
            bounds[spec.metadata["variable"]] = (spec.metadata.get("minimum"), spec.metadata.get("maximum"))
    return bounds


def test_a_value_the_template_accepts_is_one_the_functions_accept():
    bounds, checked = _settings_bounds(), 0
    for resource in TEMPLATE.resources.values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for variable, value in resource["Properties"].get("Environment", {}).get("Variables", {}).items():
            parameter = value.get("Ref") if isinstance(value, dict) else None
            if parameter not in NUMBERS or variable not in bounds:
                continue
            low, high = bounds[variable]
            spec = PARAMETERS[parameter]
            assert low is None or spec["MinValue"] >= low, f"{parameter} allows less than {variable} accepts"
            assert high is None or spec["MaxValue"] <= high, f"{parameter} allows more than {variable} accepts"
            checked += 1
    assert checked >= 10


def test_access_logs_are_off_by_default_and_on_go_to_a_bucket_only_s3_logging_may_write():
    from offline_stack.sam_template import SamTemplate

    default = SamTemplate.load().rendered()
    assert "AccessLogsBucket" not in default["Resources"] and "AccessLogsBucketName" not in default["Outputs"]
    assert "LoggingConfiguration" not in default["Resources"]["ArtifactsBucket"]["Properties"]
    kept = SamTemplate.load(overrides={"ArtifactsBucketAccessLogs": "true"}).rendered()
    logging = kept["Resources"]["ArtifactsBucket"]["Properties"]["LoggingConfiguration"]
    assert logging == {"DestinationBucketName": {"Ref": "AccessLogsBucket"}, "LogFilePrefix": "artifacts/"}
    expiry = kept["Resources"]["AccessLogsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0]
    assert expiry["ExpirationInDays"] == {"Ref": "LogRetentionDays"}
    allow, deny = kept["Resources"]["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"} and allow["Action"] == "s3:PutObject"
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]}
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    ("issuer", "accepted"),
    [
        ("", True),
        ("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc", True),
        ("http://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc", False),
        ("https://", False),
        ("https://issuer.example/ pool", False),
        ("ftp://issuer.example", False),
    ],
)
def test_the_jwt_issuer_must_be_https(issuer, accepted):
    """CloudFormation matches AllowedPattern against the whole value (Java regular expressions; this one means the
    same in Python's)."""
    pattern = PARAMETERS["JwtIssuer"]["AllowedPattern"]
    assert (re.fullmatch(pattern, issuer) is not None) is accepted
