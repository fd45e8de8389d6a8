"""The model artifact round trip and its refusals: what is written (and nothing half-written), what must be there
to load, that labels and the network agree, and that the loaded network answers as the saved one did."""

from __future__ import annotations

import json

import pytest
import torch

from breed_classifier.artifact import ARTIFACT_FILES, ArtifactError, load_artifact, save_artifact
from breed_classifier.model import ModelConfig, build_model

FOLDERS = ["001.Affenpinscher", "002.Afghan_hound", "003.Airedale_terrier"]


@pytest.fixture
def saved(tmp_path):
    config = ModelConfig.for_architecture("small_cnn", len(FOLDERS), 32)
    torch.manual_seed(3)
    network = build_model(config).eval()
    save_artifact(tmp_path / "model", network, config, FOLDERS)
    return tmp_path / "model", network, config


def test_the_artifact_holds_exactly_its_files_and_loads_into_the_same_answers(saved):
    model_dir, network, config = saved
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(ARTIFACT_FILES)
    assert (model_dir / "code/inference.py").is_file() and (model_dir / "code/breed_classifier/model.py").is_file()
    assert not list(model_dir.rglob("__pycache__")) and not list(model_dir.glob(".staging-*"))
    labels = json.loads((model_dir / "labels.json").read_text())
    assert labels[1] == {"class_index": 1, "folder": "002.Afghan_hound", "breed": "Afghan hound"}
    loaded = load_artifact(model_dir)
    assert loaded.config == config and loaded.breeds == ["Affenpinscher", "Afghan hound", "Airedale terrier"]
    assert not loaded.network.training  # ready to serve: eval mode
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(loaded.network(images), network(images))


def test_saving_again_replaces_the_artifact_whole(saved):
    model_dir, _, config = saved
    (model_dir / "code" / "stale.py").write_text("left over")
    other = build_model(config).eval()
    save_artifact(model_dir, other, config, FOLDERS)
    assert not (model_dir / "code" / "stale.py").exists()
    state = torch.load(model_dir / "model.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in other.state_dict().items())


@pytest.mark.parametrize("missing", ARTIFACT_FILES)
def test_an_incomplete_artifact_is_refused_with_what_is_missing(saved, missing):
    import shutil

    model_dir = saved[0]
    target = model_dir / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(ArtifactError, match=f"is not a model artifact: missing {missing}$"):
        load_artifact(model_dir)


def test_labels_that_disagree_with_the_network_are_refused(saved):
    model_dir = saved[0]
    labels = json.loads((model_dir / "labels.json").read_text())
    (model_dir / "labels.json").write_text(json.dumps(labels[:2]))
    with pytest.raises(ArtifactError, match="labels.json has 2 classes but the model has 3"):
        load_artifact(model_dir)


def test_an_artifact_is_saved_into_a_folder_that_does_not_exist_yet(tmp_path):
    config = ModelConfig.for_architecture("small_cnn", len(FOLDERS), 32)
    model_dir = tmp_path / "training-output" / "job" / "model"
    save_artifact(model_dir, build_model(config).eval(), config, FOLDERS)
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(ARTIFACT_FILES)
