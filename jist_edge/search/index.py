"""Index kinds of a map: what answers "which places are nearest" and what it costs in memory.

``hnsw``: hnswlib over the full float32 descriptors (the default; ~4.2 KB per place in
memory with the descriptors, so about 1.2 GB at 280k places).
``hnsw-pca``: for city-scale maps (a million places on a 4 GB Nano). hnswlib searches
PCA-reduced vectors (``reduced_dim`` floats per place); the ``rerank`` best candidates are
then re-scored with exact squared L2 against the map's float16 sequence descriptors,
read from a memory-mapped file, so the answer's distances are exact and the full
descriptors never have to be resident.

Both build deterministically (fixed seed, one thread), so a map's files are byte-reproducible.
"""
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from jist_edge.errors import IntegrityError, JistEdgeError

SPACE = "l2"
DEFAULT_SEED = 100
# hnswlib build parameters: graph degree and build-time ef (the paper's faiss search is exact; these
# keep top-1 agreement with exact search at 0.99+ with the matcher's default ef).
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 200
HNSW = "hnsw"
HNSW_PCA = "hnsw-pca"
KINDS = (HNSW, HNSW_PCA)
AUTO = "auto"
# Above this many places `--index auto` picks hnsw-pca: the full kind's index plus in-memory
# descriptors (~4.2 KB per place) would pass ~1.2 GB near 280k places.
AUTO_PCA_PLACES = 200000
DEFAULT_REDUCED_DIM = 64
DEFAULT_RERANK = 32
PROJECTION_FILE = "projection.npy"
_FIT_ROWS = 200000  # rows the PCA is fitted on (evenly spaced): plenty for 512 dimensions


def choose_kind(kind: str, places: int) -> str:
    """The index kind for ``--index``: auto picks hnsw up to AUTO_PCA_PLACES places."""
    if kind == AUTO:
        return HNSW_PCA if places > AUTO_PCA_PLACES else HNSW
    if kind not in KINDS:
        raise JistEdgeError("index kind {!r} is not one of {}".format(
            kind, ", ".join((AUTO,) + KINDS)))
    return kind


class IndexSpec(object):
    """How to index a map: kind (auto, hnsw, hnsw-pca), hnswlib M / ef_construction / seed, and for
    hnsw-pca the reduced size and re-rank depth. ``meta(places)`` is the manifest entry."""

    def __init__(self, kind: str = AUTO, M: int = DEFAULT_M, ef_construction: int = DEFAULT_EF_CONSTRUCTION,
                 seed: int = DEFAULT_SEED, reduced_dim: int = DEFAULT_REDUCED_DIM, rerank: int = DEFAULT_RERANK) -> None:
        self.kind = kind
        self.M, self.ef_construction, self.seed = int(M), int(ef_construction), int(seed)
        self.reduced_dim, self.rerank = int(reduced_dim), int(rerank)
        choose_kind(kind, 0)  # an unknown kind is refused before any work

    def meta(self, places: int, file_name: str = "index.hnsw") -> Dict[str, Any]:
        return index_meta(choose_kind(self.kind, places), file_name, self.M, self.ef_construction, self.seed,
                          self.reduced_dim, self.rerank)

    def check_dim(self, dim: int, name: str = "reduced_dim") -> None:
        """Refuse a PCA size above the model's descriptor size before any encoding (``name``: the
        option as the caller spells it)."""
        if self.kind != HNSW and self.reduced_dim > int(dim):
            raise JistEdgeError("{} {} exceeds the model's {}-D descriptors".format(name, self.reduced_dim, dim))


# build_map's and rebuild_map's index keywords from before IndexSpec (still accepted)
INDEX_KEYWORDS = ("index_kind", "M", "ef_construction", "seed", "reduced_dim", "rerank")


def index_spec(spec: Optional[IndexSpec] = None, **keywords: Any) -> IndexSpec:
    """``spec``, or one made of the separate keywords (INDEX_KEYWORDS); not both."""
    unknown = sorted(set(keywords) - set(INDEX_KEYWORDS))
    if unknown:
        raise TypeError("unexpected keyword argument {!r}".format(unknown[0]))
    if spec is None:
        return IndexSpec(keywords.pop("index_kind", AUTO), **keywords)
    if keywords:
        raise TypeError("give index=IndexSpec(...) or the index keywords ({}), not both".format(", ".join(sorted(keywords))))
    return spec


def kind_of(meta: Dict[str, Any]) -> str:
    """A manifest's index kind; maps written before kinds existed are plain hnsw."""
    return str(meta.get("kind", HNSW))


