"""Add the package index's SHA-256 of every distribution file to a lock file's pins (``make lock``).

    python -m ops.lock requirements-lock.txt locks/awscli.txt ...
    python -m ops.lock locks/checkov.txt --from-report REPORT   # pins from `pip install --dry-run --report REPORT`

Each ``name==version`` line gets a ``--hash`` for every wheel and sdist the index publishes for that version (all
platforms, so the same file serves Linux, macOS and Windows), from the index's JSON API (PEP 691). With a hash on
every line, pip installs in hash-checking mode: a file that differs from the one published when the lock was
written (a compromised mirror, a re-uploaded release) is refused, and so is any dependency the lock lacks.
Comments stay; lines are rewritten in place. Needs the package registry; nothing else does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

INDEX = "https://pypi.org/simple/"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


def published_hashes(name: str, version: str) -> list[str]:
    """The sha256 of every file the index holds for ``name`` ``version``, sorted."""
    url = f"{INDEX}{canonicalize_name(name)}/"  # always the https index above
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
        files = json.load(answer)["files"]
    wanted = Version(version)
    hashes = {f["hashes"]["sha256"] for f in files if _version_of(f["filename"]) == wanted and not f.get("yanked")}
    if not hashes:
        raise LookupError(f"{name}=={version}: the index publishes no file of that version")
    return sorted(hashes)


def _version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None


def pinned(lines: list[str]) -> list[tuple[str, str, str]]:
    """(line as pinned, name, version) of each requirement; continuation and hash lines dropped."""
    found = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith(("#", "--hash")):
            continue
        match = PIN.match(text)
        if match is None:
            raise ValueError(f"not an exact pin (name==version): {text!r}")
        requirement = text.split("\\")[0].strip()
        found.append((requirement, match["name"], match["version"]))
    return found


def locked_text(text: str, hashes_of=published_hashes) -> str:
    """``text`` with every pin followed by its hashes; comments kept where they were."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--hash"):
            continue
        if not stripped or stripped.startswith("#"):
            out.append(line)
            continue
        ((requirement, name, version),) = pinned([line])
        hashes = hashes_of(name, version)
        out.append(f"{requirement} \\")
        out += [
            f"    --hash=sha256:{digest}" + (" \\" if i < len(hashes) - 1 else "") for i, digest in enumerate(hashes)
        ]
    return "\n".join(out) + "\n"


def pins_from_report(report: dict) -> list[str]:
    """``name==version`` of everything a ``pip install --dry-run --ignore-installed --report`` would install."""
    pins = [f"{item['metadata']['name']}=={item['metadata']['version']}" for item in report["install"]]
    return sorted(pins, key=str.lower)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lock_files", type=Path, nargs="+")
    parser.add_argument(
        "--from-report",
        type=Path,
        help="replace the pins of the (one) lock file, keeping its leading comments, by a pip install report's",
    )
    args = parser.parse_args(argv)
    if args.from_report:
        if len(args.lock_files) != 1:
            parser.error("--from-report writes one lock file")
        path = args.lock_files[0]
        header = [line for line in (path.read_text().splitlines() if path.exists() else []) if line.startswith("#")]
        pins = pins_from_report(json.loads(args.from_report.read_text()))
        path.write_text("\n".join(header + pins) + "\n")
    for path in args.lock_files:
        try:
            path.write_text(locked_text(path.read_text()))
        except (LookupError, ValueError, OSError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 2
        print(f"{path}: {len(pinned(path.read_text().splitlines()))} pins hashed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
