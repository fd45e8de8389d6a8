"""The model artifact: a directory that, tarred, is a deployable ``model.tar.gz`` with nothing else.

::

    model.pt             weights (a CPU state_dict)
    model_config.json    architecture, head, classes, image size, normalisation
    labels.json          class index -> folder and breed name
    code/inference.py    the SageMaker inference handler (model_fn, transform_fn)
    code/breed_classifier/   the modules inference.py imports
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from breed_classifier.labels import breed_name
from breed_classifier.model import ModelConfig, build_model

PACKAGE_DIR = Path(__file__).resolve().parent
INFERENCE_SCRIPT = PACKAGE_DIR.parent / "inference.py"
ARTIFACT_FILES = ("model.pt", "model_config.json", "labels.json", "code")


class ArtifactError(ValueError):
    """A model directory is not a complete artifact."""


@dataclass(frozen=True)
class LoadedModel:
    network: nn.Module
    config: ModelConfig
    breeds: list[str]


def save_artifact(model_dir: Path, network: nn.Module, config: ModelConfig, class_folders: list[str]) -> None:
    """Write the artifact into ``model_dir``: staged first, then moved in, so no reader sees half of it."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "code").mkdir(parents=True)
    cpu_state = {name: tensor.detach().cpu() for name, tensor in network.state_dict().items()}
    torch.save(cpu_state, staging / "model.pt")
    (staging / "model_config.json").write_text(json.dumps(config.to_json(), indent=2))
    labels = [{"class_index": i, "folder": f, "breed": breed_name(f)} for i, f in enumerate(class_folders)]
    (staging / "labels.json").write_text(json.dumps(labels, indent=2))
    shutil.copy2(INFERENCE_SCRIPT, staging / "code" / "inference.py")
    shutil.copytree(PACKAGE_DIR, staging / "code" / PACKAGE_DIR.name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ARTIFACT_FILES:
        target = model_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(staging / name, target)
    staging.rmdir()


def load_artifact(model_dir: Path, device: torch.device | None = None) -> LoadedModel:
    """Rebuild the network from an artifact directory (no download: the weights are in it)."""
    missing = [name for name in ARTIFACT_FILES if not (model_dir / name).exists()]
    if missing:
        raise ArtifactError(f"{model_dir} is not a model artifact: missing {', '.join(missing)}")
    config = ModelConfig.from_json(json.loads((model_dir / "model_config.json").read_text()))
    labels = json.loads((model_dir / "labels.json").read_text())
    if len(labels) != config.num_classes:
        raise ArtifactError(f"labels.json has {len(labels)} classes but the model has {config.num_classes}")
    network = build_model(config, pretrained=False)
    state = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    network.to(device or torch.device("cpu")).eval()
    return LoadedModel(network, config, [label["breed"] for label in labels])