def extra_files(meta: Dict[str, Any]) -> Tuple[str, ...]:
    """Files besides the common ones that an index kind keeps in the map folder."""
    return (PROJECTION_FILE,) if kind_of(meta) == HNSW_PCA else ()


def fit_projection(descriptors: np.ndarray, dim: int) -> np.ndarray:
    """(dim + 1, D) float32: row 0 the mean, rows 1.. the top principal axes (sign fixed).

    Fitted in float64 on evenly spaced rows, so the result depends only on the data."""
    n, full = descriptors.shape
    if not 1 <= dim <= full:
        raise JistEdgeError("reduced dimension {} must be between 1 and the descriptor size {}".format(dim, full))
    step = max(1, -(-n // _FIT_ROWS))
    sample = np.asarray(descriptors[::step], dtype=np.float64)
    mean = sample.mean(axis=0)
    centred = sample - mean
    cov = centred.T @ centred / max(1, sample.shape[0] - 1)
    values, vectors = np.linalg.eigh(cov)
    axes = vectors[:, np.argsort(-values, kind="stable")[:dim]].T
    signs = np.sign(axes[np.arange(dim), np.argmax(np.abs(axes), axis=1)])
    axes *= np.where(signs == 0, 1.0, signs)[:, None]
    return np.vstack([mean[None, :], axes]).astype(np.float32)


def project(vectors: np.ndarray, projection: np.ndarray, block: int = 65536) -> np.ndarray:
    """(n, D) -> (n, d) float32 reduced vectors, in blocks (the input may be a memory map)."""
    mean, axes = projection[0], projection[1:]
    out = np.empty((vectors.shape[0], axes.shape[0]), dtype=np.float32)
    for start in range(0, vectors.shape[0], block):
        chunk = np.asarray(vectors[start:start + block], dtype=np.float32) - mean
        out[start:start + block] = chunk @ axes.T
    return out


def build_hnsw(vectors: np.ndarray, M: int, ef_construction: int, seed: int, threads: int = 1) -> Any:
    """hnswlib over ``vectors``, labels = row numbers; one thread (the default) is deterministic."""
    import hnswlib

    n, dim = vectors.shape
    index = hnswlib.Index(space=SPACE, dim=int(dim))
    index.init_index(max_elements=max(int(n), 1), ef_construction=int(ef_construction), M=int(M),
                     random_seed=int(seed))
    index.add_items(np.ascontiguousarray(vectors, dtype=np.float32), np.arange(n, dtype=np.int64),
                    num_threads=int(threads))
    return index


class HnswSearch(object):
    """hnswlib over the full descriptors: distances are hnswlib's squared L2."""

    kind = HNSW

    def __init__(self, index: Any) -> None:
        self.index = index

    def knn(self, queries: np.ndarray, k: int, ef: int, threads: int = 1) -> Tuple[np.ndarray, np.ndarray]:
        self.index.set_ef(max(int(ef), int(k)))
        labels, dists = self.index.knn_query(queries, k=int(k), num_threads=int(threads))
        return labels.astype(np.int64), dists.astype(np.float32)


class RowReader(object):
    """Rows of a (verified) 2-D .npy file read with pread: only the rows asked for are read, and they
    land in the kernel's page cache, not in this process's memory. A memory map would do the same
    reads, but every page it touches (and the pages around it) counts in the process's RSS: 300
    queries on a 100k map left 100 MB of a 100 MB file resident."""

    def __init__(self, path: str) -> None:
        self.fd = -1
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(handle) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(handle))
            self.offset = handle.tell()
        if len(shape) != 2 or fortran:
            raise IntegrityError("{} is not a 2-D C-order array".format(path))
        self.shape, self.dtype = tuple(int(v) for v in shape), np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDONLY)
        self._pread = os.pread

    def rows(self, ids: np.ndarray) -> np.ndarray:
        data = b"".join(self._pread(self.fd, self.row_bytes, self.offset + int(i) * self.row_bytes) for i in ids)
        return np.frombuffer(data, dtype=self.dtype).reshape(len(ids), self.shape[1])

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


REDUCED_EF_FACTOR = 2


