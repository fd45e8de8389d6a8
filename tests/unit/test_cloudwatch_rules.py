"""What the endpoint's invocation metrics count, and the template's own rollback alarms read on them
(offline_stack/aws_rules/cloudwatch.py): a client's bad image is no model failure; a 5xx or a timeout is."""

from __future__ import annotations

import pytest

from offline_stack.aws_rules.cloudwatch import (
    Alarm,
    MetricQuery,
    evaluate_expression,
    invocation_metrics,
    model_setup_metrics,
    statistic,
)
from offline_stack.lifecycles import template_alarms
from offline_stack.sam_template import SamTemplate

TEMPLATE = SamTemplate.load()
ENDPOINT = TEMPLATE.parameters["EndpointName"]
ALARMS = template_alarms(TEMPLATE)
FAILURES = ALARMS[f"{ENDPOINT}-model-failures"]
LATENCY = ALARMS[f"{ENDPOINT}-latency-p99"]


def reading(outcomes: list[tuple[int | None, float]]):
    """Datapoints as CloudWatch would hold them after these (status, seconds) invocations."""
    published: dict[str, list[float]] = {}
    for status, seconds in outcomes:
        for name, value in invocation_metrics(status, seconds).items():
            published.setdefault(name, []).append(value)

    def datapoints(query: MetricQuery) -> list[float]:
        assert dict(query.dimensions) == {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"}
        return published.get(query.metric_name, [])

    return datapoints


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, {"InvocationModelErrors": 0, "Invocation4XXErrors": 0, "Invocation5XXErrors": 0}),
        (415, {"InvocationModelErrors": 1, "Invocation4XXErrors": 1, "Invocation5XXErrors": 0}),
        (422, {"InvocationModelErrors": 1, "Invocation4XXErrors": 1, "Invocation5XXErrors": 0}),
        (500, {"InvocationModelErrors": 1, "Invocation4XXErrors": 0, "Invocation5XXErrors": 1}),
        (None, {"InvocationModelErrors": 1, "Invocation4XXErrors": 0, "Invocation5XXErrors": 0}),  # no answer
    ],
)
def test_invocation_metrics_count_4xx_as_model_errors_as_sagemaker_does(status, expected):
    metrics = invocation_metrics(status, 0.042)
    assert {name: metrics[name] for name in expected} == expected
    assert metrics["Invocations"] == 1 and metrics["ModelLatency"] == pytest.approx(42_000)  # microseconds


def test_bad_images_from_clients_do_not_trip_the_rollback_alarm():
    threshold = int(TEMPLATE.parameters["RollbackErrorsPerMinute"])
    bad_uploads = [(415, 0.01)] * 5 + [(422, 0.02)] * (threshold * 10) + [(200, 0.04)] * 20
    assert not FAILURES.in_alarm(reading(bad_uploads))
    assert FAILURES.value(reading(bad_uploads)) == 0


@pytest.mark.parametrize("failure", [500, 503, None])
def test_a_model_that_fails_trips_the_rollback_alarm_at_its_threshold(failure):
    threshold = int(TEMPLATE.parameters["RollbackErrorsPerMinute"])
    below = [(200, 0.04)] * 20 + [(422, 0.01)] * 5 + [(failure, 0.05)] * (threshold - 1)
    at = below + [(failure, 0.05)]
    assert not FAILURES.in_alarm(reading(below))
    assert FAILURES.in_alarm(reading(at))
    assert FAILURES.value(reading(at)) == threshold


def test_no_traffic_is_no_alarm_because_missing_data_does_not_breach():
    assert FAILURES.value(reading([])) == 0  # FILL(..., 0)
    assert LATENCY.value(reading([])) is None and not LATENCY.in_alarm(reading([]))


def test_the_latency_alarm_reads_microseconds_as_milliseconds_at_the_99th_percentile():
    threshold_ms = float(TEMPLATE.parameters["RollbackLatencyP99Milliseconds"])
    quick = [(200, 0.05)] * 99
    assert not LATENCY.in_alarm(reading(quick + [(200, 2 * threshold_ms / 1000)]))  # 1 slow in 100: p99 is quick
    slow = quick + [(200, 2 * threshold_ms / 1000)] * 2
    assert LATENCY.in_alarm(reading(slow))
    assert LATENCY.value(reading(slow)) == pytest.approx(2 * threshold_ms)


