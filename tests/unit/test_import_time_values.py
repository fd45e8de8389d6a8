"""What a module fixes when it is imported: the values that must not change once made (frozen dataclasses: an
event read, a stage, a plan's inputs, an authorization's answer, a loaded model) and the defaults a function uses
when its template leaves a variable out.

A class body runs at import, before any test, so a mutation run (``make mutation``), which gives a mutant only the
tests that ran its line, would give these lines none. Each test here therefore checks a **fresh copy** of the
module, executed through the same import machinery (so the mutated code when a mutation run serves one) but not
put in ``sys.modules``: the lines run inside the test, and the run ties them to it.
"""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest

from offline_stack.sam_template import PROJECT_ROOT, SamTemplate
from tests.mutation import MODULES
from tests.support.fresh_import import fresh_copy

SOURCE_ROOTS = ("layers/shared/python/", "training_jobs/")


def module_name(path: str) -> str:
    for root in SOURCE_ROOTS:
        path = path.removeprefix(root)
    return path.removesuffix(".py").replace("/", ".")


def declared_frozen(path: str) -> list[str]:
    """The classes the source declares ``@dataclass(... frozen=True ...)`` (the source, not the running code)."""
    source = (PROJECT_ROOT / path).read_text()
    declared = re.findall(r"^@dataclass\(([^)]*)\)\nclass (\w+)", source, re.MULTILINE)
    return [name for args, name in declared if "frozen=True" in args]


WITH_FROZEN = [path for path in MODULES if declared_frozen(path)]


@pytest.mark.parametrize("path", WITH_FROZEN)
def test_a_value_declared_frozen_cannot_be_changed_after_it_is_made(path):
    module = fresh_copy(module_name(path))
    for name in declared_frozen(path):
        value_type = getattr(module, name)
        assert dataclasses.is_dataclass(value_type)
        assert value_type.__dataclass_params__.frozen, f"{name} must be frozen"


def test_the_frozen_values_are_found():
    names = {name for path in WITH_FROZEN for name in declared_frozen(path)}
    assert {"PredictSettings", "GateRequest", "ScalingRequest", "Stage", "Plan", "LoadedModel", "ErrorRow"} <= names


def _template_defaults() -> dict[str, str]:
    """Each function variable the template sets from a parameter: the parameter's default, as text."""
    template = SamTemplate.load()
    parameters = template.document["Parameters"]
    defaults = {}
    for resource in template.resources.values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for variable, value in resource["Properties"].get("Environment", {}).get("Variables", {}).items():
            parameter = value.get("Ref") if isinstance(value, dict) else None
            if parameter in parameters and "Default" in parameters[parameter]:
                defaults[variable] = str(parameters[parameter]["Default"])
    return defaults


def test_a_function_left_without_a_variable_behaves_as_the_templates_default():
    # `sam local invoke` with a partial env file, or a function a user wires by hand: the code's own default must be
    # what the stack deploys by default
    settings = fresh_copy("dog_breeds.settings")
    defaults, compared = _template_defaults(), []
    for settings_type in (
        settings.PredictSettings,
        settings.PageSettings,
        settings.TrainingDefaults,
        settings.EndpointDefaults,
        settings.ScalingDefaults,
        settings.GateSettings,
        settings.ControlPlaneSettings,
    ):
        hints = typing.get_type_hints(settings_type, vars(settings))
        for field in dataclasses.fields(settings_type):
            variable = field.metadata["variable"]
            if field.default is dataclasses.MISSING or variable not in defaults or not defaults[variable]:
                continue
            expected = settings._parse(variable, defaults[variable], hints[field.name], field.metadata)
            assert field.default == expected, f"{variable}: code default {field.default!r}, template {expected!r}"
            compared.append(variable)
    assert {"MAX_IMAGE_BYTES", "DATA_CAPTURE_PERCENT", "TRAINING_USE_SPOT", "SCALING_MAX_CAPACITY"} <= set(compared)
    # all but ENDPOINT_NAME and JOB_NAME_PREFIX (required) and URL_ALLOWED_HOSTS (empty by default: off)
    assert len(set(compared)) >= 24, sorted(set(defaults) - set(compared))


def test_the_request_limit_is_4_mib_and_a_month_is_730_hours():
    assert fresh_copy("dog_breeds.settings").PredictSettings("dog-breeds").max_image_bytes == 4 * 1024 * 1024
    plan = fresh_copy("ops.capacity_plan")
    assert (plan.HOURS_PER_MONTH, plan.SECONDS_PER_MONTH, plan.DAYS_PER_MONTH) == (730, 730 * 3600, 730 / 24)


def test_url_input_is_off_unless_the_caller_turns_it_on():
    image_request = fresh_copy("dog_breeds.image_request")
    body = '{"url": "https://images.example.com/dog.jpg"}'
    with pytest.raises(Exception, match="URL input is disabled") as refusal:
        image_request.read_prediction_request(body, False, {"content-type": "application/json"}, {}, 1000)
    assert type(refusal.value).__name__ == "MalformedRequestError"


def test_the_model_refuses_a_body_over_20_mib_and_reads_one_of_exactly_20_mib():
    inference = fresh_copy("inference")
    limit = 20 * 1024 * 1024
    with pytest.raises(Exception, match=f"larger than {limit} bytes") as refusal:
        inference.decode_image(b"x" * (limit + 1), 224)
    assert refusal.value.status == 413
    with pytest.raises(Exception, match="not a decodable") as undecodable:
        inference.decode_image(b"x" * limit, 224)  # judged by its content, not its size
    assert undecodable.value.status == 422


def test_the_promotion_digest_reads_a_file_larger_than_its_chunk(tmp_path):
    import hashlib

    data = b"x" * (2 * 1024 * 1024 + 3)
    (tmp_path / "model.tar.gz").write_bytes(data)
    assert fresh_copy("ops.promote_model").sha256_file(tmp_path / "model.tar.gz") == hashlib.sha256(data).hexdigest()


def test_a_new_training_run_has_no_best_epoch_yet_and_has_not_stopped():
    progress = fresh_copy("breed_classifier.progress").Progress()
    assert (progress.best_loss, progress.best_epoch, progress.best_state) == (float("inf"), 0, None)
    assert (progress.stopped_early, progress.first_epoch, progress.history) == (False, 1, [])


def test_a_signed_request_is_good_for_five_minutes_and_iam_matches_resources_case_sensitively():
    assert fresh_copy("offline_stack.aws_rules.api_gateway").SIGNATURE_WINDOW_SECONDS == 5 * 60
    iam = fresh_copy("offline_stack.aws_rules.iam")
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*/A"}],
    }
    policy = iam.Policy([document])
    assert policy.allows(iam.Permission("s3:GetObject", "arn:aws:s3:::b/A"))
    assert not policy.allows(iam.Permission("s3:GetObject", "arn:aws:s3:::b/a"))


def test_the_short_side_is_resized_to_256_224ths_of_the_input_before_the_centre_crop():
    preprocessing = fresh_copy("breed_classifier.preprocessing")
    resized_short_side = preprocessing.RESIZE_RATIO * 224
    assert resized_short_side == pytest.approx(256)  # the ImageNet convention the weights expect
