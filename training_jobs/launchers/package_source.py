"""Store this checkout's training code in the bucket, content-addressed, and print its S3 URI.

The SDK launchers call ``upload_source`` before each job. The pipeline needs none of this: its
StartTrainingFunction stores the code deployed with it (dog_breeds.training_code, the one packer both use,
so both give the same key for the same code).

    python -m launchers.package_source --bucket BUCKET     # from the repository root (see README)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import boto3

from dog_breeds.training_code import source_tarball, store_source

TRAINING_JOBS = Path(__file__).resolve().parent.parent


def upload_source(s3, bucket: str) -> str:
    return store_source(s3, bucket, source_tarball(TRAINING_JOBS))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bucket", required=True, help="the stack's ArtifactsBucketName output")
    args = parser.parse_args(argv)
    print(upload_source(boto3.client("s3"), args.bucket))


if __name__ == "__main__":
    main()
