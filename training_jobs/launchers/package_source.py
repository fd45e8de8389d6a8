"""Pack training_jobs/ into a content-addressed tarball and upload it once: the code every job runs.

The same bytes always give the same key (``code/training_jobs-<sha256 prefix>.tar.gz``): a job's
``sagemaker_submit_directory`` names exactly the code it ran, and re-uploading unchanged code is a no-op.

    python -m launchers.package_source --bucket BUCKET     # prints the S3 URI
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

TRAINING_JOBS = Path(__file__).resolve().parent.parent
EXCLUDED = {"launchers", "__pycache__", "requirements-local.txt"}


def source_tarball(root: Path = TRAINING_JOBS) -> bytes:
    """A reproducible .tar.gz of ``root`` (sorted entries, zeroed times and owners)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if set(relative.parts) & EXCLUDED or path.suffix == ".pyc" or not path.is_file():
                continue
            info = tar.gettarinfo(str(path), arcname=str(relative))
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return gzip.compress(raw.getvalue(), mtime=0)


def upload_source(s3, bucket: str, data: bytes | None = None) -> str:
    data = source_tarball() if data is None else data
    key = f"code/training_jobs-{hashlib.sha256(data).hexdigest()[:16]}.tar.gz"
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/gzip")
    return f"s3://{bucket}/{key}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bucket", required=True, help="the stack's ArtifactsBucketName output")
    args = parser.parse_args(argv)
    print(upload_source(boto3.client("s3"), args.bucket))


if __name__ == "__main__":
    main()
