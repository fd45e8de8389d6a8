"""A trained head behind the backbone's own ImageNet classifier (breed_classifier.model.DogGatedNetwork): a photo of
no dog is answered "not a dog", a dog photo a breed, and the probabilities are P(dog) x P(breed | dog).

EfficientNet-Lite0's real ImageNet weights (the pinned weights package) and the real photos of tests/data/photos
(MIT, see the README there); the head is untrained: what is checked is the gate, not the breeds."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import inference
import pytest
import torch
from PIL import Image

from breed_classifier.artifact import load_artifact, save_artifact
from breed_classifier.model import (
    DOG_GATE_THRESHOLD,
    IMAGENET_DOG_CLASSES,
    NOT_A_DOG_FOLDER,
    ModelConfig,
    build_model,
    imagenet_classifier,
    with_dog_gate,
)
from breed_classifier.preprocessing import eval_transform

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
FOLDERS = ["001.Akita", "002.Beagle", "003.Boxer"]


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    config = dataclasses.replace(ModelConfig.for_architecture("efficientnet_lite0", 3, 224), temperature=2.0)
    torch.manual_seed(0)
    network = build_model(config, pretrained=True, freeze_backbone=True).eval()
    classifier = imagenet_classifier("efficientnet_lite0", None)
    gated_network, gated_config = with_dog_gate(network, config, classifier)
    model_dir = tmp_path_factory.mktemp("gated") / "model"
    save_artifact(model_dir, gated_network, gated_config, [*FOLDERS, NOT_A_DOG_FOLDER])
    return network, gated_network, gated_config, model_dir


def served(model_dir: Path, photo: str) -> list[dict]:
    model = inference.model_fn(str(model_dir))
    kind = "image/png" if photo.endswith(".png") else "image/jpeg"
    body, _ = inference.transform_fn(model, (PHOTOS / photo).read_bytes(), kind, "application/json")
    return json.loads(body)["predictions"]


def test_a_cat_is_not_a_dog_and_a_dog_is_a_breed(gated):
    *_, model_dir = gated
    cat = served(model_dir, "cat.70.jpg")
    assert cat[0]["breed"] == "not a dog" and cat[0]["probability"] > 1 - DOG_GATE_THRESHOLD
    assert [p["breed"] for p in cat[1:]] != [] and all(p["probability"] < 0.5 for p in cat[1:])
    dog = served(model_dir, "dog.128.jpg")
    assert {p["breed"] for p in dog} == {"Akita", "Beagle", "Boxer"}  # breeds only: enough of a dog
    assert DOG_GATE_THRESHOLD < sum(p["probability"] for p in dog) <= 1.0  # P(dog), shared by the breeds
    # a dog beside a cat: ImageNet finds 0.4 of a dog, above the threshold, so a dog it is
    assert "not a dog" not in {p["breed"] for p in served(model_dir, "dog_cat.png")}


def test_the_probabilities_are_the_dog_mass_times_the_heads_calibrated_answer(gated):
    network, gated_network, config, _ = gated
    transform = eval_transform(config.image_size, config.mean, config.std)
    batch = transform(Image.open(PHOTOS / "dog.128.jpg").convert("RGB")).unsqueeze(0)
    with torch.inference_mode():
        probabilities = gated_network(batch).exp()[0]
        features = network[0](batch)
        breeds = torch.softmax(network[1](features) / 2.0, dim=1)[0]  # the head's, at the fitted temperature
        imagenet = torch.softmax(gated_network[2](features), dim=1)[0]
    dog = imagenet[list(IMAGENET_DOG_CLASSES)].sum()
    assert float(probabilities.sum()) == pytest.approx(1.0, abs=1e-5)
    assert probabilities[:3].tolist() == pytest.approx((dog * breeds).tolist(), abs=1e-5)
    assert float(probabilities[3]) == pytest.approx(float(1 - dog), abs=1e-5)


def test_the_gated_artifact_loads_as_it_was_saved(gated):
    _, gated_network, config, model_dir = gated
    loaded = load_artifact(model_dir)
    assert loaded.config.dog_gate == IMAGENET_DOG_CLASSES and loaded.config.num_classes == 4
    assert loaded.breeds == ["Akita", "Beagle", "Boxer", "not a dog"]
    probe = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.allclose(loaded.network(probe), gated_network(probe), atol=1e-5)
    assert json.loads((model_dir / "model_config.json").read_text())["temperature"] == 2.0


def test_no_classifier_without_weights_to_read_it_from():
    assert imagenet_classifier("small_cnn", None) is None
    assert imagenet_classifier("resnet50", None) is None  # would need a download: the job's channel gives the file


def test_served_probabilities_of_a_gated_model_are_not_divided_twice(gated):
    *_, model_dir = gated
    photo = io.BytesIO()
    Image.new("RGB", (60, 40), (120, 80, 40)).save(photo, format="PNG")
    model = inference.model_fn(str(model_dir))
    assert model.temperature == 1.0  # the network applied its 2.0 itself
    body, _ = inference.transform_fn(model, photo.getvalue(), "image/png", "application/json")
    answers = json.loads(body)["predictions"]
    total = sum(p["probability"] for p in answers)
    # all four classes when "not a dog" is answered, else the breeds' P(dog) (above the threshold)
    assert total == pytest.approx(1.0, abs=1e-4) if len(answers) == 4 else DOG_GATE_THRESHOLD < total <= 1.0
