"""CloudWatch as the offline stack imitates it: what an endpoint's invocation metrics count, and how alarms read them.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **Endpoint invocation metrics.** Each InvokeEndpoint that reaches the model adds, in namespace
  ``AWS/SageMaker`` with dimensions ``EndpointName`` and ``VariantName``: ``Invocations`` 1;
  ``InvocationModelErrors`` 1 when the model's answer is not 2xx, **4xx included** (also a timeout or a
  broken response); ``Invocation4XXErrors`` / ``Invocation5XXErrors`` 1 for a 4xx / 5xx answer, else 0;
  ``ModelLatency`` in **microseconds**. Source: SageMaker developer guide, "Amazon SageMaker AI metrics in
  Amazon CloudWatch", "Endpoint invocation metrics"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html).
- **A serverless cold start is overhead, not model latency**: "The OverheadLatency metric tracks all additional
  latency that SageMaker added which includes the cold start time for launching new compute resources for your
  serverless endpoint" (same page as below). A request that waited for a container publishes that wait as
  ``OverheadLatency`` and the rest as ``ModelLatency``, so the p99 rollback alarm judges the model, not the cold
  start (which has an alarm of its own on ``ModelSetupTime``). An instance endpoint's overhead is not emulated.
- **A serverless endpoint publishes fewer.** "The metrics below are an exhaustive list of metrics for serverless
  endpoints. Any metric not listed below is not published for serverless endpoints." The list: ``OverheadLatency``,
  and "Serverless endpoints can also use the Invocations4XXErrors, Invocations5XXErrors, Invocations, ModelLatency,
  ModelSetupTime and MemoryUtilization metrics" (the page's spelling; the names it links to are
  ``Invocation4XXErrors``/``Invocation5XXErrors``), plus ``ServerlessConcurrentExecutionsUtilization``. So **no
  ``InvocationModelErrors``**: a model failure on a serverless endpoint is seen only as ``Invocation5XXErrors``, "The
  number of InvokeEndpoint requests where the model returned a 5xx HTTP response code". ``ModelSetupTime`` ("The time
  it takes to launch new compute resources for a serverless endpoint", SageMaker API reference,
  RecommendationMetrics) is published once per cold start, in microseconds as ``ModelLatency`` (the unit is an
  inference from the invocation-metrics table, which lists both with the same unit). Source: SageMaker developer
  guide, "Alarms and logs for tracking metrics from serverless endpoints"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-monitoring.html).
- **Alarm evaluation.** An alarm takes the statistic of its metric over ``Period`` (or, with ``Metrics``,
  the one query whose ``ReturnData`` is true, metric math over the others), and compares it with
  ``Threshold`` by ``ComparisonOperator``. Without data, ``TreatMissingData`` decides: ``breaching`` is an
  alarm, ``notBreaching`` is not, ``missing`` is not (INSUFFICIENT_DATA, which rolls nothing back), and
  ``ignore``: "The current alarm state is maintained" (CloudWatch user guide, "Configuring how CloudWatch alarms
  treat missing data"). Percentile statistics are written ``pNN``; ``FILL(m, v)`` gives ``v`` where ``m`` has no data.
  Source: CloudWatch user guide, "Using Amazon CloudWatch alarms" and "Using math expressions with
  CloudWatch metrics"; "CloudWatch statistics definitions" (percentiles).

moto stores metric data but evaluates neither percentiles nor metric math, so ``Alarm`` does both here, on
the datapoints moto's CloudWatch holds. Offline bakes last seconds, so a rollout reads one period: everything
since the update began.
"""

from __future__ import annotations

import ast
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

