"""Command-line hyperparameters, shared by the SageMaker and EC2 entry points.

SageMaker passes each hyperparameter as ``--<name> <value>``; the names here are the only spelling.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from breed_classifier.model import ARCHITECTURES
from breed_classifier.training import Hyperparameters

HYPERPARAMETER_NAMES = tuple(f.name.replace("_", "-") for f in fields(Hyperparameters))


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
        return value

    return parse


def _views(text: str) -> int:
    views = _positive(int)(text)
    if views > 16:
        raise argparse.ArgumentTypeError(f"{text!r}: at most 16 views (each one is a backbone pass over the images)")
    return views


def boolean(text: str) -> bool:
    # SageMaker sends booleans as the strings "True"/"False".
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; use true or false")


def add_hyperparameter_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Hyperparameters()
    group = parser.add_argument_group("hyperparameters")
    group.add_argument("--epochs", type=_positive(int), default=defaults.epochs)
    group.add_argument("--batch-size", type=_positive(int), default=defaults.batch_size)
    group.add_argument("--learning-rate", type=_positive(float), default=defaults.learning_rate)
    group.add_argument(
        "--patience",
        type=_positive(int),
        default=defaults.patience,
        help="epochs without a better valid loss before stopping early",
    )
    group.add_argument("--architecture", choices=ARCHITECTURES, default=defaults.architecture)
    flags = {
        "pretrained": "start from ImageNet weights (downloaded; needs internet)",
        "freeze-backbone": "train only the head, as the original notebook did",
        "dog-gate": 'answer "not a dog" through the frozen backbone\'s ImageNet classifier (false for data of no dogs)',
    }
    for name, help_text in flags.items():
        default = getattr(defaults, name.replace("-", "_"))
        group.add_argument(f"--{name}", type=boolean, default=default, metavar="{true,false}", help=help_text)
    group.add_argument(
        "--feature-cache",
        choices=("auto", "off"),
        default=defaults.feature_cache,
        help="auto: with a frozen pretrained backbone, compute its features once and train the head on them",
    )
    group.add_argument(
        "--cached-views",
        type=_views,
        default=defaults.cached_views,
        help="views of each training image the cache holds: 1 centre crop, 2 and its mirror, more seeded augmentations",
    )
    group.add_argument("--image-size", type=_positive(int), default=defaults.image_size)
    group.add_argument("--num-workers", type=int, default=defaults.num_workers, help="data-loader worker processes")
    group.add_argument("--seed", type=int, default=defaults.seed)


def hyperparameters_from(args: argparse.Namespace) -> Hyperparameters:
    return Hyperparameters(**{f.name: getattr(args, f.name) for f in fields(Hyperparameters)})
