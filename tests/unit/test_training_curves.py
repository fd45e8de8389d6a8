"""The training-curves plot: an SVG written without a plotting library (nothing is installed in the training
container, which runs with network isolation)."""

from __future__ import annotations

import math
from xml.etree import ElementTree

from breed_classifier.curves import write_training_curves

SVG = "{http://www.w3.org/2000/svg}"


def _history(epochs: int, valid_loss=None) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 2.0 / e,
            "valid_loss": (valid_loss or {}).get(e, 2.5 / e),
            "train_accuracy": 0.2 * e,
            "valid_accuracy": 0.15 * e,
        }
        for e in range(1, epochs + 1)
    ]


def _drawn(path):
    root = ElementTree.parse(path).getroot()
    lines = [line.get("points").split() for line in root.iter(f"{SVG}polyline")]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    return root, lines, texts


def test_each_panel_draws_train_and_valid_with_a_point_per_epoch(tmp_path):
    path = tmp_path / "out/training_curves.svg"
    write_training_curves(_history(4), path, best_epoch=3)
    root, lines, texts = _drawn(path)
    assert [len(points) for points in lines] == [4, 4, 4, 4]
    assert "Training curves: 4 epochs" in texts and "best epoch (3)" in texts
    # the later epoch sits to the right, the lower loss lower down (SVG's y grows downwards)
    xs, ys = zip(*(tuple(map(float, p.split(","))) for p in lines[0]), strict=True)
    assert list(xs) == sorted(xs) and list(ys) == sorted(ys)
    assert sum(1 for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray")) == 2  # the best epoch, twice


def test_a_run_stopped_early_says_so_and_a_lost_value_is_left_out(tmp_path):
    path = tmp_path / "curves.svg"
    write_training_curves(_history(3, {2: math.nan}), path, best_epoch=1, stopped_early=True, max_epochs=10)
    _, lines, texts = _drawn(path)
    assert "Training curves: stopped early at epoch 3 of 10" in texts
    assert [len(points) for points in lines] == [3, 2, 3, 3]  # valid loss of epoch 2 was NaN
    assert all("nan" not in point for points in lines for point in points)


def test_accuracy_is_drawn_on_a_zero_to_one_scale_whatever_the_values(tmp_path):
    path = tmp_path / "curves.svg"
    write_training_curves(_history(2), path)
    _, _, texts = _drawn(path)
    assert {"0", "0.5", "1"} <= set(texts)