NAMESPACE = "AWS/SageMaker"
VARIANT_NAME = "AllTraffic"
_UNITS = {"ModelLatency": "Microseconds", "ModelSetupTime": "Microseconds", "OverheadLatency": "Microseconds"}
# What a serverless endpoint publishes of the invocation metrics (the rest of its list is not emulated)
SERVERLESS_INVOCATION_METRICS = frozenset(
    {"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "ModelSetupTime", "OverheadLatency"}
)


def invocation_metrics(
    status: int | None, model_latency_seconds: float, serverless: bool = False, overhead_seconds: float = 0.0
) -> dict[str, float]:
    """What one invocation adds to each endpoint metric; ``status`` None: the model gave no answer (timeout).

    ``model_latency_seconds`` is the whole time the request took here; on a serverless endpoint ``overhead_seconds``
    of it went on waiting for a container, and is published as ``OverheadLatency`` instead."""
    answered = status is not None
    metrics = {
        "Invocations": 1.0,
        "InvocationModelErrors": float(not (answered and 200 <= status < 300)),
        "Invocation4XXErrors": float(answered and 400 <= status < 500),
        "Invocation5XXErrors": float(answered and 500 <= status < 600),
        "ModelLatency": model_latency_seconds * 1_000_000,
    }
    if serverless:
        metrics["ModelLatency"] = max(0.0, model_latency_seconds - overhead_seconds) * 1_000_000
        metrics["OverheadLatency"] = overhead_seconds * 1_000_000
        return {name: value for name, value in metrics.items() if name in SERVERLESS_INVOCATION_METRICS}
    return metrics


def model_setup_metrics(setup_seconds: float) -> dict[str, float]:
    """What one serverless cold start publishes: ``ModelSetupTime``, in microseconds."""
    return {"ModelSetupTime": setup_seconds * 1_000_000}


class EndpointMetrics:
    """Publishes the endpoint invocation metrics to CloudWatch (``PutMetricData``), buffered, as SageMaker does.

    ``overhead(endpoint_name)`` is None for an instance endpoint; for a serverless one, the seconds the request this
    thread just answered waited for a container: it publishes the serverless set."""

    def __init__(self, cloudwatch, overhead: Callable[[str], float | None] = lambda endpoint_name: None) -> None:
        self.cloudwatch, self.overhead = cloudwatch, overhead
        self._pending: list[dict] = []
        self._lock = threading.Lock()

    def record(self, endpoint_name: str, status: int | None, model_latency_seconds: float) -> None:
        overhead = self.overhead(endpoint_name)
        serverless = overhead is not None
        self._add(endpoint_name, invocation_metrics(status, model_latency_seconds, serverless, overhead or 0.0))

    def record_model_setup(self, endpoint_name: str, setup_seconds: float) -> None:
        """A serverless endpoint's cold start (container started, model loaded, ``/ping`` answered)."""
        self._add(endpoint_name, model_setup_metrics(setup_seconds))

    def _add(self, endpoint_name: str, metrics: dict[str, float]) -> None:
        now = datetime.now(UTC)
        dimensions = [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": VARIANT_NAME}]
        datapoints = [
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Timestamp": now,
                "Value": value,
                "Unit": _UNITS.get(name, "None"),
            }
            for name, value in metrics.items()
        ]
        with self._lock:
            self._pending.extend(datapoints)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for start in range(0, len(pending), 500):  # PutMetricData takes at most 1,000 metrics per call
            self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=pending[start : start + 500])


@dataclass(frozen=True)
class MetricQuery:
    """One metric and statistic an alarm reads (a ``MetricStat``, or the alarm's own metric)."""

    query_id: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str


# Reads a query's datapoints (the raw values) over the period being evaluated.
Datapoints = Callable[[MetricQuery], Sequence[float]]

_COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm as an ``AWS::CloudWatch::Alarm`` resource defines it (properties resolved)."""

    name: str
    queries: tuple[MetricQuery, ...]
    expression: str  # what the alarm compares: a query id, or metric math over the query ids
    threshold: float
    comparison: str
    treat_missing_data: str = "missing"

    @classmethod
    def from_properties(cls, properties: dict) -> Alarm:
        common = {
            "name": properties["AlarmName"],
            "threshold": float(properties["Threshold"]),
            "comparison": properties["ComparisonOperator"],
            "treat_missing_data": properties.get("TreatMissingData", "missing"),
        }
        if "MetricName" in properties:
            statistic = properties.get("Statistic") or properties["ExtendedStatistic"]
            query = MetricQuery(
                "m",
                properties["Namespace"],
                properties["MetricName"],
                _dimensions(properties.get("Dimensions", [])),
                statistic,
            )
            return cls(queries=(query,), expression="m", **common)
        queries, returned = [], []
        for item in properties["Metrics"]:
            if "MetricStat" in item:
                metric = item["MetricStat"]["Metric"]
                queries.append(
                    MetricQuery(
                        item["Id"],
                        metric["Namespace"],
                        metric["MetricName"],
                        _dimensions(metric.get("Dimensions", [])),
                        item["MetricStat"]["Stat"],
                    )
                )
            if item.get("ReturnData", True):
                returned.append(item.get("Expression", item["Id"]))
        if len(returned) != 1:
            raise ValueError(f"alarm {common['name']}: exactly one query must return data, not {len(returned)}")
        return cls(queries=tuple(queries), expression=returned[0], **common)

    def metric_names(self) -> set[str]:
        return {query.metric_name for query in self.queries}

    def value(self, datapoints: Datapoints) -> float | None:
        """The value compared with the threshold; None when there is no data."""
        series = {query.query_id: statistic(datapoints(query), query.statistic) for query in self.queries}
        return evaluate_expression(self.expression, series)

    def in_alarm(self, datapoints: Datapoints, in_alarm_before: bool = False) -> bool:
        """Whether the alarm is in ALARM now; ``in_alarm_before``: its state at the last evaluation (``ignore``)."""
        value = self.value(datapoints)
        if value is None:
            if self.treat_missing_data == "ignore":
                return in_alarm_before
            return self.treat_missing_data == "breaching"
        return _COMPARISONS[self.comparison](value, self.threshold)

    def describe(self, datapoints: Datapoints) -> str:
        value = self.value(datapoints)
        shown = "no data" if value is None else f"{value:g}"
        return f"alarm {self.name} went to ALARM ({self.expression} = {shown}, threshold {self.threshold:g})"


def _dimensions(items: list[dict]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((item["Name"], str(item["Value"])) for item in items))


def statistic(values: Sequence[float], name: str) -> float | None:
    """A CloudWatch statistic of ``values``: Sum, Average, Minimum, Maximum, SampleCount or a percentile pNN."""
    if not values:
        return None
    if name.startswith("p"):
        ordered = sorted(values)
        rank = math.ceil(float(name[1:]) / 100 * len(ordered))  # nearest rank
        return ordered[max(rank, 1) - 1]
    return {
        "Sum": sum,
        "Average": lambda v: sum(v) / len(v),
        "Minimum": min,
        "Maximum": max,
        "SampleCount": len,
    }[name](values)


_OPERATORS = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__, ast.Div: float.__truediv__}


def evaluate_expression(expression: str, series: dict[str, float | None]) -> float | None:
    """Metric math over one period: query ids, numbers, + - * /, and FILL(id, value). None: no data."""

    def value(node: ast.AST) -> float | None:
        if isinstance(node, ast.Name):
            return series[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = value(node.operand)
            return None if operand is None else -operand
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left), value(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Div) and right == 0:
                return None
            return _OPERATORS[type(node.op)](float(left), float(right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FILL":
            filled, default = (value(argument) for argument in node.args)
            return default if filled is None else filled
        raise ValueError(f"metric math the offline stack does not evaluate: {ast.unparse(node)!r}")

    return value(ast.parse(expression, mode="eval").body)


def moto_datapoints(since: datetime) -> Datapoints:
    """A reader of what moto's CloudWatch (in this process) holds since ``since``."""
    from moto.cloudwatch.models import cloudwatch_backends

    from offline_stack.sam_template import PSEUDO_PARAMETERS

    backend = cloudwatch_backends[PSEUDO_PARAMETERS["AWS::AccountId"]][PSEUDO_PARAMETERS["AWS::Region"]]
    start = _naive_utc(since)

    def datapoints(query: MetricQuery) -> list[float]:
        found = []
        for datum in list(backend.metric_data):
            if (datum.namespace, datum.name) != (query.namespace, query.metric_name):
                continue
            if _naive_utc(datum.timestamp) < start:
                continue
            if tuple(sorted((d.name, d.value) for d in datum.dimensions)) != query.dimensions:
                continue
            found.append(float(datum.value))
        return found

    return datapoints


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
