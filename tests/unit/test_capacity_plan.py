"""The capacity planner's arithmetic: Little's law, the per-minute scaling metric, the token bucket, cost."""

import math

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


# An open route (no 429 at these rates), so every other figure can be checked to the cent
OPEN = Configuration(
    reserved_concurrency=2,
    throttle_rate=1000.0,
    throttle_burst=1000,
    min_instances=1,
    max_instances=3,
    target_per_instance_per_minute=15.0,
    memory_mb=1024,
    instance_type="ml.m5.large",
)
MONTH_SECONDS = 730 * 3600


def test_each_figure_of_a_plan_to_the_cent():
    result = plan(OPEN, Load(peak_rps=2, burst=1, function_seconds=0.12, model_seconds=0.06, average_share=0.5))
    assert result.route_429_share == 0.0 and result.admitted_rps == 2.0 and result.lambda_throttled_share == 0.0
    assert result.function_capacity_rps == pytest.approx(2 / 0.12)
    assert result.instance_capacity_rps == pytest.approx(1 / 0.06)
    assert (result.instances_needed, result.instances_at_peak, result.endpoint_overloaded) == (1, 1, False)
    requests = 1.0 * MONTH_SECONDS  # half of 2 a second, all month
    assert result.monthly_cost["http_api"] == pytest.approx(requests / 1e6 * 1.00)
    assert result.monthly_cost["lambda"] == pytest.approx(requests / 1e6 * 0.20 + requests * 0.12 * 0.0000166667)
    assert result.monthly_cost["endpoint"] == pytest.approx(730 * 0.115)
    assert result.monthly_cost["total"] == pytest.approx(sum(v for k, v in result.monthly_cost.items() if k != "total"))


def test_instances_are_counted_at_70_percent_and_capped_by_the_maximum():
    def instances(peak: float) -> tuple[int, int, bool]:
        result = plan(OPEN, Load(peak_rps=peak, burst=1, function_seconds=0.01, model_seconds=0.1))
        return result.instances_needed, result.instances_at_peak, result.endpoint_overloaded

    # one instance serves 10/s, 7/s at 70 %
    assert instances(7) == (1, 1, False)
    assert instances(7.01) == (2, 2, False)
    assert instances(21) == (3, 3, False)
    assert instances(21.5) == (4, 3, True)


def test_the_endpoint_bill_follows_the_average_instances_and_the_instance_type():
    load = Load(peak_rps=21, burst=1, function_seconds=0.01, model_seconds=0.1, average_share=0.5)
    assert plan(OPEN, load).monthly_cost["endpoint"] == pytest.approx(2 * 730 * 0.115)  # ceil(3 x 0.5) instances
    bigger = Configuration(**{**OPEN.__dict__, "instance_type": "ml.c5.xlarge"})
    assert plan(bigger, load).monthly_cost["endpoint"] == pytest.approx(2 * 730 * 0.204)
    unknown = Configuration(**{**OPEN.__dict__, "instance_type": "ml.z9.huge"})
    assert plan(unknown, load).monthly_cost["endpoint"] == pytest.approx(2 * 730 * 0.115)  # priced as ml.m5.large
    floor = Configuration(**{**OPEN.__dict__, "min_instances": 3})
    assert plan(floor, Load(1, 1, 0.01, 0.1)).monthly_cost["endpoint"] == pytest.approx(3 * 730 * 0.115)


def test_lambda_throttles_what_the_function_cannot_carry_and_no_reservation_means_the_accounts_pool():
    one = Configuration(**{**OPEN.__dict__, "reserved_concurrency": 1})
    result = plan(one, Load(peak_rps=4, burst=1, function_seconds=0.5, model_seconds=0.01))
    assert result.function_capacity_rps == 2.0 and result.lambda_throttled_share == 0.5
    pool = Configuration(**{**OPEN.__dict__, "reserved_concurrency": None})
    assert plan(pool, Load(1, 1, 0.5, 0.01)).function_capacity_rps == 20.0  # 10 unreserved / 0.5 s


def test_the_recommendation_leaves_room_for_the_burst_and_a_quarter_above_the_peak():
    result = plan(OPEN, Load(peak_rps=8, burst=3, function_seconds=0.2, model_seconds=0.05))
    assert result.recommended_throttle_rate == 10.0
    assert result.recommended_throttle_burst >= 3
    assert result.recommended_reserved_concurrency == max(
        math.ceil(10.0 * 0.2 / 0.7), result.recommended_throttle_burst + 1
    )
    assert result.recommended_target_per_minute == round(60 * 20 * 0.7, 1)


