"""The control-plane functions' events, declared as the requests they become: every problem is reported, by name.

A request is a frozen dataclass; a field declared with ``from_event(check)`` may come from the event, and
``check`` says what it accepts. ``read_event`` fills each field from the event, else from the function's
defaults (the settings attribute of the same name), else from the field's own default, and refuses unknown,
missing or invalid fields all at once. What a field accepts can depend on the deployment (the bucket): the
reader takes such checks as arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

from dog_breeds.errors import InvalidEventError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Check = Callable[[Any], str | None]  # returns what is wrong, or None
Request = TypeVar("Request", bound="DataclassInstance")


def deployment_specific(value: Any) -> str | None:
    """The declared check of a field whose accepted values depend on the deployment: the reader must be given one."""
    return "cannot be checked: the function reads this field without the deployment's check"


def from_event(check: Check, default: Any = MISSING, **options: Any) -> Any:
    """A request field the event may set; ``check`` says what it accepts."""
    return field(default=default, metadata={"check": check}, **options)


def read_event(
    request: type[Request],
    event: Any,
    defaults: object | None = None,
    checks: Mapping[str, Check] | None = None,
    ignored: tuple[str, ...] = (),
) -> Request:
    """``event`` as a ``request``; fields it leaves out come from ``defaults``' same-named attributes.

    ``checks`` replaces the declared check of deployment-specific fields; ``ignored`` names fields that other
    steps hand on and this one accepts without using.
    """
    declared = {spec.name: spec.metadata["check"] for spec in fields(request) if "check" in spec.metadata}
    accepted = {**declared, **(checks or {}), **{name: _anything for name in ignored}}
    required = tuple(
        spec.name
        for spec in fields(request)
        if spec.name in declared
        and spec.default is MISSING
        and spec.default_factory is MISSING
        and not hasattr(defaults, spec.name)
    )
    given = read_fields(event, accepted, required)
    values = {}
    for spec in fields(request):
        if spec.name in given:
            values[spec.name] = given[spec.name]
        elif defaults is not None and hasattr(defaults, spec.name):
            values[spec.name] = getattr(defaults, spec.name)
    return request(**values)


def _anything(value: Any) -> str | None:
    return None


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
