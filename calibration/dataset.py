"""The INT8 calibration set: N frames spread evenly over a route, preprocessed like the runtime.

Runs on the device (TensorRT calibration happens where the engine is built), so it
keeps to Python 3.6 and needs only numpy and OpenCV. Frames come from an image
folder (in route order, as ``jist-edge map`` reads it) or a video file. Selection is
stratified: the route is cut into N equal spans and one frame is drawn from each
(seeded), so the set covers the whole route and is the same on every run.
"""
import hashlib
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.encoder.preprocess import Preprocessor
from jist_edge.stream.uri import VIDEO_EXTENSIONS

DEFAULT_FRAMES = 256
DEFAULT_SEED = 0


def select_indices(total: int, count: int, seed: int = DEFAULT_SEED) -> List[int]:
    """``count`` sorted indices in [0, total), one drawn from each of ``count`` equal spans."""
    total, count = int(total), int(count)
    if total < 1:
        raise JistEdgeError("the calibration route has no frames")
    if count < 1:
        raise JistEdgeError("frames must be at least 1, got {}".format(count))
    if count >= total:
        return list(range(total))
    rng = np.random.RandomState(seed)
    edges = np.linspace(0, total, count + 1)
    picks = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        start, stop = int(np.ceil(lo)), max(int(np.ceil(hi)), int(np.ceil(lo)) + 1)
        picks.append(int(rng.randint(start, min(stop, total))))
    return sorted(set(picks))


class CalibrationSet(object):
    """Selected frames of a route; ``batches()`` decodes them only when iterated."""

    def __init__(self, source: str, preprocessor: Preprocessor, frames: int = DEFAULT_FRAMES,
                 seed: int = DEFAULT_SEED) -> None:
        self.source = os.path.abspath(source)
        self.pre = preprocessor
        self.seed = int(seed)
        self.frames_read = 0  # decoded frames, so tests can prove a cache hit reads none
        self.skipped = 0  # selected frames that could not be read (last pass over images())
        if os.path.isdir(self.source):
            from jist_edge.stream.sources import ImageFolderSource

            self.kind = "images"
            self.names = list(ImageFolderSource(self.source).names)  # type: List[str]
            total = len(self.names)
        elif os.path.isfile(self.source) and self.source.lower().endswith(VIDEO_EXTENSIONS):
            self.kind = "video"
            self.names = []
            total = _video_frame_count(self.source)
        else:
            raise JistEdgeError("calibration source {} is neither an image folder nor a video file ({})".format(
                source, ", ".join(e.lstrip(".") for e in VIDEO_EXTENSIONS[:4])))
        self.total = total
        self.indices = select_indices(total, frames, self.seed)

    def __len__(self) -> int:
        return len(self.indices)

    def identity(self) -> Dict[str, Any]:
        """What the selected data depends on, from file metadata only (no decoding)."""
        if self.kind == "images":
            files = [self.names[i] for i in self.indices]
            stats = [_stat(os.path.join(self.source, name)) for name in files]
            content = {"files": files, "stats": stats}
        else:
            content = {"indices": self.indices, "stats": [_stat(self.source)]}
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        return {
            "source": self.source, "kind": self.kind, "total": self.total, "frames": len(self.indices),
            "seed": self.seed, "input_hw": [self.pre.height, self.pre.width], "content": digest,
        }

    def images(self) -> Iterator[np.ndarray]:
        """The selected frames as BGR uint8, in route order. Frames that cannot be read are
        skipped and counted in ``skipped`` (as map build and run do), never fatal, unless
        no selected frame at all can be read."""
        from jist_edge.stream.sources import ImageFolderSource, VideoFileSource

        self.skipped = 0
        first = []  # type: List[str]

        def note(index: int, name: Optional[str], reason: str) -> None:
            if not first:
                first.append("{}: {}".format(name or "frame {}".format(index), reason))

        if self.kind == "images":
            folder = ImageFolderSource(self.source, on_skip=note)
            frames = (folder.read_frame(i) for i in self.indices)  # type: Iterator[Any]
        else:
            # the runtime's reader: same frame indices and the same handling of bad frames as map building
            frames = _selected_video_frames(VideoFileSource(self.source, on_skip=note), self.indices)
        read = 0
        for frame in frames:
            if frame is None:
                self.skipped += 1
                continue
            read += 1
            self.frames_read += 1
            yield frame.image
        if not read:
            raise JistEdgeError("calibration source {}: the {} selected frames cannot be read ({})".format(
                self.source, len(self.indices), first[0] if first else "the video delivered none of them"))

    def batches(self, batch_size: int, pad: bool = False) -> Iterator[np.ndarray]:
        """Nx3xHxW float32 batches; with ``pad`` the last one is filled up by repeating
        its frames (TensorRT calibrators need a fixed batch size)."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        pending = []  # type: List[np.ndarray]
        for image in self.images():
            pending.append(self.pre(image))
            if len(pending) == batch_size:
                yield np.stack(pending)
                pending = []
        if pending:
            if pad:
                pending = [pending[i % len(pending)] for i in range(batch_size)]
            yield np.stack(pending)

    def array(self) -> np.ndarray:
        """All selected frames at once (host tools: Q/DQ calibration, fidelity)."""
        return np.concatenate(list(self.batches(64)), axis=0)


def _selected_video_frames(video: Any, indices: Sequence[int]) -> Iterator[Any]:
    """The frames of ``indices`` in order, None for each one the video could not deliver."""
    wanted = sorted(set(indices))
    pos = 0
    with video:
        for frame in video:
            while pos < len(wanted) and wanted[pos] < frame.index:
                pos += 1
                yield None  # skipped by the reader (undecodable, or lost)
            if pos < len(wanted) and wanted[pos] == frame.index:
                pos += 1
                yield frame
            if pos == len(wanted):
                return
    for _ in range(len(wanted) - pos):
        yield None


def _stat(path: str) -> List[int]:
    info = os.stat(path)
    return [int(info.st_size), int(info.st_mtime)]


def _video_frame_count(path: str) -> int:
    from jist_edge.stream.sources import VideoFileSource

    with VideoFileSource(path) as video:
        if video.frame_count:
            return int(video.frame_count)
        return sum(1 for _ in video) + video.skipped  # containers without a frame count: read it through


def open_calibration_set(source: str, bundle, frames: int = DEFAULT_FRAMES,
                         seed: int = DEFAULT_SEED, pre: Optional[Preprocessor] = None) -> CalibrationSet:
    return CalibrationSet(source, pre or Preprocessor.for_bundle(bundle), frames, seed)


def batch_shapes(count: int, batch_size: int, pad: bool) -> Sequence[int]:
    """Sizes ``batches`` will yield (for progress bars and tests)."""
    full, rest = divmod(int(count), int(batch_size))
    return [batch_size] * full + ([batch_size if pad else rest] if rest else [])
