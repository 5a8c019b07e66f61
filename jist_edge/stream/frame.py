"""One captured frame, and the rules that turn whatever a source delivers into BGR uint8.

Decisions:
- grey frames (HxW or HxWx1) are converted to BGR by repeating the channel, which is
  what the official pipeline's PIL ``convert("RGB")`` does for grey images; they count
  in ``converted``, not ``skipped``.
- BGRA frames (HxWx4) lose their alpha channel, as PIL's ``convert("RGB")`` does.
- empty frames, frames under 2 pixels in either axis, other channel counts and
  non-8-bit frames cannot be encoded sensibly: they raise BadFrame and sources skip
  and count them.
"""
from typing import Optional, Tuple

import cv2
import numpy as np

from jist_edge.errors import BadFrame, opencv_reason  # noqa: F401  (sources import it from here)


class Frame(object):
    """``index``: position in the source, counting skipped frames; ``image``: BGR uint8
    HxWx3; ``timestamp``: seconds (time.time() for live sources, frame time for
    files); ``name``: file name for image folders, else None."""

    __slots__ = ("index", "image", "timestamp", "name")

    def __init__(self, index: int, image: np.ndarray, timestamp: float, name: Optional[str] = None) -> None:
        self.index = index
        self.image = image
        self.timestamp = timestamp
        self.name = name

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.image.shape) if self.image is not None else "none"
        return "Frame(index={}, {}, t={:.3f}{})".format(
            self.index, shape, self.timestamp, ", name={!r}".format(self.name) if self.name else "")


def to_bgr(image: Optional[np.ndarray]) -> Tuple[np.ndarray, bool]:
    """Image as delivered -> (contiguous BGR uint8 HxWx3, whether it had to be converted).

    Raises BadFrame with the reason for frames that cannot be used."""
    if image is None or not isinstance(image, np.ndarray):
        raise BadFrame("no image data")
    if image.size == 0:
        raise BadFrame("empty frame (shape {})".format(image.shape))
    if image.dtype != np.uint8:
        raise BadFrame("frame is {}, expected 8-bit".format(image.dtype))
    converted = False
    try:
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
            image = cv2.cvtColor(image.reshape(image.shape[0], image.shape[1]), cv2.COLOR_GRAY2BGR)
            converted = True
        elif image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
            converted = True
    except cv2.error as exc:
        raise BadFrame("OpenCV cannot convert the frame (shape {}): {}".format(image.shape, opencv_reason(exc)))
    if image.ndim != 3 or image.shape[2] != 3:
        raise BadFrame("frame has shape {}, expected HxW grey or HxWx3 colour".format(image.shape))
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise BadFrame("frame is too small ({}x{} pixels)".format(image.shape[0], image.shape[1]))
    return np.ascontiguousarray(image), converted


def apply_flip(image: np.ndarray, method: int) -> np.ndarray:
    """nvvidconv's flip-method in software, so V4L2/RTSP/file sources accept the same option as csi://."""
    if method == 0:
        return image
    if method == 1:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if method == 2:
        return cv2.rotate(image, cv2.ROTATE_180)
    if method == 3:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if method == 4:
        return cv2.flip(image, 1)
    if method == 5:
        return cv2.flip(cv2.transpose(image), -1)
    if method == 6:
        return cv2.flip(image, 0)
    if method == 7:
        return cv2.transpose(image)
    raise ValueError("flip method must be 0-7, got {}".format(method))