def test_the_old_alarm_on_invocation_model_errors_alone_would_have_rolled_back_for_bad_images():
    # What the template had before: InvocationModelErrors, Sum, >= threshold. Kept here as the reason for the change.
    naive = Alarm(
        name="naive",
        queries=(FAILURES.queries[0],),
        expression=FAILURES.queries[0].query_id,
        threshold=FAILURES.threshold,
        comparison="GreaterThanOrEqualToThreshold",
    )
    assert FAILURES.queries[0].metric_name == "InvocationModelErrors"
    assert naive.in_alarm(reading([(422, 0.01)] * 3))


@pytest.mark.parametrize(
    ("values", "name", "expected"),
    [
        ([3.0, 1.0, 2.0], "Sum", 6.0),
        ([3.0, 1.0, 2.0], "Average", 2.0),
        ([3.0, 1.0, 2.0], "Maximum", 3.0),
        ([3.0, 1.0, 2.0], "SampleCount", 3),
        (list(range(1, 101)), "p99", 99),
        (list(range(1, 101)), "p50", 50),
        ([7.0], "p99", 7.0),
        ([], "Sum", None),
    ],
)
def test_statistics_as_cloudwatch_defines_them(values, name, expected):
    assert statistic([float(v) for v in values], name) == expected


@pytest.mark.parametrize(
    ("expression", "series", "expected"),
    [
        ("FILL(a, 0) - FILL(b, 0)", {"a": None, "b": None}, 0.0),
        ("FILL(a, 0) - FILL(b, 0)", {"a": 5.0, "b": 3.0}, 2.0),
        ("a - b", {"a": 5.0, "b": None}, None),
        ("p99 / 1000", {"p99": 2_500_000.0}, 2500.0),
        ("a / b", {"a": 1.0, "b": 0.0}, None),
    ],
)
def test_metric_math(expression, series, expected):
    assert evaluate_expression(expression, series) == expected


def test_metric_math_the_offline_stack_cannot_evaluate_is_refused_by_name():
    with pytest.raises(ValueError, match="ANOMALY_DETECTION_BAND"):
        evaluate_expression("ANOMALY_DETECTION_BAND(a)", {"a": 1.0})


def _single_metric_alarm(comparison: str, treat_missing_data: str = "missing") -> Alarm:
    return Alarm.from_properties(
        {
            "AlarmName": "errors",
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocation5XXErrors",
            "Dimensions": [{"Name": "VariantName", "Value": "AllTraffic"}, {"Name": "EndpointName", "Value": "e"}],
            "ExtendedStatistic": "p90",
            "Threshold": 2,
            "ComparisonOperator": comparison,
            "TreatMissingData": treat_missing_data,
        }
    )


@pytest.mark.parametrize(
    ("comparison", "at", "above", "below"),
    [
        ("GreaterThanOrEqualToThreshold", True, True, False),
        ("GreaterThanThreshold", False, True, False),
        ("LessThanThreshold", False, False, True),
        ("LessThanOrEqualToThreshold", True, False, True),
    ],
)
def test_an_alarm_on_one_metric_compares_its_statistic_with_the_threshold(comparison, at, above, below):
    alarm = _single_metric_alarm(comparison)
    (query,) = alarm.queries
    assert (query.metric_name, query.statistic, alarm.expression) == ("Invocation5XXErrors", "p90", "m")
    assert query.dimensions == (("EndpointName", "e"), ("VariantName", "AllTraffic"))  # sorted, as compared
    assert alarm.metric_names() == {"Invocation5XXErrors"}
    for value, expected in ((2.0, at), (3.0, above), (1.0, below)):
        assert alarm.in_alarm(lambda query, v=value: [v]) is expected
    assert alarm.describe(lambda query: [3.0]) == "alarm errors went to ALARM (m = 3, threshold 2)"
    assert alarm.describe(lambda query: []) == "alarm errors went to ALARM (m = no data, threshold 2)"


@pytest.mark.parametrize(("treat", "alarms"), [("breaching", True), ("notBreaching", False), ("missing", False)])
def test_without_data_only_a_breaching_alarm_fires(treat, alarms):
    alarm = _single_metric_alarm("GreaterThanThreshold", treat)
    assert alarm.in_alarm(lambda query: []) is alarms
    assert alarm.in_alarm(lambda query: [], in_alarm_before=True) is alarms


@pytest.mark.parametrize("before", [True, False])
def test_without_data_an_ignoring_alarm_keeps_its_state(before):
    # "The current alarm state is maintained" (TreatMissingData: ignore)
    alarm = _single_metric_alarm("GreaterThanThreshold", "ignore")
    assert alarm.in_alarm(lambda query: [], in_alarm_before=before) is before


