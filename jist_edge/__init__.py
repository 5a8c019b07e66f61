"""jist-edge: the on-device runtime for JIST sequential visual place recognition.

The public API, in the order data flows::

    from jist_edge import load_bundle, build_map, load_map, open_source, Localizer, evaluate
    bundle = load_bundle("~/.jist-edge/model")
    build_map(bundle, "route.mp4", "~/.jist-edge/map", positions="route.csv", index=IndexSpec("hnsw"))
    loc = Localizer.open("~/.jist-edge/model", "~/.jist-edge/map")
    for result in loc.stream("csi://0"):
        print(result.frame_index, result.best.position, result.estimate)

What a user gets back: ``Bundle``, ``PlaceMap``, ``Result`` (one per frame) and its
``Estimate`` (the route filter's); what a user configures with: ``IndexSpec`` (how a map
is indexed), ``FilterParams`` (the route filter), ``Drive`` (one drive of a multi-drive
map), ``open_source`` (a camera, stream, video or image folder). Every error a user can
fix is a ``JistEdgeError``.

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
    "Bundle": "jist_edge.bundle",
    "load_bundle": "jist_edge.bundle",
    "open_source": "jist_edge.stream.sources",
    "IndexSpec": "jist_edge.search.index",
    "FilterParams": "jist_edge.filter.route_filter",
    "Estimate": "jist_edge.filter.route_filter",
    "build_map": "jist_edge.maps.build",
    "Drive": "jist_edge.maps.drives",
    "merge_maps": "jist_edge.maps.merge",
    "PlaceMap": "jist_edge.maps.store",
    "load_map": "jist_edge.maps.store",
    "Localizer": "jist_edge.pipeline.localizer",
    "Result": "jist_edge.pipeline.localizer",
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
