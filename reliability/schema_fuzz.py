"""The published contract against the API that publishes it: schemathesis generates requests from
``GET /openapi.json`` (valid ones, and ones the schema forbids) and checks every answer: no 5xx, statuses and
content types the document lists, bodies matching its schemas, and schema-invalid requests refused.

Two of schemathesis's checks are left out, each for a reason AWS or the image format gives:

- ``positive_data_acceptance``: a schema cannot say "a decodable JPEG or PNG"; schema-valid bytes that are not an
  image are refused with the 422 the document lists for exactly that.
- ``unsupported_method``: HTTP APIs answer a method no route has with 404, not 405
  (``offline_stack/aws_rules/api_gateway.py``).

The route is fuzzed open (schemathesis cannot sign), so the contract it is given is the one the API serves with its
security removed, as a stage deployed with ``AuthMode=NONE`` serves it. Who may call is tested against the
authorizer itself (tests/integration/test_api_auth.py), signatures and tokens included.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

EXCLUDED_CHECKS = ("positive_data_acceptance", "unsupported_method")


@dataclass
class SchemaFuzz:
    cases: int
    failures: list[str]
    output: str

    @property
    def passed(self) -> bool:
        return not self.failures and self.cases > 0


def fuzz_schema(api_url: str, max_examples: int, seed: int = 2026) -> SchemaFuzz:
    """Run schemathesis against ``api_url`` (an API whose POST /predictions needs no credentials), with the
    contract it serves, opened as the route is."""
    with urllib.request.urlopen(f"{api_url}/openapi.json", timeout=30) as answer:  # noqa: S310 (loopback)
        contract = json.loads(answer.read())
    contract.pop("security", None)
    for operations in contract["paths"].values():
        for operation in operations.values():
            operation["security"] = []
    scratch = tempfile.TemporaryDirectory(prefix="schemathesis-")
    opened = Path(scratch.name) / "openapi.json"
    opened.write_text(json.dumps(contract))
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        str(opened),
        "--url",
        api_url,
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--request-timeout",
        "30",
        "--no-color",
    ]
    # schemathesis keeps the failures it found under .schemathesis/ in its working directory and replays them
    # first next time; each run here starts from the seed alone, and leaves nothing in the checkout
    with scratch:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False, cwd=scratch.name)
    output = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", output)
    failures = re.findall(r"^\s*❌ (\S+ .+?): \d+$", output, flags=re.MULTILINE)
    if result.returncode != 0 and not failures:
        failures = [f"schemathesis exited {result.returncode}: {output.strip().splitlines()[-1:]}"]
    return SchemaFuzz(int(generated.group(1)) if generated else 0, failures, output)
