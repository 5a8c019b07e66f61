"""Writing a map folder: every file staged, the manifest signed last, then swapped in whole.

The layout and what a reader checks are in maps/store.py; this module makes what it reads.
The index is built with one thread and a fixed seed, and nothing written holds a timing,
so the same routes always give byte-identical files (a merge equals a build of both routes,
a Ray build equals a local one).
"""
import datetime
import platform
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jist_edge import __version__
from jist_edge.errors import JistEdgeError
from jist_edge.fileio import write_json_atomic
from jist_edge.maps import drives as drive_layout
from jist_edge.search import index as index_kinds
from jist_edge.maps.store import (DEFAULT_EF_CONSTRUCTION, DEFAULT_M, DEFAULT_SEED, FORMAT, FORMAT_VERSION,
                                  FRAME_DESCRIPTORS_FILE, FRAME_INFO_FILE, FRAME_POSITIONS_FILE, INDEX_FILE,
                                  MAP_FOLDER, MAP_OUTPUT, SEQUENCE_FRAMES_FILE, SEQUENCE_POSITIONS_FILE,
                                  SEQUENCES_FILE, SPACE, STATS_FILE, FrameTable, PlaceMap, centre_positions, load_map)
from jist_edge.claims import claim_folder
from jist_edge.fileio import check_complete
from jist_edge.filter.distance_stats import compute_distance_stats


def build_hnsw(descriptors: np.ndarray, M: int, ef_construction: int, seed: int) -> Any:
    """Deterministic build: fixed seed and one thread (multi-threaded add_items varies)."""
    return index_kinds.build_hnsw(descriptors, M, ef_construction, seed, threads=1)


def tool_versions() -> Dict[str, str]:
    import hnswlib

    return {
        "jist_edge": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "hnswlib": str(getattr(hnswlib, "__version__", "unknown")),
    }


def write_map(
    out_dir: str,
    bundle: Any,
    frame_descriptors: np.ndarray,
    frames: FrameTable,
    seq_len: int,
    sequences: np.ndarray,
    fp16: bool = False,
    M: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    seed: int = DEFAULT_SEED,
    source: Optional[Dict[str, Any]] = None,
    skipped_frames: int = 0,
    force: bool = False,
    drives: Optional[List[Dict[str, Any]]] = None,
    index: Optional[Dict[str, Any]] = None,
) -> PlaceMap:
    """Write every file into a staged folder, then swap it in: an interrupted write never loads.

    ``drives``: per drive, in frame-table order, its ``frames`` count, ``source``, ``skipped_frames``
    and ``positions`` frame (None: one drive of every frame). ``index``: the manifest's index entry
    (``search.index.index_meta``; None: hnsw with M, ef_construction, seed). An hnsw-pca map always
    stores float16 sequence descriptors (its re-ranking reads them memory-mapped).
    """
    frame_descriptors = np.ascontiguousarray(frame_descriptors, dtype=np.float32)
    drives = drives or [{"frames": len(frames), "source": source or {}, "skipped_frames": int(skipped_frames),
                         "positions": {"frame": drive_layout.METRIC}}]
    if sum(int(d["frames"]) for d in drives) != len(frames):
        raise ValueError("the drives hold {} frames, the frame table {}".format(
            sum(int(d["frames"]) for d in drives), len(frames)))
    seq_frames = drive_layout.window_rows([d["frames"] for d in drives], seq_len)
    meta = index or index_kinds.index_meta(index_kinds.HNSW, INDEX_FILE, M, ef_construction, seed)
    stored = _stored_sequences(sequences, (seq_frames.shape[0], frame_descriptors.shape[1]),
                               fp16 or index_kinds.kind_of(meta) == index_kinds.HNSW_PCA)
    manifest = _manifest(bundle, frames, seq_len, stored, drives, meta)
    built = {}  # type: Dict[str, Any]
    writers = _index_writers(stored, meta, built) + _table_writers(stored, frame_descriptors, frames, seq_frames)
    bounds = drive_layout.bounds([d["frames"] for d in drives], seq_len)
    writers.append((STATS_FILE, lambda p: write_json_atomic(p, distance_stats(
        stored, bounds, frames.positions, seq_frames, seq_len, built["search"]))))
    return load_map(MAP_FOLDER.write(out_dir, lambda folder: refuse_overwrite(folder, force), writers, manifest), bundle)


def _stored_sequences(sequences: np.ndarray, shape: Sequence[int], fp16: bool) -> np.ndarray:
    """The sequence descriptors as they will be stored (float16 refused when it overflows)."""
    if sequences.shape != tuple(shape):
        raise ValueError("sequence descriptors have shape {}, expected {}".format(sequences.shape, tuple(shape)))
    stored = sequences.astype(np.float16 if fp16 else np.float32)
    if fp16 and not np.isfinite(stored).all():
        raise JistEdgeError("sequence descriptors overflow float16, which fp16 (--fp16) and hnsw-pca maps store; "
                            "build the map with neither")
    return stored