class ReducedSearch(object):
    """hnswlib over PCA-reduced vectors, then exact squared L2 over the ``rerank`` best candidates.

    ``descriptors``: a RowReader over the float16 descriptor file (only candidate rows are read,
    nothing is kept in memory), or an array."""

    kind = HNSW_PCA

    def __init__(self, index: Any, projection: np.ndarray, descriptors: Any, rerank: int = DEFAULT_RERANK) -> None:
        self.index = index
        self.projection = np.asarray(projection, dtype=np.float32)
        self._mean, self._axes_t = self.projection[0], np.ascontiguousarray(self.projection[1:].T)
        self.descriptors = descriptors if isinstance(descriptors, RowReader) else np.asarray(descriptors)
        self.rerank = max(1, int(rerank))
        self.count = int(descriptors.shape[0])

    def knn(self, queries: np.ndarray, k: int, ef: int, threads: int = 1) -> Tuple[np.ndarray, np.ndarray]:
        k = int(k)
        wide = min(max(self.rerank, k), self.count)
        # the reduced graph is searched with twice the matcher's beam: at 1M places its misses were
        # graph misses, not PCA's (top-1 = exact 0.980 at ef 64, 0.997 at 128, +0.1 ms per query)
        self.index.set_ef(max(REDUCED_EF_FACTOR * int(ef), wide))
        reduced = (queries - self._mean) @ self._axes_t
        cand, _ = self.index.knn_query(reduced, k=wide, num_threads=int(threads))
        cand = cand.astype(np.int64)
        # exact squared L2 of every candidate, all queries at once (a few numpy calls per batch)
        flat = cand.reshape(-1)
        found = self.descriptors.rows(flat) if isinstance(self.descriptors, RowReader) else self.descriptors[flat]
        rows = found.astype(np.float32).reshape(cand.shape + (-1,))
        diff = rows - queries[:, None, :]
        exact = np.einsum("nkd,nkd->nk", diff, diff)
        best = np.lexsort((cand, exact))[:, :k]  # nearest first, ties to the lower id (as exact search)
        return np.take_along_axis(cand, best, axis=1), np.take_along_axis(exact, best, axis=1)


def check_reduced_index(index: Any, projection: np.ndarray, descriptors: Any, path: str) -> None:
    """The index holds the projections of the map's descriptors (probed at three rows)."""
    count = int(descriptors.shape[0])
    if not count:
        return
    probe = sorted({0, count // 2, count - 1})
    expected = project(np.asarray(descriptors[probe], dtype=np.float32), projection)
    stored = np.asarray(index.get_items(probe), dtype=np.float32)
    if stored.shape != expected.shape or not np.allclose(stored, expected, atol=1e-4, rtol=1e-5):
        raise IntegrityError("map index {} does not hold the projections of the map's descriptors".format(path))


def check_projection(projection: np.ndarray, dim: int, reduced_dim: int, path: str) -> None:
    if projection.shape != (reduced_dim + 1, dim) or projection.dtype != np.float32:
        raise IntegrityError("map projection {} holds {} {}, the manifest implies float32 {}".format(
            path, projection.dtype, projection.shape, (reduced_dim + 1, dim)))
    if not np.isfinite(projection).all():
        raise IntegrityError("map projection {} holds NaN or infinity".format(path))


def index_meta(kind: str, file_name: str, M: int, ef_construction: int, seed: int,
               reduced_dim: Optional[int] = None, rerank: Optional[int] = None) -> Dict[str, Any]:
    """The manifest's ``index`` entry; the pca kind adds its reduced size, re-rank depth and projection file."""
    meta = {"library": "hnswlib", "kind": kind, "file": file_name, "M": int(M),
            "ef_construction": int(ef_construction), "random_seed": int(seed), "build_threads": 1}  # type: Dict[str, Any]
    if kind == HNSW_PCA:
        meta.update({"reduced_dim": int(reduced_dim or DEFAULT_REDUCED_DIM), "rerank": int(rerank or DEFAULT_RERANK),
                     "projection_file": PROJECTION_FILE})
    return meta


def validate_meta(meta: Dict[str, Any], dim: int, where: str) -> None:
    """A known index kind, and for hnsw-pca a reduced size below the descriptor size and a re-rank depth."""
    kind = kind_of(meta)
    if kind not in KINDS:
        raise IntegrityError("{}: index kind {!r} is not one this jist-edge knows ({})".format(
            where, kind, ", ".join(KINDS)))
    if kind == HNSW_PCA:
        for key in ("reduced_dim", "rerank"):
            value = meta.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise IntegrityError("{}: field {!r} must be a positive integer".format(where, key))
        if meta["reduced_dim"] > dim:
            raise IntegrityError("{}: reduced_dim {} exceeds the descriptor size {}".format(
                where, meta["reduced_dim"], dim))
