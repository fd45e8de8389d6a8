"""The scaling function's event and what it registers, at the boundaries: equal bounds are allowed, crossed ones
refused with both values named, the target is a number of invocations per instance per minute, the names derive
from the endpoint's."""

from __future__ import annotations

import pytest

from dog_breeds.errors import InvalidEventError
from dog_breeds.register_autoscaling import ScalingRequest, read_scaling_event, register_autoscaling
from dog_breeds.settings import ScalingDefaults
from tests.support.fakes import FakeScaling

DEFAULTS = ScalingDefaults()  # the template's defaults: 1-3 instances, 15 a minute, 30 s cool-downs


def test_an_empty_event_takes_the_defaults_and_the_pipelines_endpoint_name_is_accepted():
    assert read_scaling_event({}, DEFAULTS) == ScalingRequest(1, 3, 15.0, 30, 30)
    assert read_scaling_event(None, DEFAULTS) == ScalingRequest(1, 3, 15.0, 30, 30)
    assert read_scaling_event({"endpoint_name": "anything"}, DEFAULTS) == ScalingRequest(1, 3, 15.0, 30, 30)


def test_equal_bounds_are_a_fixed_fleet_and_crossed_bounds_are_refused():
    assert read_scaling_event({"min_capacity": 3, "max_capacity": 3}, DEFAULTS).min_capacity == 3
    with pytest.raises(InvalidEventError, match=r"^min_capacity \(4\) must not exceed max_capacity \(3\)$"):
        read_scaling_event({"min_capacity": 4}, DEFAULTS)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"min_capacity": 0}, "min_capacity"),
        ({"max_capacity": 101}, "max_capacity"),
        ({"target_invocations_per_instance_per_minute": 0}, "target_invocations_per_instance_per_minute"),
        ({"scale_in_cooldown_seconds": 3601}, "scale_in_cooldown_seconds"),
        ({"scale_out_cooldown_seconds": -1}, "scale_out_cooldown_seconds"),
        ({"instances": 2}, "instances"),
    ],
)
def test_out_of_range_or_unknown_fields_are_refused_by_name(event, field):
    with pytest.raises(InvalidEventError, match=field):
        read_scaling_event(event, DEFAULTS)


def test_a_whole_number_target_becomes_the_float_application_auto_scaling_takes():
    request = read_scaling_event({"target_invocations_per_instance_per_minute": 20}, DEFAULTS)
    assert request.target_invocations_per_instance_per_minute == 20.0
    assert isinstance(request.target_invocations_per_instance_per_minute, float)


def test_the_answer_names_what_was_registered():
    answer = register_autoscaling(FakeScaling(), "my-endpoint", ScalingRequest(2, 5, 12.5, 60, 10))
    assert answer == {
        "resource_id": "endpoint/my-endpoint/variant/AllTraffic",
        "registered": True,
        "policy_name": "my-endpoint-invocations-per-instance",
        "policy_arn": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:my-endpoint-invocations-per-instance",
        "min_capacity": 2,
        "max_capacity": 5,
    }
