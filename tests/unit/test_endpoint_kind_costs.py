"""make plan's endpoint-kind comparison: serverless and instance costs to the cent, the break-even, the report."""

from __future__ import annotations

import pytest

from offline_stack.sam_template import SamTemplate
from ops.capacity_plan import (
    PRICES,
    Configuration,
    Traffic,
    break_even_requests_per_day,
    endpoint_kind_costs,
    instance_endpoint_cost,
    kinds_report,
    main,
    serverless_endpoint_cost,
)

DEFAULTS = Configuration.from_template(SamTemplate.load())
THOUSAND_A_DAY = Traffic(requests_per_day=1000, peak_rps=1, model_seconds=0.05, serverless_seconds=0.05)
REQUESTS_A_MONTH = 1000 * 730 / 24  # 30,416.67


def test_serverless_bills_duration_times_memory_and_the_data_in_and_out():
    duration = REQUESTS_A_MONTH * 0.05 * 1.0 * 0.0000200  # 1024 MB = 1 GB
    data = REQUESTS_A_MONTH * 101_000 / 1e9 * 0.016
    assert serverless_endpoint_cost(1024, THOUSAND_A_DAY) == pytest.approx(duration + data, rel=1e-9)
    assert serverless_endpoint_cost(1024, THOUSAND_A_DAY) == pytest.approx(0.0796, abs=1e-4)
    # 3 GB costs three times the duration; data is the same
    assert serverless_endpoint_cost(3072, THOUSAND_A_DAY) == pytest.approx(3 * duration + data, rel=1e-9)


def test_provisioned_concurrency_is_billed_all_month_and_its_requests_at_the_lower_rate():
    kept = 2 * 2.0 * 730 * 3600 * PRICES.provisioned_per_gb_second
    served = REQUESTS_A_MONTH * 0.05 * 2.0 * PRICES.provisioned_inference_per_gb_second
    data = REQUESTS_A_MONTH * 101_000 / 1e9 * 0.016
    assert serverless_endpoint_cost(2048, THOUSAND_A_DAY, provisioned_concurrency=2) == pytest.approx(
        kept + served + data, rel=1e-9
    )


def test_the_instance_endpoint_bills_every_hour_of_its_minimum_whatever_the_traffic():
    idle = Traffic(requests_per_day=1, peak_rps=1, model_seconds=0.05, serverless_seconds=0.05)
    assert instance_endpoint_cost(DEFAULTS, idle) == (pytest.approx(730 * 0.115), 1)
    # 0.7 / 0.05 = 14 requests a second per instance at the target utilisation: 15 a second on average needs 2
    busy = Traffic(requests_per_day=15 * 86400, peak_rps=20, model_seconds=0.05, serverless_seconds=0.05)
    assert instance_endpoint_cost(DEFAULTS, busy) == (pytest.approx(2 * 730 * 0.115), 2)
    exactly = Traffic(requests_per_day=14 * 86400, peak_rps=20, model_seconds=0.05, serverless_seconds=0.05)
    assert instance_endpoint_cost(DEFAULTS, exactly)[1] == 1
    flood = Traffic(requests_per_day=1e9, peak_rps=20, model_seconds=0.05, serverless_seconds=0.05)
    assert instance_endpoint_cost(DEFAULTS, flood)[1] == DEFAULTS.max_instances


def test_at_a_thousand_predictions_a_day_serverless_is_over_20_times_cheaper():
    costs = endpoint_kind_costs(DEFAULTS, THOUSAND_A_DAY, 3072)
    assert costs.instances / costs.serverless >= 20
    assert costs.per_thousand(costs.instances) == pytest.approx(83.95 / (REQUESTS_A_MONTH / 1000))


def test_the_break_even_is_where_the_two_costs_meet_and_serverless_is_cheaper_below_it():
    even = break_even_requests_per_day(DEFAULTS, THOUSAND_A_DAY, 3072)
    assert even is not None

    def at(per_day: float) -> Traffic:
        return Traffic(per_day, 1, 0.05, 0.05)

    assert serverless_endpoint_cost(3072, at(even)) == pytest.approx(
        instance_endpoint_cost(DEFAULTS, at(even))[0], rel=1e-6
    )
    assert serverless_endpoint_cost(3072, at(0.99 * even)) < instance_endpoint_cost(DEFAULTS, at(0.99 * even))[0]
    assert serverless_endpoint_cost(3072, at(1.01 * even)) > instance_endpoint_cost(DEFAULTS, at(1.01 * even))[0]
    # more memory per request: serverless dearer per request, so the break-even comes at less traffic
    assert break_even_requests_per_day(DEFAULTS, THOUSAND_A_DAY, 6144) < even


