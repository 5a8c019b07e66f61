"""Cameras (V4L2, CSI) and network streams (RTSP) as frame sources, reopened with backoff.

Reconnect policy: ``max_retries`` reopen attempts per outage, waiting
``backoff_s * 2**k`` (capped at ``backoff_max_s``) before attempt k; an outage ends
when a good frame arrives, so a robot that loses its camera several times in a long
run keeps going, while one that never comes back ends with a JistEdgeError.
"""
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Union

import cv2

from jist_edge.errors import JistEdgeError
from jist_edge.stream.frame import Frame
from jist_edge.stream.opencv_log import quiet_ffmpeg, quiet_opencv
from jist_edge.stream.sources.base import SkipCallback, _CaptureSource, grab, log, retrieve
from jist_edge.stream.uri import SourceSpec, opencv_has_gstreamer, rtsp_gstreamer_pipeline

DEFAULT_BACKOFF_S = 0.5
DEFAULT_BACKOFF_MAX_S = 8.0
DEFAULT_OPEN_TIMEOUT_S = 5.0
# A live source that delivers only bad frames this long is treated as disconnected.
MAX_BAD_LIVE_FRAMES = 50
_RTSP_FFMPEG_OPTIONS = "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay"


class LiveCaptureSource(_CaptureSource):
    """A camera or stream read through cv2.VideoCapture, reopened with backoff when it drops.

    ``opener`` returns an opened VideoCapture (or raises JistEdgeError saying why); it
    is called once here, so a source that cannot be opened fails at once, and again
    for every reconnect. Opening is given ``open_timeout_s`` at most."""

    live = True

    def __init__(self, name: str, opener: Callable[[], Any], max_retries: int = 3,
                 backoff_s: float = DEFAULT_BACKOFF_S, backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
                 open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S, stride: int = 1, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None, description: Optional[str] = None) -> None:
        super(LiveCaptureSource, self).__init__(description or name, stride, flip, on_skip)
        self.name = name
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._opener = opener
        self._attempts = 0  # reopen attempts in the current outage
        self._cap = self._open_once()
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else None

    def _open_once(self) -> Any:
        quiet_opencv()
        cap = call_with_timeout(self._opener, self.open_timeout_s, self.name)
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            raise JistEdgeError("{} cannot be opened".format(self.name))
        quiet_ffmpeg()
        return cap

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        bad_run = 0
        while not self.closed:
            with self._lock:
                cap = self._cap
                ok = cap is not None and grab(cap)
                stamp = time.time()
                image = retrieve(cap) if ok and index % self.stride == 0 else None
                if not ok or self.closed:  # closed: close() may have given up waiting for this read
                    self._release()
            if self.closed:
                return
            if not ok:
                log.warning("%s stopped delivering frames; reconnecting", self.name)
                if not self._reconnect():
                    return
                continue
            this, index = index, index + 1
            if this % self.stride:
                continue
            frame = self._make_frame(this, image, stamp)
            if frame is None:
                bad_run += 1
                if bad_run >= MAX_BAD_LIVE_FRAMES:
                    bad_run = 0
                    log.warning("%s delivered %d bad frames in a row; reconnecting", self.name, MAX_BAD_LIVE_FRAMES)
                    with self._lock:
                        self._release()
                continue
            bad_run = 0
            self._attempts = 0
            yield frame

    def _reconnect(self) -> bool:
        """Reopen with exponential backoff; False when closed meanwhile; JistEdgeError when out of retries."""
        while not self.closed:
            if self._attempts >= self.max_retries:
                if self.max_retries == 0:
                    raise JistEdgeError("{} stopped delivering frames (reconnecting is off: max retries 0)".format(
                        self.name))
                raise JistEdgeError("{} stopped delivering frames and could not be reopened after {} "
                                    "attempt(s)".format(self.name, self._attempts))
            delay = min(self.backoff_max_s, self.backoff_s * (2 ** self._attempts))
            if self._closing.wait(delay):
                return False
            self._attempts += 1
            try:
                cap = self._open_once()
            except JistEdgeError as exc:
                self.reconnect_failures += 1
                log.warning("reconnect %d/%d failed: %s", self._attempts, self.max_retries, exc)
                continue
            with self._lock:
                if self.closed:
                    cap.release()
                    return False
                self._cap = cap
            self.reconnects += 1
            log.warning("%s reopened (attempt %d)", self.name, self._attempts)
            return True
        return False


