"""Validate the events of the control-plane functions: every problem is reported, by field name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dog_breeds.errors import InvalidEventError

Check = Callable[[Any], str | None]  # returns what is wrong, or None


def read_fields(event: Any, checks: Mapping[str, Check], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return the event's known fields; refuse unknown, missing or invalid ones, naming all of them."""
    if not isinstance(event, dict):
        raise InvalidEventError(f"the event must be a JSON object with fields from {sorted(checks)}")
    problems = [f"unknown field {name!r}" for name in sorted(set(event) - set(checks))]
    problems += [f"missing field {name!r}" for name in required if name not in event]
    for name, value in event.items():
        if name in checks and (problem := checks[name](value)):
            problems.append(f"{name}: {problem}")
    if problems:
        raise InvalidEventError("invalid event: " + "; ".join(problems) + f" (accepted fields: {sorted(checks)})")
    return dict(event)


def whole_number(low: int, high: int) -> Check:
    def check(value):
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"must be a whole number from {low} to {high}"

    return check


def positive_number(value) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return None if ok else "must be a number greater than 0"


def boolean(value) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def text_matching(pattern, description: str) -> Check:
    def check(value):
        return None if isinstance(value, str) and pattern.fullmatch(value) else f"must be {description}"

    return check
