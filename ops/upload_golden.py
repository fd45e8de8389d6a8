"""Put a stage's golden set in its bucket: the labelled photos every candidate of the stage is scored on.

    python -m ops.upload_golden --stage prod --data-dir ~/golden

``--data-dir`` is ``<breed folder>/<photo>`` (the training data's folder names, so labels match). The bucket's
``golden/`` becomes exactly this folder: photos no longer in it are deleted, so a score always means these photos.
Keep it apart from the training data (photos the model never trained on) and from the test split the job logs.
The pipeline's release gate scores every candidate that passes its test split on it (Batch Transform,
``dog_breeds/golden_set.py``), and ``make promote-model`` re-scores a promotion on it and refuses prod without it
(``ops/promote_model.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from dog_breeds.golden_set import GOLDEN_PREFIX
from ops.score_model import ScoringError, labelled_photos
from ops.stack_outputs import stack_outputs
from ops.stages import add_stage_arguments, read_stage


def upload_golden_set(s3, bucket: str, data_dir: Path) -> tuple[int, int]:
    """Mirror ``data_dir`` to ``golden/``: (photos uploaded, stale photos deleted)."""
    wanted = {f"{GOLDEN_PREFIX}{folder}/{path.name}": path for path, folder in labelled_photos(data_dir)}
    existing = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=GOLDEN_PREFIX):
        existing.update({item["Key"]: item["ETag"].strip('"') for item in page.get("Contents", [])})
    uploaded = 0
    for key, path in wanted.items():
        # a single-part upload's ETag is its MD5 under SSE-S3; anything else (a multipart or KMS ETag) is sent again
        if existing.get(key) != hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest():
            s3.upload_file(str(path), bucket, key)
            uploaded += 1
    stale = sorted(set(existing) - set(wanted))
    for key in stale:
        s3.delete_object(Bucket=bucket, Key=key)
    return uploaded, len(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_stage_arguments(parser)
    parser.add_argument("--data-dir", type=Path, required=True, help="<breed folder>/<photo>")
    args = parser.parse_args(argv)
    stage = read_stage(args.stage, branch=args.branch or None)
    bucket = stack_outputs(stage.stack_name, stage.region)["ArtifactsBucketName"]
    try:
        uploaded, deleted = upload_golden_set(boto3.client("s3", region_name=stage.region), bucket, args.data_dir)
    except ScoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as refused:  # AWS's own words: which call, which principal, what is missing
        print(f"error: the golden set's upload stopped: {refused}", file=sys.stderr)
        return 1
    print(f"s3://{bucket}/{GOLDEN_PREFIX}: {uploaded} photos uploaded, {deleted} stale ones deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
