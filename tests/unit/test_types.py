"""mypy is clean (make lint runs the same): the ports, the logic typed against them, the adapters, ops/ and every
handler, against the pinned boto3 stubs. Each handler is a module named ``app``, so each is checked on its own."""

import subprocess
import sys
from pathlib import Path

from offline_stack.sam_template import PROJECT_ROOT

MYPY = str(Path(sys.executable).with_name("mypy"))
HANDLERS = sorted(str(path.relative_to(PROJECT_ROOT)) for path in (PROJECT_ROOT / "functions").glob("*/app.py"))


def mypy(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([MYPY, *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def test_the_layer_and_ops_type_check():
    result = mypy()
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_handler_type_checks():
    assert len(HANDLERS) == 6  # one per function of template.yaml
    failures = [result.stdout for result in map(mypy, HANDLERS) if result.returncode != 0]
    assert not failures, "\n".join(failures)


def test_mypy_catches_logic_that_breaks_a_port(tmp_path):
    # Given logic that calls a method the deploy port does not declare
    module = tmp_path / "broken_logic.py"
    module.write_text(
        "from dog_breeds.ports import EndpointDeployments\n\n\n"
        "def deploy(sagemaker: EndpointDeployments) -> None:\n"
        "    sagemaker.delete_model_package_group('dog-breed-classifier')\n"
    )
    # Then mypy refuses it, naming the method
    result = mypy(str(module))
    assert result.returncode == 1 and "delete_model_package_group" in result.stdout, result.stdout
