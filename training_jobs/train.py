"""SageMaker training entry point (script mode): ``sagemaker_program=train.py``.

Every path defaults to SageMaker's ``SM_*`` variable and falls back to a local folder outside it, so
the same script runs in a training container, under the offline executor, or by hand. Data comes as
channels ``train``/``valid``/``test``, or as one ``training`` channel holding those three folders; ImageNet
weights as the ``pretrained`` channel (the job runs with network isolation: nothing is downloaded or installed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from breed_classifier.cli import add_hyperparameter_arguments, boolean, hyperparameters_from
from breed_classifier.data import DataLayoutError, DataSplits
from breed_classifier.feature_cache import FeaturesRefusedError
from breed_classifier.metrics import log_line
from breed_classifier.model import PretrainedWeightsUnavailableError
from breed_classifier.progress import CheckpointRefusedError
from breed_classifier.training import TrainingRun, run_training

# CheckpointConfig's default LocalPath: it exists when the job has a CheckpointConfig (spot training).
# CHECKPOINT_LOCAL_PATH names another (a job whose CheckpointConfig sets LocalPath; the tests, which
# cannot use /opt/ml on the machine they run on).
SAGEMAKER_CHECKPOINTS = os.environ.get("CHECKPOINT_LOCAL_PATH", "/opt/ml/checkpoints")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_hyperparameter_arguments(parser)
    parser.add_argument("--model-dir", type=Path, default=Path(env.get("SM_MODEL_DIR", "model")))
    parser.add_argument("--output-data-dir", type=Path, default=Path(env.get("SM_OUTPUT_DATA_DIR", "output")))
    parser.add_argument(
        "--training",
        type=Path,
        default=_optional_path(env.get("SM_CHANNEL_TRAINING")),
        help="one channel holding train/ valid/ test/ (the original layout)",
    )
    for split in ("train", "valid", "test"):
        parser.add_argument(f"--{split}", type=Path, default=_optional_path(env.get(f"SM_CHANNEL_{split.upper()}")))
    parser.add_argument(
        "--pretrained-dir",
        type=Path,
        default=_optional_path(env.get("SM_CHANNEL_PRETRAINED")),
        help="the folder holding the architecture's ImageNet weights file (the job's 'pretrained' channel); "
        "the job runs with network isolation, so nothing is downloaded",
    )
    parser.add_argument(
        "--feature-cache-dir",
        type=Path,
        default=_optional_path(env.get("SM_CHANNEL_FEATURES")),
        help="backbone features an earlier job extracted (the job's 'features' channel); checked before use",
    )
    parser.add_argument(
        "--features-sha256",
        type=_sha256,
        default=None,
        help="the SHA-256 the control plane recorded for the 'features' channel's model.tar.gz: other bytes are "
        "refused (64 hex digits; set by the start-training function, never by an event)",
    )
    parser.add_argument(
        "--extract-features",
        type=boolean,
        default=False,
        metavar="{true,false}",
        help="compute the frozen backbone's features into the model folder (the feature cache) and train nothing",
    )
    checkpoints = Path(SAGEMAKER_CHECKPOINTS)
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=checkpoints if checkpoints.is_dir() else None,
        help="checkpoint after every epoch and resume from it (SageMaker syncs it to S3 for spot training)",
    )
    parser.add_argument(
        "--run-name",
        default=_job_name(env),
        help="the training job's name (SageMaker's); only this run's checkpoint is resumed",
    )
    return parser.parse_args(argv)


def _job_name(env) -> str | None:
    """The job's name as the SageMaker training toolkit describes it (``SM_TRAINING_ENV``), else the container's."""
    try:
        return json.loads(env.get("SM_TRAINING_ENV", "{}")).get("job_name") or env.get("TRAINING_JOB_NAME")
    except ValueError:
        return env.get("TRAINING_JOB_NAME")


def data_splits(args: argparse.Namespace) -> DataSplits:
    if args.train is not None:
        if args.valid is None:
            raise DataLayoutError("a train channel needs a valid channel too (test is optional)")
        return DataSplits(args.train, args.valid, args.test)
    if args.training is not None:
        test = args.training / "test"
        return DataSplits(args.training / "train", args.training / "valid", test if test.is_dir() else None)
    raise DataLayoutError(
        "no data: give channels train and valid (and test), or one channel 'training' with train/ valid/ test/ "
        "(outside SageMaker: --train DIR --valid DIR [--test DIR], or --training DIR)"
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        splits = data_splits(args)
        run = TrainingRun(
            splits,
            args.model_dir,
            args.output_data_dir,
            hyperparameters_from(args),
            checkpoint_dir=args.checkpoint_dir,
            run_name=args.run_name,
            pretrained_dir=args.pretrained_dir,
            feature_cache_dir=args.feature_cache_dir,
            extract_features=args.extract_features,
            features_sha256=args.features_sha256,
        )
        run_training(run, emit=lambda line: print(line, flush=True))
    except (DataLayoutError, PretrainedWeightsUnavailableError, CheckpointRefusedError, FeaturesRefusedError) as exc:
        print(log_line(f"error: {exc}"), file=sys.stderr)
        _report_failure(str(exc))
        return 2
    return 0


def _report_failure(reason: str) -> None:
    # SageMaker shows the contents of /opt/ml/output/failure as the job's FailureReason.
    output_dir = os.environ.get("SM_OUTPUT_DIR")
    if output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "failure").write_text(reason[:1024])


def _sha256(value: str) -> str:
    if re.fullmatch(r"[0-9a-f]{64}", value) is None:
        raise argparse.ArgumentTypeError(f"{value[:80]!r} is not a SHA-256 digest: expected 64 lowercase hex digits")
    return value


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


if __name__ == "__main__":
    sys.exit(main())
