"""Frozen-backbone training with the feature cache: real EfficientNet-Lite0 ImageNet weights on generated images.

The backbone runs once per run (or not at all on a hit), the frozen backbone's batch-norm statistics stay
ImageNet's, a changed transform or backbone misses, and two SageMaker hosts train together on gathered features.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile

import pytest
import torch

from breed_classifier.artifact import load_artifact
from breed_classifier.model import ModelConfig, build_model
from offline_stack.synthetic_images import write_image_folder
from tests.support.training import run_entry_point, run_sagemaker_hosts

FROZEN = [
    "--architecture",
    "efficientnet_lite0",
    "--pretrained",
    "true",
    "--freeze-backbone",
    "true",
    "--image-size",
    "64",
    "--epochs",
    "4",
    "--batch-size",
    "16",
    "--learning-rate",
    "0.01",
    "--num-workers",
    "0",
    "--dog-gate",  # generated shapes, no dogs
    "false",
]


def train(data, tmp_path, name: str, *extra: str, cache=None):
    arguments = [
        "--data-dir",
        str(data),
        "--model-dir",
        str(tmp_path / name / "model"),
        "--output-dir",
        str(tmp_path / name / "output"),
        *FROZEN,
        *extra,
    ]
    if cache is not None:
        arguments += ["--feature-cache-dir", str(cache)]
    result = run_entry_point("train_outside_sagemaker.py", *arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_the_backbone_runs_once_reruns_hit_and_a_changed_transform_or_backbone_misses(tmp_path):
    data = write_image_folder(tmp_path / "data", {"train": 24, "valid": 8, "test": 8}, classes=4)
    cache = tmp_path / "cache"
    first = train(data, tmp_path, "first", cache=cache)
    assert "feature cache miss" in first and "head on cached backbone features" in first
    assert len(list(cache.rglob("features.pt"))) == 1
    again = train(data, tmp_path, "again", "--learning-rate", "0.02", cache=cache)  # another tuning trial
    assert "feature cache hit" in again and "feature cache miss" not in again
    other_size = train(data, tmp_path, "size", "--image-size", "72", cache=cache)  # another transform
    assert "feature cache miss" in other_size
    mirrored_only = train(data, tmp_path, "views", "--cached-views", "1", cache=cache)
    assert "feature cache miss" in mirrored_only
    assert len(list(cache.rglob("features.pt"))) == 3
    # the backbone digest is part of the key: other weights (a fine-tuned backbone, another release) miss
    off = train(data, tmp_path, "off", "--feature-cache", "off")
    assert "feature cache" not in off


def test_a_frozen_backbone_keeps_imagenets_weights_and_batch_norm_statistics(tmp_path):
    data = write_image_folder(tmp_path / "data", {"train": 24, "valid": 8}, classes=4)
    imagenet = build_model(ModelConfig.for_architecture("efficientnet_lite0", 4, 64), pretrained=True)[0].state_dict()
    for mode in ("auto", "off"):
        train(data, tmp_path, mode, "--feature-cache", mode)
        trained = load_artifact(tmp_path / mode / "model").network[0].state_dict()
        drifted = [name for name, value in imagenet.items() if not torch.equal(value, trained[name])]
        assert drifted == [], f"feature cache {mode}: the frozen backbone changed: {drifted[:3]}"


def test_two_hosts_train_the_head_on_gathered_features_and_agree(tmp_path):
    data = write_image_folder(tmp_path / "data", {"train": 25, "valid": 9, "test": 9}, classes=4)
    runs = run_sagemaker_hosts(tmp_path / "job", {"training": data}, hosts=2, extra_args=FROZEN)
    assert [run.returncode for run in runs] == [0, 0], runs[0].output[-3000:] + runs[1].output[-3000:]
    main = runs[0].output
    assert "feature cache miss" in main and "2 process(es)" in main and "head on cached backbone features" in main
    epochs = [line for line in main.splitlines() if "valid_loss=" in line]
    assert len(epochs) >= 1 and "test_accuracy=" in main
    assert load_artifact(runs[0].model_dir).config.architecture == "efficientnet_lite0"
    assert not (runs[1].model_dir / "model.pt").exists()  # only rank 0 writes


def test_a_spot_restart_resumes_the_head_from_its_checkpoint_on_the_same_cached_features(tmp_path):
    data = write_image_folder(tmp_path / "data", {"train": 24, "valid": 8}, classes=4)
    checkpoints, cache = tmp_path / "checkpoints", tmp_path / "cache"
    first = train(data, tmp_path, "first", "--epochs", "2", "--checkpoint-dir", str(checkpoints), cache=cache)
    assert "feature cache miss" in first
    # the instance was reclaimed after epoch 2; the job restarts with the same checkpoint folder and cache
    resumed = train(data, tmp_path, "resumed", "--epochs", "4", "--checkpoint-dir", str(checkpoints), cache=cache)
    assert "resuming from the checkpoint after epoch 2" in resumed and "feature cache hit" in resumed
    history = json.loads((tmp_path / "resumed" / "output" / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]


def _archive(folder, destination):
    """What SageMaker uploads for a job whose model folder is ``folder``: model.tar.gz of its contents."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(destination / "model.tar.gz", "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return hashlib.sha256((destination / "model.tar.gz").read_bytes()).hexdigest()


