"""docs/aws-semantics.md is held to offline_stack/aws_rules/: every public name there has a row, every name a row
gives exists, and every rule carries its source's URL and AWS's words or the word inference.

A rule function added to an aws_rules module without a row fails here, as does a row left behind by a rename."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "offline_stack" / "aws_rules"
TABLE = ROOT / "docs" / "aws-semantics.md"
MODULES = sorted(path.stem for path in RULES.glob("*.py") if path.stem != "__init__")
# `aws_rules/iam.py` (`Policy`, `Role`): a module and the names the row gives for it
WHERE = re.compile(r"`aws_rules/(\w+)\.py`(?:\s*\(([^)]*)\))?")


def rows(section: str) -> list[list[str]]:
    """The body rows of the table under the heading ``section``, as lists of cells."""
    text = TABLE.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


RULE_ROWS = rows("Rules")
PLUMBING_ROWS = rows("Plumbing: the names in `aws_rules/` that state no rule of their own")


def named(cells: list[str]) -> dict[str, set[str]]:
    """module -> the names a row's Where cell gives for it."""
    found: dict[str, set[str]] = {}
    for module, names in WHERE.findall(cells[-2] if len(cells) == 5 else cells[-1]):
        found.setdefault(module, set()).update(re.findall(r"`(\w+)`", names))
    return found


def defined(module: str) -> tuple[set[str], set[str]]:
    """(the module's public functions, classes and UPPER_CASE constants; every top-level name it defines)."""
    tree = ast.parse((RULES / f"{module}.py").read_text())
    definitions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    public = {name for name in definitions | {n for n in assigned if n.isupper()} if not name.startswith("_")}
    return public, definitions | assigned


def test_the_table_has_a_row_for_every_rule_and_the_rows_parse():
    assert len(RULE_ROWS) >= 40 and all(len(cells) == 5 for cells in RULE_ROWS), [c[:1] for c in RULE_ROWS]
    assert all(len(cells) == 3 for cells in PLUMBING_ROWS)


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_of_each_rules_module_is_in_a_row(module):
    public, _ = defined(module)
    listed = set().union(*(named(cells).get(module, set()) for cells in RULE_ROWS + PLUMBING_ROWS))
    assert public - listed == set(), f"aws_rules/{module}.py: add a row to docs/aws-semantics.md for these"


@pytest.mark.parametrize("cells", RULE_ROWS + PLUMBING_ROWS, ids=lambda cells: cells[1][:40])
def test_every_name_a_row_gives_exists(cells):
    for module, names in named(cells).items():
        assert module in MODULES, f"no aws_rules/{module}.py"
        _, everything = defined(module)
        assert names - everything == set(), f"aws_rules/{module}.py has no {sorted(names - everything)}"


@pytest.mark.parametrize("cells", RULE_ROWS, ids=lambda cells: cells[1][:40])
def test_every_rule_carries_its_url_and_awss_words_or_says_it_is_an_inference(cells):
    service, rule, source, _where, offline_test = cells
    assert service and offline_test
    assert "https://" in source, "name the page by its URL"
    assert '"' in rule or "inference" in rule.lower(), "quote AWS's sentence, or say the rule is an inference"


@pytest.mark.parametrize("cells", RULE_ROWS, ids=lambda cells: cells[1][:40])
def test_every_test_file_a_row_names_exists(cells):
    tests = {path.name for path in (ROOT / "tests").rglob("test_*.py")}
    for name in re.findall(r"(test_\w+\.py)", cells[4]):
        assert name in tests, f"{name} is not a test file"


def test_a_rule_added_without_a_row_is_found():
    # The check above, on a module that gains a function: what a forgotten row looks like
    public, _ = defined("kms")
    listed = set().union(*(named(cells).get("kms", set()) for cells in RULE_ROWS + PLUMBING_ROWS))
    assert public <= listed
    assert {*public, "a_new_refusal"} - listed == {"a_new_refusal"}
