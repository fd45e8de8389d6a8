"""The network: a torchvision backbone with the seed's head (features -> 128 -> ReLU -> classes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torchvision import models

ARCHITECTURES = ("resnet50", "resnet18", "small_cnn")
HEAD_HIDDEN_UNITS = 128


class PretrainedWeightsUnavailableError(RuntimeError):
    """ImageNet weights were asked for and could not be downloaded."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network around saved weights (stored in the artifact)."""

    architecture: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hidden_units: int = HEAD_HIDDEN_UNITS

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict) -> ModelConfig:
        return cls(**{**document, "mean": tuple(document["mean"]), "std": tuple(document["std"])})


def build_model(config: ModelConfig, pretrained: bool = False, freeze_backbone: bool = False) -> nn.Module:
    """Return the classifier; with ``pretrained`` the backbone starts from ImageNet weights (a download)."""
    if config.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    if config.architecture == "small_cnn":
        if pretrained:
            raise ValueError("small_cnn has no pretrained weights; pass --pretrained false or choose a resnet")
        backbone, features = _small_cnn()
    else:
        backbone = _resnet(config.architecture, pretrained)
        features = backbone.fc.in_features
        backbone.fc = nn.Identity()
    if freeze_backbone:
        for parameter in backbone.parameters():
            parameter.requires_grad = False
    head = nn.Sequential(
        nn.Linear(features, config.hidden_units),
        nn.ReLU(inplace=True),
        nn.Linear(config.hidden_units, config.num_classes),
    )
    return nn.Sequential(backbone, head)


def _resnet(architecture: str, pretrained: bool) -> nn.Module:
    builder = getattr(models, architecture)
    if not pretrained:
        return builder(weights=None)
    weights = models.get_model_weights(builder).DEFAULT
    try:
        return builder(weights=weights)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise PretrainedWeightsUnavailableError(
            f"could not download the ImageNet weights for {architecture} ({weights.url}): {exc}. "
            "SageMaker training instances have internet access by default; offline, either pass "
            f"--pretrained false, or place the file in {torch.hub.get_dir()}/checkpoints/ first."
        ) from exc


def _small_cnn() -> tuple[nn.Module, int]:
    """A few-layer CNN for tests and quick demos on a CPU; not for real dog photos."""

    def block(inputs: int, outputs: int) -> list[nn.Module]:
        return [
            nn.Conv2d(inputs, outputs, 3, padding=1),
            nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]

    layers = [*block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 64
