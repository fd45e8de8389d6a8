"""Model artifacts whose answers are known without running them: a small network that names one breed for every
photo, saved and packed as the training job writes model.tar.gz."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import torch
from PIL import Image

from breed_classifier.artifact import save_artifact
from breed_classifier.model import ModelConfig, build_model


def one_answer_artifact(work: Path, folders: list[str], answer: int) -> Path:
    """model.tar.gz (under ``work``) whose top answer is always ``folders[answer]``'s breed."""
    config = ModelConfig.for_architecture("small_cnn", len(folders), 32)
    network = build_model(config).eval()
    last = [module for module in network.modules() if isinstance(module, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.linspace(1.0, 0.0, len(folders)))
        last.bias[answer] = 10.0
    model_dir = work / f"model-{answer}"
    save_artifact(model_dir, network, config, folders)
    return pack(model_dir, work / f"model-{answer}.tar.gz")


def pack(model_dir: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def labelled_photos(root: Path, counts: dict[str, int]) -> Path:
    """``root/<folder>/<i>.jpg``: ``counts[folder]`` small photos in each."""
    for folder, count in counts.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("RGB", (40, 30), (i * 40 % 256, 90, 200)).save(root / folder / f"{i}.jpg")
    return root


def broken_package(stack, name: str, serving_model_data: str | None = None) -> str:
    """An approved package with a bad model, on purpose: one that cannot load (a model.pth that is not one), or,
    given the serving model's data, that model with an inference.py whose every answer is an error."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        if serving_model_data is None:
            add_file(tar, "model.pth", b"not a model")
        else:
            bucket, _, key = serving_model_data.removeprefix("s3://").partition("/")
            body = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as good:
                for member in good.getmembers():
                    content = good.extractfile(member).read() if member.isfile() else None
                    if member.name == "code/inference.py":
                        content += (
                            b"\n\ndef transform_fn(*arguments, **options):\n    raise RuntimeError('a bad release')\n"
                        )
                    if content is None:
                        tar.addfile(member)
                    else:
                        add_file(tar, member.name, content)
    return stack.register_model(archive.getvalue(), f"released by hand: {name}")


def add_file(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    """``content`` as the member ``name`` of ``tar``."""
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))
