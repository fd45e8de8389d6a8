"""Every file the project loads with torch is loaded as tensors and plain values only: a pickle payload in it is
refused and its code never runs (the checkpoint resume is proved end to end in test_training_and_artifact.py).

Why it matters: anyone who can write the bucket's ``models/`` or ``training-output/`` would otherwise run code in
the endpoint's container with its role; the packaged weights come from a registry package.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from breed_classifier import artifact, efficientnet_lite
from breed_classifier.model import ModelConfig


class RunsCode:
    """Unpickling this runs a shell command (``torch.load(weights_only=False)`` would do it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted(path: Path, marker: Path) -> Path:
    torch.save({"fc.weight": torch.zeros(2, 2), "payload": RunsCode(marker)}, path)
    return path


def test_the_payload_would_run_if_it_were_unpickled(tmp_path):
    # The check can fail: the crafted file does run code when loaded the unsafe way
    marker = tmp_path / "ran"
    torch.load(crafted(tmp_path / "model.pt", marker), weights_only=False)
    assert marker.exists()


def test_a_served_artifact_with_a_payload_is_refused_and_its_code_never_runs(tmp_path):
    # Given an artifact directory whose model.pt carries a payload (a tampered models/ object)
    marker = tmp_path / "ran"
    config = ModelConfig.for_architecture("small_cnn", num_classes=2, image_size=32)
    (tmp_path / "model_config.json").write_text(json.dumps(dataclasses.asdict(config)))
    (tmp_path / "labels.json").write_text(json.dumps([{"breed": "A"}, {"breed": "B"}]))
    (tmp_path / "code").mkdir()
    crafted(tmp_path / "model.pt", marker)
    # Then loading it is refused by the unpickler, and the payload never ran
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        artifact.load_artifact(tmp_path)
    assert not marker.exists()


def test_packaged_weights_with_a_payload_are_refused_and_their_code_never_runs(tmp_path, monkeypatch):
    # Given the registry package's weights file replaced by one with a payload (a compromised package)
    marker = tmp_path / "ran"
    weights = crafted(tmp_path / "efficientnet_lite0.pth", marker)
    monkeypatch.setattr(efficientnet_lite, "packaged_weights_path", lambda: weights)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        efficientnet_lite.imagenet_state_dict()
    assert not marker.exists()


def test_a_checkpoint_with_a_payload_is_refused_and_its_code_never_runs(tmp_path):
    # Given a checkpoint folder (synced from S3 on a spot restart) whose checkpoint carries a payload
    from breed_classifier.progress import CHECKPOINT_FILE, CheckpointRefusedError, load_checkpoint

    marker = tmp_path / "ran"
    crafted(tmp_path / CHECKPOINT_FILE, marker)
    # When a resumed run reads it, it is refused with what to do, and the payload did not run
    with pytest.raises(CheckpointRefusedError, match="holds more than tensors and plain values.*Delete it"):
        load_checkpoint(tmp_path, "cpu", {"job": "j"}, emit=lambda line: None)
    assert not marker.exists()
