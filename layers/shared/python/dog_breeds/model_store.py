"""Where deployable models live: write-once keys named by their bytes' SHA-256.

The release gate stores the model.tar.gz it judged at ``models/sha256/<digest>/model.tar.gz`` and registers that URL
(with the digest) as the package version's model; the deploy function deploys only such a URL of an Approved version
and reads the object to check the digest before CreateModel. A training job's output key is mutable (SageMaker
downloads the model again for every new instance, so an overwritten key would change what scale-out serves); this key
is written once (``If-None-Match: *``) and no role of the stack may overwrite it. docs/security.md follows the hops.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from typing import IO, NamedTuple

MODEL_STORE_PREFIX = "models/sha256/"
MODEL_FILE = "model.tar.gz"
_CONTENT_ADDRESSED = re.compile(
    rf"s3://(?P<bucket>[^/]+)/{re.escape(MODEL_STORE_PREFIX)}(?P<digest>[0-9a-f]{{64}})/model\.tar\.gz"
)


def model_key(digest: str) -> str:
    """The write-once key of the model whose bytes have SHA-256 ``digest``."""
    return f"{MODEL_STORE_PREFIX}{digest}/{MODEL_FILE}"


def content_address(url: str, bucket: str) -> str | None:
    """The digest ``url`` names when it is a content-addressed model of ``bucket``; None for any other URL."""
    match = _CONTENT_ADDRESSED.fullmatch(url)
    return match["digest"] if match and match["bucket"] == bucket else None


# The code the endpoint runs: SAGEMAKER_PROGRAM inside SAGEMAKER_SUBMIT_DIRECTORY (dog_breeds.deploy_endpoint)
SERVING_CODE = "code/inference.py"


class StoredModel(NamedTuple):
    """A model stored at its content address: its URL, the SHA-256 of the whole artifact, and the SHA-256 of the
    serving code inside it (covered by the first; recorded on its own so a reviewer sees which code serves)."""

    url: str
    sha256: str
    serving_code_sha256: str


def serving_code_sha256(artifact: IO[bytes]) -> str:
    """The SHA-256 of ``code/inference.py`` in the model.tar.gz ``artifact`` (read as a stream, nothing unpacked);
    ``"none"`` when the artifact holds no serving code or is not a gzip tarball (such a model cannot serve)."""
    try:
        with tarfile.open(fileobj=artifact, mode="r|gz") as archive:
            for member in archive:
                if member.isfile() and member.name.removeprefix("./") == SERVING_CODE:
                    code = archive.extractfile(member)
                    return hashlib.sha256(code.read()).hexdigest() if code else "none"
    except (tarfile.TarError, OSError, EOFError):
        return "none"
    return "none"
