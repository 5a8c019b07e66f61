"""Routes -> map: encode every frame once, pool sliding windows with SeqGeM, index them.

A map may hold several drives (day and night, both directions): each is encoded on its
own, its windows never straddle another drive, and they are written as one map.
The per-frame descriptors are kept in the map, so a map with another sequence length
(``rebuild_map``) or several maps merged (``maps.merge``) cost only SeqGeM and an index
build, never a second encoder pass.
"""
import os
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

import numpy as np

from jist_edge.errors import BadFrame, JistEdgeError
from jist_edge.locks import output_lock
from jist_edge.maps import drives as drive_layout
from jist_edge.maps.drives import Drive, as_drives  # noqa: F401  (Drive: for build_map callers)
from jist_edge.search.index import AUTO, IndexSpec, index_spec
from jist_edge.maps.store import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, DEFAULT_SEED, FrameTable, PlaceMap, load_map
from jist_edge.maps.write import refuse_overwrite, write_map
from jist_edge.positions import frame_position, read_positions_frame
from jist_edge.encoder.preprocess import Preprocessor
from jist_edge.encoder.seqgem import sliding_windows
from jist_edge.stream.frame import to_bgr
from jist_edge.bundle import load_bundle
from jist_edge.encoder import create_encoder
from jist_edge.stream.sources import open_source

Progress = Optional[Callable[[int], None]]


def encode_frames(encoder: Any, preprocessor: Preprocessor, frames: Iterable[np.ndarray], batch_size: int = 8,
                  progress: Progress = None) -> np.ndarray:
    """BGR frames -> (N, D) float32; ``encoder.encode`` sees each frame exactly once, in batches."""
    if batch_size < 1:
        raise JistEdgeError("batch_size must be at least 1, got {}".format(batch_size))
    chunks = []  # type: List[np.ndarray]
    batch = []  # type: List[np.ndarray]

    def flush() -> None:
        out = np.asarray(encoder.encode(preprocessor.batch(batch)), dtype=np.float32)
        if out.shape[0] != len(batch):
            raise JistEdgeError("encoder returned {} descriptors for {} frames".format(out.shape[0], len(batch)))
        chunks.append(out)
        if progress is not None:
            progress(len(batch))
        del batch[:]

    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks, axis=0)


class EncodedRoute(object):
    """One pass along a route: a descriptor and a table row per usable frame."""

    def __init__(self, frame_descriptors: np.ndarray, frames: FrameTable, skipped: int, missing_positions: int,
                 source_info: Dict[str, Any], seconds: float, position_frame: Optional[Dict[str, Any]] = None) -> None:
        self.frame_descriptors = frame_descriptors
        self.frames = frames
        self.skipped = skipped
        self.missing_positions = missing_positions
        self.source_info = source_info  # what the route was read from: kind, path, counts (JSON-ready)
        self.seconds = seconds
        # the frame its positions are in: {"frame": "metric"}, {"frame": "latlon", "origin": [lat, lon]}, "none"
        self.position_frame = dict(position_frame or {"frame": drive_layout.METRIC})
        if not np.isfinite(frames.positions).all(axis=1).any():
            self.position_frame = {"frame": drive_layout.NONE}

    def stats(self) -> Dict[str, Any]:
        """What a person wants to know after encoding it (JSON-ready)."""
        return {"path": self.source_info.get("path"), "kind": self.source_info.get("kind"),
                "frames": len(self.frames), "skipped": int(self.skipped),
                "ignored_files": int(self.source_info.get("ignored_files", 0) or 0),
                "missing_positions": int(self.missing_positions), "encode_seconds": float(self.seconds),
                "positions": self.source_info.get("positions")}

    def sequences(self, seq_len: int, p: float, eps: float) -> np.ndarray:
        check_length(len(self.frames), seq_len, self.source_info.get("path"))
        return sliding_windows(self.frame_descriptors, seq_len, p, eps)


