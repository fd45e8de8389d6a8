"""Image preprocessing, defined once for training evaluation and for the endpoint.

``to_rgb`` turns whatever a user sends (EXIF-rotated, grayscale, palette, RGBA, CMYK, 16-bit) into
the RGB image the network was trained on; ``eval_transform`` is the exact tensor pipeline used on the
validation and test splits and at inference.

The evaluation geometry is the usual "resize the short side to 256/224 of the input size, then take
the central square": ``central_square`` computes, in source pixels, the square that survives, and
``ResizedCentreCrop`` resizes just that square. The work per image is then bounded by the input size,
whatever the source's shape: resizing first (torchvision's ``Resize``) would scale the short side of
a 1 x 100,000 image up to 256 pixels and allocate gigabytes for a picture of nothing.
"""

from __future__ import annotations

import math

from PIL import Image, ImageOps
from torchvision import transforms

# ImageNet statistics: the backbone's pretrained weights expect inputs normalised with them.
DEFAULT_IMAGE_SIZE = 224
# The short side is resized to 256/224 of the input size before the centre crop (the ImageNet convention).
RESIZE_RATIO = 256 / 224
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F")
_REDUCIBLE_FORM = {"1": "L", "I;16": "I", "I;16B": "I", "I;16L": "I", "P": "RGBA", "PA": "RGBA"}


def central_square(width: int, height: int) -> tuple[float, float, float, float]:
    """The box (left, top, right, bottom), in source pixels, that the eval resize + centre crop keeps."""
    side = min(width, height) / RESIZE_RATIO
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def draft_size(width: int, height: int, image_size: int) -> tuple[int, int]:
    """The smallest decode size whose central square still has ``image_size`` pixels or more a side."""
    scale = image_size * RESIZE_RATIO / min(width, height)
    return math.ceil(width * scale), math.ceil(height * scale)


def crop_to_square(image: Image.Image, image_size: int) -> Image.Image:
    """The central ``short side`` square of a decoded image, reduced to about twice what the model needs.

    The eval transform keeps only the middle of that square, so cutting it out first changes nothing
    in what the network sees (EXIF rotations and flips map a centred square onto itself). Reducing it
    by a whole factor (a box filter, in the same step as the crop) before any mode conversion bounds
    the memory and time that follow by the model's input size, whatever the source's size or shape.
    """
    short = min(image.size)
    left, top = (image.width - short) // 2, (image.height - short) // 2
    box = (left, top, left + short, top + short)
    factor = max(1, short // (2 * math.ceil(image_size * RESIZE_RATIO)))
    square = image
    if box != (0, 0, image.width, image.height) and not (factor > 1 and image.mode in _REDUCIBLE_MODES):
        square, box = image.crop(box), None
    if factor > 1:
        if square.mode not in _REDUCIBLE_MODES:  # palette, 1-bit, 16-bit: widened (losslessly) to reduce
            square = square.convert(_REDUCIBLE_FORM.get(square.mode, "RGBA"))
        square = square.reduce(factor, box=box)
    if square is not image:
        square.info = dict(image.info)  # carries the EXIF orientation to to_rgb
    return square


class ResizedCentreCrop:
    """Resize the central square of an image to ``image_size`` x ``image_size`` in one resampling step."""

    def __init__(self, image_size: int) -> None:
        self.image_size = image_size

    def __call__(self, image: Image.Image) -> Image.Image:
        image = crop_to_square(image, self.image_size)  # a no-op on what the endpoint already cut down
        box = central_square(*image.size)
        return image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR, box=box)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(image_size={self.image_size})"


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF orientation applied, transparency flattened on white, 16-bit scaled.

    Copies only what needs changing: an image without an orientation tag is not transposed, and an
    RGB image is returned as it is.
    """
    if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT_MODES:
        # 16-bit grayscale: scale to 8 bits instead of letting convert() clip everything above 255.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def eval_transform(image_size: int, mean: tuple[float, ...], std: tuple[float, ...]):
    """Central square resized to ``image_size``, tensor, normalise: validation, test and inference use this."""
    return transforms.Compose(
        [
            ResizedCentreCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


def train_transform(image_size: int, mean: tuple[float, ...], std: tuple[float, ...]):
    """Augmented pipeline for the training split only."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size, scale=(0.6, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
