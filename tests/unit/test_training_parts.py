"""Pieces of the training module that need no training run: process roles, labels, preprocessing, metrics."""

import io
import json
import re

import pytest
from PIL import Image, ImageOps

from breed_classifier.data import make_loader
from breed_classifier.distributed import DistributedSetupError, detect_process_group
from breed_classifier.labels import breed_name
from breed_classifier.metrics import METRIC_DEFINITIONS, defused, metric_line, parse_metric_line
from breed_classifier.model import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, build_model
from breed_classifier.preprocessing import crop_to_square, eval_transform, to_rgb

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


@pytest.mark.parametrize(
    "forged",
    [
        # the job name a checkpoint carries is printed when it is not resumed: it is whoever wrote the file's
        "not resuming: progress.pt was written by another run (x test_accuracy=1.000000, other classes)",
        "#metrics# test_accuracy=1.000000",
        "a file name\n#metrics# epoch=9 test_accuracy=1.000000 test_loss=0.000001",
        "error: cannot decode data/test/001.x/#metrics#\u2028#metrics# test_accuracy=1.0.jpg",
    ],
)
def test_no_line_but_a_metric_line_reads_as_a_metric(forged):
    # When training prints a line made from a string it did not write
    printed: list[str] = []
    defused(printed.append)(forged)
    # Then SageMaker's regexes find no metric in it, and it stays one line
    assert len(printed) == 1 and len(printed[0].splitlines()) == 1
    assert [d["Name"] for d in METRIC_DEFINITIONS if re.search(d["Regex"], printed[0])] == []
    # while a metric line passes as it is
    defused(printed.append)(metric_line(epoch=1, test_accuracy=0.5))
    assert parse_metric_line(printed[-1]) == {"test:accuracy": 0.5}


def test_the_head_is_the_original_notebooks_and_frozen_backbones_do_not_train():
    config = ModelConfig("resnet18", 7, 64, IMAGENET_MEAN, IMAGENET_STD)
    network = build_model(config, pretrained=False, freeze_backbone=True)
    backbone, head = network
    assert [type(layer).__name__ for layer in head] == ["Linear", "ReLU", "Linear"]
    assert (head[0].in_features, head[0].out_features, head[2].out_features) == (512, 128, 7)
    assert not any(p.requires_grad for p in backbone.parameters())
    assert all(p.requires_grad for p in head.parameters())


def test_unknown_architecture_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="resnet50, resnet18, efficientnet_lite0, small_cnn"):
        build_model(ModelConfig("vgg16", 3, 64, IMAGENET_MEAN, IMAGENET_STD))


@pytest.mark.parametrize(
    ("size", "side"),
    [((1, 100_000), 1), ((100_000, 1), 1), ((6000, 6600), 546), ((4000, 3000), 600), ((640, 480), 480)],
)
def test_the_square_kept_for_the_model_is_bounded_whatever_the_source(size, side):
    # A source of any shape is cut to its central square and reduced to 2-4x the model's 256-px resize
    square = crop_to_square(Image.new("RGB", size), 224)
    assert square.size == (side, side)
    assert eval_transform(224, IMAGENET_MEAN, IMAGENET_STD)(square).shape == (3, 224, 224)


@pytest.mark.parametrize("mode", ["P", "1", "I;16", "LA", "CMYK"])
def test_modes_that_cannot_be_reduced_directly_are_widened_first(mode):
    square = crop_to_square(Image.new(mode, (3000, 2000)), 224)
    assert square.size == (667, 667) and to_rgb(square).mode == "RGB"


def test_exif_orientation_survives_the_crop_to_the_central_square():
    # Given a tall image, red on top, tagged "rotate 90 degrees clockwise to display"
    image = Image.new("RGB", (60, 120), "blue")
    image.paste("red", (0, 0, 60, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    # When it is cut to its square and made upright, the result is the upright image's central square
    expected = to_rgb(ImageOps.exif_transpose(decoded)).crop((30, 0, 90, 60))
    upright = to_rgb(crop_to_square(decoded, 224))
    assert upright.size == expected.size
    assert max(abs(a - b) for a, b in zip(upright.getpixel((5, 30)), expected.getpixel((5, 30)), strict=True)) < 40


def test_evaluation_shards_count_every_sample_once():
    # 13 validation images on 2 hosts: DistributedSampler would pad to 14 and score one twice
    dataset = list(range(13))
    shards = [list(make_loader(dataset, 4, False, 0, rank, 2).sampler) for rank in (0, 1)]
    assert sorted(shards[0] + shards[1]) == dataset
    training = [list(make_loader(dataset, 4, True, 0, rank, 2).sampler) for rank in (0, 1)]
    assert len(training[0]) == len(training[1]) == 7  # training shards stay equal (DDP takes equal steps)
