"""Train on an EC2 instance or a laptop: the same training module as SageMaker, with plain paths.

    python train_outside_sagemaker.py --data-dir dogImages --model-dir model --output-dir output --epochs 5

Trains on ``train/``, selects the epoch on ``valid/``, reports on ``test/``. For several processes on
one or more machines, start it with ``torchrun`` (it reads torchrun's RANK/WORLD_SIZE).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from breed_classifier.cli import add_hyperparameter_arguments, hyperparameters_from
from breed_classifier.data import DataLayoutError, DataSplits
from breed_classifier.model import PretrainedWeightsUnavailableError
from breed_classifier.progress import CheckpointRefusedError
from breed_classifier.training import TrainingRun, run_training


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with train/ valid/ test/")
    parser.add_argument("--model-dir", type=Path, default=Path("model"))
    parser.add_argument("--output-dir", type=Path, default=Path("output"))
    parser.add_argument("--checkpoint-dir", type=Path, help="checkpoint after every epoch here, and resume from it")
    parser.add_argument(
        "--pretrained-dir",
        type=Path,
        help="a folder holding the ImageNet weights file (an air-gapped box); without it they are downloaded",
    )
    parser.add_argument(
        "--feature-cache-dir",
        type=Path,
        help="keep a frozen backbone's features here by content address and reuse them (reruns, tuning trials)",
    )
    add_hyperparameter_arguments(parser)
    args = parser.parse_args(argv)
    test_dir = args.data_dir / "test"
    splits = DataSplits(args.data_dir / "train", args.data_dir / "valid", test_dir if test_dir.is_dir() else None)
    run = TrainingRun(
        splits,
        args.model_dir,
        args.output_dir,
        hyperparameters_from(args),
        show_progress=sys.stderr.isatty(),
        checkpoint_dir=args.checkpoint_dir,
        pretrained_dir=args.pretrained_dir,
        feature_cache_dir=args.feature_cache_dir,
    )
    try:
        run_training(run)
    except (DataLayoutError, PretrainedWeightsUnavailableError, CheckpointRefusedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
