"""A training-curve PNG drawn with Pillow (no plotting library needed in the training container)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

_COLOURS = {"train": (31, 119, 180), "valid": (255, 127, 14)}


def write_training_curves(history: list[dict], path: Path, width: int = 720, height: int = 300) -> None:
    """Two panels, loss and accuracy per epoch, for the train and valid splits."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    panel_width = width // 2
    for panel, metric in enumerate(("loss", "accuracy")):
        left, top, right, bottom = panel * panel_width + 40, 30, (panel + 1) * panel_width - 15, height - 30
        draw.rectangle((left, top, right, bottom), outline="black")
        draw.text((left, 10), f"{metric} per epoch (train blue, valid orange)", fill="black")
        values = [row[f"{split}_{metric}"] for row in history for split in _COLOURS]
        low, high = (0.0, 1.0) if metric == "accuracy" else (0.0, max(values + [1e-6]))
        draw.text((left - 35, top), f"{high:.2f}", fill="black")
        for split, colour in _COLOURS.items():
            points = [
                (
                    left + (right - left) * (i / max(1, len(history) - 1)),
                    bottom - (bottom - top) * ((row[f"{split}_{metric}"] - low) / ((high - low) or 1)),
                )
                for i, row in enumerate(history)
            ]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            for x, y in points:
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
