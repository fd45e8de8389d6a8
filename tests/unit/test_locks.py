"""Every venv the project makes installs from a lock file whose every pin carries the index's hashes, so pip runs
in hash-checking mode: a file that differs from the published one, or a dependency the lock lacks, is refused."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from offline_stack.sam_template import PROJECT_ROOT
from ops.lock import locked_text, pinned

LAYER_LOCK = PROJECT_ROOT / "layers/shared/python/requirements.txt"  # what sam build installs into the layer
LOCK_FILES = sorted([PROJECT_ROOT / "requirements-lock.txt", LAYER_LOCK, *(PROJECT_ROOT / "locks").glob("*.txt")])
MAKEFILE = (PROJECT_ROOT / "Makefile").read_text()


def _lock(path) -> dict[str, str]:
    return {canonicalize_name(name): version for _, name, version in pinned(path.read_text().splitlines())}


def _hashed_pins(path) -> list[tuple[str, int]]:
    """(requirement, number of hashes) per pin, read the way pip reads the file (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", path.read_text())
    return [
        (line.split()[0], line.count("--hash=sha256:"))
        for line in joined.splitlines()
        if line.strip() and not line.startswith("#")
    ]


@pytest.mark.parametrize("path", LOCK_FILES, ids=lambda p: p.name)
def test_every_pin_of_every_lock_file_carries_hashes(path):
    pins = _hashed_pins(path)
    assert pins, f"{path.name} pins nothing"
    assert [requirement for requirement, hashes in pins if hashes == 0] == []
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+(\[[^\]]*\])?==\S+", requirement) for requirement, _ in pins)


def test_the_dev_lock_satisfies_every_requirement_of_requirements_dev():
    lock = _lock(PROJECT_ROOT / "requirements-lock.txt")
    for line in (PROJECT_ROOT / "requirements-dev.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            version = lock.get(canonicalize_name(requirement.name))
            assert version is not None, f"{requirement.name} is not in requirements-lock.txt"
            assert requirement.specifier.contains(version, prereleases=True), (str(requirement), version)


def test_the_lambda_layer_pins_the_versions_the_tests_run():
    lock, layer = _lock(PROJECT_ROOT / "requirements-lock.txt"), _lock(LAYER_LOCK)
    assert {"aws-lambda-powertools", "boto3", "botocore", "aws-xray-sdk"} <= set(layer)
    assert {name: version for name, version in layer.items() if lock.get(name) != version} == {}


def test_make_lock_rehashes_the_layer_too():
    assert "layers/shared/python/requirements.txt" in re.search(r"^lock:.*\n\t(.*)", MAKEFILE, re.MULTILINE)[1]


def test_every_pip_install_of_the_makefile_is_hash_checked_from_a_lock_file():
    installs = re.findall(r"pip install[^\n]*|\$\(PIP_LOCKED\) \S+", MAKEFILE)
    assert installs
    for install in installs:
        if install.startswith("pip install"):
            assert install.startswith("pip install --quiet --require-hashes -r"), install
        else:
            locked = install.split()[-1]
            assert (PROJECT_ROOT / locked).is_file(), locked


def test_rehashing_keeps_comments_and_gives_each_pin_its_hashes():
    text = "# why\nboto3==1.0 \\\n    --hash=sha256:old\nrequests[socks]==2.0\n"
    published = {("boto3", "1.0"): ["aa", "bb"], ("requests", "2.0"): ["cc"]}
    out = locked_text(text, hashes_of=lambda name, version: published[(name, version)])
    assert out == (
        "# why\nboto3==1.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n"
        "requests[socks]==2.0 \\\n    --hash=sha256:cc\n"
    )
    with pytest.raises(ValueError, match="not an exact pin"):
        locked_text("boto3>=1.0\n", hashes_of=lambda *_: ["aa"])
