"""SAM's own tools on the template: `sam validate --lint` and `sam build` (which fetches the layer's pins from the
package index, as `make setup` does, in pip's hash-checking mode; the tampered-file case is served from a local
folder)."""

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from offline_stack.sam_template import PROJECT_ROOT

SAM = str(Path(sys.executable).with_name("sam"))


def _python312_available() -> bool:
    python312 = shutil.which("python3.12")
    return bool(python312) and subprocess.run([python312, "--version"], capture_output=True).returncode == 0


def _sam(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([SAM, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_sam_validate_lint_passes():
    result = _sam("validate", "--lint", "--region", "us-east-1")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("region", ["us-east-1", "cn-north-1", "us-gov-west-1"])  # aws, aws-cn, aws-us-gov
def test_the_template_lints_in_each_partition(region):
    cfn_lint = str(Path(sys.executable).with_name("cfn-lint"))
    result = subprocess.run(
        [cfn_lint, "--regions", region, "--", str(PROJECT_ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not _python312_available(), reason="sam build needs python3.12 on PATH (the Lambda runtime)")
def test_sam_build_packs_handler_and_layer(tmp_path):
    build_dir = tmp_path / "build"
    result = _sam("build", "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (build_dir / "PredictFunction/app.py").is_file()
    layer = build_dir / "SharedLayer/python"
    assert (layer / "dog_breeds/predict_breeds.py").is_file()
    assert (layer / "aws_lambda_powertools").is_dir()
    assert not list(build_dir.rglob("torch")), "torch must never reach the Lambda side"
    # botocore comes in with the X-Ray SDK and shadows the runtime's: boto3 must be there at the matching pin
    lock = (PROJECT_ROOT / "requirements-lock.txt").read_text()
    for package in ("boto3", "botocore"):
        pinned = next(line.split("==")[1].split()[0] for line in lock.splitlines() if line.startswith(f"{package}=="))
        assert (layer / f"{package}-{pinned}.dist-info").is_dir(), package


def _wheel(path: Path, module_text: str) -> str:
    """A minimal pure-Python wheel of ``tampered`` 1.0 at ``path``; its sha256."""
    dist_info = "tampered-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("tampered.py", module_text)
        wheel.writestr(f"{dist_info}/METADATA", "Metadata-Version: 2.1\nName: tampered\nVersion: 1.0\n")
        wheel.writestr(
            f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{dist_info}/RECORD", f"tampered.py,,\n{dist_info}/METADATA,,\n{dist_info}/WHEEL,,\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(not _python312_available(), reason="sam build needs python3.12 on PATH (the Lambda runtime)")
def test_sam_build_refuses_a_layer_file_that_differs_from_its_hash(tmp_path):
    # Given a layer built the way SharedLayer is, whose pin carries the hash of the file as it was published,
    # served from a local folder (no index: nothing leaves the machine)
    wheels, layer = tmp_path / "wheels", tmp_path / "layer"
    wheels.mkdir()
    layer.mkdir()
    published = _wheel(wheels / "tampered-1.0-py3-none-any.whl", "ANSWER = 42\n")
    (layer / "requirements.txt").write_text(
        f"--no-index\n--find-links {wheels}\ntampered==1.0 --hash=sha256:{published}\n"
    )
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Layer:\n"
        "    Type: AWS::Serverless::LayerVersion\n"
        "    Properties:\n"
        "      ContentUri: layer\n"
        "      CompatibleRuntimes: [python3.12]\n"
        "    Metadata:\n"
        "      BuildMethod: python3.12\n"
    )
    built = _sam("build", "--build-dir", str(tmp_path / "build"), cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "build/Layer/python/tampered.py").read_text() == "ANSWER = 42\n"
    # When the file is replaced by another (a tampered mirror, a re-uploaded release) and sam build runs again
    _wheel(wheels / "tampered-1.0-py3-none-any.whl", "import os  # something else now\n")
    result = _sam("build", "--build-dir", str(tmp_path / "rebuild"), cwd=tmp_path)
    # Then pip refuses the file and the build fails
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stdout + result.stderr, result.stdout + result.stderr
