"""The offline supervisor's decision per health check (``offline_stack.supervision.health_check``): a
container whose process is alive but answers nothing is replaced too, after the checks SageMaker's would fail;
a dead one at once; one that answers again is healthy again. reliability/faults.py drills it with real
containers (killed, SIGSTOPped) against the offline stack."""

from __future__ import annotations

from offline_stack.local_endpoints import LocalEndpoints
from offline_stack.supervision import FAILED_PINGS_BEFORE_REPLACING, health_check

LIMIT = FAILED_PINGS_BEFORE_REPLACING


def _rounds(answers: list[tuple[bool, bool]]) -> list[tuple[int, bool]]:
    failed, out = 0, []
    for alive, answered in answers:
        failed, replace = health_check(alive, answered, failed, LIMIT)
        out.append((failed, replace))
    return out


def test_an_alive_container_that_stops_answering_is_replaced_after_three_failed_checks():
    assert LIMIT == LocalEndpoints.FAILED_PINGS_BEFORE_REPLACING == 3
    assert _rounds([(True, False)] * 3) == [(1, False), (2, False), (3, True)]


def test_a_dead_container_is_replaced_at_once():
    assert _rounds([(False, False)]) == [(1, True)]
    assert _rounds([(True, False), (False, False)]) == [(1, False), (2, True)]


def test_a_container_that_answers_again_starts_counting_from_zero():
    assert _rounds([(True, False), (True, False), (True, True), (True, False), (True, False)]) == [
        (1, False),
        (2, False),
        (0, False),
        (1, False),
        (2, False),
    ]


def test_a_healthy_container_is_left_alone():
    assert _rounds([(True, True)] * 5) == [(0, False)] * 5
