"""The network: a backbone with the seed's head (features -> 128 -> ReLU -> classes), or ImageNet's own head.

Backbones: torchvision's ResNet-50 and ResNet-18, EfficientNet-Lite0, and a small CNN for tests. ImageNet weights
come from a folder when one is given (a SageMaker job's ``pretrained`` channel: the job runs with network
isolation, so nothing is downloaded), else from torchvision's download (ResNets) or a pinned registry package
(EfficientNet-Lite0). Each file is checked against the SHA-256 prefix its name carries.
Each backbone's input normalisation is part of the config, and every preprocessing path reads it from there.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from breed_classifier import efficientnet_lite

ARCHITECTURES = ("resnet50", "resnet18", "efficientnet_lite0", "small_cnn")
HEAD_HIDDEN_UNITS = 128
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# What each backbone's weights were trained on: (mean, std) of the input normalisation.
NORMALISATION = {
    "resnet50": (IMAGENET_MEAN, IMAGENET_STD),
    "resnet18": (IMAGENET_MEAN, IMAGENET_STD),
    "efficientnet_lite0": (efficientnet_lite.MEAN, efficientnet_lite.STD),
    "small_cnn": (IMAGENET_MEAN, IMAGENET_STD),
}
# Each architecture's ImageNet weights file: the name torchvision and the weights package give it, ending in the
# first 8 hex digits of its SHA-256. A SageMaker job finds it in its ``pretrained`` channel (s3://<bucket>/pretrained/,
# placed there by ``make upload-weights``); dog_breeds.start_training keeps the same table (a test checks).
PRETRAINED_WEIGHTS = {
    "resnet50": "resnet50-11ad3fa6.pth",
    "resnet18": "resnet18-f37072fd.pth",
    "efficientnet_lite0": "efficientnet-lite0-57934424.pth",
}
# Each file's whole SHA-256: the name's 8 hex digits are 32 bits, which a forged file can be made to match. Lite0's is
# the pinned weights package's file, hashed here; the ResNets' are torchvision's published files as recorded in
# public repositories (their names' prefixes agree); `make upload-weights` checks the whole digest before an upload,
# so a mismatch shows on the machine that downloads, not in a job.
PRETRAINED_SHA256 = {
    "resnet50-11ad3fa6.pth": "11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca",
    "resnet18-f37072fd.pth": "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec",
    "efficientnet-lite0-57934424.pth": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
}
# Heads: the seed's two-layer MLP over the backbone's features, or ImageNet's classifier kept for a subset of
# its classes plus one class holding the rest (a starter model: see breed_classifier.starter_model).
HEADS = ("mlp", "imagenet_subset")
# ImageNet-1k's dog classes (Chihuahua .. Mexican hairless): what a dog gate adds up as "a dog"
IMAGENET_DOG_CLASSES = tuple(range(151, 269))
NOT_A_DOG_FOLDER = "not_a_dog"
# "not a dog" is answered when ImageNet's classifier puts less than this on its dog classes. Measured on the 268
# Oxford-IIIT Pet dog photos (EfficientNet-Lite0, 224 px): at 0.5, 9 of them (3.4 %) would be told "not a dog", at
# 0.25, 5 (1.9 %); the cat photo of tests/data/photos has 0.07. The gate has no trained part, so every photo is held out
DOG_GATE_THRESHOLD = 0.25


class PretrainedWeightsUnavailableError(RuntimeError):
    """ImageNet weights were asked for and could not be found, downloaded or trusted."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network around saved weights (stored in the artifact)."""

    architecture: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hidden_units: int = HEAD_HIDDEN_UNITS
    head: str = "mlp"
    imagenet_classes: tuple[int, ...] = ()  # head "imagenet_subset": the ImageNet classes kept, in order
    temperature: float = 1.0  # served probabilities are softmax(logits / temperature): breed_classifier.calibration
    # A trained head behind the backbone's own ImageNet classifier (``DogGatedNetwork``): the ImageNet classes that
    # count as a dog; the last of ``num_classes`` is then "not a dog"
    dog_gate: tuple[int, ...] = ()
    dog_gate_threshold: float = DOG_GATE_THRESHOLD  # "not a dog" when P(dog) is below it

    @classmethod
    def for_architecture(cls, architecture: str, num_classes: int, image_size: int) -> ModelConfig:
        """A config with the normalisation the architecture's weights expect."""
        if architecture not in NORMALISATION:
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        mean, std = NORMALISATION[architecture]
        return cls(architecture, num_classes, image_size, mean, std)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict) -> ModelConfig:
        tuples = {
            name: tuple(document[name]) for name in ("mean", "std", "imagenet_classes", "dog_gate") if name in document
        }
        return cls(**{**document, **tuples})