class _RouteReader(object):
    """Iterates a source's images while recording what each usable frame was."""

    def __init__(self, source_or_frames: Any, stride: int, positions: Any) -> None:
        if stride < 1:
            raise JistEdgeError("stride must be at least 1, got {}".format(stride))
        self.source, self.stride, self.info = _open(source_or_frames, int(stride))
        self.info["stride"] = int(stride)
        if hasattr(positions, "__fspath__"):
            positions = os.fspath(positions)
        self.table, self.position_frame = _position_table(positions)
        if isinstance(positions, str):
            self.info["positions"] = os.path.abspath(positions)
        self.indices = []  # type: List[int]
        self.names = []  # type: List[str]
        self.timestamps = []  # type: List[Optional[float]]
        self.positions = []  # type: List[List[float]]
        self.bad = 0
        self.missing_positions = 0

    def images(self, pre: Preprocessor) -> Iterator[np.ndarray]:
        """Usable frames at the model's size (resized here, so a frame OpenCV cannot resize
        is skipped and counted instead of failing its whole batch)."""
        for n, frame in enumerate(self.source):
            index, image, name, stamp = _unpack(frame, n)
            if n % self.stride:
                continue
            try:
                image = pre.resize(to_bgr(image)[0])
            except BadFrame:
                self.bad += 1
                continue
            pos = self._position(index, name)
            self.indices.append(index)
            self.names.append(name)
            self.timestamps.append(stamp)
            self.positions.append(pos)
            yield image

    def _position(self, index: int, name: str) -> List[float]:
        pos = frame_position(name, index, self.table)
        if pos is None:
            self.missing_positions += 1
            return [float("nan"), float("nan")]
        return [float(pos[0]), float(pos[1])]

    def total(self) -> Optional[int]:
        """Frames iteration will yield at most, when the source knows (files, folders, lists)."""
        try:
            return (len(self.source) + self.stride - 1) // self.stride
        except TypeError:
            return None

    @property
    def ignored(self) -> int:
        """Files in an image folder that are not images (a CSV, notes): not frames at all."""
        return int(getattr(self.source, "ignored", 0) or 0)

    @property
    def skipped(self) -> int:
        return self.bad + int(getattr(self.source, "skipped", 0) or 0)

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if callable(close):
            close()

    def table_so_far(self) -> FrameTable:
        positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 2)
        return FrameTable(self.indices, self.names, self.timestamps, positions)


ROUTE_KINDS = "a video file or image folder (str or path), or an iterable of BGR numpy arrays or Frames"


def _open(source_or_frames: Any, stride: int):
    """A path opens through jist_edge.stream.sources (which applies the stride); an iterable is iterated."""
    if hasattr(source_or_frames, "__fspath__"):
        source_or_frames = os.fspath(source_or_frames)
    if isinstance(source_or_frames, str):
        path = source_or_frames
        if not os.path.exists(path):
            raise JistEdgeError("route not found: {}".format(path))

        kind = "images" if os.path.isdir(path) else "video"
        return open_source(path, stride=stride), 1, {"kind": kind, "path": os.path.abspath(path)}
    route_info = getattr(source_or_frames, "route_info", None)  # a source that says what it reads (a bag)
    if isinstance(route_info, dict):
        return source_or_frames, stride, route_info
    if isinstance(source_or_frames, np.ndarray) and source_or_frames.ndim != 4:
        raise JistEdgeError("a route given as one array must be N x H x W x 3, not {}-D".format(source_or_frames.ndim))
    if isinstance(source_or_frames, (bytes, dict)) or not hasattr(source_or_frames, "__iter__"):
        raise JistEdgeError("cannot read a route from a {}: give {}".format(type(source_or_frames).__name__,
                                                                         ROUTE_KINDS))
    return source_or_frames, stride, {"kind": "frames", "path": None}


def _unpack(frame: Any, n: int):
    """A Frame (index, image, name, timestamp), a bare BGR array, or None (a frame that is missing)."""
    if frame is None or isinstance(frame, np.ndarray):
        return n, frame, "frame{:06d}".format(n), None
    if not hasattr(frame, "image"):
        raise JistEdgeError("frame {} of the route is a {}; expected a BGR numpy array or a Frame".format(
            n, type(frame).__name__))
    index = int(getattr(frame, "index", n))
    name = getattr(frame, "name", None) or "frame{:06d}".format(index)
    stamp = getattr(frame, "timestamp", None)
    return index, frame.image, str(name), None if stamp is None else float(stamp)


def _position_table(positions: Any):
    """(frame key -> position table or None for file names, the frame the positions are in)."""
    if positions is None:
        return None, {"frame": drive_layout.METRIC}
    if isinstance(positions, dict):
        return positions, {"frame": drive_layout.METRIC}
    if isinstance(positions, tuple) and len(positions) == 2 and isinstance(positions[0], dict):
        return positions[0], dict(positions[1])  # (table, frame): e.g. a bag's NavSatFix in local metres
    if isinstance(positions, str):
        return read_positions_frame(positions)
    raise JistEdgeError("positions must be a CSV path or a dict, got {}".format(type(positions).__name__))


