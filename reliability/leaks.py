"""What an error body must never carry: stack traces, file paths, exception class names."""

from __future__ import annotations

import re

# The API contract's own error codes (docs/api.md, "The prediction API"): words, not leaked class names.
DOCUMENTED_CODES = {"ModelError"}
_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"|line \d+, in ")
_PATH = re.compile(r"(/[\w.-]+)+\.py\b|/(usr|opt|var|home|root|tmp|work|site-packages)/[\w.-]")
_CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Exception|Exit|Interrupt)\b")


def leaks(body: str) -> list[str]:
    """The internals ``body`` reveals (empty when it is clean)."""
    found = [match.group(0) for pattern in (_TRACE, _PATH) for match in pattern.finditer(body)]
    found += [name for name in (m.group(0) for m in _CLASS_NAME.finditer(body)) if name not in DOCUMENTED_CODES]
    return found
