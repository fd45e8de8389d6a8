"""How the offline stack supervises a model container, as SageMaker supervises an endpoint instance: one decision
per health check (``/ping``), made by ``health_check`` and acted on by ``LocalEndpoints``."""

from __future__ import annotations

# Failed health checks in a row before a container that is alive but not answering is replaced
FAILED_PINGS_BEFORE_REPLACING = 3


def health_check(alive: bool, answered: bool, failed_pings: int, limit: int) -> tuple[int, bool]:
    """One supervision round for a container: (its failed pings in a row now, whether to replace it).

    A container that answers ``/ping`` is healthy again. One that does not is unhealthy at once; it is replaced
    when its process has died, or when it is alive but has failed ``limit`` checks in a row (stopped, wedged,
    deadlocked: alive is not the same as serving).
    """
    if alive and answered:
        return 0, False
    failed = failed_pings + 1
    return failed, not alive or failed >= limit
