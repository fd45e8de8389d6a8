"""A fresh copy of a module, executed inside a test: how tests/unit ties the lines a module runs at import (class
bodies, frozen flags, defaults, constants) to a test, so that ``make mutation`` can score them
(tests/unit/test_import_time_values.py says why)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def fresh_copy(name: str) -> ModuleType:
    """The module ``name`` executed anew (its class bodies and constants run now); afterwards ``sys.modules`` holds
    the module it held before, so no other test sees the copy."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    imported = sys.modules.get(name)
    sys.modules[name] = module  # dataclasses look their module up while the class body runs
    try:
        spec.loader.exec_module(module)
    finally:
        if imported is None:
            del sys.modules[name]
        else:
            sys.modules[name] = imported
    return module
