"""Frames the caller already holds: any iterable of BGR numpy arrays as a frame source.

A ROS image callback filling a queue, a generator over a dataset, a list of arrays,
a 4-D (N, H, W, 3) array: each item is one frame, numbered from 0 in arrival order,
stamped with time.time() when it arrives unless the item brings its own timestamp.
Items may be

- an HxWx3 BGR uint8 array (grey HxW and BGRA HxWx4 are converted, as for files),
- an ``(image, timestamp)`` pair,
- a ``Frame`` (its own index, timestamp and name are kept),
- ``None`` (no frame this time: skipped and counted, like an unreadable file).

Unusable arrays are skipped and counted like bad frames of a video; an item of any other
kind is a programming error and raises JistEdgeError naming what was expected.
"""
import numbers
import time
from typing import Any, Iterable, Iterator, Optional, Tuple

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.stream.frame import Frame
from jist_edge.stream.sources.base import FrameSource

ITEM_KINDS = "a BGR numpy array (HxWx3 uint8), an (image, timestamp) pair, a Frame or None"


class IterableSource(FrameSource):
    """Iterates the caller's iterable once, in the caller's thread; never closes it (the caller owns it)."""

    def __init__(self, frames: Iterable[Any], description: Optional[str] = None) -> None:
        super(IterableSource, self).__init__(description or "frames from a {}".format(type(frames).__name__))
        self._frames = frames
        if isinstance(frames, (list, tuple, np.ndarray)):
            self.frame_count = len(frames)

    def __iter__(self) -> Iterator[Frame]:
        for position, item in enumerate(self._frames):
            if self.closed:
                return
            index, image, stamp, name = _unpack(item, position)
            frame = self._make_frame(index, image, time.time() if stamp is None else stamp, name)
            if frame is not None:
                yield frame


def _unpack(item: Any, position: int) -> Tuple[int, Any, Optional[float], Optional[str]]:
    """(index, image, timestamp or None, name) of one item; JistEdgeError for what is not a frame."""
    if item is None or isinstance(item, np.ndarray):
        return position, item, None, None
    if isinstance(item, Frame):
        return item.index, item.image, item.timestamp, item.name
    if isinstance(item, tuple) and len(item) == 2 and (item[0] is None or isinstance(item[0], np.ndarray)) \
            and isinstance(item[1], numbers.Real) and not isinstance(item[1], bool):
        return position, item[0], float(item[1]), None
    raise JistEdgeError("frame {} of the stream is {}; each item must be {}".format(
        position, _describe(item), ITEM_KINDS))


def _describe(value: Any) -> str:
    if isinstance(value, (str, bytes)):
        return "the {} {!r} (for image files, stream their folder)".format(type(value).__name__, value[:60])
    return "a {}".format(type(value).__name__)