def _manifest(bundle: Any, frames: FrameTable, seq_len: int, stored: np.ndarray, drives: List[Dict[str, Any]],
              meta: Dict[str, Any]) -> Dict[str, Any]:
    """Everything but the file records; format 1 unless the map needs 2 (several drives, another index kind)."""
    plain = len(drives) == 1 and index_kinds.kind_of(meta) == index_kinds.HNSW
    return {
        "format": FORMAT,
        "format_version": 1 if plain else FORMAT_VERSION,
        "created": datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z",
        "seq_len": int(seq_len),
        "dim": int(stored.shape[1]),
        "space": SPACE,
        "counts": {
            "frames": len(frames),
            "sequences": int(stored.shape[0]),
            "skipped_frames": int(sum(int(d.get("skipped_frames", 0)) for d in drives)),
            "positioned_frames": int(np.isfinite(frames.positions).all(axis=1).sum()),
        },
        "index": meta,
        "storage": {"sequence_dtype": str(stored.dtype), "frame_dtype": "float32"},
        "bundle": _bundle_entry(bundle),
        "source": dict(drives[0].get("source") or {}) if len(drives) == 1 else {"kind": "drives", "drives": len(drives)},
        "drives": [dict(d, frames=int(d["frames"])) for d in drives],
        "tools": tool_versions(),
    }


def _bundle_entry(bundle: Any) -> Dict[str, Any]:
    return {
        "bundle_id": bundle.bundle_id,
        "path": bundle.path,
        "random_init": bool(getattr(bundle, "random_init", False)),
        "height": int(bundle.height),
        "width": int(bundle.width),
        "seqgem_p": float(bundle.seqgem_p),
        "seqgem_eps": float(bundle.seqgem_eps),
    }


def _index_writers(stored: np.ndarray, meta: Dict[str, Any],
                   built: Dict[str, Any]) -> List[Tuple[str, Callable[[str], None]]]:
    """(file, write(path)) for the index over exactly the vectors a reader gets from sequences.npy
    (projected for hnsw-pca). Once written, ``built["search"]`` searches it as the matcher will."""
    vectors = stored.astype(np.float32)
    writers = []  # type: List[Tuple[str, Callable[[str], None]]]
    projection = None
    if index_kinds.kind_of(meta) == index_kinds.HNSW_PCA:
        projection = index_kinds.fit_projection(vectors, int(meta["reduced_dim"]))
        writers.append((index_kinds.PROJECTION_FILE, lambda p: np.save(p, projection, allow_pickle=False)))

    def index_file(path: str) -> None:
        if projection is None:
            index = build_hnsw(vectors, meta["M"], meta["ef_construction"], meta["random_seed"])
            built["search"] = index_kinds.HnswSearch(index)
        else:
            index = build_hnsw(index_kinds.project(vectors, projection), meta["M"], meta["ef_construction"],
                               meta["random_seed"])
            built["search"] = index_kinds.ReducedSearch(index, projection, stored, int(meta["rerank"]))
        _save_index(index, path)

    writers.append((INDEX_FILE, index_file))
    return writers


def _table_writers(stored: np.ndarray, frame_descriptors: np.ndarray, frames: FrameTable,
                   seq_frames: np.ndarray) -> List[Tuple[str, Callable[[str], None]]]:
    """(file, write(path)) for the descriptors, positions and the frame table, each in its own file."""
    return [
        (SEQUENCES_FILE, lambda p: np.save(p, stored, allow_pickle=False)),
        (FRAME_DESCRIPTORS_FILE, lambda p: np.save(p, frame_descriptors, allow_pickle=False)),
        (FRAME_POSITIONS_FILE, lambda p: np.save(p, frames.positions, allow_pickle=False)),
        (SEQUENCE_FRAMES_FILE, lambda p: np.save(p, seq_frames, allow_pickle=False)),
        (SEQUENCE_POSITIONS_FILE,
         lambda p: np.save(p, centre_positions(frames.positions, seq_frames), allow_pickle=False)),
        (FRAME_INFO_FILE, lambda p: write_json_atomic(p, frames.to_json())),
    ]


def distance_stats(stored: np.ndarray, bounds: np.ndarray, frame_positions: np.ndarray, seq_frames: np.ndarray,
                   seq_len: int, search: Any) -> Dict[str, Any]:
    """The route filter's distance statistics of a new map (jist_edge.filter.distance_stats)."""
    count = stored.shape[0]
    return compute_distance_stats(stored.astype(np.float32), bounds, seq_len, frame_positions, seq_frames,
                                  search if count > 2000 else None)


def _save_index(index: Any, path: str) -> None:
    """hnswlib writes with no error check: a disk that filled up meanwhile means a cut-off index."""
    index.save_index(path)
    check_complete(path)


def refuse_overwrite(out_dir: str, force: bool) -> str:
    """Called before the expensive part: the real folder to write, or a one-line refusal.

    An existing map is replaced only with ``force``; a folder holding anything jist-edge
    did not write, never (see jist_edge.claims)."""
    return claim_folder(out_dir, MAP_OUTPUT, force, option="map output")