def check_length(frames: int, seq_len: int, where: Any) -> None:
    if seq_len < 1:
        raise JistEdgeError("seq_len must be at least 1, got {}".format(seq_len))
    if frames == 0:
        raise JistEdgeError("route {} has no usable frames".format(where or "(frames)"))
    if frames < seq_len:
        raise JistEdgeError("route {} has {} usable frames, fewer than the sequence length L={}".format(
            where or "(frames)", frames, seq_len))


def encode_route(bundle: Any, source_or_frames: Any, stride: int = 1, positions: Any = None, batch_size: int = 8,
                 encoder: Any = None, progress: Progress = None) -> EncodedRoute:
    """Encode a whole route once; frames that cannot be read or encoded are skipped and counted."""
    reader = _RouteReader(source_or_frames, stride, positions)
    own = encoder is None
    if own:
        encoder = create_encoder(bundle)
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(reader.total())
    start = time.time()
    try:
        pre = Preprocessor.for_bundle(bundle)
        encode_stream = getattr(encoder, "encode_stream", None)  # e.g. a pool of Ray workers (maps.cluster)
        if callable(encode_stream):
            desc = encode_stream(reader.images(pre), batch_size, progress)
        else:
            desc = encode_frames(encoder, pre, reader.images(pre), batch_size, progress)
    finally:
        reader.close()
        if own:
            encoder.close()
    frames = reader.table_so_far()
    if len(frames) == 0:
        desc = np.zeros((0, int(bundle.dim)), dtype=np.float32)
    reader.info["ignored_files"] = reader.ignored
    return EncodedRoute(desc, frames, reader.skipped, reader.missing_positions, reader.info, time.time() - start,
                        reader.position_frame)


def _resolve_bundle(bundle: Any) -> Any:
    if isinstance(bundle, str):
        return load_bundle(bundle)
    return bundle


def build_map(
    bundle: Any,
    source_or_frames: Any,
    out_dir: str,
    seq_len: Optional[int] = None,
    stride: int = 1,
    positions: Any = None,
    batch_size: int = 8,
    fp16: bool = False,
    index: Optional[IndexSpec] = None,
    encoder: Any = None,
    progress: Progress = None,
    force: bool = False,
    **index_keywords: Any
) -> PlaceMap:
    """Encode the route(s), pool every window of L frames of each drive, write and verify the map folder.

    ``source_or_frames``: one route (video, image folder, frames) with ``positions`` (None: from VPR
    file names, a CSV path, or a dict frame key -> (easting, northing)), or a list of
    ``maps.drives.Drive(source, positions)``, one per drive. ``encoder``: a backend, or a pool with
    ``encode_stream`` (``maps.cluster``). ``index``: how to index it (``IndexSpec``: kind auto, hnsw
    or hnsw-pca, hnswlib settings, PCA size); the older keywords (``index_kind``, ``M``, ...) still work.
    An existing non-empty ``out_dir`` is replaced only with ``force``. The returned map's
    ``build_stats`` lists per drive what was encoded, skipped and unpositioned.
    """
    bundle = _resolve_bundle(bundle)
    seq_len = int(bundle.seq_len if seq_len is None else seq_len)
    if seq_len < 1:
        raise JistEdgeError("seq_len must be at least 1, got {}".format(seq_len))
    spec = index_spec(index, **index_keywords)
    spec.check_dim(bundle.dim)
    drives = as_drives(source_or_frames, positions)
    with output_lock(out_dir, "map output"):  # one writer from the check to the swap
        refuse_overwrite(out_dir, force)  # before the expensive part
        own = encoder is None
        if own:
            encoder = create_encoder(bundle)
        try:
            routes = [encode_route(bundle, d.source, stride, d.positions, batch_size, encoder, progress)
                      for d in drives]
        finally:
            if own:
                encoder.close()
        place_map = write_drives_map(bundle, routes, out_dir, seq_len, fp16, spec, force)
    place_map.build_stats = [r.stats() for r in routes]
    return place_map


