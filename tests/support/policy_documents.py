"""A template's inline policy as its file in ``policies/`` reads: each ``!Sub "..."`` written as its string."""

from __future__ import annotations


def as_policy_document(value):
    """The YAML of a template's policy with every ``{"Fn::Sub": "..."}`` replaced by its string, recursively."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return value["Fn::Sub"]
    if isinstance(value, dict):
        return {k: as_policy_document(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_policy_document(v) for v in value]
    return value
