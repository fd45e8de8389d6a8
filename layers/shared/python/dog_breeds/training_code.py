"""The code a training job runs: packed reproducibly, stored once under its content hash.

The same files always give the same bytes (sorted entries, zeroed times, owners and modes), so the key
``code/training_jobs-<sha256>/sourcedir.tar.gz`` (the whole digest) names exactly the code a job ran, and storing
unchanged code again is a no-op; a key that holds other bytes is refused, not trusted by its name.
StartTrainingFunction packs the copy deployed with it (the TrainingCodeLayer, which Lambda puts in ``/opt``); the SDK
launchers pack ``training_jobs/`` in a checkout. Both give the same key.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from dog_breeds.adapters.aws_calls import describe_aws
from dog_breeds.adapters.s3_objects import put_once
from dog_breeds.settings import SettingsError

# What a SageMaker training job needs from training_jobs/: the entry point, the package it imports, and the
# endpoint handler that train.py copies into model.tar.gz. No requirements.txt: the job runs with network
# isolation, so script mode could not install one. Named, not globbed: in Lambda the folder is /opt, which holds
# every layer's files.
JOB_CODE = ("breed_classifier", "inference.py", "train.py")
CODE_PREFIX = "code/"
# The job reads its code from its 'code' channel, as /opt/ml/input/data/code/<SOURCE_FILE> (the SDK's name for it)
SOURCE_FILE = "sourcedir.tar.gz"


def source_tarball(root: Path) -> bytes:
    """A reproducible .tar.gz of ``JOB_CODE`` under ``root`` (no caches, no compiled files)."""
    missing = [name for name in JOB_CODE if not (root / name).exists()]
    if missing:
        raise SettingsError(f"the training code at {root} lacks {missing}: it must hold {list(JOB_CODE)}")
    files = sorted(
        path
        for name in JOB_CODE
        for path in ([root / name] if (root / name).is_file() else (root / name).rglob("*"))
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts
    )
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return gzip.compress(raw.getvalue(), mtime=0)


def code_key(data: bytes) -> str:
    return f"{CODE_PREFIX}training_jobs-{hashlib.sha256(data).hexdigest()}/{SOURCE_FILE}"


class StoredCodeMismatchError(SettingsError):
    """The training code's content address holds other bytes: someone wrote that key, and jobs would run it."""


def store_source(s3, bucket: str, data: bytes) -> str:
    """Put ``data`` at its content address unless it is there already; return its S3 URI.

    One conditional write (``If-None-Match: *``): S3 answers 412 when the key exists, or 409 while another
    writer of the same key is mid-flight. A 412 is not taken on trust: the object there is read back and its
    SHA-256 compared with the key's (any principal with ``s3:PutObject`` on the prefix could have written the key
    first, and every job would run what it holds); other bytes raise ``StoredCodeMismatchError``. The bucket's
    versioning gains no copies.
    """
    key = code_key(data)
    written = put_once(s3, bucket, key, data, "application/gzip")
    if not written and (existing := describe_aws("s3", s3, "get_object", ("NoSuchKey",), Bucket=bucket, Key=key)):
        stored = hashlib.sha256(existing["Body"].read()).hexdigest()
        if stored != hashlib.sha256(data).hexdigest():
            raise StoredCodeMismatchError(
                f"s3://{bucket}/{key} holds other bytes (sha256 {stored}) than the training code it is named after; "
                "jobs will not be given it: delete the object (and find out who wrote it), then start again"
            )
    return f"s3://{bucket}/{key}"