def build_model(
    config: ModelConfig, pretrained: bool = False, freeze_backbone: bool = False, weights_dir: Path | None = None
) -> nn.Module:
    """Return the classifier; with ``pretrained`` the backbone starts from ImageNet weights, read from
    ``weights_dir`` when given (see ``PRETRAINED_WEIGHTS``), else downloaded or from the weights package."""
    if config.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    if config.head not in HEADS:
        raise ValueError(f"unknown head {config.head!r}; choose one of {', '.join(HEADS)}")
    if config.architecture == "small_cnn":
        if pretrained:
            raise ValueError("small_cnn has no pretrained weights; pass --pretrained false or choose another")
        backbone, features = _small_cnn()
    elif config.architecture == "efficientnet_lite0":
        backbone, features = _efficientnet_lite0(pretrained, weights_dir), efficientnet_lite.FEATURES
    else:
        backbone = _resnet(config.architecture, pretrained, weights_dir)
        features = backbone.fc.in_features
        backbone.fc = nn.Identity()
    if freeze_backbone:
        for parameter in backbone.parameters():
            parameter.requires_grad = False
    if config.head == "imagenet_subset":
        head = ImageNetSubsetHead(features, config.imagenet_classes)
        if head.num_classes != config.num_classes:
            raise ValueError(f"{len(config.imagenet_classes)} ImageNet classes + 1 != num_classes {config.num_classes}")
        return nn.Sequential(backbone, head)
    breeds = config.num_classes - (1 if config.dog_gate else 0)
    head = nn.Sequential(
        nn.Linear(features, config.hidden_units),
        nn.ReLU(inplace=True),
        nn.Linear(config.hidden_units, breeds),
    )
    if config.dog_gate:
        return DogGatedNetwork(backbone, head, nn.Linear(features, 1000), config.dog_gate, config.temperature)
    return nn.Sequential(backbone, head)


