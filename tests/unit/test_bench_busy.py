"""make bench says when the machine was busy: the matmul peak at the run's end against its start."""

from benchmarks.__main__ import BUSY_DRIFT, busy, summary


def _results(start: float, end: float) -> dict:
    return {
        "when": "2026-12-07T00:00:00+00:00",
        "machine": {"cpu_count": 2, "torch": "2.x"},
        "matmul_peak_gflops": start,
        "matmul_peak_gflops_at_end": end,
        "endpoint_requests": [],
    }


def test_a_peak_that_moved_more_than_the_drift_flags_every_timed_row():
    rows = [{"target": "t", "measured": "1", "bar": "<= 2", "result": "pass"}]
    assert busy(_results(100, 100 * (1 + BUSY_DRIFT) + 1)) is not None
    text = "\n".join(summary(_results(100, 70), rows))
    assert "**The machine was busy**" in text and "| pass (busy run) |" in text
    quiet = "\n".join(summary(_results(100, 95), rows))
    assert busy(_results(100, 95)) is None and "busy" not in quiet and "| pass |" in quiet
