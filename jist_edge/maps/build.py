"""Route -> map: encode every frame once, pool sliding windows with SeqGeM, index them.

The per-frame descriptors are kept in the map, so a map with another sequence length
(``rebuild_map``) costs only SeqGeM and an index build, never a second encoder pass.
"""
import os
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

import numpy as np

from jist_edge.errors import BadFrame, JistEdgeError
from jist_edge.maps.store import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, DEFAULT_SEED, FrameTable, PlaceMap, load_map, refuse_overwrite, write_map
from jist_edge.maps.positions import frame_position, read_positions_csv
from jist_edge.pipeline.preprocess import Preprocessor
from jist_edge.pipeline.seqgem import sliding_windows
from jist_edge.stream.frame import to_bgr

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
                 source_info: Dict[str, Any], seconds: float) -> None:
        self.frame_descriptors = frame_descriptors
        self.frames = frames
        self.skipped = skipped
        self.missing_positions = missing_positions
        self.source_info = source_info  # what the route was read from: kind, path, counts (JSON-ready)
        self.seconds = seconds

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
        self.table = _position_table(positions)
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
        from jist_edge.stream.sources import open_source

        kind = "images" if os.path.isdir(path) else "video"
        return open_source(path, stride=stride), 1, {"kind": kind, "path": os.path.abspath(path)}
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


def _position_table(positions: Any) -> Optional[Dict[Any, Any]]:
    if positions is None:
        return None
    if isinstance(positions, dict):
        return positions
    if isinstance(positions, str):
        return read_positions_csv(positions)
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
    from jist_edge.backends import create_encoder

    reader = _RouteReader(source_or_frames, stride, positions)
    own = encoder is None
    if own:
        encoder = create_encoder(bundle)
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(reader.total())
    start = time.time()
    try:
        pre = Preprocessor.for_bundle(bundle)
        desc = encode_frames(encoder, pre, reader.images(pre), batch_size, progress)
    finally:
        reader.close()
        if own:
            encoder.close()
    frames = reader.table_so_far()
    if len(frames) == 0:
        desc = np.zeros((0, int(bundle.dim)), dtype=np.float32)
    reader.info["ignored_files"] = reader.ignored
    return EncodedRoute(desc, frames, reader.skipped, reader.missing_positions, reader.info, time.time() - start)


def _resolve_bundle(bundle: Any) -> Any:
    if isinstance(bundle, str):
        from jist_edge.bundle import load_bundle

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
    M: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    seed: int = DEFAULT_SEED,
    encoder: Any = None,
    progress: Progress = None,
    force: bool = False,
) -> PlaceMap:
    """Encode the route, pool every window of L frames, write and verify the map folder.

    ``positions``: None (from VPR file names), a CSV path, or a dict frame key ->
    (easting, northing). An existing non-empty ``out_dir`` is replaced only with ``force``.
    """
    bundle = _resolve_bundle(bundle)
    seq_len = int(bundle.seq_len if seq_len is None else seq_len)
    if seq_len < 1:
        raise JistEdgeError("seq_len must be at least 1, got {}".format(seq_len))
    refuse_overwrite(out_dir, force)  # before the expensive part
    route = encode_route(bundle, source_or_frames, stride, positions, batch_size, encoder, progress)
    return write_route_map(bundle, route, out_dir, seq_len, fp16, M, ef_construction, seed, force)


def write_route_map(bundle: Any, route: EncodedRoute, out_dir: str, seq_len: int, fp16: bool = False,
                    M: int = DEFAULT_M, ef_construction: int = DEFAULT_EF_CONSTRUCTION, seed: int = DEFAULT_SEED, force: bool = False) -> PlaceMap:
    sequences = route.sequences(seq_len, bundle.seqgem_p, bundle.seqgem_eps)
    source = dict(route.source_info)
    source["encode_seconds"] = round(route.seconds, 3)
    return write_map(out_dir, bundle, route.frame_descriptors, route.frames, seq_len, sequences, fp16=fp16, M=M,
                     ef_construction=ef_construction, seed=seed, source=source, skipped_frames=route.skipped,
                     force=force)


def route_from_map(place_map: PlaceMap) -> EncodedRoute:
    """The encoded route stored in a map (frame descriptors + frame table)."""
    m = place_map.manifest
    return EncodedRoute(np.asarray(place_map.frame_descriptors, dtype=np.float32), place_map.frames,
                        int(m["counts"].get("skipped_frames", 0)),
                        int(len(place_map.frames) - m["counts"].get("positioned_frames", 0)),
                        dict(m.get("source") or {}), 0.0)


def rebuild_map(bundle: Any, old_map: Union[str, PlaceMap], out_dir: str, seq_len: Optional[int] = None,
                fp16: bool = False, M: int = DEFAULT_M,
                ef_construction: int = DEFAULT_EF_CONSTRUCTION, seed: int = DEFAULT_SEED,
                force: bool = False) -> PlaceMap:
    """A new map from an old map's frame descriptors (another L or index settings), no encoding."""
    bundle = _resolve_bundle(bundle)
    if isinstance(old_map, str):
        old_map = load_map(old_map, bundle)
    route = route_from_map(old_map)
    same = os.path.abspath(out_dir) == os.path.abspath(old_map.path)
    if same:  # the old files are replaced while we read them: take them into memory first
        route.frame_descriptors = np.array(route.frame_descriptors, dtype=np.float32)
    return write_route_map(bundle, route, out_dir, int(seq_len or old_map.seq_len), fp16, M, ef_construction, seed,
                           force or same)
