"""FFmpeg captures for network cameras (RTSP, HTTP MJPEG): open/read timeouts and per-open options.

The timeouts are what keep a frozen camera from hanging a read: measured here against a SIGSTOPped
GStreamer RTSP server with the pip OpenCV 5.0, ``CAP_PROP_READ_TIMEOUT_MSEC`` ends the blocked
``grab()`` after the timeout (once with a repeated or broken picture, then with False), and
``CAP_PROP_OPEN_TIMEOUT_MSEC`` ends an open that the server never answers.
"""
import os
import threading
from typing import Any, Callable, List, Union

import cv2

from jist_edge.errors import JistEdgeError

DEFAULT_READ_TIMEOUT_S = 2.0


def capture_with_timeouts(target: Union[int, str], api: int, open_timeout_s: float,
                          read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> Any:
    """VideoCapture with open/read timeouts where this OpenCV has them (4.5.2+; JetPack's 4.1 does
    not: there the caller's watchdog reports the stall), so a dead stream ends a read instead of hanging it."""
    props = []  # type: List[int]
    for name, seconds in (("CAP_PROP_OPEN_TIMEOUT_MSEC", open_timeout_s), ("CAP_PROP_READ_TIMEOUT_MSEC", read_timeout_s)):
        if hasattr(cv2, name):
            props += [getattr(cv2, name), int(seconds * 1000)]
    if props:
        try:
            return cv2.VideoCapture(target, api, props)
        except (TypeError, cv2.error):
            pass
    return cv2.VideoCapture(target, api)


_ENV_LOCK = threading.Lock()


def with_ffmpeg_options(options: str, fn: Callable[[], Any]) -> Any:
    """FFmpeg options for this open only: OpenCV reads them from the environment when a capture
    opens, and left set they would also apply to video files (and lose frames).
    A user's own OPENCV_FFMPEG_CAPTURE_OPTIONS wins."""
    with _ENV_LOCK:
        if "OPENCV_FFMPEG_CAPTURE_OPTIONS" in os.environ:
            return fn()
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = options
        try:
            return fn()
        finally:
            del os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"]


def open_network_capture(url: str, options: str, timeout_s: float, read_timeout_s: float, refusal: str) -> Any:
    """One FFmpeg open of a network camera with its options and timeouts; `refusal` says what failed."""
    cap = with_ffmpeg_options(options, lambda: capture_with_timeouts(url, cv2.CAP_FFMPEG, timeout_s, read_timeout_s))
    if not cap.isOpened():
        cap.release()
        raise JistEdgeError(refusal)
    return cap
