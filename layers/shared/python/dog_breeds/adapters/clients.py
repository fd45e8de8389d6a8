"""Cached boto3 client factory: one client per service and configuration per execution environment.

Clients are created at cold start (module scope in the handlers) with explicit timeouts and a
bounded retry budget. Endpoints come from boto3's own ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_<SERVICE>`` variables, which is how the offline stack points them at loopback.
"""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from dog_breeds.settings import EndpointTimeouts

DEFAULT_TIMEOUTS = EndpointTimeouts()


@cache
def aws_client(service_name: str, timeouts: EndpointTimeouts = DEFAULT_TIMEOUTS):
    """Return the shared client for ``service_name`` configured with ``timeouts``."""
    config = Config(
        connect_timeout=timeouts.connect_seconds,
        read_timeout=timeouts.read_seconds,
        retries={"mode": "standard", "total_max_attempts": timeouts.max_attempts},
        tcp_keepalive=True,
    )
    return boto3.session.Session().client(service_name, config=config)
