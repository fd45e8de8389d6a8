"""How `make reliability`'s load rows count: what the route admitted, what Lambda throttled, what failed."""

from __future__ import annotations

from collections import Counter

from reliability.load import LoadResult, route_throttle_for


def test_admitted_requests_are_the_answers_the_route_throttle_let_through():
    # Given 1,000 answers of which the route throttle refused 870 (an endpoint's own 429s also reach Lambda)
    result = LoadResult(statuses=Counter({200: 120, 429: 875, 500: 5}), route_throttles=870)
    # Then 130 requests reached Lambda: 120 answered, 5 endpoint 429s, 5 500s
    assert result.admitted == 130


def test_lambda_throttles_allowed_are_one_in_a_hundred_admitted_rounded_up():
    assert LoadResult(statuses=Counter({429: 500}), route_throttles=500).lambda_throttles_allowed == 0
    assert LoadResult(statuses=Counter({200: 86, 500: 1, 429: 500}), route_throttles=500).lambda_throttles_allowed == 1
    assert LoadResult(statuses=Counter({200: 100}), route_throttles=0).lambda_throttles_allowed == 1
    assert LoadResult(statuses=Counter({200: 100, 500: 1}), route_throttles=0).lambda_throttles_allowed == 2
    assert LoadResult(statuses=Counter({200: 300}), route_throttles=0).lambda_throttles_allowed == 3


def test_lambda_throttles_are_not_counted_as_failures_but_every_other_error_is():
    result = LoadResult(statuses=Counter({200: 100, 429: 40, 500: 3, 502: 1, 503: 2}), lambda_throttles=2, lost=4)
    # one 500 is not a throttle (the function's InternalError), with the 502 and the two 503s: four
    assert result.failures == 4


def test_the_route_throttle_formula_leaves_room_for_the_burst_within_the_reserved_executions():
    # reserved 2, p99 25 ms, headroom 2: (2 - 1) / 0.05 = 20 requests/s with a burst of 1
    assert route_throttle_for(2, 0.025) == (20.0, 1)
    # a burst asked above reserved - 1 is cut to it; never below 1
    assert route_throttle_for(4, 0.1, burst=9) == (5.0, 3)
    assert route_throttle_for(4, 0.1, burst=0) == (15.0, 1)


def test_latency_percentiles_are_nearest_rank():
    tens = LoadResult(latencies_ms=[float(ms) for ms in range(100, 0, -10)])  # 10 .. 100 ms, unsorted
    assert (tens.percentile(0.5), tens.percentile(0.95), tens.percentile(0.1)) == (50.0, 100.0, 10.0)
    hundred = LoadResult(latencies_ms=[float(ms) for ms in range(1, 101)])
    assert (hundred.percentile(0.99), hundred.percentile(0.5), hundred.percentile(0.0)) == (99.0, 50.0, 1.0)
    assert LoadResult(latencies_ms=[12.34]).percentile(0.99) == 12.3
    assert LoadResult().percentile(0.99) == 0.0
