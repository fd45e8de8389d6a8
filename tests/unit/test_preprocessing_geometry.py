"""The evaluation geometry and colour handling at their exact values: the square the eval transform keeps, the
decode size, the reduction factor, 16-bit and transparent inputs. A change to any of these changes what the
network sees at inference, and only an accuracy drop would show it; these catch it at the line."""

from __future__ import annotations

import torch
from PIL import Image
from torchvision import transforms

from breed_classifier.preprocessing import (
    RESIZE_RATIO,
    ResizedCentreCrop,
    central_square,
    crop_to_square,
    draft_size,
    eval_transform,
    to_rgb,
    train_transform,
)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_the_kept_square_is_the_centre_224_256ths_of_the_short_side():
    assert RESIZE_RATIO == 256 / 224
    assert central_square(256, 256) == (16.0, 16.0, 240.0, 240.0)
    assert central_square(512, 256) == (144.0, 16.0, 368.0, 240.0)
    assert central_square(256, 512) == (16.0, 144.0, 240.0, 368.0)
    left, top, right, bottom = central_square(1000, 600)
    assert right - left == bottom - top == 600 * 224 / 256
    assert (left + right) / 2 == 500 and (top + bottom) / 2 == 300


def test_the_draft_size_keeps_just_enough_pixels_for_the_model():
    assert draft_size(1000, 500, 224) == (512, 256)
    assert draft_size(1001, 500, 224) == (513, 256)  # rounded up, never below what the model needs
    assert draft_size(500, 1000, 112) == (128, 256)


def test_the_reduction_factor_is_the_whole_multiple_of_twice_the_model_input():
    # twice 256 (224 * 256/224) is 512: a 1023-pixel square is not reduced, 1024 is halved, 1536 is thirded
    assert crop_to_square(Image.new("RGB", (1023, 1023)), 224).size == (1023, 1023)
    assert crop_to_square(Image.new("RGB", (1024, 1024)), 224).size == (512, 512)
    assert crop_to_square(Image.new("RGB", (2000, 1536)), 224).size == (512, 512)
    assert crop_to_square(Image.new("RGB", (300, 200)), 224).size == (200, 200)


def test_the_crop_keeps_the_centre_of_a_wide_and_of_a_tall_image():
    wide = Image.new("L", (30, 10), 0)
    wide.paste(255, (10, 0, 20, 10))  # the middle third white
    assert crop_to_square(wide, 224).getextrema() == (255, 255)
    tall = Image.new("L", (10, 30), 0)
    tall.paste(255, (0, 10, 10, 20))
    assert crop_to_square(tall, 224).getextrema() == (255, 255)


def _gradient(width: int, height: int) -> Image.Image:
    x = torch.linspace(0, 1, width).expand(height, width)
    y = torch.linspace(0, 1, height).unsqueeze(1).expand(height, width)
    channels = torch.stack([x, y, (x + y) / 2]) * 255
    return Image.fromarray(channels.permute(1, 2, 0).to(torch.uint8).numpy())


def test_the_eval_transform_sees_what_resize_256_then_centre_crop_224_sees():
    reference = transforms.Compose(
        [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    )
    for size in ((640, 480), (480, 640), (300, 300)):
        image = _gradient(*size)
        ours, theirs = eval_transform(224, MEAN, STD)(image), reference(image)
        assert ours.shape == theirs.shape == (3, 224, 224)
        assert (ours - theirs).abs().mean() < 0.01, size


def test_the_resized_crop_is_exactly_the_model_input_size_whatever_the_shape():
    for size in ((1, 5000), (5000, 1), (225, 224), (7, 7)):
        assert ResizedCentreCrop(96)(Image.new("RGB", size)).size == (96, 96)
    assert repr(ResizedCentreCrop(96)) == "ResizedCentreCrop(image_size=96)"


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits_not_clipped():
    image = Image.new("I;16", (2, 1))
    image.putpixel((0, 0), 65535)
    image.putpixel((1, 0), 512)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (255, 255, 255) and rgb.getpixel((1, 0)) == (2, 2, 2)


def test_transparency_is_flattened_on_white_and_palette_images_keep_their_colours():
    half = Image.new("LA", (1, 1), (0, 128))
    assert to_rgb(half).getpixel((0, 0)) == (127, 127, 127)
    palette = Image.new("P", (1, 1))
    palette.putpalette([10, 20, 30])
    assert to_rgb(palette).getpixel((0, 0)) == (10, 20, 30)
    assert to_rgb(Image.new("CMYK", (1, 1), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    rgb = Image.new("RGB", (1, 1))
    assert to_rgb(rgb) is rgb  # nothing to change: no copy


def test_training_augments_while_evaluation_is_deterministic():
    image = _gradient(200, 150)
    augment = train_transform(64, MEAN, STD)
    torch.manual_seed(0)
    first = augment(image)
    torch.manual_seed(1)
    second = augment(image)
    assert first.shape == second.shape == (3, 64, 64) and not torch.equal(first, second)
    evaluate = eval_transform(64, MEAN, STD)
    assert torch.equal(evaluate(image), evaluate(image))
