"""The values that must not change once made are frozen dataclasses: an event read, a stage, a plan's inputs, an
authorization's answer, a loaded model. (A mutation run cannot score the ``frozen=True`` argument itself: it runs
at import, so coverage ties it to no test. This test is that check, by hand.)"""

from __future__ import annotations

import dataclasses

import pytest

from breed_classifier.artifact import LoadedModel
from dog_breeds.register_autoscaling import ScalingRequest
from dog_breeds.release_gate import GateRequest
from offline_stack.aws_rules.api_gateway import Caller, Refusal
from offline_stack.aws_rules.sagemaker import Fleet
from ops.capacity_plan import Configuration, Load, Plan, Prices
from ops.stages import Stage


@pytest.mark.parametrize(
    "value_type",
    [GateRequest, ScalingRequest, Stage, Configuration, Load, Plan, Prices, Refusal, Caller, Fleet, LoadedModel],
)
def test_a_value_cannot_be_changed_after_it_is_made(value_type):
    assert dataclasses.is_dataclass(value_type)
    assert value_type.__dataclass_params__.frozen, f"{value_type.__name__} must be frozen"
