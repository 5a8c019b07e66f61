"""jist-edge: the on-device runtime for JIST sequential visual place recognition.

The public API, in the order data flows::

    from jist_edge import load_bundle, build_map, load_map, open_source, Localizer, evaluate
    loc = Localizer.open("~/.jist-edge/model", "~/.jist-edge/map")
    for result in loc.stream("csi://0"):
        print(result.frame_index, result.best.position)

This package must import on stock JetPack 4.6 (Python 3.6) and never imports torch; the
host-side export code lives in ``jist_edge.export`` and is only imported lazily. The names
below load on first use, so ``import jist_edge`` (and the CLI's start-up) stays cheap.
"""
import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "JistEdgeError": "jist_edge.errors",
    "load_bundle": "jist_edge.bundle",
    "open_source": "jist_edge.stream.sources",
    "Localizer": "jist_edge.pipeline.localizer",
    "build_map": "jist_edge.maps.build",
    "Drive": "jist_edge.maps.drives",
    "merge_maps": "jist_edge.maps.merge",
    "load_map": "jist_edge.maps.store",
    "evaluate": "jist_edge.evaluation.recall",
}

__all__ = sorted(_API) + ["__version__"]


class _LazyApi(types.ModuleType):
    """Module-level ``__getattr__`` (PEP 562) arrived in Python 3.7; this works on 3.6 too."""

    def __getattr__(self, name: str) -> Any:
        if name not in _API:
            raise AttributeError("module 'jist_edge' has no attribute {!r}".format(name))
        value = getattr(importlib.import_module(_API[name]), name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> Any:
        return sorted(set(super(_LazyApi, self).__dir__()) | set(_API))


sys.modules[__name__].__class__ = _LazyApi