def test_no_break_even_when_serverless_stays_cheaper_than_the_largest_fleet():
    huge_fleet = Configuration(2, 4.0, 1, 20, 20, 15.0, 512, "ml.m5.large")  # 20 instances always on
    slow = Traffic(requests_per_day=1000, peak_rps=1, model_seconds=1.0, serverless_seconds=0.05)
    # 20 x 0.7 requests a second at most (1.2 million a day) cost serverless about $95 a month, the fleet $1,679
    assert break_even_requests_per_day(huge_fleet, slow, 1024) is None
    assert break_even_requests_per_day(huge_fleet, THOUSAND_A_DAY, 1024) == pytest.approx(21.1e6, rel=0.01)


def test_the_report_names_both_costs_the_break_even_and_the_cold_start():
    text = kinds_report(DEFAULTS, THOUSAND_A_DAY, 3072, cold_start_seconds=3.2)
    assert "$83.95 a month" in text and "$2.7600 per 1,000 predictions" in text
    assert "cold start after idle: 3.2 s measured offline" in text
    assert "below it choose EndpointKind=serverless" in text
    costs = endpoint_kind_costs(DEFAULTS, THOUSAND_A_DAY, 3072)
    assert f"({costs.instances / costs.serverless:,.1f}x less than instances)" in text
    assert "- serverless (3072 MB, 50 ms a request)" in text
    even = break_even_requests_per_day(DEFAULTS, THOUSAND_A_DAY, 3072)
    assert f"at {even:,.0f} predictions a day ({even / 86400:.2f} a second on average)" in text
    assert "not measured" in kinds_report(DEFAULTS, THOUSAND_A_DAY, 3072, cold_start_seconds=None)


def test_the_command_refuses_a_traffic_that_is_not_positive(capsys):
    with pytest.raises(SystemExit):
        main(["--peak-rps", "1", "--requests-per-day", "0"])
    assert "--requests-per-day must be above 0" in capsys.readouterr().err


def test_the_command_prints_the_comparison_and_warns_when_a_cold_start_exceeds_the_p99(capsys, tmp_path):
    plot = tmp_path / "kinds.png"
    arguments = ["--peak-rps", "1", "--requests-per-day", "1000", "--model-ms", "50", "--cold-start-ms", "4000"]
    assert main([*arguments, "--p99-ms", "500", "--kinds-plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "Endpoint kind for 1,000 predictions a day" in out and "p99 target 500 ms" in out
    assert "- serverless (3072 MB, 50 ms a request)" in out  # --serverless-ms defaults to --model-ms
    assert "- instances: 1 x ml.m5.large on average" in out  # 1,000 a day of 50 ms keep one instance idle
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_kinds_plot_steps_ten_times_a_decade_from_one_a_day_up_to_what_the_fleet_serves():
    from ops.capacity_plan import kind_cost_curves

    curves = kind_cost_curves(DEFAULTS, THOUSAND_A_DAY, 1024)
    days = curves["predictions_a_day"]
    ceiling = DEFAULTS.max_instances * 0.7 / 0.05 * 86400  # 3 instances at 70 % of 20/s: 3,628,800 a day
    assert days[0] == 1.0
    assert all(later / earlier == pytest.approx(10**0.1) for earlier, later in zip(days, days[1:], strict=False))
    assert days[-1] <= ceiling < days[-1] * 10**0.1
    assert len(days) == 66  # 10^0 .. 10^6.5
    at = [Traffic(d, 1, 0.05, 0.05) for d in days]
    assert curves["instances"] == [instance_endpoint_cost(DEFAULTS, t)[0] for t in at]
    assert curves["serverless"] == [serverless_endpoint_cost(1024, t) for t in at]
    assert curves["serverless_provisioned"] == [serverless_endpoint_cost(1024, t, 1) for t in at]
    assert curves["serverless_provisioned"][0] > curves["serverless"][0]
