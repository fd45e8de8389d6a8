"""The project's EfficientNet-Lite0 against the reference implementation, and normalisation from the config."""

from pathlib import Path

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from breed_classifier.data import load_datasets
from breed_classifier.efficientnet_lite import EfficientNetLite0, imagenet_state_dict
from breed_classifier.model import ModelConfig, build_model
from breed_classifier.preprocessing import eval_transform, to_rgb
from offline_stack.synthetic_images import write_image_folder

PHOTOS = Path(__file__).resolve().parent.parent / "data" / "photos"


@pytest.fixture(scope="module")
def networks():
    state = imagenet_state_dict()
    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(state)
    ours = EfficientNetLite0()
    ours.load_state_dict(state)  # the packaged weights load as they are, every name matching
    return reference.eval(), ours.eval()


def test_outputs_match_the_reference_implementation(networks):
    reference, ours = networks
    torch.manual_seed(0)
    photo = eval_transform(224, (0.5,) * 3, (0.5,) * 3)(to_rgb(Image.open(PHOTOS / "dog.128.jpg")))
    inputs = torch.cat([torch.randn(2, 3, 224, 224), photo.unsqueeze(0)])
    with torch.no_grad():
        assert torch.allclose(ours(inputs), reference(inputs), atol=1e-5, rtol=0)


def test_pretrained_backbone_starts_from_the_packaged_weights_and_carries_its_normalisation(networks):
    _, ours = networks
    config = ModelConfig.for_architecture("efficientnet_lite0", 3, 224)
    assert (config.mean, config.std) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    network = build_model(config, pretrained=True, freeze_backbone=True).eval()
    inputs = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(network[0](inputs), ours.features(inputs))
    assert not any(p.requires_grad for p in network[0].parameters())
    assert all(p.requires_grad for p in network[1].parameters())


def test_training_data_is_normalised_with_the_values_the_artifact_will_carry(tmp_path):
    data = write_image_folder(tmp_path, {"train": 1, "valid": 1}, classes=2)
    from breed_classifier.data import DataSplits

    config = ModelConfig.for_architecture("efficientnet_lite0", 2, 32)
    loaded = load_datasets(DataSplits(data / "train", data / "valid", None), 32, config.mean, config.std)
    for dataset in loaded.values():
        normalise = dataset.transform.transforms[-1]
        assert (tuple(normalise.mean), tuple(normalise.std)) == (config.mean, config.std)
