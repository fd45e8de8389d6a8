"""Temperature scaling and the expected calibration error (training_jobs/breed_classifier/calibration.py), and the
served probabilities divided by the artifact's temperature."""

from __future__ import annotations

import dataclasses
import io
import json

import inference
import pytest
import torch
from PIL import Image

from breed_classifier.artifact import load_artifact, save_artifact
from breed_classifier.calibration import (
    TEMPERATURE_BOUNDS,
    calibration_of,
    expected_calibration_error,
    fit_temperature,
    reliability,
)
from breed_classifier.model import ModelConfig, build_model


@pytest.mark.parametrize(
    ("confidences", "correct", "expected"),
    [
        ([0.9] * 10, [True] * 9 + [False], 0.0),  # says 90 %, right 90 %
        ([0.9] * 10, [True] * 5 + [False] * 5, 0.4),  # says 90 %, right half the time
        ([0.6] * 4 + [1.0] * 4, [True, True, False, False, True, True, True, True], 0.05),  # 0.5 * 0.1 + 0.5 * 0
        ([], [], 0.0),
    ],
)
def test_the_calibration_error_is_the_weighted_gap_between_stated_probability_and_accuracy(
    confidences, correct, expected
):
    assert expected_calibration_error(confidences, correct) == pytest.approx(expected)


def test_the_bins_hold_their_edges_and_refuse_what_is_no_probability():
    rows = reliability([0.0, 1.0, 0.5], [False, True, True], bins=2)
    assert [row["count"] for row in rows] == [1, 2]  # 1.0 is in the last bin, 0.5 is the second bin's lower edge
    assert rows[1]["confidence"] == pytest.approx(0.75) and rows[1]["accuracy"] == 1.0
    with pytest.raises(ValueError, match="within \\[0, 1\\], not 1.2"):
        reliability([1.2], [True])
    with pytest.raises(ValueError, match="2 probabilities but 1 outcomes"):
        reliability([0.1, 0.2], [True])


def over_confident(samples: int = 2000, classes: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a model that is right about 70 % of the time and says it is nearly always sure."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (samples,), generator=generator)
    logits = torch.randn(samples, classes, generator=generator)
    logits[torch.arange(samples), labels] += 1.5
    return logits * 6.0, labels


def test_a_fitted_temperature_cools_an_over_confident_model_without_changing_its_answers():
    logits, labels = over_confident()
    temperature = fit_temperature(logits, labels)
    assert temperature > 2.0
    before, after = calibration_of(logits, labels), calibration_of(logits, labels, temperature)
    assert after < before / 3 and after < 0.05, (before, after)
    assert torch.equal((logits / temperature).argmax(1), logits.argmax(1))  # top-1 and ranks unchanged
    # fitted on held-out data it still helps: the same model's other answers
    held_out, held_labels = over_confident(seed=1)
    assert calibration_of(held_out, held_labels, temperature) < calibration_of(held_out, held_labels) / 3


def test_nothing_to_fit_on_leaves_the_probabilities_as_they_are_and_the_fit_stays_in_bounds():
    assert fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == 1.0
    assert fit_temperature(torch.randn(1, 3), torch.tensor([0])) == 1.0
    # every answer right with huge margins: the fit would cool to nothing; it stops at the bound
    labels = torch.arange(4).repeat(10)
    logits = torch.nn.functional.one_hot(labels, 4).float() * 50
    assert TEMPERATURE_BOUNDS[0] <= fit_temperature(logits, labels) <= TEMPERATURE_BOUNDS[1]


def test_an_artifact_without_a_temperature_serves_as_before(tmp_path):
    config = ModelConfig.for_architecture("small_cnn", 3, 32)
    document = config.to_json()
    del document["temperature"]  # an artifact saved before calibration existed
    assert ModelConfig.from_json(document).temperature == 1.0


def test_serving_divides_the_logits_by_the_artifacts_temperature(tmp_path):
    folders = ["001.Akita", "002.Beagle", "003.Boxer"]
    config = dataclasses.replace(ModelConfig.for_architecture("small_cnn", 3, 32), temperature=4.0)
    torch.manual_seed(0)
    network = build_model(config).eval()
    save_artifact(tmp_path, network, config, folders)
    assert load_artifact(tmp_path).config.temperature == 4.0
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 90, 30)).save(photo, format="PNG")
    served = inference.model_fn(str(tmp_path))
    answer = json.loads(inference.transform_fn(served, photo.getvalue(), "image/png", "application/json")[0])
    batch = served.transform(Image.open(io.BytesIO(photo.getvalue())).convert("RGB")).unsqueeze(0)
    with torch.inference_mode():
        expected = torch.softmax(network(batch) / 4.0, dim=1)[0]
    for prediction in answer["predictions"]:
        assert prediction["probability"] == pytest.approx(float(expected[prediction["class_index"]]), abs=1e-5)
