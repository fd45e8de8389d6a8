"""Every statement the least-privilege suite does not exercise offline is listed with its reason, and its exact shape
is pinned here: an exempt statement that gains an action, a resource or loses a condition fails this test, and so
does a new exemption nobody pinned (tests/support/least_privilege_exemptions.py says why each one is exempt).

The shapes are in tests/unit/exempt_statements.json, as policies/*.json spell them. After a deliberate change, write
them again and review the diff:

    PYTHONPATH=.:layers/shared/python:training_jobs python -m tests.unit.test_exempt_statements
"""

from __future__ import annotations

import json

from offline_stack.sam_template import PROJECT_ROOT
from tests.support.least_privilege_exemptions import NOT_EXERCISED_OFFLINE

PINNED = PROJECT_ROOT / "tests" / "unit" / "exempt_statements.json"


def exempt_statements() -> dict[str, dict[str, dict]]:
    """{policy file: {Sid: statement}} for every statement whose Sid is exempt, as the file spells it."""
    found: dict[str, dict[str, dict]] = {}
    for path in sorted((PROJECT_ROOT / "policies").glob("*.json")):
        for statement in json.loads(path.read_text())["Statement"]:
            if statement["Sid"] in NOT_EXERCISED_OFFLINE:
                found.setdefault(path.name, {})[statement["Sid"]] = statement
    return found


def test_every_exempt_statement_has_its_pinned_shape():
    pinned = json.loads(PINNED.read_text())
    current = exempt_statements()
    changed = sorted(
        f"{name}:{sid}"
        for name in set(pinned) | set(current)
        for sid in set(pinned.get(name, {})) | set(current.get(name, {}))
        if pinned.get(name, {}).get(sid) != current.get(name, {}).get(sid)
    )
    assert not changed, f"exempt statements changed (review, then pin again): {changed}"


def test_every_exemption_names_a_statement_and_says_why():
    used = {sid for statements in exempt_statements().values() for sid in statements}
    assert set(NOT_EXERCISED_OFFLINE) == used, "an exemption no policy uses: remove it"
    assert all(len(reason) > 30 for reason in NOT_EXERCISED_OFFLINE.values())


if __name__ == "__main__":
    PINNED.write_text(json.dumps(exempt_statements(), indent=1, sort_keys=True) + "\n")
    print(f"{PINNED.relative_to(PROJECT_ROOT)}: pinned")
