"""An image folder as a frame source: files in name order, bad files skipped and counted."""
import os
import stat
import struct
from typing import Dict, Iterator, Optional, Tuple

import cv2
import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.positions import sort_frame_names
from jist_edge.stream.frame import Frame, opencv_reason
from jist_edge.stream.native_stderr import damage, decoder_messages
from jist_edge.stream.sources.base import FrameSource, SkipCallback
from jist_edge.stream.uri import IMAGE_EXTENSIONS


# A frame larger than this is refused before decoding (a 12000 x 11000 panorama still passes).
MAX_FRAME_PIXELS = 1 << 27


class ImageFolderSource(FrameSource):
    """Images of one folder (not its subfolders) in file-name order.

    Files without an image extension (a positions CSV, notes) are not frames: they are
    counted in ``ignored``. Image files that are empty, truncated, undecodable (any
    OpenCV error included), broken symbolic links or not regular files are skipped with a
    warning and counted in ``skipped``; they keep their index."""

    def __init__(self, path: str, stride: int = 1, fps: Optional[float] = None, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None) -> None:
        if not os.path.exists(path):
            raise JistEdgeError("image folder {} not found".format(path))
        if not os.path.isdir(path):
            raise JistEdgeError("{} is not a folder".format(path))
        try:
            entries = os.listdir(path)
        except OSError as exc:
            raise JistEdgeError("image folder {} cannot be listed: {}".format(path, exc.strerror or exc))
        images, ignored = [], 0
        self._unusable = {}  # type: Dict[str, str]
        for entry in entries:
            if entry.startswith("."):
                continue
            problem = _entry_problem(os.path.join(path, entry))
            if problem == "folder":
                continue
            if not entry.lower().endswith(IMAGE_EXTENSIONS):
                ignored += 1
                continue
            images.append(entry)
            if problem:  # a frame that will be skipped and counted, in its place
                self._unusable[entry] = problem
        if not images:
            raise JistEdgeError("image folder {} has no images ({}){}".format(
                path, ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS[:5]),
                ": {} other file(s) ignored".format(ignored) if ignored else ""))
        self.path = path
        self.names = sort_frame_names(images)
        self.ignored = ignored
        super(ImageFolderSource, self).__init__("image folder {} ({} images{})".format(
            path, len(images), ", {} other files ignored".format(ignored) if ignored else ""), stride, flip, on_skip)
        self.frame_count = len(self.names)
        self.fps = float(fps) if fps else None

    def __iter__(self) -> Iterator[Frame]:
        for index in range(len(self.names)):
            if self.closed:
                return
            if index % self.stride:
                continue
            frame = self.read_frame(index)
            if frame is not None:
                yield frame

    def read_frame(self, index: int) -> Optional[Frame]:
        """The frame of one index (0..len(names)-1), or None after counting it as skipped."""
        name = self.names[index]
        image = self._read(index, name)
        if image is None:
            return None
        return self._make_frame(index, image, index / self.fps if self.fps else float(index), name)

    def _read(self, index: int, name: str) -> Optional[np.ndarray]:
        if name in self._unusable:
            self._skip(index, name, self._unusable[name])
            return None
        try:
            with open(os.path.join(self.path, name), "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            self._skip(index, name, "unreadable: {}".format(exc.strerror or exc))
            return None
        if not data:
            self._skip(index, name, "empty file")
            return None
        if name.lower().endswith((".jpg", ".jpeg")) and jpeg_is_truncated(data):
            # OpenCV decodes a truncated JPEG into a grey-filled image; PIL (the
            # official pipeline) refuses it. Refuse it too.
            self._skip(index, name, "truncated JPEG")
            return None
        size = declared_size(data)
        if size and size[0] * size[1] > MAX_FRAME_PIXELS:
            # OpenCV would allocate it all (up to 2**30 pixels, 3 GB): more than a Jetson Nano has
            self._skip(index, name, "declares {}x{} pixels, more than {:.0f} megapixels".format(
                size[1], size[0], MAX_FRAME_PIXELS / 1e6))
            return None
        flags = cv2.IMREAD_COLOR | getattr(cv2, "IMREAD_IGNORE_ORIENTATION", 0)
        try:
            with decoder_messages() as messages:
                image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
        except cv2.error as exc:  # e.g. a header declaring more pixels than OpenCV will allocate
            self._skip(index, name, "OpenCV cannot decode it: {}".format(opencv_reason(exc)))
            return None
        if image is None:
            self._skip(index, name, "not a decodable image{}".format(": " + "; ".join(messages) if messages else ""))
        elif damage(messages):  # decoded, but with blocks the decoder had to make up
            self._skip(index, name, "damaged image data ({})".format(damage(messages)))
            return None
        return image


def _entry_problem(path: str) -> Optional[str]:
    """None for a readable regular file; "folder" for a folder; else why it cannot be a frame.

    A broken symlink or a special file is a frame that cannot be read (skipped and counted);
    a FIFO named like an image would block the read forever, so it is never opened."""
    try:
        mode = os.stat(path).st_mode
    except (IOError, OSError) as exc:
        if os.path.islink(path):
            return "broken symbolic link (to {})".format(os.readlink(path))
        return "unreadable: {}".format(exc.strerror or exc)
    if stat.S_ISDIR(mode):
        return "folder"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def declared_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(height, width) a PNG or JPEG header declares, read before any decoding; None for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return height, width
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return None


def jpeg_is_truncated(data: bytes) -> bool:
    """True when no end-of-image marker follows the last start-of-scan marker.

    Inside entropy-coded data 0xFF is always stuffed (FF00) or a restart marker, so
    FFDA/FFD9 there are real markers; trailing bytes after EOI do not matter."""
    return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda") or b"\xff\xda" not in data