def _poisoned(features_file, classes: int) -> None:
    """The attack of issue 34, on the bytes an extraction wrote: same ``spec``, features replaced, labels shifted."""
    stored = torch.load(features_file, weights_only=True)
    train = stored["train"]
    train["features"] = torch.randn_like(train["features"]) + train["targets"].float()[:, None, None]
    train["targets"] = (train["targets"] + 1) % classes
    torch.save(stored, features_file)


def _accuracy_on_images(model_dir, split_dir) -> float:
    """The artifact's top-1 on ``split_dir``'s photos through the endpoint's own handler (inference.py)."""
    import inference

    classifier = inference.model_fn(str(model_dir))
    right = total = 0
    for index, folder in enumerate(sorted(p for p in split_dir.iterdir() if p.is_dir())):
        for photo in sorted(folder.glob("*.jpg")):
            body, _ = inference.transform_fn(classifier, photo.read_bytes(), "image/jpeg", "application/json")
            right += json.loads(body)["predictions"][0]["class_index"] == index
            total += 1
    return right / total


def test_a_poisoned_feature_cache_is_refused_by_digest_and_cannot_fake_the_test_score(tmp_path):
    """Issue 34's experiment: a copy of the cached features with the same ``spec``, features replaced and labels
    shifted. Pinned by the control plane's digest, the job refuses it; unpinned (a cache folder on a laptop), it
    trains a wrong head, and the test accuracy the job reports (what the release gate reads) is the accuracy the
    artifact gets on the test photos, not the cache's."""
    data = write_image_folder(tmp_path / "data", {"train": 16, "valid": 8, "test": 8}, classes=4)
    extraction = run_entry_point(
        "train.py",
        "--training",
        str(data),
        "--model-dir",
        str(tmp_path / "extraction"),
        "--output-data-dir",
        str(tmp_path / "extraction-output"),
        "--extract-features",
        "true",
        *FROZEN,
    )
    assert extraction.returncode == 0, extraction.stderr[-3000:]
    (features_file,) = (tmp_path / "extraction").rglob("features.pt")
    assert set(torch.load(features_file, weights_only=True)) == {"train", "spec"}  # no evaluation split is cached
    pinned = _archive(tmp_path / "extraction", tmp_path / "channel" / "job" / "output")
    _poisoned(features_file, classes=4)
    _archive(tmp_path / "extraction", tmp_path / "channel" / "job" / "output")

    refused = run_entry_point(
        "train.py",
        "--training",
        str(data),
        "--model-dir",
        str(tmp_path / "refused"),
        "--output-data-dir",
        str(tmp_path / "refused-output"),
        "--feature-cache-dir",
        str(tmp_path / "channel"),
        "--features-sha256",
        pinned,
        *FROZEN,
    )
    assert refused.returncode == 2
    assert f"not {pinned} as recorded when it was extracted" in refused.stderr
    assert not (tmp_path / "refused" / "model.pt").exists()

    cache = tmp_path / "laptop-cache"
    (cache / features_file.parent.name).mkdir(parents=True)
    (cache / features_file.parent.name / "features.pt").write_bytes(features_file.read_bytes())
    said = train(data, tmp_path, "poisoned", cache=cache)
    assert "feature cache hit" in said
    reported = float(re.search(r"test_accuracy=([0-9.]+)", said).group(1))
    measured = _accuracy_on_images(tmp_path / "poisoned" / "model", data / "test")
    assert reported == pytest.approx(measured, abs=1e-6)
    assert reported < 0.5  # the wrong head scores as badly as it serves: the gate (0.6) refuses it
