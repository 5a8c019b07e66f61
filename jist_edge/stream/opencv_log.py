"""Keep OpenCV's and FFmpeg's own log lines off the terminal: jist-edge counts bad frames
and reports them in its summary instead.

Two loggers write straight to stderr from C code:

- OpenCV's (``[ WARN:0@0.421] global cap.cpp ...``): ``cv2.utils.logging.setLogLevel``
  (OpenCV 4.5+ and 5), ``cv2.setLogLevel`` where a 4.x build has it, and the
  ``OPENCV_LOG_LEVEL`` variable, which OpenCV 4.1 (JetPack 4.6) reads at its first message.
- FFmpeg's av_log (``[mjpeg @ 0x...] overread 8``): OpenCV 4.5.5+ applies
  ``OPENCV_FFMPEG_LOGLEVEL`` at every open (-8 is AV_LOG_QUIET). OpenCV 4.1 has no such
  variable and sets AV_LOG_ERROR once, at its first FFmpeg open; so after every open the
  level is also set in the libavutil the process has loaded (``av_log_set_level``).

Errors stay visible from OpenCV's logger; a user's own OPENCV_LOG_LEVEL,
OPENCV_FFMPEG_LOGLEVEL or OPENCV_FFMPEG_DEBUG wins over all of this.
"""
import ctypes
import os
import threading
from typing import Any, List, Optional

AV_LOG_QUIET = -8
OPENCV_LOG_ERROR = 2  # cv::utils::logging::LOG_LEVEL_ERROR
_USER_FFMPEG_VARS = ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_FFMPEG_DEBUG")

_lock = threading.Lock()
_state = {"opencv": False, "av_setters": None}  # type: dict


def quiet_opencv() -> None:
    """Lower OpenCV's log level to errors (once) and ask OpenCV >= 4.5.5 to keep FFmpeg quiet."""
    with _lock:
        if _state["opencv"]:
            return
        _state["opencv"] = True
        if not any(name in os.environ for name in _USER_FFMPEG_VARS):
            os.environ["OPENCV_FFMPEG_LOGLEVEL"] = str(AV_LOG_QUIET)
        if "OPENCV_LOG_LEVEL" in os.environ:
            return
        os.environ["OPENCV_LOG_LEVEL"] = "ERROR"
        import cv2

        logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
        setter = getattr(logging_api, "setLogLevel", None) or getattr(cv2, "setLogLevel", None)
        if setter is not None:
            try:
                setter(OPENCV_LOG_ERROR)
            except Exception:  # a build whose binding takes another type: the variable still applies
                pass


def quiet_ffmpeg() -> None:
    """Call after opening a cv2.VideoCapture: FFmpeg's av_log level to quiet, unless the user set one."""
    if any(name in os.environ and os.environ[name] != str(AV_LOG_QUIET) for name in _USER_FFMPEG_VARS):
        return
    for setter in _av_log_setters():
        setter(AV_LOG_QUIET)


def _av_log_setters() -> List[Any]:
    """av_log_set_level of every libavutil mapped into this process (found once; Linux only)."""
    with _lock:
        if _state["av_setters"] is None:
            _state["av_setters"] = [s for s in (_setter(p) for p in _loaded_libraries("libavutil")) if s]
        return _state["av_setters"]


def _loaded_libraries(stem: str) -> List[str]:
    try:
        with open("/proc/self/maps") as handle:
            paths = {line.split(None, 5)[-1].strip() for line in handle if stem in line}
    except (IOError, OSError):
        return []
    return sorted(p for p in paths if os.path.basename(p).startswith(stem) and os.path.isfile(p))


def _setter(path: str) -> Optional[Any]:
    try:
        fn = ctypes.CDLL(path).av_log_set_level  # already loaded: dlopen hands back the same library
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = None
    return fn