def write_drives_map(bundle: Any, routes: List[EncodedRoute], out_dir: str, seq_len: int, fp16: bool = False,
                     index: Optional[IndexSpec] = None, force: bool = False) -> PlaceMap:
    """One map of several encoded drives, in order: their frames one after the other, windows within each."""
    index = index or IndexSpec()
    for route in routes:
        check_length(len(route.frames), seq_len, route.source_info.get("path"))
    names = ["{} ({})".format(n, r.source_info.get("path") or "frames") for n, r in enumerate(routes)]
    target = drive_layout.common_frame([r.position_frame for r in routes], names)
    tables, records, sequences = [], [], []
    for route in routes:
        positions = drive_layout.to_frame(route.frames.positions, route.position_frame, target)
        tables.append(FrameTable(route.frames.indices, route.frames.names, route.frames.timestamps, positions))
        sequences.append(route.sequences(seq_len, bundle.seqgem_p, bundle.seqgem_eps))
        source = dict(route.source_info)
        source["encode_seconds"] = round(route.seconds, 3)
        frame = route.position_frame if route.position_frame.get("frame") == drive_layout.NONE else (target or route.position_frame)
        records.append({"frames": len(route.frames), "source": source, "skipped_frames": int(route.skipped),
                        "positions": dict(frame)})
    frames = concat_tables(tables)
    frame_descriptors = np.concatenate([np.asarray(r.frame_descriptors, dtype=np.float32) for r in routes], axis=0)
    seqs = np.concatenate(sequences, axis=0)
    return write_map(out_dir, bundle, frame_descriptors, frames, seq_len, seqs, fp16=fp16, force=force,
                     drives=records, index=index.meta(seqs.shape[0]))


def concat_tables(tables: List[FrameTable]) -> FrameTable:
    """Frame tables one after the other (the drives' frames in map order)."""
    return FrameTable([i for t in tables for i in t.indices], [n for t in tables for n in t.names],
                      [s for t in tables for s in t.timestamps],
                      np.concatenate([t.positions for t in tables], axis=0) if tables else np.zeros((0, 2)))


def write_route_map(bundle: Any, route: EncodedRoute, out_dir: str, seq_len: int, fp16: bool = False,
                    M: int = DEFAULT_M, ef_construction: int = DEFAULT_EF_CONSTRUCTION, seed: int = DEFAULT_SEED,
                    force: bool = False) -> PlaceMap:
    """A one-drive map of an encoded route (hnsw index)."""
    return write_drives_map(bundle, [route], out_dir, seq_len, fp16, IndexSpec(AUTO, M, ef_construction, seed), force)


def routes_from_map(place_map: PlaceMap) -> List[EncodedRoute]:
    """The encoded drives stored in a map (frame descriptors + frame tables), in map order."""
    out = []
    start = 0
    descriptors = place_map.frame_descriptors
    for drive in place_map.drives:
        stop = start + int(drive["frames"])
        table = place_map.frames.take(range(start, stop))
        missing = int((~np.isfinite(table.positions).all(axis=1)).sum())
        source = dict(drive.get("source") or {})
        seconds = float(source.pop("encode_seconds", 0.0) or 0.0)
        out.append(EncodedRoute(np.array(descriptors[start:stop], dtype=np.float32), table,
                                int(drive.get("skipped_frames", 0)), missing, source, seconds,
                                drive.get("positions")))
        start = stop
    return out


def route_from_map(place_map: PlaceMap) -> EncodedRoute:
    """The encoded route stored in a one-drive map (see routes_from_map for several drives)."""
    routes = routes_from_map(place_map)
    if len(routes) != 1:
        raise JistEdgeError("map {} holds {} drives; use routes_from_map".format(place_map.path, len(routes)))
    return routes[0]


def rebuild_map(bundle: Any, old_map: Union[str, PlaceMap], out_dir: str, seq_len: Optional[int] = None,
                fp16: bool = False, index: Optional[IndexSpec] = None, force: bool = False,
                **index_keywords: Any) -> PlaceMap:
    """A new map from an old map's frame descriptors (another L or index settings), no encoding."""
    bundle = _resolve_bundle(bundle)
    spec = index_spec(index, **index_keywords)
    spec.check_dim(bundle.dim)
    if isinstance(old_map, str):
        old_map = load_map(old_map, bundle)
    same = os.path.abspath(out_dir) == os.path.abspath(old_map.path)
    routes = routes_from_map(old_map)  # copies: the old files may be replaced below while we hold them
    return write_drives_map(bundle, routes, out_dir, int(seq_len or old_map.seq_len), fp16, spec, force or same)
