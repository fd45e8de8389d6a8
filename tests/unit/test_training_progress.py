"""Early stopping and best-epoch selection (``breed_classifier.progress``), and what a checkpoint must
have been written by to be resumed, at their boundaries: an equal loss is not an improvement, patience counts
epochs since the best, NaN never becomes the best, and only this run's own checkpoint is resumed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from breed_classifier.data import DataSplits
from breed_classifier.progress import Progress, load_checkpoint, run_identity, save_checkpoint
from breed_classifier.training import Hyperparameters, TrainingRun


def _row(epoch: int, valid_loss: float) -> dict:
    return {"epoch": epoch, "valid_loss": valid_loss}


def _network(value: float) -> nn.Module:
    network = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        network.weight.fill_(value)
    return network


def _record(losses: list[float], patience: int) -> tuple[Progress, list[bool]]:
    progress = Progress()
    stops = [progress.record(_row(epoch, loss), _network(epoch), patience) for epoch, loss in enumerate(losses, 1)]
    return progress, stops


def test_the_best_epoch_is_the_lowest_valid_loss_and_its_weights_are_kept():
    progress, stops = _record([1.0, 0.5, 0.7, 0.4, 0.6], patience=3)
    assert (progress.best_epoch, progress.best_loss) == (4, 0.4) and stops == [False] * 5
    assert progress.best_state["weight"].item() == 4.0  # epoch 4's weights, copied when it was recorded
    assert len(progress.history) == 5 and not progress.stopped_early


def test_an_equal_loss_is_not_an_improvement():
    progress, _ = _record([0.5, 0.5], patience=5)
    assert progress.best_epoch == 1 and progress.best_state["weight"].item() == 1.0


def test_training_stops_once_patience_epochs_pass_without_improvement():
    progress, stops = _record([1.0, 0.5, 0.6, 0.7, 0.8], patience=3)
    assert stops == [False, False, False, False, True] and progress.stopped_early  # epochs 3, 4, 5 after best 2
    progress, stops = _record([1.0, 0.5, 0.6, 0.7], patience=3)
    assert stops == [False] * 4 and not progress.stopped_early
    _, stops = _record([1.0, 1.1], patience=1)
    assert stops == [False, True]


def test_a_nan_loss_is_never_the_best():
    progress, stops = _record([math.nan, math.nan], patience=5)
    assert progress.best_state is None and progress.best_epoch == 0 and stops == [False, False]
    progress, _ = _record([math.nan, 0.9], patience=5)
    assert progress.best_epoch == 2


def test_the_weights_kept_do_not_change_when_training_goes_on():
    progress = Progress()
    network = _network(1.0)
    progress.record(_row(1, 0.5), network, patience=3)
    with torch.no_grad():
        network.weight.fill_(9.0)
    assert progress.best_state["weight"].item() == 1.0


def _run(tmp_path: Path, name: str = "job-1", **changes) -> TrainingRun:
    data = DataSplits(tmp_path / "train", tmp_path / "valid", None)
    return TrainingRun(data, tmp_path / "model", tmp_path / "out", Hyperparameters(**changes), run_name=name)


def test_a_run_may_resume_with_more_epochs_patience_or_workers_but_nothing_else(tmp_path):
    identity = run_identity(_run(tmp_path), ["a", "b"])
    for same in ({"epochs": 30}, {"patience": 9}, {"num_workers": 0}):
        assert run_identity(_run(tmp_path, **same), ["a", "b"]) == identity, same
    for other in ({"learning_rate": 0.1}, {"batch_size": 8}, {"architecture": "resnet18"}, {"seed": 1}):
        assert run_identity(_run(tmp_path, **other), ["a", "b"]) != identity, other
    assert run_identity(_run(tmp_path), ["a", "c"]) != identity
    assert run_identity(_run(tmp_path, name="job-2"), ["a", "b"]) != identity


def test_only_this_runs_own_checkpoint_is_resumed(tmp_path):
    identity = run_identity(_run(tmp_path), ["a", "b"])
    said: list[str] = []
    assert load_checkpoint(tmp_path / "none", "cpu", identity, said.append) is None
    assert load_checkpoint(None, "cpu", identity, said.append) is None
    save_checkpoint(tmp_path / "ckpt", {"run": identity, "epoch": 3})
    assert load_checkpoint(tmp_path / "ckpt", "cpu", identity, said.append)["epoch"] == 3
    other = run_identity(_run(tmp_path, name="job-2"), ["a", "b"])
    assert load_checkpoint(tmp_path / "ckpt", "cpu", other, said.append) is None
    assert said == [
        f"not resuming: {tmp_path / 'ckpt' / 'checkpoint.pt'} was written by another run (job-1, other "
        "classes or hyperparameters)"
    ]
    assert not list((tmp_path / "ckpt").glob(".*partial"))  # written whole: no partial file left


@pytest.mark.parametrize("patience", [1, 2])
def test_a_resumed_run_keeps_its_best_so_far(patience):
    progress, _ = _record([0.9, 0.3, 0.4], patience=patience + 5)
    checkpoint = {
        "optimizer": torch.optim.SGD(_network(0).parameters(), lr=0.1).state_dict(),
        "epoch": 3,
        "history": progress.history,
        "best_loss": progress.best_loss,
        "best_epoch": progress.best_epoch,
        "best_model": progress.best_state,
    }

    class _Setup:
        optimizer = torch.optim.SGD(_network(0).parameters(), lr=0.1)

    said: list[str] = []
    resumed = Progress.resumed(checkpoint, _Setup(), said.append)
    assert (resumed.first_epoch, resumed.best_epoch, resumed.best_loss) == (4, 2, 0.3)
    assert said == ["resuming from the checkpoint after epoch 3"]
    assert resumed.record(_row(4, 0.35), _network(4), patience) is (patience <= 4 - 2)


def test_a_checkpoint_is_written_into_a_new_folder_and_replaced_whole_in_an_existing_one(tmp_path):
    folder = tmp_path / "opt" / "ml" / "checkpoints"
    save_checkpoint(folder, {"run": {"job": "a"}, "epoch": 1})
    save_checkpoint(folder, {"run": {"job": "a"}, "epoch": 2})
    assert load_checkpoint(folder, "cpu", {"job": "a"}, emit=lambda line: None)["epoch"] == 2
    assert [p.name for p in folder.iterdir()] == ["checkpoint.pt"]  # no partial file left


def test_a_checkpoint_written_after_an_epoch_resumes_as_the_same_progress(tmp_path):
    # Given a run after epoch 3 (best at 2), with its network and an optimizer that has taken a step
    progress, _ = _record([0.9, 0.3, 0.4], patience=5)
    network = _network(3.0)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9)
    network(torch.ones(1, 1)).sum().backward()
    optimizer.step()

    class _Setup:
        def __init__(self, network, optimizer):
            self.network, self.optimizer = network, optimizer

    identity = {"job": "train-1", "classes": ["a", "b"], "hyperparameters": {"lr": 0.1}}
    # When its checkpoint is written to disk and read back as a resumed run reads it
    save_checkpoint(tmp_path, progress.checkpoint(3, _Setup(network, optimizer), identity))
    checkpoint = load_checkpoint(tmp_path, "cpu", identity, emit=lambda line: None)
    fresh = _network(0.0)
    fresh_optimizer = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    resumed = Progress.resumed(checkpoint, _Setup(fresh, fresh_optimizer), emit=lambda line: None)
    # Then the run, its epoch, weights, optimizer state and best-so-far all come back
    assert (checkpoint["run"], checkpoint["epoch"]) == (identity, 3)
    assert torch.equal(checkpoint["model"]["weight"], network.state_dict()["weight"])
    momentum = fresh_optimizer.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(momentum, optimizer.state_dict()["state"][0]["momentum_buffer"])
    assert (resumed.first_epoch, resumed.best_epoch, resumed.best_loss) == (4, 2, 0.3)
    assert resumed.history == progress.history
    assert torch.equal(resumed.best_state["weight"], progress.best_state["weight"])