class DogGatedNetwork(nn.Sequential):
    """A trained breed head that can also answer "not a dog": the backbone's own ImageNet classifier says whether the
    photo is a dog at all, the head which breed it is if it is.

    The answer is a probability over the breeds and "not a dog" (returned as log-probabilities, so serving's softmax
    gives them back): P(dog) is the mass ImageNet's classifier puts on its 118 dog classes, P(breed) = P(dog) x the
    head's calibrated P(breed | dog) (``temperature`` applied here), and P(not a dog) = 1 - P(dog). Serving answers
    "not a dog" first when P(dog) is below ``DOG_GATE_THRESHOLD``, as for a cat, and leaves it out otherwise
    (``inference.predict``).
    Only for a frozen, ImageNet-pretrained backbone:
    its features are the ones that classifier reads. ``[0]`` is the backbone and ``[1]`` the head, as in the plain
    network, so the training code and the tests reach them the same way.
    """

    def __init__(
        self, backbone: nn.Module, head: nn.Module, imagenet: nn.Linear, dogs: tuple[int, ...], temperature: float
    ) -> None:
        super().__init__(backbone, head, imagenet)
        self.temperature = float(temperature)
        self.register_buffer("dogs", torch.tensor(dogs, dtype=torch.long), persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features = self[0](inputs)
        breed = torch.log_softmax(self[1](features) / self.temperature, dim=1)
        imagenet = torch.log_softmax(self[2](features), dim=1)
        dog = torch.logsumexp(imagenet.index_select(1, self.dogs), dim=1, keepdim=True).clamp(max=0.0)
        not_a_dog = torch.log(torch.clamp(1.0 - dog.exp(), min=1e-12))
        return torch.cat([breed + dog, not_a_dog], dim=1)


def imagenet_classifier(architecture: str, weights_dir: Path | None) -> dict[str, torch.Tensor] | None:
    """The ImageNet classifier of ``architecture``'s pretrained weights (``weight``, ``bias``), or None when there is
    none to be had without a download (a ResNet without ``weights_dir``, the small CNN)."""
    if architecture == "efficientnet_lite0":
        state = imagenet_weights(architecture, weights_dir or efficientnet_lite.packaged_weights_path().parent)
        return {"weight": state["_fc.weight"], "bias": state["_fc.bias"]}
    if architecture in ("resnet50", "resnet18") and weights_dir is not None:
        state = imagenet_weights(architecture, weights_dir)
        return {"weight": state["fc.weight"], "bias": state["fc.bias"]}
    return None


def with_dog_gate(network: nn.Sequential, config: ModelConfig, classifier: dict[str, torch.Tensor]):
    """``network`` (a trained backbone and head) behind the ImageNet ``classifier``: (the gated network, its config
    with "not a dog" as one more class)."""
    gated_config = replace(config, num_classes=config.num_classes + 1, dog_gate=IMAGENET_DOG_CLASSES)
    imagenet = nn.Linear(classifier["weight"].shape[1], 1000)
    imagenet.load_state_dict(classifier)
    imagenet.to(next(network.parameters()).device)
    gated = DogGatedNetwork(network[0], network[1], imagenet, IMAGENET_DOG_CLASSES, config.temperature)
    return gated.eval(), gated_config


class ImageNetSubsetHead(nn.Module):
    """ImageNet's 1000-way classifier, answered as the kept classes plus one class standing for all the others.

    Its logits are the kept classes' logits and the largest of the others', so the answer ranks exactly as
    ImageNet's own top-k with every other class folded into one entry (a cat photo ranks "not a dog" first
    instead of being forced onto a breed). A probability is relative to the kept classes and that one best
    other class, not to all 1000.
    """

    def __init__(self, features: int, kept: tuple[int, ...]) -> None:
        super().__init__()
        self.classifier = nn.Linear(features, 1000)
        rest = sorted(set(range(1000)) - set(kept))
        self.register_buffer("kept", torch.tensor(kept, dtype=torch.long), persistent=False)
        self.register_buffer("rest", torch.tensor(rest, dtype=torch.long), persistent=False)
        self.num_classes = len(kept) + 1

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(features)
        best_other = logits.index_select(1, self.rest).amax(dim=1, keepdim=True)
        return torch.cat([logits.index_select(1, self.kept), best_other], dim=1)


def _efficientnet_lite0(pretrained: bool, weights_dir: Path | None) -> nn.Module:
    backbone = efficientnet_lite.EfficientNetLite0Backbone()
    if pretrained:
        state = imagenet_weights("efficientnet_lite0", weights_dir or efficientnet_lite.packaged_weights_path().parent)
        backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")})
    return backbone


def _resnet(architecture: str, pretrained: bool, weights_dir: Path | None) -> nn.Module:
    builder = getattr(models, architecture)
    network = builder(weights=None)
    if not pretrained:
        return network
    if weights_dir is None:
        weights = models.get_model_weights(builder).DEFAULT
        try:
            return builder(weights=weights)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError
            raise PretrainedWeightsUnavailableError(
                f"could not download the ImageNet weights for {architecture} ({weights.url}): {exc}. "
                f"Either pass --pretrained false, or place the file in {torch.hub.get_dir()}/checkpoints/ first."
            ) from exc
    network.load_state_dict(imagenet_weights(architecture, weights_dir))
    return network


def imagenet_weights(architecture: str, weights_dir: Path) -> dict[str, torch.Tensor]:
    """``architecture``'s ImageNet weights from ``weights_dir``: the file must be there under its name, its bytes
    must have the published file's whole SHA-256 (``PRETRAINED_SHA256``), and it is loaded as tensors only."""
    path = verified_weights_file(architecture, weights_dir)
    return torch.load(path, map_location="cpu", weights_only=True)


def verified_weights_file(architecture: str, weights_dir: Path) -> Path:
    """``weights_dir``'s file of ``architecture``'s ImageNet weights, once its bytes have the published digest."""
    name = PRETRAINED_WEIGHTS[architecture]
    path = Path(weights_dir) / name
    if not path.is_file():
        present = sorted(p.name for p in Path(weights_dir).glob("*.pth")) if Path(weights_dir).is_dir() else []
        held = ", ".join(present) or "no .pth file"
        raise PretrainedWeightsUnavailableError(
            f"{architecture}'s ImageNet weights {name} are not in {weights_dir} (it holds {held}). "
            f"On SageMaker the job's 'pretrained' channel reads s3://<bucket>/pretrained/{name}: place it there with "
            "make upload-weights, or train with --pretrained false."
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = PRETRAINED_SHA256[name]
    if digest != expected:
        raise PretrainedWeightsUnavailableError(
            f"{path} is not the published {name}: its SHA-256 is {digest}, the published file's is {expected}"
        )
    return path


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
