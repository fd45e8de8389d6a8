"""What the HTTP API puts around the logic: error responses from the one table, and request metrics."""

from __future__ import annotations

import json
import time

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from dog_breeds.errors import UNEXPECTED_ERROR, http_error

JSON = "application/json"
# Read at cold start (this module is imported then), not on every request.
_METRICS_DISABLED = is_metrics_disabled()


def error_response(exc: Exception, request_id: str, logger: Logger) -> Response:
    """Answer ``exc`` as the error table says; the details go to the log, never to the caller."""
    error = http_error(exc)
    if error.code == UNEXPECTED_ERROR.code:
        logger.exception("request failed unexpectedly", extra={"error_code": error.code})
    elif error.status >= 500 or error.status == 429:
        logger.warning("endpoint call failed", extra={"error_code": error.code, "cause": repr(exc.__cause__ or exc)})
    else:
        logger.info("request refused", extra={"error_code": error.code, "reason": error.message})
    return Response(status_code=error.status, content_type=JSON, body=json.dumps(error.body(request_id)))


def request_metrics(metrics: Metrics):
    """Middleware that records latency and the outcome (``Success`` or the error code) of every request."""

    def measure(app, next_middleware):
        started = time.perf_counter()
        outcome = "Success"
        try:
            return next_middleware(app)
        except Exception as exc:
            outcome = http_error(exc).code
            raise
        finally:
            if not _METRICS_DISABLED:  # Powertools would still flush every 100 metrics added
                metrics.add_metric(
                    name="Latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
                )
            _count("Requests", "Outcome", outcome)

    return measure


def record_predicted_breed(metrics: Metrics, predictions: list[dict]) -> None:
    if predictions:
        _count("PredictedBreed", "Breed", predictions[0]["breed"])


def _count(name: str, dimension: str, value: str) -> None:
    """One count in its own EMF blob, so its dimension does not apply to the request's other metrics."""
    if _METRICS_DISABLED:  # single_metric ignores POWERTOOLS_METRICS_DISABLED on its own
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name=dimension, value=value)
