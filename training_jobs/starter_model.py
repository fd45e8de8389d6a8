"""Build the starter model: a deployable artifact that names real dog breeds before any training.

    python starter_model.py --output model.tar.gz       # `make starter-model` writes .offline/starter-model/

EfficientNet-Lite0 with its ImageNet weights (from the pinned registry package: nothing is downloaded) and
ImageNet's own classifier, answered as ImageNet's 118 dog breeds plus "not a dog", which stands for the best
of the other 882 classes, so the ranking is ImageNet's own (see ``ImageNetSubsetHead``). Breeds are named as
in dogImages where they are the same breed (``DOGIMAGES_NAMES``), otherwise by ImageNet's name. These are
ImageNet's breeds, not the 133 of dogImages: a starting point that answers real photos, deployed like any
trained model (same artifact format).
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

from breed_classifier import efficientnet_lite
from breed_classifier.artifact import save_artifact
from breed_classifier.model import ModelConfig, build_model

IMAGENET_DOGS = range(151, 269)  # ImageNet-1k's dog classes, Chihuahua .. Mexican hairless
NOT_A_DOG = "not_a_dog"
IMAGE_SIZE = 224
# ImageNet index -> the dogImages breed (its 133 folder names) when it is the same breed.
DOGIMAGES_NAMES = {
    151: "Chihuahua",
    152: "Japanese chin",
    153: "Maltese",
    154: "Pekingese",
    157: "Papillon",
    160: "Afghan hound",
    161: "Basset hound",
    162: "Beagle",
    163: "Bloodhound",
    164: "Bluetick coonhound",
    165: "Black and tan coonhound",
    169: "Borzoi",
    170: "Irish wolfhound",
    171: "Italian greyhound",
    173: "Ibizan hound",
    174: "Norwegian elkhound",
    175: "Otterhound",
    180: "American staffordshire terrier",
    181: "Bedlington terrier",
    182: "Border terrier",
    183: "Kerry blue terrier",
    184: "Irish terrier",
    185: "Norfolk terrier",
    186: "Norwich terrier",
    187: "Yorkshire terrier",
    189: "Lakeland terrier",
    191: "Airedale terrier",
    192: "Cairn terrier",
    193: "Australian terrier",
    194: "Dandie dinmont terrier",
    195: "Boston terrier",
    196: "Miniature schnauzer",
    197: "Giant schnauzer",
    201: "Silky terrier",
    204: "Lhasa apso",
    205: "Flat-coated retriever",
    206: "Curly-coated retriever",
    207: "Golden retriever",
    208: "Labrador retriever",
    209: "Chesapeake bay retriever",
    210: "German shorthaired pointer",
    212: "English setter",
    213: "Irish setter",
    214: "Gordon setter",
    215: "Brittany",
    216: "Clumber spaniel",
    217: "English springer spaniel",
    218: "Welsh springer spaniel",
    219: "Cocker spaniel",
    221: "Irish water spaniel",
    222: "Kuvasz",
    224: "Belgian sheepdog",
    225: "Belgian malinois",
    226: "Briard",
    228: "Komondor",
    229: "Old english sheepdog",
    231: "Collie",
    232: "Border collie",
    233: "Bouvier des flandres",
    235: "German shepherd dog",
    236: "Doberman pinscher",
    238: "Greater swiss mountain dog",
    239: "Bernese mountain dog",
    241: "Entlebucher mountain dog",
    242: "Boxer",
    243: "Bullmastiff",
    244: "Tibetan mastiff",
    245: "French bulldog",
    246: "Great dane",
    247: "Saint bernard",
    249: "Alaskan malamute",
    251: "Dalmatian",
    252: "Affenpinscher",
    253: "Basenji",
    255: "Leonberger",
    256: "Newfoundland",
    257: "Great pyrenees",
    259: "Pomeranian",
    260: "Chow chow",
    261: "Keeshond",
    262: "Brussels griffon",
    263: "Pembroke welsh corgi",
    264: "Cardigan welsh corgi",
    265: "Poodle (toy)",
    266: "Poodle (miniature)",
    267: "Poodle (standard)",
    268: "Xoloitzcuintli",
}


def imagenet_categories() -> list[str]:
    """ImageNet-1k's class names, from torchvision's installed metadata (no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def breed_folders() -> list[str]:
    """``<imagenet index>.<Breed_name>`` for each dog class, then ``not_a_dog``: the artifact's class folders."""
    categories = imagenet_categories()
    names = [DOGIMAGES_NAMES.get(i) or categories[i][:1].upper() + categories[i][1:] for i in IMAGENET_DOGS]
    return [f"{i}.{name.replace(' ', '_')}" for i, name in zip(IMAGENET_DOGS, names, strict=True)] + [NOT_A_DOG]


def build_starter_artifact(model_dir: Path) -> None:
    config = ModelConfig.for_architecture("efficientnet_lite0", len(IMAGENET_DOGS) + 1, IMAGE_SIZE)
    config = ModelConfig(**{**config.to_json(), "head": "imagenet_subset", "imagenet_classes": tuple(IMAGENET_DOGS)})
    network = build_model(config, pretrained=True)
    state = efficientnet_lite.imagenet_state_dict()
    network[1].classifier.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    save_artifact(model_dir, network.eval(), config, breed_folders())


def write_model_tarball(model_dir: Path, output: Path) -> None:
    """``model.tar.gz`` as SageMaker expects it (files at the top level); the same bytes for the same model."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = tarfile.TarInfo(path.relative_to(model_dir).as_posix())
                info.size, info.mode = path.stat().st_size, 0o644
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    partial.replace(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="where to write model.tar.gz")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        build_starter_artifact(Path(work) / "model")
        write_model_tarball(Path(work) / "model", args.output)
    matched = len(DOGIMAGES_NAMES)
    print(f"{args.output}: {len(IMAGENET_DOGS)} ImageNet dog breeds ({matched} named as in dogImages) + not a dog")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sys.exit(main())
