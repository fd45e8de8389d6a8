"""The capacity planner's arithmetic: Little's law, the per-minute scaling metric, the token bucket, cost."""

import pytest

from offline_stack.sam_template import SamTemplate
from ops.capacity_plan import Configuration, Load, main, plan, refused_share

DEFAULTS = Configuration.from_template(SamTemplate.load())


def test_the_defaults_are_read_from_the_template():
    assert (DEFAULTS.reserved_concurrency, DEFAULTS.throttle_rate, DEFAULTS.throttle_burst) == (2, 4.0, 1)
    assert (DEFAULTS.min_instances, DEFAULTS.max_instances, DEFAULTS.target_per_instance_per_minute) == (1, 3, 15.0)


def test_the_function_carries_reserved_concurrency_over_its_duration():
    result = plan(DEFAULTS, Load(peak_rps=1, burst=1, function_seconds=0.25, model_seconds=0.06))
    assert result.function_capacity_rps == pytest.approx(2 / 0.25)


def test_the_scaling_target_is_per_minute():
    result = plan(DEFAULTS, Load(peak_rps=1, burst=1, function_seconds=0.1, model_seconds=0.1))
    # 15 invocations per instance per minute is a quarter of a request a second, not 15
    assert result.scaling_target_now_rps == pytest.approx(0.25)
    # a 100 ms model serves 10/s; at 70 % that is 420 a minute
    assert result.recommended_target_per_minute == pytest.approx(420)


def test_a_large_bucket_refuses_what_is_over_its_rate_and_a_small_one_more():
    assert refused_share(8, 4, burst=20) == pytest.approx(0.5, abs=0.03)
    assert refused_share(2, 4, burst=20) < 0.01
    assert refused_share(8, 4, burst=1) > 0.55  # independent callers: quiet moments' tokens are lost


def test_more_traffic_needs_more_instances_and_costs_more():
    small = plan(DEFAULTS, Load(peak_rps=2, burst=1, function_seconds=0.1, model_seconds=0.5))
    large = plan(DEFAULTS, Load(peak_rps=200, burst=1, function_seconds=0.1, model_seconds=0.5))
    assert large.instances_needed > small.instances_needed
    assert large.monthly_cost["total"] > small.monthly_cost["total"] > 0


@pytest.mark.parametrize("arguments", [["--peak-rps", "0"], ["--peak-rps", "4", "--average-share", "2"]])
def test_impossible_loads_are_refused_saying_what_is_accepted(arguments, capsys):
    with pytest.raises(SystemExit) as refusal:
        main(arguments)
    error = capsys.readouterr().err
    assert refusal.value.code == 2 and ("must be above 0" in error or "fraction above 0" in error)


def test_what_it_recommends_carries_the_peak():
    load = Load(peak_rps=4, burst=1, function_seconds=0.1, model_seconds=0.07)
    result = plan(DEFAULTS, load)
    # The recommended throttle refuses almost no independent caller at the peak ...
    assert refused_share(4, result.recommended_throttle_rate, result.recommended_throttle_burst) <= 0.015
    # ... its burst fits in the recommended concurrency, and the function carries the throttle's rate
    assert result.recommended_reserved_concurrency >= result.recommended_throttle_burst + 1
    assert result.recommended_reserved_concurrency / load.function_seconds >= result.recommended_throttle_rate
    # while the defaults (4/s, burst 1) refuse about half of them at 4/s: a token bucket that small loses tokens
    assert result.route_429_share > 0.4
