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
