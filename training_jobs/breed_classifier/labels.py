"""Class labels: ImageFolder folder names (``001.Affenpinscher``) to readable breed names."""

from __future__ import annotations

import re

_INDEX_PREFIX = re.compile(r"^\d+\.")


def breed_name(folder: str) -> str:
    """``"002.Afghan_hound"`` -> ``"Afghan hound"``; names without an index prefix are kept, ``_`` -> space."""
    return _INDEX_PREFIX.sub("", folder).replace("_", " ").strip()
