"""Reading S3 objects whole without holding them: the digest of a model artifact."""

from __future__ import annotations

import hashlib
from typing import Any

from dog_breeds.adapters.aws_calls import call_aws

_CHUNK = 1024 * 1024


def sha256_of(s3: Any, url: str) -> str:
    """The SHA-256 (hex) of the object at ``s3://bucket/key``, read in 1 MiB chunks (a model is ~100 MB)."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    body = call_aws("s3", s3, "get_object", Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def list_objects(s3: Any, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
    """(key, ETag, size) of every object under ``prefix``: what the objects are, without reading them."""
    found = []
    token: dict[str, str] = {}
    while True:
        page = call_aws("s3", s3, "list_objects_v2", Bucket=bucket, Prefix=prefix, **token)
        found += [(item["Key"], item["ETag"], int(item["Size"])) for item in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return found
        token = {"ContinuationToken": page["NextContinuationToken"]}
