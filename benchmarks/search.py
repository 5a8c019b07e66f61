"""The ways of finding the nearest map place that the matching benchmark compares.

Queries go through the runtime's own ``jist_edge.search.matcher.Matcher``, so the
numbers are those of `jist-edge run`.
Everything ranks by squared L2, like the paper (faiss IndexFlatL2) and the runtime.
"""
import os
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from jist_edge.maps.store import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, DEFAULT_SEED
from jist_edge.search.matcher import Matcher


class ArrayMap(object):
    """The few attributes of ``maps.store.PlaceMap`` the matcher uses, over in-memory descriptors."""

    def __init__(self, descriptors: np.ndarray, index: Any = None, seq_len: int = 5) -> None:
        self.descriptors = np.ascontiguousarray(descriptors, dtype=np.float32)
        self.count, self.dim = (int(v) for v in self.descriptors.shape)
        self.seq_len = int(seq_len)
        self.path = "<in memory>"
        self._index = index

    def hnsw_index(self) -> Any:
        if self._index is None:
            raise RuntimeError("this map has no hnswlib index")
        return self._index

    def positions_of(self, ids: Any) -> np.ndarray:
        return np.full(np.asarray(ids).shape + (2,), np.nan)

    def frames_of(self, seq_id: int) -> list:
        return []


def build_index(database: np.ndarray, threads: int = 0) -> Tuple[Any, float, Dict[str, Any]]:
    """(hnswlib index, build seconds, parameters), with the map builder's M, ef_construction and seed.

    `map build` adds items on one thread (deterministic); here all cores build, because
    a 100k map on one thread takes minutes and query speed does not depend on how the
    graph was built. The JSON states the thread count.
    """
    import hnswlib

    database = np.ascontiguousarray(database, dtype=np.float32)
    threads = threads or os.cpu_count() or 1
    t0 = time.perf_counter()
    index = hnswlib.Index(space="l2", dim=int(database.shape[1]))
    index.init_index(max_elements=int(database.shape[0]), M=DEFAULT_M, ef_construction=DEFAULT_EF_CONSTRUCTION,
                     random_seed=DEFAULT_SEED)
    index.add_items(database, np.arange(database.shape[0]), num_threads=threads)
    build_s = time.perf_counter() - t0
    return index, build_s, {"M": DEFAULT_M, "ef_construction": DEFAULT_EF_CONSTRUCTION, "random_seed": DEFAULT_SEED,
                            "build_threads": threads}


class Searcher(object):
    """Top-1 place for one query vector, exact or hnswlib at one ef."""

    def __init__(self, place_map: ArrayMap, ef: Optional[int] = None, exact: bool = False) -> None:
        self.exact = exact
        self.ef = ef
        self.implementation = "jist_edge.search.matcher.Matcher"
        self._matcher = Matcher(place_map, ef=ef, exact=exact)

    def top1_batch(self, queries: np.ndarray) -> np.ndarray:
        return self._query(np.ascontiguousarray(queries, dtype=np.float32))

    def top1(self, query: np.ndarray) -> int:
        return int(self._query(query.reshape(1, -1))[0])

    def _query(self, q: np.ndarray) -> np.ndarray:
        ids, _ = self._matcher.query(q, k=1)
        return ids[:, 0]


def implementation() -> str:
    return "jist_edge.search.matcher.Matcher (hnswlib {}, exact squared L2 in numpy)".format(_hnswlib_version())


def _hnswlib_version() -> str:
    try:
        from importlib import metadata

        return metadata.version("hnswlib")
    except Exception:
        return "?"