def test_a_bucket_of_no_burst_still_admits_one_request_at_a_time():
    assert refused_share(0.5, 1.0, burst=0) == refused_share(0.5, 1.0, burst=1)
    assert refused_share(100, 1000, burst=1000) == 0.0


def test_the_capacity_plot_runs_from_5_percent_to_twice_the_peak_and_answers_only_what_the_function_carries():
    from ops.capacity_plan import capacity_curves

    one = Configuration(**{**OPEN.__dict__, "reserved_concurrency": 1})
    load = Load(peak_rps=4, burst=1, function_seconds=0.5, model_seconds=0.01, average_share=0.5)
    curves = capacity_curves(one, load)
    assert len(curves["offered_rps"]) == 40
    assert curves["offered_rps"][0] == pytest.approx(0.2) and curves["offered_rps"][-1] == pytest.approx(8.0)
    assert curves["offered_rps"][19] == pytest.approx(4.0)  # the peak itself is a point
    # one instance of concurrency at 0.5 s carries 2/s: below it all is answered, above it 2/s
    assert curves["function_capacity_rps"] == [2.0] * 40
    assert curves["answered_rps"][0] == pytest.approx(0.2) and curves["answered_rps"][-1] == pytest.approx(2.0)
    assert curves["route_429_percent"] == [0.0] * 40  # the open route refuses nothing
    at_peak = plan(one, load)
    assert curves["monthly_cost"][19] == pytest.approx(at_peak.monthly_cost["total"])
    assert curves["monthly_cost"] == sorted(curves["monthly_cost"])


def test_the_capacity_plot_shows_the_429_share_in_percent():
    from ops.capacity_plan import capacity_curves

    load = Load(peak_rps=8, burst=1, function_seconds=0.1, model_seconds=0.05)
    curves = capacity_curves(DEFAULTS, load)
    assert curves["route_429_percent"][19] == pytest.approx(100 * refused_share(8, 4.0, 1))


def test_the_report_states_each_figure_of_the_plan():
    from ops.capacity_plan import report

    load = Load(peak_rps=2, burst=1, function_seconds=0.12, model_seconds=0.06, average_share=0.5)
    text = report(OPEN, load, plan(OPEN, load))
    assert "peak 2 requests/s, bursts of 1, function 120 ms, model 60 ms per request per instance" in text
    assert "scaling target 15 invocations per instance PER MINUTE (= 0.25 requests/s per instance)" in text
    assert "carries at most 16.7 requests/s" in text
    assert "the route admits 2.0 requests/s; at the peak 0% get 429 from API Gateway, 0% would be throttled" in text
    assert "serves about 16.7 requests/s; at 70% utilisation the admitted traffic needs 1 instance(s)\n" in text
    assert "predicted p95 latency of answered requests: 120 ms" in text
    assert "ScalingMaxCapacity=3 " in text and "bottleneck" not in text
    assert "Monthly cost at 50% of the peak on average" in text
    assert f"endpoint ${730 * 0.115:,.2f}" in text


def test_the_report_says_when_the_endpoint_is_the_bottleneck_and_asks_for_the_instances_needed():
    from ops.capacity_plan import report

    load = Load(peak_rps=21.5, burst=1, function_seconds=0.01, model_seconds=0.1)
    text = report(OPEN, load, plan(OPEN, load))
    assert "needs 4 instance(s), more than ScalingMaxCapacity 3: the endpoint is the bottleneck" in text
    assert "ScalingMaxCapacity=4 " in text
    pool = Configuration(**{**OPEN.__dict__, "reserved_concurrency": None})
    assert "reserved concurrency none (the account's pool; 10 assumed)" in report(pool, load, plan(pool, load))


@pytest.mark.parametrize(
    ("arguments", "refused"),
    [
        (["--peak-rps", "-1"], "must be above 0"),
        (["--peak-rps", "1", "--function-ms", "0"], "must be above 0"),
        (["--peak-rps", "1", "--model-ms", "0"], "must be above 0"),
        (["--peak-rps", "1", "--burst", "-1"], "--burst at least 0"),
        (["--peak-rps", "1", "--average-share", "0"], "fraction above 0, at most 1"),
        (["--peak-rps", "1", "--average-share", "1.01"], "fraction above 0, at most 1"),
        (["--peak-rps", "1", "--p99-ms", "0"], "--p99-ms must be above 0 (got 0)"),
        (["--peak-rps", "1", "--serverless-ms", "-5"], "--serverless-ms must be above 0 (got -5)"),
        (["--peak-rps", "1", "--cold-start-ms", "0"], "--cold-start-ms must be above 0 (got 0)"),
    ],
)
def test_each_argument_out_of_range_is_refused_by_name(arguments, refused, capsys):
    with pytest.raises(SystemExit) as refusal:
        main(arguments)
    assert refusal.value.code == 2 and refused in capsys.readouterr().err


