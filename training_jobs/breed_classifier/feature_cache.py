"""Frozen-backbone training computes the backbone once: its features of every image, then the head learns on them.

With the backbone frozen (the course project's recipe), almost all of an epoch's compute is the backbone's forward
pass, and it gives the same answer every epoch for the same pixels. So the features are computed once per run
(each process its share of the images, gathered so every process holds all of them) and the head trains on them
for every epoch, the way the image path would. ``make bench`` measures what it saves.

**Augmentation.** Random augmentation (a new crop and flip every epoch) cannot be cached: the pixels differ every
time. The cache holds ``cached_views`` deterministic views of each training image instead: view 0 is the
evaluation view (resize, centre crop), view 1 its mirror image, and views 2 and up are the training
augmentation (random resized crop and flip) drawn with a seed of their own per image and view, so a rerun sees
the same pixels. Each epoch every image contributes one of its views, chosen by a seeded draw. ``make bench``
reports the validation accuracy of this against random augmentation on the same data and seed.

**Batch norm.** A frozen backbone runs in evaluation mode, with ImageNet's running statistics, whether or not the
cache is used: in training mode its batch-norm layers would keep re-estimating their statistics from each small
batch, so the "frozen" backbone would drift, and the features would depend on the batch.

**Content address.** ``FeatureSpec.key`` digests what the features depend on: the backbone's weights, the training
data (every file's path, size and SHA-256), the views and the transform (image size, normalisation). ``FeatureStore``
keeps features under that key; a changed transform, backbone or data set misses and is computed afresh.

**What the cache is trusted with.** Only the training split's features: a run computes its validation and test
features from the images themselves, so a tampered cache can at worst train a bad head, and the scores the release
gate reads still measure it on images. The ``spec`` inside a file is written by whoever wrote the file, so it only
tells features apart; it proves nothing. A job given features by the control plane is also given their archive's
SHA-256 (``--features-sha256``, recorded where no bucket writer can change it: docs/security.md) and refuses
other bytes (``FeaturesRefusedError``) before unpickling anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

logger = logging.getLogger("breed_classifier")

FEATURES_FILE = "features.pt"
ARCHIVE_FILE = "model.tar.gz"  # an extraction job's output, as its ``features`` channel delivers it


class FeaturesRefusedError(ValueError):
    """Features the control plane pinned by digest are not those bytes: tampered with, or another object."""


@dataclass(frozen=True)
class FeatureSpec:
    """Everything the cached features depend on."""

    architecture: str
    backbone_digest: str
    data_digest: str
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    views: int
    seed: int

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:32]


def backbone_digest(backbone: nn.Module) -> str:
    """SHA-256 of the backbone's weights and buffers, by name: the same for the same ImageNet weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def data_digest(roots: Iterable[Path]) -> str:
    """SHA-256 over every file of the splits: relative path, size and content."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(root).as_posix()}|{path.stat().st_size}|".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        digest.update(b"/")
    return digest.hexdigest()


class SeededView(Dataset):
    """View ``view`` of every image of ``dataset``: ``transform`` drawn with a seed of its own per image and view."""

    def __init__(self, dataset, transform: Callable, view: int, seed: int) -> None:
        self.dataset, self.transform, self.view, self.seed = dataset, transform, view, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        path, target = self.dataset.samples[index]
        image = self.dataset.loader(path)
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed((self.seed * 1_000_003 + index * 131 + self.view) % (2**63))
            return self.transform(image), target
        finally:
            torch.random.set_rng_state(state)


def mirrored(view: Dataset) -> Dataset:
    class Mirrored(Dataset):
        def __len__(self) -> int:
            return len(view)

        def __getitem__(self, index: int):
            image, target = view[index]
            return torch.flip(image, dims=[-1]), target

    return Mirrored()


def training_views(train_eval_view: Dataset, train_random: Dataset, views: int, seed: int) -> list[Dataset]:
    """The training images' cached views: the evaluation view, its mirror, then seeded augmentations."""
    chosen = [train_eval_view, mirrored(train_eval_view)]
    chosen += [SeededView(train_random, train_random.transform, view, seed) for view in range(2, views)]
    return chosen[:views]


