"""README.md stays one screen that starts with what a newcomer needs, and every relative link and anchor in it and in
docs/ leads somewhere: a page moved or a heading renamed fails here, naming the document and the link.
(tests/unit/test_documented_commands.py checks that the make targets and flags they name exist.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from offline_stack.sam_template import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCUMENTS = [README, *sorted((PROJECT_ROOT / "docs").glob("*.md")), PROJECT_ROOT / "CONTRIBUTING.md"]
DOCUMENTS += [PROJECT_ROOT / "SECURITY.md"]
README_MAX_LINES = 200
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks (a link in code is an example, not a link)."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces to
    hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", _prose(path.read_text()), flags=re.M)
    return {anchor(heading) for heading in headings}


def _links() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(PROJECT_ROOT)), target)
        for path in DOCUMENTS
        for target in LINK.findall(_prose(path.read_text()))
        if not target.startswith(("http://", "https://", "mailto:"))
    ]


@pytest.mark.parametrize(("document", "target"), _links())
def test_every_relative_link_and_anchor_resolves(document, target):
    source = PROJECT_ROOT / document
    path, _, fragment = target.partition("#")
    resolved = (source.parent / path).resolve() if path else source
    assert resolved.exists(), f"{document} links to {target}: no such file"
    if fragment:
        assert fragment in anchors(resolved), f"{document} links to {target}: no heading with that anchor"


def test_the_readme_is_one_screen_that_starts_with_prerequisites_and_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES, "README.md grew past one screen: move the detail to docs/"
    sections = re.findall(r"^## (.+)$", _prose(text), flags=re.M)
    assert sections[:2] == ["Prerequisites", "Quick start"], sections
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in quick_start and "make test" in quick_start


def test_every_page_of_docs_is_in_the_readmes_map():
    linked = set(LINK.findall(README.read_text()))
    for page in sorted((PROJECT_ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in linked, f"docs/{page.name} is not linked from README.md's map"


def test_the_anchor_rule_is_githubs():
    assert anchor("Sizing it: `make plan`") == "sizing-it-make-plan"
    assert anchor("The containers' own framework versions") == "the-containers-own-framework-versions"
    assert anchor("Promotion between stages") == "promotion-between-stages"