def test_metric_math_needs_exactly_one_returned_query():
    stat = {"Metric": {"Namespace": "N", "MetricName": "A"}, "Stat": "Sum"}
    properties = {"AlarmName": "a", "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold"}
    both = [{"Id": "x", "MetricStat": stat}, {"Id": "y", "MetricStat": stat}]
    with pytest.raises(ValueError, match="exactly one query must return data, not 2"):
        Alarm.from_properties(properties | {"Metrics": both})
    one = [{"Id": "x", "MetricStat": stat, "ReturnData": False}, {"Id": "e", "Expression": "-x * 2"}]
    alarm = Alarm.from_properties(properties | {"Metrics": one})
    assert alarm.expression == "-x * 2" and alarm.value(lambda query: [3.0]) == -6.0


def test_the_endpoint_metrics_reach_cloudwatch_in_batches_and_are_read_back_by_endpoint_and_time():
    # moto in-process: what the offline stack's CloudWatch holds, read as the alarms read it
    from datetime import UTC, datetime, timedelta

    import boto3
    from moto import mock_aws

    from offline_stack.aws_rules.cloudwatch import NAMESPACE, EndpointMetrics, moto_datapoints

    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        client.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": "e"},
                        {"Name": "VariantName", "Value": "AllTraffic"},
                    ],
                    "Timestamp": datetime.now(UTC) - timedelta(hours=1),
                    "Value": 50.0,
                }
            ],
        )  # before the period read
        since = datetime.now(UTC) - timedelta(seconds=1)
        metrics = EndpointMetrics(client)
        for _ in range(150):
            metrics.record("e", 200, 0.02)
        metrics.record("e", 503, 0.5)
        metrics.record("e", None, 1.0)
        metrics.record("other", 500, 0.1)
        per_invocation = len(invocation_metrics(200, 0.02))
        metrics.flush()
        metrics.flush()  # nothing left: nothing sent twice
        read = moto_datapoints(since)
        dimensions = (("EndpointName", "e"), ("VariantName", "AllTraffic"))

        def values(name: str) -> list[float]:
            return read(MetricQuery("m", NAMESPACE, name, dimensions, "Sum"))

        assert len(values("Invocations")) == 152 and sum(values("Invocations")) == 152
        assert sum(values("Invocation5XXErrors")) == 1.0  # the 503; no answer is no status
        assert max(values("ModelLatency")) == 1_000_000
        from moto.cloudwatch.models import cloudwatch_backends

        held = cloudwatch_backends["123456789012"]["us-east-1"].metric_data
        assert len(held) == 1 + 153 * per_invocation  # every datapoint, across the 500-metric calls


@pytest.mark.parametrize(
    ("status", "model_errors", "client", "server"),
    [
        (199, 1, 0, 0),
        (200, 0, 0, 0),
        (299, 0, 0, 0),
        (300, 1, 0, 0),
        (399, 1, 0, 0),
        (400, 1, 1, 0),
        (499, 1, 1, 0),
        (500, 1, 0, 1),
        (599, 1, 0, 1),
        (600, 1, 0, 0),
    ],
)
def test_each_status_class_is_counted_from_its_first_to_its_last_code(status, model_errors, client, server):
    metrics = invocation_metrics(status, 0.0)
    counted = (metrics["InvocationModelErrors"], metrics["Invocation4XXErrors"], metrics["Invocation5XXErrors"])
    assert counted == (model_errors, client, server)


SERVERLESS_TEMPLATE = SamTemplate.load(overrides={"EndpointKind": "serverless"})
SERVERLESS_ENDPOINT = f"{ENDPOINT}-serverless"
SERVERLESS_ALARMS = template_alarms(SERVERLESS_TEMPLATE)
SERVERLESS_DIMENSIONS = (("EndpointName", SERVERLESS_ENDPOINT), ("VariantName", "AllTraffic"))


def serverless_reading(outcomes: list[tuple[int | None, float]], cold_starts: list[float] = ()):
    """Datapoints a serverless endpoint publishes after these invocations and cold starts (seconds)."""
    published: dict[str, list[float]] = {}
    for status, seconds in outcomes:
        for name, value in invocation_metrics(status, seconds, serverless=True).items():
            published.setdefault(name, []).append(value)
    for seconds in cold_starts:
        published.setdefault("ModelSetupTime", []).append(model_setup_metrics(seconds)["ModelSetupTime"])

    def datapoints(query: MetricQuery) -> list[float]:
        assert dict(query.dimensions) == {"EndpointName": SERVERLESS_ENDPOINT, "VariantName": "AllTraffic"}
        return published.get(query.metric_name, [])

    return datapoints


