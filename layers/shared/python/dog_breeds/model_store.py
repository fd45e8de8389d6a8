"""Where deployable models live: write-once keys named by their bytes' SHA-256.

The release gate stores the model.tar.gz it judged at ``models/sha256/<digest>/model.tar.gz`` and registers that URL
(with the digest) as the package version's model; the deploy function deploys only such a URL of an Approved version
and reads the object to check the digest before CreateModel. A training job's output key is mutable (SageMaker
downloads the model again for every new instance, so an overwritten key would change what scale-out serves); this key
is written once (``If-None-Match: *``) and no role of the stack may overwrite it. docs/security.md follows the hops.
"""

from __future__ import annotations

import re

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
