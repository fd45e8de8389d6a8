"""What the predict function imports at a cold start, with exactly the packages Lambda would load.

The handler is imported as Lambda imports it (``LAMBDA_TASK_ROOT`` set, the function's environment) on the Lambda
runtime's Python with only the shared layer's packages (``.venv-layer``, made by ``make setup`` from
layers/shared/python/requirements.txt), under ``python -X importtime``. Every module it loads must be the standard
library's, the layer's own code, or one of the layer's pinned packages; and none of the modules named below, which
cost a cold start and serve no first request, may load at all. A failure names the module and who imported it.
Timing is measured by ``make bench`` (whole processes, against ``import boto3``), not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.measure import predict_cold_start_environment
from offline_stack.sam_template import PROJECT_ROOT

LAYER_PYTHON = PROJECT_ROOT / ".venv-layer" / "bin" / "python"
HANDLER_DIR = PROJECT_ROOT / "functions" / "predict"
# The layer's packages (requirements.txt) by the names they import as, and the layer's own code
LAYER_PACKAGES = {
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "boto3",
    "botocore",
    "wrapt",
    "jmespath",
    "dateutil",
    "s3transfer",
    "six",
    "typing_extensions",
    "urllib3",
    "dog_breeds",
    "app",
}
# Heavy, and no first request needs them: image decoding happens on the endpoint, TLS is the runtime's ssl, and the
# Powertools utilities the function does not use
NEVER_AT_COLD_START = (
    "PIL",
    "numpy",
    "torch",
    "requests",
    "OpenSSL",
    "awscrt",
    "cryptography",
    "pydantic",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.validation",
    "aws_lambda_powertools.event_handler",
    "boto3.s3",
    "s3transfer",
    "dog_breeds.deploy_endpoint",
    "dog_breeds.start_training",
    "dog_breeds.release_gate",
)

pytestmark = pytest.mark.skipif(
    not LAYER_PYTHON.exists(), reason="no .venv-layer: make setup makes it where python3.12 is installed"
)


def imported_modules() -> list[tuple[str, str]]:
    """(module, the module that imported it) in import order, from ``python -X importtime -c "import app"``."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        **predict_cold_start_environment(PROJECT_ROOT / "layers" / "shared" / "python", HANDLER_DIR),
    }
    # importtime lists failed attempts too (botocore tries awscrt, urllib3 pyOpenSSL): sys.modules says what loaded
    script = "import sys, app; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [str(LAYER_PYTHON), "-X", "importtime", "-c", script],
        cwd=HANDLER_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [
        (len(match.group(1)) // 2, match.group(2))
        for line in result.stderr.splitlines()
        if (match := re.match(r"import time:\s+\d+ \|\s+\d+ \|( *)(\S+)", line))
    ]
    # importtime prints a module after its own imports, one level deeper: the importer is the next shallower row
    loaded = set(result.stdout.split())
    found = []
    for index, (depth, name) in enumerate(rows):
        importer = next((other for d, other in rows[index + 1 :] if d < depth), "<cold start>")
        if name in loaded:
            found.append((name, importer))
    return found


@pytest.fixture(scope="module")
def modules() -> list[tuple[str, str]]:
    return imported_modules()


def test_the_handler_loads_only_the_standard_library_and_the_layers_packages(modules):
    standard = set(sys.stdlib_module_names) | {"_frozen_importlib", "_frozen_importlib_external", "zipimport"}
    outside = sorted(
        {
            f"{name} (imported by {importer})"
            for name, importer in modules
            if name.split(".")[0] not in standard | LAYER_PACKAGES
            and not name.startswith(("_", "encodings"))
            and name != "sitecustomize"
        }
    )
    assert not outside, f"modules from outside the layer's packages at the cold start: {outside}"
    assert any(name == "dog_breeds.predict_breeds" for name, _ in modules)  # it did import the handler


@pytest.mark.parametrize("heavy", NEVER_AT_COLD_START)
def test_no_heavy_module_the_first_request_does_not_need_is_imported(modules, heavy):
    loaded = [
        f"{name} (imported by {importer})"
        for name, importer in modules
        if name.split(".")[: len(heavy.split("."))] == heavy.split(".")
    ]
    assert not loaded, f"{heavy} is imported at the predict function's cold start: {loaded}"


def test_the_layer_venv_holds_the_layers_pins_only():
    frozen = subprocess.run([str(LAYER_PYTHON), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    pins = {
        line.split("==")[0].lower().replace("_", "-")
        for line in Path(PROJECT_ROOT / "layers/shared/python/requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    installed = {line.split("==")[0].lower().replace("_", "-") for line in frozen.stdout.splitlines() if "==" in line}
    assert installed == {pin.split("[")[0] for pin in pins}