def call_with_timeout(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """fn() in a helper thread, given up after timeout_s (a hung open cannot hang the run).

    A late result of an abandoned call is released if it has ``release()``."""
    state = {"abandoned": False, "value": None, "error": None}
    lock = threading.Lock()
    done = threading.Event()

    def target() -> None:
        value, error = None, None
        try:
            value = fn()
        except BaseException as exc:  # handed to the caller below
            error = exc
        with lock:
            if state["abandoned"]:
                if value is not None and hasattr(value, "release"):
                    value.release()
                return
            state["value"], state["error"] = value, error
            done.set()

    thread = threading.Thread(target=target, name="jist-edge-open", daemon=True)
    thread.start()
    if not done.wait(timeout_s):
        with lock:
            if not done.is_set():
                state["abandoned"] = True
                raise JistEdgeError("{} did not open within {:g} s".format(what, timeout_s))
    if state["error"] is not None:
        raise state["error"]
    return state["value"]


def _capture_with_timeouts(target: Union[int, str], api: int, timeout_s: float) -> Any:
    """FFmpeg VideoCapture with open/read timeouts where this OpenCV has them (4.5.2+; JetPack's 4.1
    does not), so a dead stream ends a read instead of hanging it."""
    props = []  # type: List[int]
    ms = int(timeout_s * 1000)
    for name in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
        if hasattr(cv2, name):
            props += [getattr(cv2, name), ms]
    if props:
        try:
            return cv2.VideoCapture(target, api, props)
        except (TypeError, cv2.error):
            pass
    return cv2.VideoCapture(target, api)


def camera_opener(spec: SourceSpec, width: Optional[int], height: Optional[int],
                   fps: Optional[float]) -> Callable[[], Any]:
    linux = sys.platform.startswith("linux")
    name = camera_name(spec)

    def open_camera() -> Any:
        if linux and spec.path and not os.path.exists(spec.path):
            raise JistEdgeError("{}: {} does not exist (no camera there; `ls /dev/video*` lists "
                                "the cameras)".format(name, spec.path))
        target = spec.device if spec.device is not None else spec.path
        cap = None
        for api in ((cv2.CAP_V4L2, cv2.CAP_ANY) if linux else (cv2.CAP_ANY,)):
            # No timeout parameters here: a backend that does not know one refuses to open
            # ("unsupported parameters ... Bailout"); call_with_timeout bounds the open.
            cap = cv2.VideoCapture(target, api)
            if cap.isOpened():
                break
            cap.release()
            cap = None
        if cap is None:
            raise JistEdgeError("{} cannot be opened (busy, no permission, or not a capture device)".format(name))
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one from seconds ago
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                cap.set(prop, value)
        return cap

    return open_camera


def camera_name(spec: SourceSpec) -> str:
    if spec.device is not None:
        return "camera {} ({})".format(spec.device, spec.path)
    return "camera {}".format(spec.path)


def csi_opener(spec: SourceSpec, pipeline: str) -> Callable[[], Any]:
    def open_csi() -> Any:
        cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        if not cap.isOpened():
            cap.release()
            raise JistEdgeError("csi://{}: the camera did not open (is sensor {} connected? after a crash, "
                                "`sudo systemctl restart nvargus-daemon` helps)".format(spec.device, spec.device))
        return cap

    return open_csi


def rtsp_opener(url: str, timeout_s: float) -> Callable[[], Any]:
    shown = redact_url(url)

    def open_rtsp() -> Any:
        if opencv_has_gstreamer():
            cap = cv2.VideoCapture(rtsp_gstreamer_pipeline(url), cv2.CAP_GSTREAMER)
            if cap.isOpened():
                return cap
            cap.release()
        cap = _with_ffmpeg_options(_RTSP_FFMPEG_OPTIONS, lambda: _capture_with_timeouts(url, cv2.CAP_FFMPEG, timeout_s))
        if not cap.isOpened():
            cap.release()
            raise JistEdgeError("{}: the stream cannot be opened (unreachable host, wrong path or "
                                "credentials)".format(shown))
        return cap

    return open_rtsp


_ENV_LOCK = threading.Lock()


def _with_ffmpeg_options(options: str, fn: Callable[[], Any]) -> Any:
    """Low-latency FFmpeg options for this open only: OpenCV reads them from the environment
    when a capture opens, and left set they would also apply to video files (and lose frames).
    A user's own OPENCV_FFMPEG_CAPTURE_OPTIONS wins."""
    with _ENV_LOCK:
        if "OPENCV_FFMPEG_CAPTURE_OPTIONS" in os.environ:
            return fn()
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = options
        try:
            return fn()
        finally:
            del os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"]


def redact_url(url: str) -> str:
    """rtsp://user:secret@host/... -> rtsp://user:***@host/... for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    auth, _, host = rest.partition("@")
    user = auth.split(":", 1)[0]
    return "{}://{}{}@{}".format(scheme, user, ":***" if ":" in auth else "", host)
