"""Upload a local ImageFolder data set (e.g. Udacity's dogImages) to s3://BUCKET/data/, with progress.

    python -m launchers.upload_data --data-dir ~/dogImages --bucket BUCKET

Checks the layout first (train/ valid/ and optionally test/, with the same class folders), and skips
files already uploaded with the same size, so an interrupted upload resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3

SPLITS = ("train", "valid", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class DataLayoutError(ValueError):
    pass


def image_files(data_dir: Path) -> list[Path]:
    missing = [split for split in ("train", "valid") if not (data_dir / split).is_dir()]
    if missing:
        raise DataLayoutError(f"{data_dir} has no {' or '.join(missing)} folder; expected train/ valid/ [test/]")
    classes = {
        split: sorted(p.name for p in (data_dir / split).iterdir() if p.is_dir())
        for split in SPLITS
        if (data_dir / split).is_dir()
    }
    if any(names != classes["train"] for names in classes.values()):
        raise DataLayoutError("the splits have different class folders; every split needs the same ones")
    return sorted(p for split in classes for p in (data_dir / split).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def upload(s3, data_dir: Path, bucket: str, prefix: str = "data/", out=sys.stderr) -> int:
    files = image_files(data_dir)
    existing = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        existing.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    uploaded = 0
    for number, path in enumerate(files, start=1):
        key = prefix + path.relative_to(data_dir).as_posix()
        if existing.get(key) != path.stat().st_size:
            s3.upload_file(str(path), bucket, key)
            uploaded += 1
        if number % 100 == 0 or number == len(files):
            out.write(f"\r{number}/{len(files)} files checked, {uploaded} uploaded")
            out.flush()
    out.write("\n")
    return uploaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--bucket", required=True, help="the stack's ArtifactsBucketName output")
    args = parser.parse_args(argv)
    try:
        upload(boto3.client("s3"), args.data_dir, args.bucket)
    except DataLayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
