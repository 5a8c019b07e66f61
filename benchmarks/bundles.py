"""Model bundles for benchmarking at several input sizes, exported once and cached.

Speed does not depend on the weights, so with no ``--model`` the bench exports a
random-init bundle per input size (the manifest says ``random_init``) and reuses it on
the next run.
"""
import os
import time
from typing import Callable, Optional, Sequence, Tuple

from jist_edge.bundle import Bundle, load_bundle
from jist_edge.errors import JistEdgeError


def cache_path(cache_dir: str, img_size: Sequence[int], seq_len: int) -> str:
    return os.path.join(cache_dir, "random_{}x{}_L{}".format(int(img_size[0]), int(img_size[1]), int(seq_len)))


def random_bundle(cache_dir: str, img_size: Sequence[int], seq_len: int = 5,
                  log: Optional[Callable[[str], None]] = None) -> Tuple[Bundle, float]:
    """(bundle, seconds spent exporting; 0 when it came from the cache)."""
    path = cache_path(cache_dir, img_size, seq_len)
    if os.path.isdir(path):
        try:
            return load_bundle(path), 0.0
        except JistEdgeError:
            pass  # a stale or corrupt cache entry is exported again below
    try:
        from jist_edge.export.exporter import export_bundle
    except ImportError as exc:
        raise JistEdgeError("no --model given and the exporter cannot run here ({}); install the export "
                            "extra (pip install 'jist-edge[export]') or pass --model BUNDLE".format(exc))
    if log:
        log("exporting a random-init {}x{} bundle (weights do not change speed) to {}".format(
            int(img_size[0]), int(img_size[1]), path))
    t0 = time.perf_counter()
    bundle = export_bundle(path, random_init=True, img_size=(int(img_size[0]), int(img_size[1])),
                           seq_len=int(seq_len), force=True)
    return bundle, time.perf_counter() - t0
