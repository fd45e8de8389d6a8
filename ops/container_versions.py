"""``make container-versions``: the artifact still works across the AWS containers' own framework versions.

The project develops on torch 2.14.1, but SageMaker trains on AWS's PyTorch 2.8.0 training image (torchvision 0.23.0,
Python 3.12) and serves on the 2.6.0 inference image (torchvision 0.21.0, sagemaker-pytorch-inference 2.0.25). This
command checks the path a model really takes:

1. trains a tiny model (ResNet-18 at 64 px, one epoch, generated images) with ``train_outside_sagemaker.py`` under the
   training image's versions;
2. serves that artifact and the starter model through the inference toolkit's own handler service under the
   inference image's versions, for every ``INFERENCE_RUNTIME`` (torchscript, bf16, eager);
3. serves the same artifacts under the dev venv's torch, and compares: the same top-1 for every image, and the
   probabilities within 1e-4 (0.05 for the opt-in bf16 runtime, which is not fp32).

The two venvs come from the package registry (CUDA builds of torch: a few minutes and about 6 GB each, made once by
``make container-versions-venvs``). CI runs it; run it yourself after changing the torch pins, the DLC versions in
``dog_breeds/container_images.py`` or the artifact format (``breed_classifier/artifact.py``, ``inference.py``).

    python -m ops.container_versions --training-python .venv-dlc-training/bin/python \\
        --inference-python .venv-dlc-inference/bin/python --starter-model .offline/starter-model/model.tar.gz
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # (the --predict side runs where only torch and the toolkit are)
RUNTIMES = ("torchscript", "bf16", "eager")
TOLERANCE = {"torchscript": 1e-4, "eager": 1e-4, "bf16": 0.05}


def predict(model_dir: Path, images: list[Path], runtime: str) -> list[list[dict]]:
    """Each image's answer from the toolkit's handler service on ``model_dir`` (run under the Python checked)."""
    os.environ["INFERENCE_RUNTIME"] = runtime
    from offline_stack.model_container import ToolkitHandler

    handler = ToolkitHandler(model_dir)
    answers = []
    for image in images:
        status, body, _ = handler.invoke(
            image.read_bytes(),
            {
                "Content-Type": "image/jpeg",
                "Accept": "application/json",
                "X-Amzn-SageMaker-Custom-Attributes": "top_k=5",
            },
        )
        if status != 200:
            raise RuntimeError(f"{model_dir} answered {status} for {image.name}: {body[:300]!r}")
        answers.append(json.loads(body)["predictions"])
    return answers


def _versions(python: str) -> str:
    code = (
        "import sys, torch, torchvision; "
        "print(f'Python {sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}')"
    )
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _answers(python: str, model_dir: Path, images: list[Path], runtime: str) -> list[list[dict]]:
    command = [
        python,
        "-m",
        "ops.container_versions",
        "--predict",
        str(model_dir),
        "--runtime",
        runtime,
        *map(str, images),
    ]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(model_dir / "code")])}
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT, env=environment)
    if result.returncode != 0:
        raise RuntimeError(f"{python} could not serve {model_dir} ({runtime}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _untar(archive: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def _compare(reference: list[list[dict]], served: list[list[dict]], tolerance: float) -> tuple[bool, float]:
    same_top1 = all(r[0]["class_index"] == s[0]["class_index"] for r, s in zip(reference, served, strict=True))
    deltas = [
        abs(a["probability"] - b["probability"])
        for r, s in zip(reference, served, strict=True)
        for a, b in zip(
            sorted(r, key=lambda p: p["class_index"]), sorted(s, key=lambda p: p["class_index"]), strict=False
        )
        if a["class_index"] == b["class_index"]
    ]
    worst = max(deltas, default=0.0)
    return same_top1 and worst <= tolerance, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training-python", help="a Python with the training image's torch and torchvision")
    parser.add_argument("--inference-python", help="a Python with the inference image's torch and the toolkit")
    parser.add_argument("--starter-model", type=Path, help="the starter model's model.tar.gz (make starter-model)")
    parser.add_argument("--predict", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="torchscript", help=argparse.SUPPRESS)
    parser.add_argument("images", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.predict:
        print(json.dumps(predict(args.predict, args.images, args.runtime)))
        return 0
    for name in ("training_python", "inference_python", "starter_model"):
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} is needed")
    if not args.starter_model.is_file():
        parser.error(f"{args.starter_model} does not exist: run make starter-model first")
    from offline_stack.synthetic_images import class_image, write_image_folder

    work = Path(tempfile.mkdtemp(prefix="container-versions-"))
    print(f"training image:  {_versions(args.training_python)}")
    print(f"inference image: {_versions(args.inference_python)}")
    print(f"dev venv:        {_versions(sys.executable)}")
    write_image_folder(work / "data", classes=3, per_class={"train": 6, "valid": 3, "test": 3}, size=64)
    trained = work / "trained"
    command = [
        args.training_python,
        "training_jobs/train_outside_sagemaker.py",
        "--data-dir",
        str(work / "data"),
        "--model-dir",
        str(trained),
        "--output-dir",
        str(work / "output"),
        "--architecture",
        "resnet18",
        "--pretrained",
        "false",
        "--freeze-backbone",
        "false",
        "--image-size",
        "64",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--num-workers",
        "0",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT)
    if result.returncode != 0:
        print(f"training under the training image's versions failed:\n{result.stderr[-3000:]}")
        return 1
    print("trained a ResNet-18 under the training image's versions")
    images, rng = [], random.Random(11)
    for index in range(3):
        path = work / f"generated-{index}.jpg"
        buffer = io.BytesIO()
        class_image(index, rng, 96).save(buffer, "JPEG")
        path.write_bytes(buffer.getvalue())
        images.append(path)
    images += sorted((PROJECT_ROOT / "tests" / "data" / "photos").glob("*.jpg"))
    artifacts = {"trained (2.8)": trained, "starter model": _untar(args.starter_model, work / "starter")}
    failures = 0
    print("\n| artifact | runtime | max abs delta p (top-1 as dev torch) | result |\n|---|---|---|---|")
    for name, model_dir in artifacts.items():
        for runtime in RUNTIMES:
            reference = _answers(sys.executable, model_dir, images, runtime)
            served = _answers(args.inference_python, model_dir, images, runtime)
            ok, worst = _compare(reference, served, TOLERANCE[runtime])
            failures += not ok
            print(f"| {name} | {runtime} | {worst:.2e} | {'pass' if ok else 'FAIL'} |")
    print(f"\n{failures} failure(s) across {len(images)} images")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
