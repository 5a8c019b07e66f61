"""Skip a test module when an optional library is missing, on every pytest we run on.

``pytest.importorskip(name, exc_type=ImportError)`` needs pytest 8.2+, but the newest
pytest for Python 3.6 (JetPack 4.6, the Nano) is 7.0.1, where ``exc_type`` is a
TypeError at collection. Plain ``pytest.importorskip(name)`` skips only on
ModuleNotFoundError and, from pytest 8.2, warns about other ImportErrors (a
TensorRT wheel whose CUDA libraries are missing raises a plain ImportError).
"""
import importlib
from typing import Any

import pytest


def import_or_skip(name: str) -> Any:
    """The module, or a skip naming it and the import error (at module level too)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip("{} is not importable here ({})".format(name, exc), allow_module_level=True)
