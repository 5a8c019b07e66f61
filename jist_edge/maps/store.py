"""Map folders: sequence descriptors + hnswlib index + metadata, verified before use.

A corrupt hnswlib file can load and then segfault at query time, and one written
with another dim or space loads silently with wrong answers (DESIGN.md). So
``load_map`` checks the manifest schema, then size and sha256 of every file, and
only then lets numpy or hnswlib open anything.

Layout of a map folder::

    manifest.json            counts, dim, L, space, index kind + params, drives, bundle identity, checksums
    index.hnsw               hnswlib index (space l2 = squared L2), labels = sequence ids
    projection.npy           hnsw-pca maps only: float32 PCA mean + axes the index searches in (search/index.py)
    sequences.npy            (S, D) float32 (or float16 with --fp16) sequence descriptors
    frame_descriptors.npy    (F, D) float32, one per encoded frame (rebuilds with another L)
    frame_positions.npy      (F, 2) float64 easting/northing in metres, NaN when unknown
    frame_info.json          per frame: source index, source name, timestamp
    sequence_frames.npy      (S, L) int64 rows into the frame table
    sequence_positions.npy   (S, 2) float64 centre position of each sequence, NaN when unknown

Written by maps/write.py. Several drives (maps/drives.py) are stored one after the other; sequences are the windows
inside each drive, so ``sequence_frames`` must equal the drives' windows (checked on load).
"""
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jist_edge.artifacts import MANIFEST_FILE, ManifestFolder
from jist_edge.errors import IntegrityError, JistEdgeError
from jist_edge.fileio import read_json
from jist_edge.search.index_check import check_hnsw_index
from jist_edge.maps import drives as drive_layout
from jist_edge.search import index as index_kinds
from jist_edge.claims import manifest_kind
from jist_edge.filter.distance_stats import STATS_FILE  # noqa: F401  (listed, and checked, when present)

FORMAT = "jist-edge-map"
FORMAT_VERSION = 2  # 2: several drives and/or an index kind other than hnsw (an older reader refuses these)
SPACE = "l2"
MAP_FOLDER = ManifestFolder("map", "map", "`jist-edge map build`", "rebuild it with `jist-edge map build`")
INDEX_FILE = "index.hnsw"
SEQUENCES_FILE = "sequences.npy"
FRAME_DESCRIPTORS_FILE = "frame_descriptors.npy"
FRAME_POSITIONS_FILE = "frame_positions.npy"
FRAME_INFO_FILE = "frame_info.json"
SEQUENCE_FRAMES_FILE = "sequence_frames.npy"
SEQUENCE_POSITIONS_FILE = "sequence_positions.npy"
DATA_FILES = (
    INDEX_FILE, SEQUENCES_FILE, FRAME_DESCRIPTORS_FILE, FRAME_POSITIONS_FILE,
    FRAME_INFO_FILE, SEQUENCE_FRAMES_FILE, SEQUENCE_POSITIONS_FILE,
)
# hnswlib build parameters (defined in search/index.py): DEFAULT_M, DEFAULT_EF_CONSTRUCTION, DEFAULT_SEED
DEFAULT_M = index_kinds.DEFAULT_M
DEFAULT_EF_CONSTRUCTION = index_kinds.DEFAULT_EF_CONSTRUCTION
DEFAULT_SEED = index_kinds.DEFAULT_SEED

_SCHEMA = {
    "format": str,
    "format_version": int,
    "created": str,
    "seq_len": int,
    "dim": int,
    "space": str,
    "counts": dict,
    "index": dict,
    "storage": dict,
    "bundle": dict,
    "files": dict,
    "tools": dict,
}
_COUNTS = ("frames", "sequences")
MAP_OUTPUT = manifest_kind("map", FORMAT)
_INDEX = ("library", "M", "ef_construction", "random_seed")


