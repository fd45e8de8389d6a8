"""ImageFolder data: ``train/ valid/ test/`` splits of ``NNN.Breed_name/`` folders, and their loaders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from torchvision import datasets

from breed_classifier.preprocessing import eval_transform, to_rgb, train_transform


class DataLayoutError(ValueError):
    """The data folders are not an ImageFolder data set with matching classes."""


@dataclass(frozen=True)
class DataSplits:
    train: Path
    valid: Path
    test: Path | None


def _load_rgb(path: str):
    with Image.open(path) as image:
        image.load()  # to_rgb returns an RGB image as it is: its pixels must be read before the file closes
        return to_rgb(image)


def image_folder(path: Path, transform) -> datasets.ImageFolder:
    if not path.is_dir():
        raise DataLayoutError(f"{path} is not a folder; expected class folders such as 001.Affenpinscher/")
    try:
        return datasets.ImageFolder(str(path), transform=transform, loader=_load_rgb)
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataLayoutError(f"{path}: {exc}") from exc


def load_datasets(splits: DataSplits, image_size: int, mean, std) -> dict[str, datasets.ImageFolder]:
    """The splits, normalised with ``mean`` and ``std``: the values the model's config carries."""
    loaded = {
        "train": image_folder(splits.train, train_transform(image_size, mean, std)),
        "valid": image_folder(splits.valid, eval_transform(image_size, mean, std)),
    }
    if splits.test is not None:
        loaded["test"] = image_folder(splits.test, eval_transform(image_size, mean, std))
    classes = loaded["train"].classes
    for name, dataset in loaded.items():
        if dataset.classes != classes:
            raise DataLayoutError(
                f"the {name} split has classes {dataset.classes[:3]}..., unlike train's {classes[:3]}..."
            )
    return loaded


class EvaluationShard(Sampler[int]):
    """Every ``world_size``-th sample from ``rank``: each sample on exactly one process, none twice.

    ``DistributedSampler`` pads every shard to the same length by repeating samples, which is right for
    training (every process must take the same number of steps) but makes evaluation inexact: 13
    validation images on 2 hosts would be scored out of 14. Evaluation runs without DDP, so the
    shards may differ in length by one.
    """

    def __init__(self, dataset_size: int, rank: int, world_size: int) -> None:
        self.indices = range(rank, dataset_size, world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def make_loader(dataset, batch_size: int, shuffle: bool, num_workers: int, rank: int, world_size: int) -> DataLoader:
    """A loader over this process's shard: ``DistributedSampler`` to train, ``EvaluationShard`` to evaluate."""
    sampler = None
    if world_size > 1:
        sampler = (
            DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True)
            if shuffle
            else EvaluationShard(len(dataset), rank, world_size)
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
