"""Pieces of the training module that need no training run: process roles, labels, preprocessing, metrics."""

import io
import json

import pytest
from PIL import Image

from breed_classifier.distributed import DistributedSetupError, detect_process_group
from breed_classifier.labels import breed_name
from breed_classifier.metrics import metric_line, parse_metric_line
from breed_classifier.model import ModelConfig, build_model
from breed_classifier.preprocessing import IMAGENET_MEAN, IMAGENET_STD, to_rgb

HOSTS = json.dumps(["algo-1", "algo-2", "algo-3"])


def test_torchrun_variables_win():
    spec = detect_process_group(
        {
            "RANK": "3",
            "WORLD_SIZE": "4",
            "MASTER_ADDR": "10.0.0.5",
            "MASTER_PORT": "29400",
            "SM_HOSTS": HOSTS,
            "SM_CURRENT_HOST": "algo-1",
        }
    )
    assert (spec.rank, spec.world_size, spec.master_addr, spec.master_port) == (3, 4, "10.0.0.5", 29400)


def test_sagemaker_hosts_give_rank_by_position_and_master_algo_1_on_7777():
    spec = detect_process_group({"SM_HOSTS": HOSTS, "SM_CURRENT_HOST": "algo-2"})
    assert (spec.rank, spec.world_size, spec.master_addr, spec.master_port) == (1, 3, "algo-1", 7777)
    assert not spec.is_main and spec.is_distributed


def test_no_variables_is_a_single_process():
    spec = detect_process_group({})
    assert (spec.rank, spec.world_size, spec.is_distributed) == (0, 1, False)


def test_current_host_outside_the_host_list_is_refused():
    with pytest.raises(DistributedSetupError, match="algo-9"):
        detect_process_group({"SM_HOSTS": HOSTS, "SM_CURRENT_HOST": "algo-9"})


@pytest.mark.parametrize(
    ("folder", "breed"),
    [("001.Affenpinscher", "Affenpinscher"), ("096.Labrador_retriever", "Labrador retriever"), ("Beagle", "Beagle")],
)
def test_breed_names_from_folders(folder, breed):
    assert breed_name(folder) == breed


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    assert to_rgb(Image.open(io.BytesIO(buffer.getvalue()))).size == (20, 40)


def test_transparency_is_flattened_on_white():
    assert to_rgb(Image.new("RGBA", (4, 4), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)


def test_metric_lines_round_trip_through_the_regexes():
    line = metric_line(epoch=3, train_loss=0.25, train_accuracy=0.9, valid_loss=1.5e-7, valid_accuracy=1.0)
    parsed = parse_metric_line(line)
    assert parsed["train:loss"] == 0.25 and parsed["valid:accuracy"] == 1.0
    assert parsed["valid:loss"] == pytest.approx(1.5e-7, abs=1e-6)


def test_the_head_is_the_original_notebooks_and_frozen_backbones_do_not_train():
    config = ModelConfig("resnet18", 7, 64, IMAGENET_MEAN, IMAGENET_STD)
    network = build_model(config, pretrained=False, freeze_backbone=True)
    backbone, head = network
    assert [type(layer).__name__ for layer in head] == ["Linear", "ReLU", "Linear"]
    assert (head[0].in_features, head[0].out_features, head[2].out_features) == (512, 128, 7)
    assert not any(p.requires_grad for p in backbone.parameters())
    assert all(p.requires_grad for p in head.parameters())


def test_unknown_architecture_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="resnet50, resnet18, small_cnn"):
        build_model(ModelConfig("vgg16", 3, 64, IMAGENET_MEAN, IMAGENET_STD))
