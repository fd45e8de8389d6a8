"""Cached AWS client factory: one client per service and configuration per execution environment.

Clients are created at cold start (module scope in the handlers) with explicit timeouts and a
bounded retry budget. Endpoints come from botocore's own ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_<SERVICE>`` variables, which is how the offline stack points them at loopback.
The clients are botocore's, the same objects boto3 returns, made without importing boto3: boto3 pulls in
its resource layer and s3transfer, about a third of the prediction function's cold start (``make bench``).
"""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore.config import Config

from dog_breeds.settings import ClientTimeouts

DEFAULT_TIMEOUTS = ClientTimeouts()
# Every AWS API the functions call. `make build` keeps only these services' models in the built botocore
# (ops/prune_botocore_models.py): the other ~440 are 27 MB of layer that each cold start lists.
AWS_SERVICES = frozenset({"application-autoscaling", "s3", "sagemaker", "sagemaker-runtime"})


@cache
def aws_client(service_name: str, timeouts: ClientTimeouts = DEFAULT_TIMEOUTS):
    """Return the shared client for ``service_name`` configured with ``timeouts``."""
    if service_name not in AWS_SERVICES:
        raise ValueError(f"{service_name!r} is not in AWS_SERVICES {sorted(AWS_SERVICES)}: add it there first")
    config = Config(
        connect_timeout=timeouts.connect_seconds,
        read_timeout=timeouts.read_seconds,
        retries={"mode": "standard", "total_max_attempts": timeouts.max_attempts},
        tcp_keepalive=True,
    )
    return botocore.session.get_session().create_client(service_name, config=config)
