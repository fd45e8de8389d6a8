"""The prediction API alone on loopback, for one model: what tests of the API and ``make plan --validate`` run.

The SageMaker Runtime server serves ``model`` as the template's endpoint; ``concurrency`` execution
environments of PredictFunction sit behind the API front, with API Gateway's route throttle when one is given.
The whole offline stack (``OfflineStack``) is for when the control plane and training matter too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from offline_stack.api_front import ApiFront, RouteThrottle
from offline_stack.aws_rules.iam import Roles
from offline_stack.control_plane import DUMMY_CREDENTIALS
from offline_stack.endpoint_server import EndpointServer
from offline_stack.execution_environments import ConcurrencyPool
from offline_stack.sam_template import SamTemplate
from offline_stack.stack import api_authorization


@contextlib.contextmanager
def offline_api(
    model,
    concurrency: int = 1,
    throttle: RouteThrottle | None = None,
    auth: Mapping[str, str] | None = None,
    roles: Roles | None = None,
) -> Iterator[tuple[ApiFront, EndpointServer]]:
    """``auth``: the AuthMode parameters (``AuthMode``, ``JwtIssuer``, ``JwtAudience``) to enforce, None: open;
    ``roles``: the template roles IAM knows beside the operator (none unless given)."""
    endpoint_name = SamTemplate.load().parameters["EndpointName"]
    with EndpointServer() as server:
        server.serve(endpoint_name, model)
        environment = {
            **DUMMY_CREDENTIALS,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url,
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        pool = ConcurrencyPool("PredictFunction", concurrency, environment)
        # started on the first page load; its contract says what this API asks of callers (open without ``auth``)
        page_environment = {**environment, "AUTH_MODE": (auth or {}).get("AuthMode", "NONE")}
        page_pool = ConcurrencyPool("PageFunction", 2, page_environment)
        try:
            pool.warm(concurrency)
            authorization, sign = api_authorization(auth, roles or Roles([])) if auth else (None, None)
            front = ApiFront(pool, throttle, authorization=authorization, sign=sign, page_pool=page_pool)
            with front:
                yield front, server
        finally:
            pool.close()
            page_pool.close()
