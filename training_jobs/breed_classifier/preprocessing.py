"""Image preprocessing, defined once for training evaluation and for the endpoint.

``to_rgb`` turns whatever a user sends (EXIF-rotated, grayscale, palette, RGBA, CMYK, 16-bit) into
the RGB image the network was trained on; ``eval_transform`` is the exact tensor pipeline used on the
validation and test splits and at inference.
"""

from __future__ import annotations

from PIL import Image, ImageOps
from torchvision import transforms

# ImageNet statistics: the backbone's pretrained weights expect inputs normalised with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMAGE_SIZE = 224


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF orientation applied, transparency flattened on white, 16-bit scaled."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: scale to 8 bits instead of letting convert() clip everything above 255.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def eval_transform(image_size: int = DEFAULT_IMAGE_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Resize, centre-crop, tensor, normalise: validation, test and inference all use this."""
    return transforms.Compose(
        [
            transforms.Resize(round(image_size * 256 / 224)),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


def train_transform(image_size: int = DEFAULT_IMAGE_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Augmented pipeline for the training split only."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size, scale=(0.6, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
