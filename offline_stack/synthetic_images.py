"""Small generated images of visually distinct classes: sample events, test data and demo data.

No data set is downloaded anywhere in this project's tests; a model that learns these classes
shows that training really learns. Each class has its own colour and pattern, jittered per image.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw

# Folder names as in the dogImages data set (index.Name); the breeds are real ones.
CLASS_FOLDERS = ("001.Affenpinscher", "002.Afghan_hound", "003.Airedale_terrier", "004.Akita")
_PALETTE = ((200, 40, 40), (40, 170, 60), (40, 70, 200), (220, 200, 40))


def class_image(class_index: int, rng: random.Random, size: int = 64) -> Image.Image:
    """Draw one RGB image of class ``class_index`` (0-3), different each call for a given ``rng``."""
    base = _PALETTE[class_index % len(_PALETTE)]
    colour = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in base)
    background = tuple(rng.randint(90, 160) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    margin = rng.randint(size // 10, size // 5)
    box = (margin, margin, size - margin, size - margin)
    pattern = class_index % 4
    if pattern == 0:
        draw.ellipse(box, fill=colour)
    elif pattern == 1:
        for x in range(0, size, 8):
            draw.rectangle((x, 0, x + 3, size), fill=colour)
    elif pattern == 2:
        draw.rectangle(box, fill=colour)
    else:
        for x in range(0, size, 16):
            for y in range((x // 16 % 2) * 8, size, 16):
                draw.rectangle((x, y, x + 7, y + 7), fill=colour)
    return image


def encoded_image(image: Image.Image, image_format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **({"quality": 85} if image_format == "JPEG" else {}))
    return buffer.getvalue()


def write_image_folder(root: Path, per_class: dict[str, int], classes: int = 4, size: int = 64, seed: int = 7) -> Path:
    """Write an ImageFolder data set: ``root/<split>/<NNN.Breed>/<i>.jpg`` for each split in ``per_class``."""
    rng = random.Random(seed)
    for split, count in per_class.items():
        for class_index, folder in enumerate(CLASS_FOLDERS[:classes]):
            target = root / split / folder
            target.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                class_image(class_index, rng, size).save(target / f"{i:04d}.jpg", quality=90)
    return root