class FrameTable(object):
    """What is known about each encoded frame, row-aligned with the frame descriptors."""

    def __init__(
        self,
        indices: Sequence[int],
        names: Sequence[str],
        timestamps: Sequence[Optional[float]],
        positions: np.ndarray,
    ) -> None:
        self.indices = [int(i) for i in indices]
        self.names = [str(n) for n in names]
        self.timestamps = [None if t is None else float(t) for t in timestamps]
        self.positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        n = len(self.indices)
        if not (len(self.names) == len(self.timestamps) == self.positions.shape[0] == n):
            raise ValueError("frame table columns differ in length")

    def __len__(self) -> int:
        return len(self.indices)

    def take(self, rows: Sequence[int]) -> "FrameTable":
        rows = [int(r) for r in rows]
        return FrameTable(
            [self.indices[r] for r in rows], [self.names[r] for r in rows],
            [self.timestamps[r] for r in rows], self.positions[rows] if rows else np.zeros((0, 2)),
        )

    def to_json(self) -> Dict[str, Any]:
        return {"index": self.indices, "name": self.names, "timestamp": self.timestamps}


def window_rows(frame_count: int, seq_len: int) -> np.ndarray:
    """(S, L) frame rows of every window of L consecutive frames, one per start frame."""
    return drive_layout.window_rows([frame_count], seq_len)