@torch.inference_mode()
def compute_features(
    backbone: nn.Module, dataset: Dataset, indices: list[int], batch_size: int, device, num_workers: int = 0
) -> torch.Tensor:
    """The backbone's features of ``dataset[i]`` for ``i`` in ``indices`` (evaluation mode), in that order."""
    backbone.eval()
    subset = torch.utils.data.Subset(dataset, indices)
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    out = [backbone(images.to(device, memory_format=torch.channels_last)).float().cpu() for images, _ in loader]
    return torch.cat(out) if out else torch.empty(0)


class FeatureStore:
    """Features by content address under ``root`` (``<key>/features.pt``); written atomically, read safely.

    ``sha256``: the digest the control plane recorded for the archive it gives as the ``features`` channel; every
    ``model.tar.gz`` under ``root`` must have it, or ``get`` raises ``FeaturesRefusedError``."""

    def __init__(self, root: Path, sha256: str | None = None) -> None:
        self.root, self.sha256 = Path(root), sha256

    def path(self, spec: FeatureSpec) -> Path:
        return self.root / spec.key / FEATURES_FILE

    def get(self, spec: FeatureSpec) -> dict | None:
        """The features of ``spec``: ``<key>/features.pt`` under the root, or inside a ``model.tar.gz`` under it
        (an extraction job's output, as its ``features`` channel delivers it); None when absent or not these."""
        path = self.path(spec)
        if path.is_file():
            stored = torch.load(path, map_location="cpu", weights_only=True)
        else:
            stored = self._from_archives(f"{spec.key}/{FEATURES_FILE}")
        if stored is None or stored.get("spec") != asdict(spec):  # a collision or a hand-copied file: not these
            return None
        return stored

    def _from_archives(self, member: str) -> dict | None:
        archives = sorted(self.root.rglob(ARCHIVE_FILE)) if self.root.is_dir() else []
        if self.sha256 is not None and not archives:
            raise FeaturesRefusedError(
                f"features pinned to sha256 {self.sha256} but no {ARCHIVE_FILE} under {self.root}"
            )
        for archive in archives:
            self._check_digest(archive)
            with tarfile.open(archive) as tar:
                names = {name.removeprefix("./"): name for name in tar.getnames()}
                if member in names:
                    data = tar.extractfile(names[member])
                    if data is not None:
                        return torch.load(io.BytesIO(data.read()), map_location="cpu", weights_only=True)
        return None

    def _check_digest(self, archive: Path) -> None:
        if self.sha256 is None:
            return
        digest = hashlib.sha256()
        with archive.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != self.sha256:
            raise FeaturesRefusedError(
                f"{archive.name} has sha256 {digest.hexdigest()}, not {self.sha256} as recorded when it was "
                "extracted: the feature cache was changed after extraction; not used (delete the folder and extract "
                "again, and find out who wrote it)"
            )

    def put(self, spec: FeatureSpec, features: dict) -> Path:
        path = self.path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save({**features, "spec": asdict(spec)}, partial)
        partial.replace(path)
        return path


class CachedViews(Dataset):
    """(features, target) of each training image, one of its cached views per epoch (a seeded draw)."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor, seed: int) -> None:
        self.features, self.targets, self.seed = features, targets, seed  # features: [images, views, dim]
        self.chosen = torch.zeros(len(targets), dtype=torch.long)

    def set_epoch(self, epoch: int) -> None:
        generator = torch.Generator().manual_seed(self.seed * 7919 + epoch)
        self.chosen = torch.randint(self.features.shape[1], (len(self.targets),), generator=generator)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.features[index, self.chosen[index]], self.targets[index]


class Features(Dataset):
    """(features, target) of each image of an evaluation split."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        self.features, self.targets = features, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.features[index], self.targets[index]
