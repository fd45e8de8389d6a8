"""The training loop's decisions, run for real in one process on a tiny generated data set (seconds, no network):
which epoch is kept, when it stops early, what it reports and saves, what the frozen backbone's cache computes once
and finds again, and what extract-only and resumed runs do. tests/integration runs the same loop as SageMaker jobs
on two processes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from breed_classifier.data import DataLayoutError, DataSplits
from breed_classifier.training import Hyperparameters, TrainingRun, run_training

COLOURS = {"Akita": (220, 40, 40), "Beagle": (40, 40, 220)}
QUICK = {
    "architecture": "small_cnn",
    "pretrained": False,
    "freeze_backbone": False,
    "image_size": 32,
    "batch_size": 4,
    "num_workers": 0,
    "epochs": 3,
    "learning_rate": 0.01,
    "dog_gate": False,
}


def _data(root: Path) -> DataSplits:
    counts = {"train": 6, "valid": 3, "test": 2}
    for split, count in counts.items():
        for breed, colour in COLOURS.items():
            folder = root / split / breed
            folder.mkdir(parents=True)
            for index in range(count):
                shade = tuple(max(0, c - 12 * index) for c in colour)
                Image.new("RGB", (40, 40), shade).save(folder / f"{index}.png")
    return DataSplits(root / "train", root / "valid", root / "test")


def _run(tmp_path: Path, **hyperparameters) -> TrainingRun:
    data = (
        _data(tmp_path / "data")
        if not (tmp_path / "data").exists()
        else DataSplits(tmp_path / "data" / "train", tmp_path / "data" / "valid", tmp_path / "data" / "test")
    )
    return TrainingRun(data, tmp_path / "model", tmp_path / "out", Hyperparameters(**{**QUICK, **hyperparameters}))


def _train(run: TrainingRun):
    said: list[str] = []
    return run_training(run, emit=said.append), said


def test_a_run_keeps_the_epoch_with_the_lowest_valid_loss_and_reports_and_saves_it(tmp_path):
    result, said = _train(_run(tmp_path))
    losses = [row["valid_loss"] for row in result.history]
    assert len(losses) == 3 and [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert result.classes == ["Akita", "Beagle"] and not result.stopped_early
    assert 0.0 <= result.test["test_accuracy"] <= 1.0 and result.test["test_loss"] >= 0.0
    calibration = result.calibration
    assert calibration["images"] == 6 and calibration["temperature"] > 0
    # the served probabilities are never less calibrated on the validation split than the network's own
    assert calibration["valid_ece_after"] <= calibration["valid_ece_before"]
    assert any(line.startswith("calibration: temperature ") for line in said)
    metrics = [line for line in said if line.startswith("#metrics# epoch=")]
    assert len(metrics) == 3 and "train_images_per_second=" in metrics[0]
    assert any(line.startswith("#metrics# test_loss=") for line in said)
    assert f"saved the model (epoch {result.best_epoch}) to {tmp_path / 'model'}" in said
    assert 'no "not a dog" answer: --dog-gate false for small_cnn; every answer is a breed' in said
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["best_epoch"] == result.best_epoch and report["hyperparameters"]["epochs"] == 3
    assert (tmp_path / "out" / "training_curves.svg").is_file() and any((tmp_path / "model").iterdir())


def test_a_run_that_does_not_improve_stops_after_patience_epochs(tmp_path):
    # a frozen backbone (evaluation mode) and a head that does not move: every epoch's valid loss is the same
    result, said = _train(
        _run(tmp_path, freeze_backbone=True, feature_cache="off", learning_rate=0.0, patience=1, epochs=5)
    )
    assert result.stopped_early and len(result.history) == 2 and result.best_epoch == 1
    assert "early stopping: valid loss has not improved for 1 epochs (best epoch 1)" in said


def test_a_fine_tuned_backbone_says_why_it_has_no_not_a_dog_answer(tmp_path):
    _, said = _train(_run(tmp_path, epochs=1, dog_gate=True))
    assert 'no "not a dog" answer: the backbone was fine-tuned for small_cnn; every answer is a breed' in said


def test_a_frozen_backbones_features_are_computed_once_then_found_by_their_address(tmp_path):
    frozen = {"freeze_backbone": True, "epochs": 2}
    run = replace(_run(tmp_path, **frozen), feature_cache_dir=tmp_path / "cache")
    first, said = _train(run)
    assert any(line.startswith("feature cache miss ") for line in said)
    assert any(line.startswith("feature cache: stored ") for line in said)
    assert any(line.endswith("head on cached backbone features") for line in said)
    second, said_again = _train(replace(run, model_dir=tmp_path / "model-2", output_dir=tmp_path / "out-2"))
    assert any(line.startswith("feature cache hit ") for line in said_again)
    assert not any("miss" in line for line in said_again)
    # and trains exactly as the run that computed them did
    assert [row["valid_loss"] for row in second.history] == pytest.approx([row["valid_loss"] for row in first.history])


def test_extract_only_stores_the_features_in_the_model_folder_and_trains_nothing(tmp_path):
    run = replace(_run(tmp_path, freeze_backbone=True), extract_features=True)
    result, said = _train(run)
    assert result.history == [] and result.test is None and result.best_epoch == 0
    assert f"features extracted to {tmp_path / 'model'}; no model was trained" in said
    assert list((tmp_path / "model").rglob("features.pt"))
    with pytest.raises(DataLayoutError, match="--extract-features needs --freeze-backbone true"):
        run_training(replace(_run(tmp_path), extract_features=True), emit=lambda line: None)


def test_a_run_resumes_from_its_own_checkpoint_after_the_last_epoch_it_finished(tmp_path):
    run = replace(_run(tmp_path, epochs=2), checkpoint_dir=tmp_path / "checkpoints", run_name="job-1")
    _train(run)
    assert (tmp_path / "checkpoints" / "checkpoint.pt").is_file()
    longer = replace(run, hyperparameters=replace(run.hyperparameters, epochs=3))
    result, said = _train(longer)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]  # epochs 1-2 from the checkpoint, 3 trained
    assert sum(1 for line in said if line.startswith("#metrics# epoch=")) == 1
    assert torch.load(tmp_path / "checkpoints" / "checkpoint.pt", weights_only=False)["epoch"] == 3


def test_a_temperature_that_would_raise_the_validation_ece_is_not_applied():
    from types import SimpleNamespace

    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from breed_classifier.model import ModelConfig
    from breed_classifier.training import _calibrate, calibration_of

    # three right at 0.73, one confidently wrong at 0.88: the likelihood's optimum (T about 3.4) flattens every
    # answer and leaves the stated probabilities further from the 75 % accuracy than the network's own
    logits = torch.tensor([[1.0, 0.0]] * 3 + [[2.0, 0.0]])
    labels = torch.tensor([0, 0, 0, 1])
    setup = SimpleNamespace(
        loaders={"valid": DataLoader(TensorDataset(logits, labels), batch_size=2)},
        scorer=nn.Identity(),
        device=torch.device("cpu"),
        config=ModelConfig.for_architecture("small_cnn", 2, 32),
    )
    said: list[str] = []
    calibration = _calibrate(setup, said.append)
    assert calibration["temperature"] == 1.0 and setup.config.temperature == 1.0
    assert calibration["valid_ece_after"] == calibration["valid_ece_before"] == calibration_of(logits, labels)
    assert "not applied (temperature 1)" in said[0]
    # while one that lowers it is applied
    setup.loaders = {"valid": DataLoader(TensorDataset(torch.tensor([[4.0, 0.0]] * 3 + [[4.0, 0.0]]), labels))}
    applied = _calibrate(setup, said.append)
    assert applied["temperature"] > 1.0 and applied["valid_ece_after"] < applied["valid_ece_before"]
    assert setup.config.temperature == applied["temperature"]
