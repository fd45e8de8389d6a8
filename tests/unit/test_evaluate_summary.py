"""What `make evaluate` counts (ops/evaluate_model.summarise), on answers written here: top-k, per-breed recall and
precision, confusions, calibration, and the photos outside the model's labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.evaluate_model import name_key, summarise
from ops.score_model import ScoringError


def answer(*breeds_and_probabilities):
    return {"predictions": [{"breed": b, "probability": p} for b, p in breeds_and_probabilities]}


PHOTOS = [
    (Path("a/1.jpg"), "001.Akita"),
    (Path("a/2.jpg"), "001.Akita"),
    (Path("b/1.jpg"), "Beagle"),
    (Path("b/2.jpg"), "Beagle"),
    (Path("c/1.jpg"), "Shiba_inu"),  # not a label of this model
    (Path("d/1.jpg"), "Scottish_terrier"),  # the label says "Scotch terrier": the same breed
]
ANSWERS = [
    answer(("Akita", 0.9), ("Beagle", 0.1)),
    answer(("Beagle", 0.6), ("Akita", 0.4)),  # wrong, right at top-2
    answer(("Beagle", 0.8), ("Akita", 0.2)),
    {"message": "the image could not be decoded"},  # refused: counted wrong
    answer(("not a dog", 0.7), ("Akita", 0.3)),
    answer(("Scotch terrier", 0.5), ("Beagle", 0.5)),
]
LABELS = {name_key(b) for b in ("Akita", "Beagle", "Scotch terrier", "not a dog")}


def test_the_counts_of_a_small_known_set():
    result = summarise("m", Path("d"), PHOTOS, ANSWERS, LABELS)
    assert (result.photos, result.known) == (6, 5)
    assert result.top1 == pytest.approx(3 / 5) and result.top5 == pytest.approx(4 / 5)
    assert result.per_breed["Akita"] == {"photos": 2, "correct": 1, "predicted": 1, "recall": 0.5, "precision": 1.0}
    assert result.per_breed["Beagle"]["recall"] == 0.5 and result.per_breed["Beagle"]["precision"] == 0.5
    assert list(result.per_breed)[:2] == ["Akita", "Beagle"]  # the worst first (ties by name)
    assert {"true": "Akita", "predicted": "Beagle", "count": 1} in result.confused_pairs
    assert {"true": "Beagle", "predicted": "(refused)", "count": 1} in result.confused_pairs
    assert len(result.refused) == 1 and "could not be decoded" in result.refused[0]
    assert result.outside == {"photos": 1, "breeds": ["Shiba inu"], "answers": {"not a dog": 1}, "not_a_dog_rate": 1.0}
    assert result.dogs_answered_not_a_dog == 0.0
    # calibration: stated 0.9, 0.6, 0.8, 0 (refused), 0.5 against right, wrong, right, wrong, right
    stated, right = [0.9, 0.6, 0.8, 0.0, 0.5], [1, 0, 1, 0, 1]
    assert result.ece == pytest.approx(sum(abs(s - r) for s, r in zip(stated, right, strict=True)) / 5)


def test_nothing_in_the_label_set_is_refused_with_what_was_wrong():
    with pytest.raises(ScoringError, match="none of d's breeds is one of the model's labels"):
        summarise("m", Path("d"), PHOTOS[4:5], ANSWERS[4:5], LABELS)


def test_without_labels_every_breed_counts():
    assert summarise("m", Path("d"), PHOTOS, ANSWERS, None).known == 6


def test_a_dog_of_a_known_breed_answered_not_a_dog_is_counted_wrong_and_as_a_false_alarm():
    answers = [answer(("not a dog", 0.6), ("Akita", 0.3)), *ANSWERS[1:]]
    result = summarise("m", Path("d"), PHOTOS, answers, LABELS)
    assert result.top1 == pytest.approx(2 / 5) and result.dogs_answered_not_a_dog == pytest.approx(1 / 5)
