"""Typed configuration, read once at cold start.

A missing or malformed variable raises ``SettingsError`` naming the variable, so a bad
deployment fails at start-up instead of on the first request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

# SageMaker spells endpoint ARNs with the name in lower case, and IAM compares resources
# case-sensitively: a mixed-case name would be denied by the function's own policy.
ENDPOINT_NAME_PATTERN = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
HOST_NAME_PATTERN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)

DEFAULT_TOP_K = 5
MAX_TOP_K = 20


class SettingsError(RuntimeError):
    """A configuration variable is missing or malformed."""


@dataclass(frozen=True)
class EndpointTimeouts:
    """How long one endpoint call may take: connect, read, and attempts in all (bounded retries)."""

    connect_seconds: float = 2.0
    read_seconds: float = 10.0
    max_attempts: int = 2


@dataclass(frozen=True)
class PredictSettings:
    endpoint_name: str
    max_image_bytes: int
    url_allowed_hosts: frozenset[str]
    timeouts: EndpointTimeouts

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PredictSettings:
        env = os.environ if environ is None else environ
        endpoint_name = _required(env, "ENDPOINT_NAME")
        if not ENDPOINT_NAME_PATTERN.match(endpoint_name):
            raise SettingsError(
                f"ENDPOINT_NAME={endpoint_name!r} is not a valid endpoint name: use 1-63 lower-case "
                "letters, digits and hyphens (SageMaker lower-cases endpoint ARNs, and IAM matches case)"
            )
        hosts = frozenset(h.strip().lower() for h in env.get("URL_ALLOWED_HOSTS", "").split(",") if h.strip())
        bad_hosts = sorted(h for h in hosts if not HOST_NAME_PATTERN.match(h))
        if bad_hosts:
            raise SettingsError(f"URL_ALLOWED_HOSTS has entries that are not host names: {bad_hosts}")
        return cls(
            endpoint_name=endpoint_name,
            max_image_bytes=_number(env, "MAX_IMAGE_BYTES", int, 4 * 1024 * 1024, minimum=1),
            url_allowed_hosts=hosts,
            timeouts=EndpointTimeouts(
                connect_seconds=_number(env, "ENDPOINT_CONNECT_TIMEOUT_SECONDS", float, 2.0, minimum=0.1),
                read_seconds=_number(env, "ENDPOINT_READ_TIMEOUT_SECONDS", float, 10.0, minimum=0.1),
                max_attempts=_number(env, "ENDPOINT_MAX_ATTEMPTS", int, 2, minimum=1),
            ),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required and is not set")
    return value


def _number(env: Mapping[str, str], name: str, kind: type, default, *, minimum):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise SettingsError(f"environment variable {name}={raw!r} must be at least {minimum}")
    return value