def centre_positions(frame_positions: np.ndarray, seq_frames: np.ndarray) -> np.ndarray:
    """The middle frame's position; the mean of the known ones when it has none; else NaN."""
    seq_len = seq_frames.shape[1]
    centre = frame_positions[seq_frames[:, seq_len // 2]].copy()
    missing = np.isnan(centre).any(axis=1)
    for s in np.nonzero(missing)[0]:
        window = frame_positions[seq_frames[s]]
        known = window[~np.isnan(window).any(axis=1)]
        if len(known):
            centre[s] = known.mean(axis=0)
    return centre


class PlaceMap(object):
    """A verified map: descriptors in memory, the hnswlib index opened on first use."""

    def __init__(self, path: str, manifest: Dict[str, Any], descriptors: np.ndarray, frames: FrameTable,
                 sequence_frames: np.ndarray, sequence_positions: np.ndarray, frame_descriptors: np.ndarray) -> None:
        self.path = path
        self.manifest = manifest
        self.seq_len = int(manifest["seq_len"])  # type: int
        self.dim = int(manifest["dim"])  # type: int
        self.count = int(manifest["counts"]["sequences"])  # type: int
        self.bundle_id = str(manifest["bundle"]["bundle_id"])  # type: str
        self.space = str(manifest["space"])
        self.descriptors = descriptors
        self.frames = frames
        self.sequence_frames = sequence_frames
        self.sequence_positions = sequence_positions
        # (F, D) float32, memory-mapped: only rebuilds (another L) and checks read it
        self.frame_descriptors = frame_descriptors
        self.index_kind = index_kinds.kind_of(manifest["index"])
        self._drive_bounds = drive_layout.bounds(drive_layout.manifest_frame_counts(manifest), self.seq_len)
        self.build_stats = None  # type: Any  # per-drive route statistics when this map was just built
        self._index = None  # type: Any
        self._search = None  # type: Any

    @property
    def index_path(self) -> str:
        return os.path.join(self.path, INDEX_FILE)

    @property
    def drive_bounds(self) -> np.ndarray:
        """Sequence-id offsets of the drives in this map, CSR style: drive d holds the ids
        ``drive_bounds[d] .. drive_bounds[d+1]-1`` in driving order (from the manifest's drives)."""
        return self._drive_bounds.copy()

    @property
    def drives(self) -> List[Dict[str, Any]]:
        """Per drive: frames, sequences, source, skipped frames, position frame (manifest order)."""
        return drive_layout.drive_records(self.manifest)

    def drive_of(self, seq_ids: Any) -> np.ndarray:
        """The drive each sequence id belongs to; -1 for ids outside the map."""
        ids = np.asarray(seq_ids, dtype=np.int64)
        out = np.full(ids.shape, -1, dtype=np.int64)
        valid = (ids >= 0) & (ids < self.count)
        out[valid] = drive_layout.drive_of(self._drive_bounds, ids[valid])
        return out

    def positions_of(self, seq_ids: Any) -> np.ndarray:
        """Centre position (easting, northing) of each sequence id; NaN when unknown or id < 0."""
        ids = np.asarray(seq_ids, dtype=np.int64)
        out = np.full(ids.shape + (2,), np.nan, dtype=np.float64)
        valid = (ids >= 0) & (ids < self.count)
        out[valid] = self.sequence_positions[ids[valid]]
        return out

    def frames_of(self, seq_id: int) -> List[Dict[str, Any]]:
        """The L frames of one sequence: row, source index, name, timestamp, position."""
        if not 0 <= int(seq_id) < self.count:
            raise JistEdgeError("sequence id {} is outside the map (0..{})".format(seq_id, self.count - 1))
        out = []
        for row in self.sequence_frames[int(seq_id)]:
            row = int(row)
            pos = self.frames.positions[row]
            out.append({
                "row": row,
                "index": self.frames.indices[row],
                "name": self.frames.names[row],
                "timestamp": self.frames.timestamps[row],
                "position": None if np.isnan(pos).any() else [float(pos[0]), float(pos[1])],
            })
        return out

    def hnsw_index(self) -> Any:
        """The hnswlib index, opened once; its files were verified by ``load_map``."""
        if self._index is None:
            if self.index_kind == index_kinds.HNSW_PCA:
                self._index = open_hnsw(self.index_path, int(self.manifest["index"]["reduced_dim"]), self.count,
                                        checked=True)
                index_kinds.check_reduced_index(self._index, self.projection(), self.descriptors, self.index_path)
            else:
                self._index = open_hnsw(self.index_path, self.dim, self.count, self.descriptors, checked=True)
        return self._index

    def projection(self) -> np.ndarray:
        """(reduced_dim + 1, D) float32 PCA mean and axes of an hnsw-pca map (verified by ``load_map``)."""
        path = os.path.join(self.path, index_kinds.PROJECTION_FILE)
        projection = _load_npy(self.path, index_kinds.PROJECTION_FILE,
                               (int(self.manifest["index"]["reduced_dim"]) + 1, self.dim), ("float32",))
        index_kinds.check_projection(projection, self.dim, int(self.manifest["index"]["reduced_dim"]), path)
        return projection

    def search_index(self) -> Any:
        """What the matcher queries: hnswlib, or hnswlib over PCA + exact re-ranking (index kind)."""
        if self._search is None:
            if self.index_kind == index_kinds.HNSW_PCA:
                rows = index_kinds.RowReader(os.path.join(self.path, SEQUENCES_FILE))  # verified by load_map
                self._search = index_kinds.ReducedSearch(self.hnsw_index(), self.projection(), rows,
                                                         int(self.manifest["index"]["rerank"]))
            else:
                self._search = index_kinds.HnswSearch(self.hnsw_index())
        return self._search

    def summary(self) -> Dict[str, Any]:
        m = self.manifest
        positioned = int(np.isfinite(self.frames.positions).all(axis=1).sum())
        extent = None
        if positioned:
            known = self.frames.positions[np.isfinite(self.frames.positions).all(axis=1)]
            extent = [float(v) for v in (known.max(axis=0) - known.min(axis=0))]
        return {
            "path": self.path,
            "bundle_id": self.bundle_id,
            "bundle_path": m["bundle"].get("path"),
            "random_init": m["bundle"].get("random_init"),
            "seq_len": self.seq_len,
            "dim": self.dim,
            "space": self.space,
            "sequences": self.count,
            "frames": len(self.frames),
            "skipped_frames": m["counts"].get("skipped_frames", 0),
            "positioned_frames": positioned,
            "extent_m": extent,
            "index": m["index"],
            "index_kind": self.index_kind,
            "drives": [_drive_summary(d, self.seq_len) for d in self.drives],
            "sequence_dtype": m["storage"].get("sequence_dtype"),
            "bytes": sum(int(f["bytes"]) for f in m["files"].values()),
            "source": m.get("source"),
            "created": m["created"],
            "verified": True,
        }


def _drive_summary(drive: Dict[str, Any], seq_len: int) -> Dict[str, Any]:
    source = drive.get("source") or {}
    return {"frames": int(drive["frames"]), "sequences": int(drive["frames"]) - seq_len + 1,
            "kind": source.get("kind"), "path": source.get("path"),
            "skipped_frames": int(drive.get("skipped_frames", 0)),
            "positions": drive_layout.describe_frame(drive.get("positions") or {"frame": drive_layout.METRIC})}


def open_hnsw(path: str, dim: int, count: int, descriptors: Optional[np.ndarray] = None,
              checked: bool = False) -> Any:
    """Load a (verified) index and check that it holds what the manifest says.

    Its structure is checked first (search.index_check) unless ``checked`` says load_map did."""
    import hnswlib

    if not checked:
        check_hnsw_index(path, dim, count)

    index = hnswlib.Index(space=SPACE, dim=int(dim))
    try:
        index.load_index(path, max_elements=int(count))
    except RuntimeError as exc:
        raise IntegrityError("map index {} cannot be loaded by hnswlib: {}".format(path, exc))
    if index.get_current_count() != count:
        raise IntegrityError("map index {} holds {} items, the manifest says {}".format(
            path, index.get_current_count(), count))
    if descriptors is not None and count:
        probe = sorted({0, count // 2, count - 1})
        stored = np.asarray(index.get_items(probe), dtype=np.float32)
        if stored.shape != (len(probe), dim) or not np.allclose(stored, descriptors[probe], atol=1e-6, rtol=0):
            raise IntegrityError("map index {} does not hold the map's sequence descriptors".format(path))
    return index


def data_files(manifest: Dict[str, Any]) -> Tuple[str, ...]:
    """Every file a map's manifest must list: the common ones plus its index kind's."""
    return DATA_FILES + index_kinds.extra_files(manifest["index"])


def validate_manifest(manifest: Dict[str, Any], where: str) -> None:
    """Raise IntegrityError naming the first missing or wrong field."""
    # The format first: a model bundle given as a map should say so, not "missing field".
    if "format" in manifest and manifest["format"] != FORMAT:
        raise IntegrityError("{}: format is {!r}, expected {!r} (not a map folder?)".format(
            where, manifest["format"], FORMAT))
    for key, kind in _SCHEMA.items():
        if key not in manifest:
            raise IntegrityError("{}: missing field {!r}".format(where, key))
        if not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            raise IntegrityError("{}: field {!r} has the wrong type ({})".format(
                where, key, type(manifest[key]).__name__))
    if manifest["format_version"] > FORMAT_VERSION:
        raise IntegrityError("{}: format_version {} is newer than this jist-edge understands ({})".format(
            where, manifest["format_version"], FORMAT_VERSION))
    if manifest["space"] != SPACE:
        raise IntegrityError("{}: space is {!r}; jist-edge maps use {!r} (squared L2, as the paper)".format(
            where, manifest["space"], SPACE))
    _require_ints(manifest["counts"], _COUNTS, where + " [counts]")
    _require_ints(manifest["index"], _INDEX[1:], where + " [index]")
    index_kinds.validate_meta(manifest["index"], manifest["dim"], where + " [index]")
    if manifest["seq_len"] < 1 or manifest["dim"] < 1:
        raise IntegrityError("{}: seq_len and dim must be positive".format(where))
    drive_layout.validate_drives(manifest, where)
    if not isinstance(manifest["bundle"].get("bundle_id"), str):
        raise IntegrityError("{}: bundle.bundle_id is missing".format(where))
    if manifest["storage"].get("sequence_dtype") not in ("float32", "float16"):
        raise IntegrityError("{}: storage.sequence_dtype must be float32 or float16".format(where))
    for name in data_files(manifest):
        if name not in manifest["files"]:
            raise IntegrityError("{}: files does not list {}".format(where, name))
    # last, so a re-signed edit still meets the checks above: M, ef_construction, the bundle id...
    MAP_FOLDER.check_digest(manifest, where)


def _require_ints(obj: Dict[str, Any], keys: Sequence[str], where: str) -> None:
    for key in keys:
        value = obj.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise IntegrityError("{}: field {!r} must be a non-negative integer".format(where, key))


def check_bundle(manifest: Dict[str, Any], map_path: str, bundle: Any) -> None:
    """Refuse a map made with other weights or preprocessing, naming both sides."""
    map_id = manifest["bundle"]["bundle_id"]
    if bundle.bundle_id != map_id:
        raise JistEdgeError(
            "map {} was built with model bundle {} ({}), but the model in use is bundle {} ({}); "
            "rebuild the map with this model (jist-edge map build)".format(
                map_path, map_id, manifest["bundle"].get("path"), bundle.bundle_id, bundle.path))
    if int(bundle.dim) != int(manifest["dim"]):
        raise IntegrityError("map {} has {}-D descriptors, bundle {} makes {}-D".format(
            map_path, manifest["dim"], bundle.path, bundle.dim))


def load_map(path: str, bundle: Any = None, seq_len: Optional[int] = None) -> PlaceMap:
    """Open a map folder after checking schema, identity and every file's size and sha256."""
    path, manifest_path, manifest = MAP_FOLDER.read(path)
    validate_manifest(manifest, manifest_path)
    if bundle is not None:
        check_bundle(manifest, path, bundle)
    if seq_len is not None and int(seq_len) != manifest["seq_len"]:
        raise JistEdgeError("map {} has sequence length L={}, but L={} was asked for; rebuild it with "
                            "`jist-edge map build --from-map {} --seq-len {}`".format(
                                path, manifest["seq_len"], seq_len, path, seq_len))
    MAP_FOLDER.verify(path, manifest)
    # nothing below runs on an unverified file
    n_seq, n_frames = manifest["counts"]["sequences"], manifest["counts"]["frames"]
    dim, seq_len_m = manifest["dim"], manifest["seq_len"]
    if index_kinds.kind_of(manifest["index"]) == index_kinds.HNSW_PCA:  # re-ranking reads rows from the file
        descriptors = _load_npy(path, SEQUENCES_FILE, (n_seq, dim), ("float16",), mmap=True)
    else:
        descriptors = _load_npy(path, SEQUENCES_FILE, (n_seq, dim), ("float32", "float16")).astype(np.float32)
    positions = _load_npy(path, FRAME_POSITIONS_FILE, (n_frames, 2), ("float64",))
    seq_frames = _load_npy(path, SEQUENCE_FRAMES_FILE, (n_seq, seq_len_m), ("int64",))
    seq_positions = _load_npy(path, SEQUENCE_POSITIONS_FILE, (n_seq, 2), ("float64",))
    frame_descriptors = _load_npy(path, FRAME_DESCRIPTORS_FILE, (n_frames, dim), ("float32",), mmap=True)
    info = read_json(os.path.join(path, FRAME_INFO_FILE), "map frame table")
    try:
        frames = FrameTable(info["index"], info["name"], info["timestamp"], positions)
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError("map frame table {} is malformed: {}".format(os.path.join(path, FRAME_INFO_FILE), exc))
    if not np.array_equal(seq_frames, drive_layout.window_rows(drive_layout.manifest_frame_counts(manifest),
                                                                seq_len_m)):
        raise IntegrityError("map {}: sequence frame rows are not the windows of each drive's frames".format(path))
    # a re-signed file can still hold links hnswlib would follow out of bounds (a segfault)
    meta = manifest["index"]
    check_hnsw_index(os.path.join(path, INDEX_FILE), int(meta.get("reduced_dim", dim)) if index_kinds.kind_of(meta)
                     == index_kinds.HNSW_PCA else dim, n_seq, meta["M"], meta["ef_construction"])
    return PlaceMap(path, manifest, descriptors, frames, seq_frames, seq_positions, frame_descriptors)


def _load_npy(directory: str, name: str, shape: Sequence[int], dtypes: Sequence[str], mmap: bool = False) -> np.ndarray:
    file_path = os.path.join(directory, name)
    try:
        arr = np.load(file_path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IntegrityError("map file {} cannot be read: {}".format(file_path, exc))
    if tuple(arr.shape) != tuple(shape) or str(arr.dtype) not in dtypes:
        raise IntegrityError("map file {} holds {} {}, the manifest implies {} {}".format(
            file_path, arr.dtype, tuple(arr.shape), "/".join(dtypes), tuple(shape)))
    return arr


def is_map_dir(path: str) -> bool:
    """A folder with a manifest that says it is a map (content not verified here)."""
    manifest_path = os.path.join(path, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        return False
    try:
        return read_json(manifest_path, "map manifest").get("format") == FORMAT
    except JistEdgeError:
        return False
