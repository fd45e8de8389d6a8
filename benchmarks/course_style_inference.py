"""The original course project's endpoint handler, as a model artifact's ``code/inference.py``: the baseline of
``make bench``'s throughput rows (benchmarks/throughput.py copies it into a copy of the artifact).

Eager fp32: PIL ``open`` -> ``Resize((224, 224))`` -> ``ToTensor`` -> ``Normalize`` -> ``no_grad`` forward,
one image per request, the answer as the project's JSON so the same client reads both.
"""

import io
import json

import torch
from PIL import Image
from torchvision import transforms

from breed_classifier.artifact import load_artifact


def model_fn(model_dir):
    from pathlib import Path

    loaded = load_artifact(Path(model_dir), torch.device("cpu"))
    loaded.network.eval()
    return loaded


def input_fn(body, content_type):
    return Image.open(io.BytesIO(body)).convert("RGB")


def predict_fn(image, loaded):
    size = loaded.config.image_size
    transform = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize(loaded.config.mean, loaded.config.std),
        ]
    )
    with torch.no_grad():
        return torch.softmax(loaded.network(transform(image).unsqueeze(0)), 1)[0]


def output_fn(probabilities, accept):
    index = int(probabilities.argmax())
    return json.dumps(
        {"predictions": [{"breed": str(index), "class_index": index, "probability": float(probabilities[index])}]}
    )
