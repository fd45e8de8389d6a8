"""The prediction API on loopback for a test: the SageMaker Runtime server with ``model``, the function behind
the API front (no route throttle), as the deployed API would route to it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from local.api_front import ApiFront
from local.control_plane import DUMMY_CREDENTIALS
from local.endpoint_server import EndpointServer
from local.execution_environments import ConcurrencyPool
from tests.conftest import ENDPOINT_NAME


@contextlib.contextmanager
def offline_api(model, concurrency: int = 1) -> Iterator[tuple[ApiFront, EndpointServer]]:
    with EndpointServer() as server:
        server.serve(ENDPOINT_NAME, model)
        environment = {
            **DUMMY_CREDENTIALS,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url,
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        pool = ConcurrencyPool("PredictFunction", concurrency, environment)
        try:
            pool.warm(concurrency)
            with ApiFront(pool, None) as front:
                yield front, server
        finally:
            pool.close()
