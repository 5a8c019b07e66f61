"""A video file as a frame source: frame indices by presentation time, lost frames counted."""
import os
from typing import Any, Iterator, List, Optional

import cv2

from jist_edge.errors import JistEdgeError
from jist_edge.stream.frame import Frame
from jist_edge.stream.opencv_log import quiet_ffmpeg, quiet_opencv
from jist_edge.stream.sources.base import SkipCallback, _CaptureSource, grab, log, retrieve

# A file read that fails this many times in a row is its end (a truncated file).
MAX_CONSECUTIVE_READ_FAILURES = 8


class VideoFileSource(_CaptureSource):
    """A video file, frame by frame. Undecodable frames are skipped and counted; a file
    that ends before the frame count in its header says (truncated) counts the missing
    frames as skipped and ends cleanly."""

    def __init__(self, path: str, stride: int = 1, fps: Optional[float] = None, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None) -> None:
        if not os.path.exists(path):
            raise JistEdgeError("video file {} not found".format(path))
        if not os.path.isfile(path):
            raise JistEdgeError("video {} is not a file".format(path))
        if os.path.getsize(path) == 0:
            raise JistEdgeError("video file {} is empty (0 bytes)".format(path))
        self.path = path
        cap = _open_video_file(path)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        file_fps = cap.get(cv2.CAP_PROP_FPS)
        rate = file_fps if 0 < file_fps < 1000 else (float(fps) if fps else None)
        super(VideoFileSource, self).__init__("video file {} ({}{})".format(
            os.path.basename(path), "{} frames".format(count) if count > 0 else "frame count unknown",
            ", {:g} fps".format(rate) if rate else ""), stride, flip, on_skip)
        self._cap = cap
        self.frame_count = count if count > 0 else None
        self.fps = rate
        self._decoded = self._lost = 0  # frames grabbed, and frames counted lost, in the last pass

    def __iter__(self) -> Iterator[Frame]:
        # One frame of lookahead: the last frame before a truncation is usually only
        # partly decoded (FFmpeg fills the rest), so it is skipped, not yielded.
        pending = None  # type: Optional[Frame]
        truncated = [False]
        for index, image in self._decode(truncated):
            if pending is not None:
                yield pending
            stamp = index / self.fps if self.fps else float(index)
            pending = self._make_frame(index, image, stamp)
        if pending is not None and not self.closed:
            if truncated[0]:
                self._skip(pending.index, None, "last frame before the file ends early (likely incomplete)")
            else:
                yield pending

    def _decode(self, truncated: List[bool]) -> Iterator[Any]:
        """(index, image or None) for the frames the stride selects; counts lost frames."""
        if self._cap is None and not self.closed:
            self._cap = _open_video_file(self.path)
        next_index = 0  # index of the next frame if none is lost
        failures = 0
        self._decoded = self._lost = 0
        while not self.closed:
            with self._lock:
                cap = self._cap
                if cap is None:
                    return
                ok = grab(cap)
                est = self._index_from_time(cap) if ok else None
                index = next_index + failures if est is None or est < next_index else est
                image = retrieve(cap) if ok and index % self.stride == 0 else None
                if self.closed:  # close() gave up waiting for this read: release here
                    self._release()
                    return
            if not ok:
                failures += 1
                if failures >= MAX_CONSECUTIVE_READ_FAILURES or (
                        self.frame_count is not None and next_index + failures > self.frame_count):
                    break
                continue
            self._decoded += 1
            if index > next_index:
                lost = index - next_index
                self._lost += lost
                self._skip(next_index, None, "undecodable frame" if lost == 1 else "{} undecodable frames "
                           "({}-{})".format(lost, next_index, index - 1), count=lost)
            next_index, failures = index + 1, 0
            if index % self.stride == 0:
                yield index, image
        if self.closed:
            return
        self._reconcile()
        if self.frame_count is not None and next_index < self.frame_count:
            truncated[0] = True
            self._skip(next_index, None, "video ended after {} of {} frames (truncated or corrupt)".format(
                next_index, self.frame_count), count=self.frame_count - next_index)
        with self._lock:
            self._release()
        if next_index == 0:
            raise JistEdgeError("video file {}: no frame could be decoded".format(self.path))

    def _reconcile(self) -> None:
        """Frames counted as lost beyond what the header's frame count leaves room for were damaged
        packets, not frames (the decoder gave them a timestamp of their own): uncount them, so
        that frames decoded + frames skipped = frames in the header, and say so once."""
        if self.frame_count is None or not self._lost:
            return
        extra = min(self._lost, self._decoded + self._lost - self.frame_count)
        if extra > 0:
            self.skipped -= extra
            self._lost -= extra
            log.warning("%s: %d damaged packet(s) that are not frames (the header says %d frames, %d decoded); "
                        "frame indices after them may be off by %d", self.description, extra, self.frame_count,
                        self._decoded, extra)

    def _index_from_time(self, cap: Any) -> Optional[int]:
        """Frame index from the presentation time, which stays right when the decoder drops frames."""
        if not self.fps:
            return None
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)
        if msec is None or msec < 0:
            return None
        return int(round(msec * self.fps / 1000.0))


def _open_video_file(path: str) -> Any:
    quiet_opencv()
    for api in (cv2.CAP_FFMPEG, cv2.CAP_ANY):
        try:
            cap = cv2.VideoCapture(path, api)
        except cv2.error:
            continue
        if cap.isOpened():
            quiet_ffmpeg()
            return cap
        cap.release()
    raise JistEdgeError("cannot open video file {}: not a video this OpenCV can decode "
                        "(corrupt, or a codec its FFmpeg lacks)".format(path))
