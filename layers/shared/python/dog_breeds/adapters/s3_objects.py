"""Reading S3 objects whole without holding them: the digest of a model artifact, and its write-once copy; the
golden set and its answers."""

from __future__ import annotations

import hashlib
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dog_breeds.adapters.aws_calls import call_aws, describe_aws
from dog_breeds.errors import ModelIntegrityError
from dog_breeds.golden_set import GOLDEN_PREFIX, SCORES_PREFIX
from dog_breeds.model_store import StoredModel, model_key, serving_code_sha256

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


def put_once(s3: Any, bucket: str, key: str, body: Any, content_type: str) -> bool:
    """Write ``body`` at ``key`` only if no object is there (``If-None-Match: *``); False when one is (S3's 412), or
    another writer of the key is mid-flight (409). The caller decides whether what is there may be trusted."""
    written = describe_aws(
        "s3",
        s3,
        "put_object",
        ("PreconditionFailed", "ConditionalRequestConflict"),
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        IfNoneMatch="*",
    )
    return written is not None


def store_by_digest(s3: Any, url: str, bucket: str) -> StoredModel:
    """Copy the object at ``url`` to its content-addressed key in ``bucket`` (written once); return its URL, its
    SHA-256 and its serving code's. The bytes are hashed as they are read and the same bytes are written, so the
    digest is of what is stored (spooled to /tmp past 64 MiB). A key that exists already must hold those bytes: read
    back and compared."""
    source_bucket, _, key = url.removeprefix("s3://").partition("/")
    body = call_aws("s3", s3, "get_object", Bucket=source_bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    with tempfile.SpooledTemporaryFile(max_size=64 * _CHUNK) as copy:
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
            copy.write(chunk)
        copy.seek(0)
        serving_code = serving_code_sha256(copy)
        copy.seek(0)
        target = model_key(digest.hexdigest())
        written = put_once(s3, bucket, target, copy, "application/gzip")
    stored = f"s3://{bucket}/{target}"
    if not written and sha256_of(s3, stored) != digest.hexdigest():
        raise ModelIntegrityError(f"{stored} holds other bytes than its name says: someone wrote that key; not used")
    return StoredModel(stored, digest.hexdigest(), serving_code)


class S3GoldenSet:
    """``ports.GoldenSet`` over the stack's bucket: the photos' listing, and the answers read 16 at a time (a set
    of thousands of photos is read within the gate's timeout)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def listing(self) -> list[tuple[str, str]]:
        return [(key, etag) for key, etag, _ in list_objects(self.s3, self.bucket, GOLDEN_PREFIX)]

    def answers(self, job_name: str) -> dict[str, str]:
        keys = [key for key, _, _ in list_objects(self.s3, self.bucket, f"{SCORES_PREFIX}{job_name}/")]

        def read(key: str) -> str:
            return call_aws("s3", self.s3, "get_object", Bucket=self.bucket, Key=key)["Body"].read().decode()

        with ThreadPoolExecutor(max_workers=16) as pool:
            return dict(zip(keys, pool.map(read, keys), strict=True))
