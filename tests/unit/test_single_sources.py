"""Facts written in two places because the Lambda side may not import training code: checked equal here."""

import pytest
import sagemaker.image_uris

from breed_classifier.cli import HYPERPARAMETER_NAMES
from breed_classifier.metrics import METRIC_DEFINITIONS
from dog_breeds import start_training
from dog_breeds.container_images import (
    DEBUGGER_RULE_ACCOUNTS,
    DEBUGGER_RULES_IMAGE,
    DLC_ACCOUNTS,
    INFERENCE_IMAGE,
    TRAINING_IMAGE,
    UnsupportedRegionError,
    image_uri,
)


def test_the_functions_know_the_training_scripts_hyperparameters():
    assert start_training.HYPERPARAMETER_NAMES == HYPERPARAMETER_NAMES


def test_the_functions_use_the_training_modules_metric_regexes():
    assert start_training.METRIC_DEFINITIONS == METRIC_DEFINITIONS


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
