"""What training costs: course-style frozen-backbone training against the project's feature cache, same data, seed.

Course-style (the original project's recipe): ResNet-50 frozen, its random augmentation (random resized crop and
flip), the backbone run on every training and validation image every epoch, 10 epochs. The project: the same
network, data and seed, the backbone's features computed once (``breed_classifier.feature_cache``) and the head
trained on them. Both are real ``run_training`` runs on generated images; the backbone has random weights here
(the ImageNet weights file would be a download), which costs exactly the same compute. A 4-trial tuning run
(four learning rates) pays the backbone four times course-style, once with the cache (a content-addressed store:
trials 2-4 hit). Accuracy is compared with EfficientNet-Lite0's real ImageNet weights (packaged), where features
mean something. Wall time on this machine is priced at the training instance type's hourly rate: a relative cost,
not a prediction of the instance's own time.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from breed_classifier.data import DataSplits
from breed_classifier.training import Hyperparameters, TrainingRun, run_training
from offline_stack.synthetic_images import write_image_folder

TRAINING_INSTANCE = "ml.m5.2xlarge"
TUNING_LEARNING_RATES = (0.001, 0.003, 0.01, 0.03)


def _run(data: Path, work: Path, name: str, hyperparameters: Hyperparameters, cache: Path | None) -> dict:
    splits = DataSplits(data / "train", data / "valid", None)
    run = TrainingRun(splits, work / name / "model", work / name / "output", hyperparameters, feature_cache_dir=cache)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_training(run, emit=lambda line: None)
    seconds = time.perf_counter() - started
    best = result.history[result.best_epoch - 1]
    epochs = len(result.history)
    return {"seconds": seconds, "valid_accuracy": best["valid_accuracy"], "epochs": epochs}


def training_cost(small: bool) -> dict:
    """Course-style against the project: one 10-epoch run (ResNet-50), a 4-trial tuning run, and accuracy."""
    from ops.capacity_plan import PRICES

    per_class, size, image_size, epochs = ((4, 2), 48, 64, 2) if small else ((16, 4), 160, 224, 10)
    hourly = PRICES.training_per_hour[TRAINING_INSTANCE]
    with tempfile.TemporaryDirectory(prefix="bench-training-") as work_dir:
        work = Path(work_dir)
        data = write_image_folder(work / "data", {"train": per_class[0] * 4, "valid": per_class[1] * 4}, 4, size)
        images = per_class[0] * 4
        base = Hyperparameters(
            epochs=epochs,
            batch_size=16,
            learning_rate=0.003,
            patience=epochs,
            architecture="resnet50",
            pretrained=False,
            freeze_backbone=True,
            image_size=image_size,
            num_workers=0,
            seed=42,
        )
        course = _run(data, work, "course", replace(base, feature_cache="off"), None)
        project = _run(data, work, "project", base, None)
        course_trials = [
            _run(data, work, f"course-{rate}", replace(base, feature_cache="off", learning_rate=rate), None)
            for rate in TUNING_LEARNING_RATES
        ]
        store = work / "feature-store"
        project_trials = [
            _run(data, work, f"project-{rate}", replace(base, learning_rate=rate), store)
            for rate in TUNING_LEARNING_RATES
        ]
        lite = replace(base, architecture="efficientnet_lite0", pretrained=True, learning_rate=0.01)
        course_lite = _run(data, work, "course-lite", replace(lite, feature_cache="off"), None)
        project_lite = _run(data, work, "project-lite", lite, None)
    tuning = {
        "course_style": sum(t["seconds"] for t in course_trials),
        "project": sum(t["seconds"] for t in project_trials),
    }
    return {
        "epochs": epochs,
        "train_images": images,
        "image_size": image_size,
        "instance": TRAINING_INSTANCE,
        "run": {
            "course_style": {**course, "images_per_second": images * course["epochs"] / course["seconds"]},
            "project": {**project, "images_per_second": images * project["epochs"] / project["seconds"]},
        },
        "tuning_seconds": tuning,
        "cost_usd": {
            "run_course_style": course["seconds"] / 3600 * hourly,
            "run_project": project["seconds"] / 3600 * hourly,
            "tuning_course_style": tuning["course_style"] / 3600 * hourly,
            "tuning_project": tuning["project"] / 3600 * hourly,
        },
        "accuracy_pretrained": {
            "architecture": "efficientnet_lite0",
            "course_style": course_lite["valid_accuracy"],
            "project": project_lite["valid_accuracy"],
        },
    }
