"""Place ImageNet weights where a training job reads them: s3://BUCKET/pretrained/<file>.

    python -m launchers.upload_weights --bucket BUCKET [--architecture resnet50 --architecture efficientnet_lite0]

Training jobs run with network isolation, so a job cannot download its backbone's weights: the start-training
function gives it a ``pretrained`` channel holding the file instead. This puts the file there once per bucket.
EfficientNet-Lite0's comes from the pinned weights package; a ResNet's from torch's hub cache, which torchvision
fills from download.pytorch.org on this machine the first time (its name carries its SHA-256 prefix, checked
before the upload). The key is the file's name, so a second upload of the same file is a no-op.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3
import botocore.exceptions
import torch

from breed_classifier import efficientnet_lite
from breed_classifier.model import PRETRAINED_WEIGHTS, PretrainedWeightsUnavailableError, verified_weights_file
from dog_breeds.start_training import DEFAULT_ARCHITECTURE, PRETRAINED_PREFIX


def local_weights_dir(architecture: str, download: bool = True) -> Path:
    """The folder on this machine holding ``architecture``'s weights file (downloading a ResNet's if asked)."""
    if architecture == "efficientnet_lite0":
        return efficientnet_lite.packaged_weights_path().parent
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    if download and not (cache / PRETRAINED_WEIGHTS[architecture]).is_file():
        from torchvision import models

        weights = models.get_model_weights(getattr(models, architecture)).DEFAULT
        torch.hub.load_state_dict_from_url(weights.url, map_location="cpu", check_hash=True, weights_only=True)
    return cache


def upload_weights(s3, bucket: str, architecture: str, weights_dir: Path | None = None) -> tuple[str, bool]:
    """Put ``architecture``'s verified weights file under ``pretrained/``; return (its S3 URI, whether it was new)."""
    path = verified_weights_file(architecture, weights_dir or local_weights_dir(architecture))
    key = PRETRAINED_PREFIX + path.name
    try:
        with path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise
        return f"s3://{bucket}/{key}", False  # the name is the content: the same bytes are there
    return f"s3://{bucket}/{key}", True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bucket", required=True, help="the stack's ArtifactsBucketName output")
    parser.add_argument(
        "--architecture",
        action="append",
        choices=sorted(PRETRAINED_WEIGHTS),
        help=f"repeat for several (default {DEFAULT_ARCHITECTURE}, the training default)",
    )
    args = parser.parse_args(argv)
    s3 = boto3.client("s3")
    for architecture in args.architecture or [DEFAULT_ARCHITECTURE]:
        try:
            uri, new = upload_weights(s3, args.bucket, architecture)
        except PretrainedWeightsUnavailableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{architecture}: {uri} ({'uploaded' if new else 'already there'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
