"""Hyperparameter tuning: learning rate continuous 0.001-0.1, batch size categorical, minimise valid loss.

    python -m launchers.hpo --bucket BUCKET --role ROLE_ARN [--max-jobs 8 --max-parallel-jobs 2]

The objective's regex is the one the training module defines (breed_classifier.metrics).
"""

from __future__ import annotations

import argparse

from sagemaker.tuner import CategoricalParameter, ContinuousParameter, HyperparameterTuner

from breed_classifier.metrics import METRIC_DEFINITIONS, OBJECTIVE_METRIC
from launchers.estimator import training_inputs
from launchers.start_training_job import common_arguments, estimator_from

BATCH_SIZES = [32, 64, 128, 256]
HYPERPARAMETER_RANGES = {
    "learning-rate": ContinuousParameter(0.001, 0.1),
    "batch-size": CategoricalParameter(BATCH_SIZES),
}


def build_tuner(estimator, max_jobs: int, max_parallel_jobs: int, job_prefix: str) -> HyperparameterTuner:
    return HyperparameterTuner(
        estimator,
        objective_metric_name=OBJECTIVE_METRIC,
        objective_type="Minimize",
        hyperparameter_ranges=HYPERPARAMETER_RANGES,
        metric_definitions=[d for d in METRIC_DEFINITIONS if d["Name"] == OBJECTIVE_METRIC],
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel_jobs,
        base_tuning_job_name=job_prefix,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(parser)
    parser.add_argument("--max-jobs", type=int, default=8)
    parser.add_argument("--max-parallel-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    tuner = build_tuner(estimator_from(args), args.max_jobs, args.max_parallel_jobs, args.job_prefix)
    tuner.fit(training_inputs(args.bucket, dict(args.hyperparameter)), wait=False)
    print(tuner.latest_tuning_job.name)


if __name__ == "__main__":
    main()