def test_a_serverless_endpoint_publishes_no_invocation_model_errors():
    # "Any metric not listed below is not published for serverless endpoints": InvocationModelErrors is not listed
    assert set(invocation_metrics(500, 0.1, serverless=True)) == {
        "Invocations",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
        "OverheadLatency",
    }
    assert "InvocationModelErrors" in invocation_metrics(500, 0.1)


def test_the_instance_alarm_could_never_fire_on_a_serverless_endpoint_so_serverless_has_its_own():
    # The reason for the serverless alarm: FILL(errors,0) - FILL(4xx,0) stays 0 with no InvocationModelErrors published
    failing = [(500, 0.05)] * 20

    def as_instance_alarm_reads(query: MetricQuery) -> list[float]:
        return serverless_reading(failing)(
            MetricQuery(query.query_id, query.namespace, query.metric_name, SERVERLESS_DIMENSIONS, query.statistic)
        )

    assert FAILURES.value(as_instance_alarm_reads) == 0 and not FAILURES.in_alarm(as_instance_alarm_reads)
    serverless_failures = SERVERLESS_ALARMS[f"{ENDPOINT}-model-failures"]
    assert [query.metric_name for query in serverless_failures.queries] == ["Invocation5XXErrors"]
    assert serverless_failures.in_alarm(serverless_reading(failing))


def test_the_serverless_failure_alarm_counts_5xx_at_its_threshold_and_never_a_clients_bad_image():
    alarm = SERVERLESS_ALARMS[f"{ENDPOINT}-model-failures"]
    threshold = int(SERVERLESS_TEMPLATE.parameters["RollbackErrorsPerMinute"])
    below = [(200, 0.04)] * 20 + [(415, 0.01)] * 5 + [(422, 0.01)] * (threshold * 10) + [(503, 0.05)] * (threshold - 1)
    assert not alarm.in_alarm(serverless_reading(below))
    assert alarm.in_alarm(serverless_reading(below + [(500, 0.05)]))
    assert alarm.value(serverless_reading([])) == 0  # no traffic, no alarm


def test_a_serverless_cold_start_near_sagemakers_3_minute_limit_trips_its_alarm_and_only_serverless_has_it():
    alarm = SERVERLESS_ALARMS[f"{ENDPOINT}-serverless-cold-start"]
    assert not alarm.in_alarm(serverless_reading([(200, 0.1)], cold_starts=[8.0, 119.9, 120.0]))
    assert alarm.in_alarm(serverless_reading([(200, 0.1)], cold_starts=[8.0, 121.0]))
    assert not alarm.in_alarm(serverless_reading([(200, 0.1)]))  # no cold start in the period
    assert f"{ENDPOINT}-serverless-cold-start" not in ALARMS  # an instance stack has no such alarm (Condition)
    rollback = SERVERLESS_TEMPLATE.resolve(
        SERVERLESS_TEMPLATE.function_properties("DeployEndpointFunction")["Environment"]["Variables"]
    )
    watching_this_kind = set(SERVERLESS_ALARMS) - {f"{ENDPOINT}-previous-kind-failures"}
    assert set(rollback["ROLLBACK_ALARM_NAMES"].split(",")) == watching_this_kind  # each one rolls back


@pytest.mark.parametrize(("kind", "other"), [("instances", f"{ENDPOINT}-serverless"), ("serverless", ENDPOINT)])
def test_during_a_kind_switch_the_endpoint_still_answering_is_watched_too(kind, other):
    template = SamTemplate.load(overrides={"EndpointKind": kind})
    alarm = template_alarms(template)[f"{ENDPOINT}-previous-kind-failures"]
    assert dict(alarm.queries[0].dimensions)["EndpointName"] == other
    failing = {"Invocation5XXErrors": [1.0] * int(template.parameters["RollbackErrorsPerMinute"])}
    assert alarm.in_alarm(lambda query: failing.get(query.metric_name, []))
    assert not alarm.in_alarm(lambda query: [])  # no switch under way: no data, no alarm


def test_a_serverless_cold_start_is_overhead_latency_so_the_p99_alarm_judges_the_model_alone():
    # "The OverheadLatency metric tracks all additional latency that SageMaker added which includes the cold start"
    cold = invocation_metrics(200, 4.6, serverless=True, overhead_seconds=4.5)
    assert cold["ModelLatency"] == pytest.approx(100_000) and cold["OverheadLatency"] == pytest.approx(4_500_000)
    latency = SERVERLESS_ALARMS[f"{ENDPOINT}-latency-p99"]
    published = {"ModelLatency": [cold["ModelLatency"]] + [50_000.0] * 99}
    assert not latency.in_alarm(lambda query: published.get(query.metric_name, []))