def test_the_edges_of_each_range_are_accepted(capsys):
    assert main(["--peak-rps", "0.01", "--burst", "0", "--average-share", "1"]) == 0
    assert "Monthly cost at 100% of the peak on average" in capsys.readouterr().out


def test_latencies_from_the_bench_give_the_function_its_overhead_and_the_network(tmp_path, capsys):
    import json

    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps(
            {
                "endpoint_requests": [
                    {"image": "12mp", "project": {"median_ms": 900}},
                    {"image": "500x375", "project": {"median_ms": 40}},
                ],
                "handler_overhead": {"project_overhead_ms": 5},
                "endpoint_cold_start": {"project": {"median_ms": 6000}},
            }
        )
    )
    assert main(["--peak-rps", "1", "--from-bench", str(bench), "--network-ms", "15", "--requests-per-day", "10"]) == 0
    out = capsys.readouterr().out
    assert "function 60 ms, model 40 ms per request per instance" in out  # 40 + 5 + 15
    assert "cold start after idle: 6.0 s measured offline" in out
    bench.write_text("{}")
    with pytest.raises(SystemExit):
        main(["--peak-rps", "1", "--from-bench", str(bench)])
    assert "not make bench's JSON" in capsys.readouterr().err


@pytest.mark.parametrize(("cold_start_ms", "warned"), [("500", False), ("500.1", True)])
def test_a_cold_start_is_flagged_only_when_it_exceeds_the_p99_target(cold_start_ms, warned, capsys):
    arguments = ["--peak-rps", "1", "--requests-per-day", "100", "--cold-start-ms", cold_start_ms, "--p99-ms", "500"]
    assert main(arguments) == 0
    assert ("p99 target 500 ms: a cold start takes longer" in capsys.readouterr().out) is warned


def test_a_plot_is_written_when_asked(tmp_path, capsys):
    path = tmp_path / "plan.png"
    assert main(["--peak-rps", "2", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {path}" in capsys.readouterr().out


def test_the_bucket_admits_with_its_last_whole_token_and_refuses_without_one():
    # A bucket of one token that never refills: the first request takes the token, the second finds none
    assert refused_share(1, 1e-12, burst=1, arrivals=1) == 0.0
    assert refused_share(1, 1e-12, burst=1, arrivals=2) == 0.5
    assert refused_share(1, 1e-12, burst=3, arrivals=4) == 0.25


def test_no_reservation_is_read_from_the_template_as_the_accounts_pool():
    template = SamTemplate.load(overrides={"PredictReservedConcurrency": "none"})
    assert Configuration.from_template(template).reserved_concurrency is None
    assert (
        Configuration.from_template(
            SamTemplate.load(overrides={"PredictReservedConcurrency": "5"})
        ).reserved_concurrency
        == 5
    )


def test_what_the_route_admits_is_the_offered_traffic_less_what_it_refuses():
    result = plan(DEFAULTS, Load(peak_rps=8, burst=1, function_seconds=0.1, model_seconds=0.05))
    assert result.admitted_rps == pytest.approx(8 * (1 - refused_share(8, 4.0, 1)))
    assert 0 < result.route_429_share < 1


def test_a_long_function_needs_the_concurrency_its_rate_keeps_busy():
    # 10/s of 1-second requests keep 10 in flight; at 70 % that is 15 reserved, more than the burst needs
    result = plan(OPEN, Load(peak_rps=8, burst=1, function_seconds=1.0, model_seconds=0.05))
    assert result.recommended_throttle_rate == 10.0
    assert result.recommended_reserved_concurrency == 15 > result.recommended_throttle_burst + 1


def test_a_throttle_no_bucket_can_satisfy_is_capped_at_1000():
    from ops.capacity_plan import throttle_for

    assert throttle_for(8, 1, refused_at_most=-1) == (10.0, 1000)


def test_the_peak_is_required_and_the_smallest_latencies_are_accepted(capsys):
    with pytest.raises(SystemExit) as refusal:
        main([])
    assert refusal.value.code == 2 and "--peak-rps" in capsys.readouterr().err
    arguments = ["--peak-rps", "1", "--function-ms", "0.5", "--model-ms", "0.5", "--requests-per-day", "0.5"]
    assert main([*arguments, "--p99-ms", "0.5", "--serverless-ms", "0.5", "--cold-start-ms", "0.5"]) == 0
    assert "function 0 ms, model 0 ms per request per instance" in capsys.readouterr().out
