"""Top-k place matching on a map: its index (fast) or exact squared L2 (for checking).

Both rank by squared L2, the paper's metric (faiss IndexFlatL2); hnswlib's space
'l2' already returns squared distances. Ties in the exact search go to the lower
sequence id, so results are reproducible. The index is the map's kind
(search/index.py): hnswlib over the descriptors, or for city-scale maps hnswlib over
PCA-reduced vectors with exact re-ranking of the best candidates.
"""
from typing import Any, Optional, Tuple

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.search.index import HnswSearch

# Chosen from tests/search/test_matcher.py::test_default_ef_agreement_on_real_map and the
# measurement in the README: top-1 agreement with exact search >= 0.99 on real maps.
DEFAULT_EF = 64
_BLOCK_BYTES = 64 << 20  # bound on one (queries x map) float32 distance block


class Matcher(object):
    """Answers ``query(descriptors, k)`` with sequence ids and squared-L2 distances."""

    def __init__(self, place_map: Any, ef: Optional[int] = None, exact: bool = False, threads: int = 1) -> None:
        self.map = place_map
        self.exact = bool(exact)
        self.ef = int(DEFAULT_EF if ef is None else ef)
        if self.ef < 1:
            raise JistEdgeError("ef must be at least 1, got {}".format(self.ef))
        self.threads = max(1, int(threads))
        self._index = None if self.exact else _search_index(place_map)
        self._exact = None  # type: Optional[ExactSearch]

    @property
    def method(self) -> str:
        if self.exact:
            return "exact"
        if self._index.kind == "hnsw-pca":
            return "hnsw-pca(ef={},rerank={})".format(self.ef, self._index.rerank)
        return "hnsw(ef={})".format(self.ef)

    def query(self, descriptors: np.ndarray, k: int = 1) -> Tuple[np.ndarray, np.ndarray]:
        """(n, D) float32 -> ids int64 (n, k), squared L2 float32 (n, k), nearest first."""
        q = _as_queries(descriptors, self.map.dim)
        k = _check_k(k, self.map.count)
        if self.exact:
            if self._exact is None:
                self._exact = ExactSearch(self.map.descriptors)
            return self._exact.query(q, k)
        return self._index.knn(q, k, self.ef, self.threads)


def _search_index(place_map: Any) -> Any:
    """The map's search object (search.index); a bare hnswlib index for maps that only offer that."""
    search_index = getattr(place_map, "search_index", None)
    return search_index() if callable(search_index) else HnswSearch(place_map.hnsw_index())


class ExactSearch(object):
    """Brute-force squared L2 that agrees with a direct float64 computation.

    The float32 expansion ``|a|^2 - 2ab + |b|^2`` finds candidates fast; every
    candidate within a rounding margin of the k-th is then re-scored directly in
    float64, so precision never flips the order.
    """

    def __init__(self, database: np.ndarray) -> None:
        self.db = np.ascontiguousarray(database, dtype=np.float32)
        self.db_sq = np.empty(self.db.shape[0], dtype=np.float64)
        rows = max(1, _BLOCK_BYTES // (8 * max(1, self.db.shape[1])))
        for start in range(0, self.db.shape[0], rows):  # in blocks: a million places need no 4 GB float64 copy
            block = self.db[start:start + rows].astype(np.float64)
            self.db_sq[start:start + rows] = np.einsum("ij,ij->i", block, block)
        self.db_sq32 = self.db_sq.astype(np.float32)

    def query(self, queries: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        n = q.shape[0]
        ids = np.empty((n, k), dtype=np.int64)
        dists = np.empty((n, k), dtype=np.float32)
        block = max(1, _BLOCK_BYTES // (4 * max(1, self.db.shape[0])))
        for start in range(0, n, block):
            chunk = q[start:start + block]
            q_sq = np.einsum("ij,ij->i", chunk.astype(np.float64), chunk.astype(np.float64))
            approx = self.db_sq32[None, :] - np.float32(2.0) * (chunk @ self.db.T)
            approx += q_sq.astype(np.float32)[:, None]
            # rounding error of the float32 expansion is far below this margin
            margin = 1e-4 * (q_sq + self.db_sq.max()) + 1e-12
            for r in range(chunk.shape[0]):
                ids[start + r], dists[start + r] = self._refine(chunk[r], approx[r], k, margin[r])
        return ids, dists

    def _refine(self, query: np.ndarray, approx: np.ndarray, k: int, margin: float) -> Tuple[np.ndarray, np.ndarray]:
        kth = np.partition(approx, k - 1)[k - 1]
        cand = np.nonzero(approx <= kth + margin)[0]
        diff = self.db[cand].astype(np.float64) - query.astype(np.float64)[None, :]
        exact = np.einsum("ij,ij->i", diff, diff)
        order = np.lexsort((cand, exact))[:k]
        return cand[order], exact[order].astype(np.float32)


def exact_sq_l2(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Direct float64 squared L2 (n, N): the reference the fast paths are checked against."""
    q = np.asarray(queries, dtype=np.float64)
    db = np.asarray(database, dtype=np.float64)
    return ((q[:, None, :] - db[None, :, :]) ** 2).sum(axis=2)


def _as_queries(descriptors: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(descriptors, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise JistEdgeError("query descriptors have shape {}, the map holds {}-D descriptors".format(q.shape, dim))
    if not np.isfinite(q).all():
        raise JistEdgeError("query descriptors contain NaN or infinity")
    return np.ascontiguousarray(q)


def _check_k(k: int, count: int) -> int:
    k = int(k)
    if k < 1:
        raise JistEdgeError("k must be at least 1, got {}".format(k))
    return min(k, count)
