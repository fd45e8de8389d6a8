"""The feature cache's content address, its store and its deterministic views (breed_classifier.feature_cache)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from breed_classifier.data import image_folder
from breed_classifier.feature_cache import (
    CachedViews,
    FeatureSpec,
    FeatureStore,
    backbone_digest,
    data_digest,
    training_views,
)
from breed_classifier.preprocessing import eval_transform, train_transform
from offline_stack.synthetic_images import write_image_folder

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
SPEC = FeatureSpec("efficientnet_lite0", "b" * 64, "d" * 64, 64, MEAN, STD, 2, 42)


@pytest.mark.parametrize(
    "change",
    [
        {"backbone_digest": "c" * 64},
        {"data_digest": "e" * 64},
        {"image_size": 96},
        {"mean": (0.485, 0.456, 0.406)},
        {"std": (0.229, 0.224, 0.225)},
        {"views": 3},
        {"seed": 7},
        {"architecture": "resnet50"},
    ],
)
def test_anything_the_features_depend_on_changes_the_key_and_misses_the_store(change, tmp_path):
    store = FeatureStore(tmp_path)
    store.put(SPEC, {"train": {"features": torch.ones(2, 2, 3), "targets": torch.tensor([0, 1])}})
    changed = dataclasses.replace(SPEC, **change)
    assert changed.key != SPEC.key
    assert store.get(changed) is None
    assert store.get(SPEC)["train"]["targets"].tolist() == [0, 1]


def test_a_stored_file_of_another_spec_is_not_taken_for_these_features(tmp_path):
    store = FeatureStore(tmp_path)
    other = dataclasses.replace(SPEC, seed=1)
    path = store.put(other, {"train": {}})
    store.path(SPEC).parent.mkdir(parents=True)
    path.rename(store.path(SPEC))  # the right name, the wrong content
    assert store.get(SPEC) is None
    assert not list(tmp_path.rglob("*.partial"))


def test_the_data_digest_follows_every_byte_and_name(tmp_path):
    root = write_image_folder(tmp_path / "data", {"train": 2}, classes=2)
    before = data_digest([root / "train"])
    assert data_digest([root / "train"]) == before
    image = next((root / "train").rglob("*.jpg"))
    image.write_bytes(image.read_bytes()[:-1] + b"\x00")
    assert data_digest([root / "train"]) != before
    changed = data_digest([root / "train"])
    image.rename(image.with_name("renamed.jpg"))
    assert data_digest([root / "train"]) != changed


def test_the_backbone_digest_follows_its_weights_and_batch_norm_statistics():
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    before = backbone_digest(backbone)
    backbone[1].running_mean += 1e-3  # what a frozen backbone left in training mode would do
    assert backbone_digest(backbone) != before


def test_views_are_the_centre_its_mirror_and_seeded_augmentations_the_same_every_time(tmp_path):
    root = write_image_folder(tmp_path / "data", {"train": 2}, classes=2, size=80)
    centre = image_folder(root / "train", eval_transform(64, MEAN, STD))
    random_view = image_folder(root / "train", train_transform(64, MEAN, STD))
    views = training_views(centre, random_view, 4, seed=42)
    assert len(views) == 4
    assert torch.equal(views[1][0][0], torch.flip(views[0][0][0], dims=[-1]))
    state = torch.random.get_rng_state()
    first = views[2][1][0]
    assert torch.equal(views[2][1][0], first)  # the same pixels for the same image and view, every time
    assert not torch.equal(views[3][1][0], first)  # another view of it differs
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random stream is untouched
    assert len(training_views(centre, random_view, 1, seed=42)) == 1


def test_each_epoch_draws_one_view_per_image_seeded_by_the_epoch():
    features = torch.arange(2 * 3 * 1, dtype=torch.float32).reshape(2, 3, 1)  # 2 images, 3 views
    views = CachedViews(features, torch.tensor([0, 1]), seed=42)
    views.set_epoch(1)
    first = [views[i][0].item() for i in range(2)]
    views.set_epoch(1)
    assert [views[i][0].item() for i in range(2)] == first
    drawn = set()
    for epoch in range(1, 30):
        views.set_epoch(epoch)
        drawn.update(int(views[0][0].item()) for _ in range(1))
    assert drawn == {0, 1, 2}  # every view of image 0 is used over the epochs


def test_the_number_of_views_is_bounded_on_the_command_line():
    import argparse

    from breed_classifier.cli import add_hyperparameter_arguments

    parser = argparse.ArgumentParser()
    add_hyperparameter_arguments(parser)
    assert parser.parse_args(["--cached-views", "16"]).cached_views == 16
    with pytest.raises(SystemExit):
        parser.parse_args(["--cached-views", "17"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--feature-cache", "always"])


def _archive(tmp_path, spec: FeatureSpec, name: str = "model.tar.gz"):
    """An extraction job's output as its ``features`` channel delivers it: ``<key>/features.pt`` in a tarball."""
    import hashlib
    import io
    import tarfile

    buffer = io.BytesIO()
    torch.save({"spec": dataclasses.asdict(spec), "train": {"features": torch.ones(2, 1, 3)}}, buffer)
    channel = tmp_path / "channel"
    channel.mkdir(exist_ok=True)
    with tarfile.open(channel / name, "w:gz") as tar:
        info = tarfile.TarInfo(f"./{spec.key}/features.pt")
        info.size = len(buffer.getvalue())
        tar.addfile(info, io.BytesIO(buffer.getvalue()))
    return channel, hashlib.sha256((channel / name).read_bytes()).hexdigest()


def test_features_from_an_extraction_jobs_archive_are_read_when_their_digest_is_the_recorded_one(tmp_path):
    channel, digest = _archive(tmp_path, SPEC)
    assert FeatureStore(channel, digest).get(SPEC)["train"]["features"].shape == (2, 1, 3)
    assert FeatureStore(channel).get(SPEC) is not None  # unpinned (a laptop's own folder): read as they are
    other = dataclasses.replace(SPEC, seed=7)
    assert FeatureStore(channel, digest).get(other) is None  # not in this archive


def test_an_archive_whose_bytes_are_not_the_recorded_ones_is_refused(tmp_path):
    from breed_classifier.feature_cache import FeaturesRefusedError

    channel, digest = _archive(tmp_path, SPEC)
    tampered = "0" * 64
    with pytest.raises(FeaturesRefusedError, match=f"has sha256 {digest}, not {tampered}"):
        FeatureStore(channel, tampered).get(SPEC)
    with pytest.raises(FeaturesRefusedError, match="no model.tar.gz under"):
        FeatureStore(tmp_path / "empty", digest).get(SPEC)


def test_a_seeded_view_is_the_same_every_time_and_leaves_the_callers_generator_alone(tmp_path):
    from breed_classifier.feature_cache import SeededView

    write_image_folder(tmp_path, {"train": 2}, classes=2, size=32)
    folder = image_folder(tmp_path / "train", train_transform(32, MEAN, STD))
    view = SeededView(folder, folder.transform, view=2, seed=42)
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    first = view[1][0]
    assert torch.equal(torch.random.get_rng_state(), state)  # the epochs' shuffling is not disturbed
    assert torch.equal(view[1][0], first) and len(view) == len(folder)
    assert not torch.equal(SeededView(folder, folder.transform, view=3, seed=42)[1][0], first)
    assert not torch.equal(SeededView(folder, folder.transform, view=2, seed=43)[1][0], first)
