"""What every frame source shares: skip counting, frame conversion, and safe close of a VideoCapture."""
import logging
import math
import threading
from typing import Any, Callable, Iterator, Optional

import cv2
import numpy as np

from jist_edge.errors import BadFrame
from jist_edge.stream.frame import Frame, apply_flip, opencv_reason, to_bgr
from jist_edge.stream.opencv_log import quiet_opencv

log = logging.getLogger("jist_edge.stream.sources")

# (index, file name or None, reason) for every skipped frame or file.
SkipCallback = Callable[[int, Optional[str], str], None]

_LOGGED_SKIPS = 10


class FrameSource(object):
    """Iterable of Frame; a context manager; counts what it skipped and reconnected.

    ``len()`` is the number of frames iteration yields at most (the source's frames
    divided by ``stride``) and is known for files and folders only."""

    live = False

    def __init__(self, description: str, stride: int = 1, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None) -> None:
        self.description = description
        self.stride = stride
        self.flip = flip or 0
        self.frame_count = None  # type: Optional[int]
        self.fps = None  # type: Optional[float]
        self.realtime = False
        self.skipped = 0
        self.converted = 0
        self.reconnects = 0
        self.reconnect_failures = 0
        self.closed = False
        self._on_skip = on_skip
        quiet_opencv()  # bad frames are counted and reported here, not by OpenCV on stderr

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        if self.frame_count is None:
            raise TypeError("{} has no known length".format(self.description))
        return int(math.ceil(self.frame_count / float(self.stride)))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<{} {}>".format(type(self).__name__, self.description)

    def _skip(self, index: int, name: Optional[str], reason: str, count: int = 1) -> None:
        before = self.skipped
        self.skipped += count
        if before < _LOGGED_SKIPS or self.skipped // 100 > before // 100:
            log.warning("%s: skipped %s: %s (%d skipped so far)", self.description,
                        name or "frame {}".format(index), reason, self.skipped)
        if self._on_skip is not None:
            self._on_skip(index, name, reason)

    def _make_frame(self, index: int, image: Optional[np.ndarray], timestamp: float,
                    name: Optional[str] = None) -> Optional[Frame]:
        """A Frame, or None after counting the skip when the image is unusable."""
        try:
            image, converted = to_bgr(image)
        except BadFrame as exc:
            self._skip(index, name, str(exc))
            return None
        if self.flip:
            try:
                image = apply_flip(image, self.flip)
            except cv2.error as exc:
                self._skip(index, name, "OpenCV cannot flip it: {}".format(opencv_reason(exc)))
                return None
        if converted:
            self.converted += 1
        return Frame(index, image, timestamp, name)


class _CaptureSource(FrameSource):
    """Shared by sources read through cv2.VideoCapture: reads and close() never overlap."""

    def __init__(self, description: str, stride: int, flip: Optional[int], on_skip: Optional[SkipCallback]) -> None:
        super(_CaptureSource, self).__init__(description, stride, flip, on_skip)
        self._cap = None  # type: Any
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def close(self) -> None:
        """Safe from another thread: waits briefly for a read in progress, else the reader releases."""
        self.closed = True
        self._closing.set()
        if self._lock.acquire(timeout=2.0):
            try:
                self._release()
            finally:
                self._lock.release()

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


def grab(cap: Any) -> bool:
    """cap.grab(), with an OpenCV error raised by the decoder taken as a frame that could not be read."""
    try:
        return bool(cap.grab())
    except cv2.error:
        return False


def retrieve(cap: Any) -> Optional[np.ndarray]:
    """The grabbed frame, or None when it cannot be decoded (an OpenCV error included)."""
    try:
        got, image = cap.retrieve()
    except cv2.error:
        return None
    return image if got else None
