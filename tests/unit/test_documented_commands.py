"""The commands README.md and docs/ tell people to run exist: every `make <target>` in their code names a target of
the Makefile, and every `--flag` given to the project's own commands (``python -m ops.*``, the training scripts, a
``make`` target's ``ARGS``) is an option one of them defines. So a documented flag or target that does not exist
cannot come back. Commands of other tools (sam, aws, pip, git, docker, curl, torchrun, pytest) are theirs to check.
"""

from __future__ import annotations

import argparse
import re

import pytest

from breed_classifier.cli import add_hyperparameter_arguments
from offline_stack.sam_template import PROJECT_ROOT

DOCUMENTS = [
    PROJECT_ROOT / "README.md",
    *sorted((PROJECT_ROOT / "docs").glob("*.md")),
    PROJECT_ROOT / "CONTRIBUTING.md",
]
EXTERNAL = {"sam", "aws", "pip", "git", "docker", "curl", "torchrun", "pytest", "gh", "npx", "openapi-generator-cli"}
PROJECT_CODE = ("ops", "offline_stack", "training_jobs", "benchmarks", "reliability", "tests")


def _code(text: str) -> list[str]:
    """Every line of fenced code blocks and every inline code span."""
    lines = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        lines += block.splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += re.findall(r"`([^`\n]+)`", prose)
    return lines


def _targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):", (PROJECT_ROOT / "Makefile").read_text(), flags=re.M))


def _project_flags() -> set[str]:
    found: set[str] = set()
    for folder in PROJECT_CODE:
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", path.read_text()))
    parser = argparse.ArgumentParser()
    add_hyperparameter_arguments(parser)
    found |= {option for action in parser._actions for option in action.option_strings}
    return found


def _commands() -> list[tuple[str, str]]:
    """(document, code line) for every line that runs something."""
    return [
        (path.name, line.strip())
        for path in DOCUMENTS
        if path.exists()
        for line in _code(path.read_text())
        if line.strip()
    ]


COMMANDS = _commands()


def test_every_documented_make_target_exists():
    targets = _targets()
    named = {
        (document, target)
        for document, line in COMMANDS
        for target in re.findall(r"(?:^|[\s;(&|$])make ([a-z][a-z0-9-]*)", line)
    }
    assert named, "the documents name make targets"
    missing = sorted(f"{document}: make {target}" for document, target in named if target not in targets)
    assert not missing, f"documented targets the Makefile lacks: {missing}"


def _sam_targets() -> set[str]:
    """Make targets whose ARGS go to the SAM CLI (their recipe runs ``sam``)."""
    recipes = re.findall(
        r"^([a-z][a-z0-9-]*):[^\n]*\n((?:\t[^\n]*\n)*)", (PROJECT_ROOT / "Makefile").read_text(), flags=re.M
    )
    return {target for target, recipe in recipes if re.search(r"\bsam (deploy|build|local)", recipe)}


def _program(line: str) -> str:
    words = [w for w in re.split(r"\s+", line) if w and not re.match(r"^[A-Z_][A-Z0-9_]*=", w)]
    return words[0].rsplit("/", 1)[-1] if words else ""


def test_every_flag_given_to_the_projects_own_commands_is_one_they_define():
    flags, sam_targets = _project_flags(), _sam_targets()
    missing, checked = set(), 0
    for document, raw in COMMANDS:
        line = re.split(r"\s#\s", raw, maxsplit=1)[0]  # a comment describes, it does not run
        program = _program(line.lstrip("$ "))
        target = re.search(r"\bmake ([a-z][a-z0-9-]*)", line)
        if program == "make" and target and target.group(1) in sam_targets:
            continue
        if program in EXTERNAL or not program:
            continue
        if not (program in ("make", "python", "python3", "python3.11", "python3.12") or program.endswith(".py")):
            continue
        if program.startswith("python") and re.search(r"-m (pip|pytest|venv|compileall)\b", line):
            continue
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line):
            checked += 1
            if flag not in flags:
                missing.add(f"{document}: {flag} in `{line[:90]}`")
    assert not missing, f"documented flags no project command defines: {sorted(missing)}"
    assert checked > 20, "the documents' flags were read"


@pytest.mark.parametrize(("line", "found"), [("make test", "test"), ("`DATA_DIR=x make demo`", "demo")])
def test_the_check_reads_targets_where_they_are_written(line, found):
    assert re.findall(r"(?:^|[\s;(&|$`])make ([a-z][a-z0-9-]*)", line) == [found]
