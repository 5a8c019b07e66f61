"""Cameras (V4L2, CSI) and network streams (RTSP, HTTP MJPEG) as frame sources that outlive outages.

Reconnect policy: a live source reopens, waiting ``backoff_delay`` (0.5 s doubling to 5 s) before
each attempt, for as long as the run lasts (``max_retries`` caps the attempts per outage when
given, for compatibility). A frozen stream (no new image for ``watchdog_s``, at least 2 s) is
reopened too; an image a stalled decoder hands out again is counted in ``repeated`` and not
yielded. Every outage is reported in ``outages`` (jist_edge.stream.events) as source_lost /
source_back events; a frame's timestamp is when it arrived from the source.
"""
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Optional

import cv2
import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.stream.events import OutageLog, SourceOutage
from jist_edge.stream.frame import Frame
from jist_edge.stream.opencv_log import quiet_ffmpeg, quiet_opencv
from jist_edge.stream.sources.base import SkipCallback, _CaptureSource, grab, log, retrieve
from jist_edge.stream.sources.ffmpeg import DEFAULT_READ_TIMEOUT_S
from jist_edge.stream.sources.http import http_opener  # noqa: F401  (re-exported: one place to import openers)
from jist_edge.stream.sources.rtsp import rtsp_opener  # noqa: F401
from jist_edge.stream.uri import SourceSpec, redact_url  # noqa: F401

DEFAULT_BACKOFF_S = 0.5
DEFAULT_BACKOFF_MAX_S = 5.0
DEFAULT_OPEN_TIMEOUT_S = 5.0
OPEN_MARGIN_S = 2.0
STALL_MARGIN_S = 3.0  # the consumer reports a stuck read this long after the watchdog time  # an open is abandoned this long after the backend's own open timeout should have ended it
MIN_WATCHDOG_S = 2.0
WATCHDOG_FRAMES = 5  # frame intervals without a new image before a stream counts as frozen
# A live source that delivers only bad frames this long is treated as disconnected.
MAX_BAD_LIVE_FRAMES = 50


def backoff_delay(attempt: int, base_s: float = DEFAULT_BACKOFF_S, cap_s: float = DEFAULT_BACKOFF_MAX_S) -> float:
    """Seconds to wait before reopen attempt ``attempt`` (0-based): base doubling, capped."""
    return min(float(cap_s), float(base_s) * (2 ** min(int(attempt), 30)))


def watchdog_seconds(fps: Optional[float], floor_s: float = MIN_WATCHDOG_S, frames: int = WATCHDOG_FRAMES) -> float:
    """How long without a new image means frozen: a few frame intervals, never under ``floor_s``."""
    if fps and fps > 0:
        return max(float(floor_s), frames / float(fps))
    return float(floor_s)


def same_image(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> bool:
    """True when ``b`` is the very picture ``a`` was (a stalled decoder handing its last frame out
    again); a live camera's sensor noise makes two real frames differ. A sparse sample first: cheap."""
    if a is None or b is None or a.shape != b.shape:
        return False
    return bool(np.array_equal(a[::7, ::7], b[::7, ::7]) and np.array_equal(a, b))


class LiveCaptureSource(_CaptureSource):
    """A camera or stream read through cv2.VideoCapture, reopened with backoff when it drops or freezes.

    ``opener`` returns an opened VideoCapture (or raises JistEdgeError saying why); it
    is called once here, so a source that cannot be opened fails at once, and again
    for every reconnect. Opening is given ``open_timeout_s`` at most. ``max_retries``:
    None reopens for as long as the run lasts; a number caps the attempts per outage."""

    live = True

    def __init__(self, name: str, opener: Callable[[], Any], max_retries: Optional[int] = None,
                 backoff_s: float = DEFAULT_BACKOFF_S, backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
                 open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S, stride: int = 1, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None, description: Optional[str] = None,
                 watchdog_s: Optional[float] = None, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> None:
        super(LiveCaptureSource, self).__init__(description or name, stride, flip, on_skip)
        self.name = name
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.outages = OutageLog()
        self.repeated = 0  # images handed out again by a stalled decoder (not yielded)
        self._opener = opener
        self._openers = []  # type: List[threading.Thread]
        self._attempts = 0  # reopen attempts in the current outage
        self._cap = self._open_once()
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else None
        self.watchdog_s = float(watchdog_s) if watchdog_s else watchdog_seconds(self.fps)

    @property
    def stop_timeout_s(self) -> float:
        """How long a reader may need to come out of a native read or open (CaptureThread.stop waits this)."""
        return max(self.read_timeout_s, self.open_timeout_s + OPEN_MARGIN_S) + 1.0

    def _open_once(self) -> Any:
        quiet_opencv()
        # the backend's own open timeout (open_timeout_s) ends a native open first; this bound is the backstop
        cap = call_with_timeout(self._opener, self.open_timeout_s + OPEN_MARGIN_S, self.name, self._openers)
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            raise JistEdgeError("{} cannot be opened".format(self.name))
        quiet_ffmpeg()
        return cap

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        bad_run = 0
        previous = None  # type: Optional[np.ndarray]
        last_new = time.time()
        while not self.closed:
            with self._lock:
                cap = self._cap
                ok = cap is not None and grab(cap)
                stamp = time.time()  # when the frame arrived, whenever it is processed
                image = retrieve(cap) if ok and index % self.stride == 0 else None
                if not ok or self.closed:  # closed: close() may have given up waiting for this read
                    self._release()
            if self.closed:
                return
            if not ok:
                if not self._drop("the source stopped delivering frames"):
                    return
                previous, last_new = None, time.time()
                continue
            this, index = index, index + 1
            if this % self.stride:
                continue
            frame = self._make_frame(this, image, stamp)
            repeat = frame is not None and same_image(previous, frame.image)
            if frame is None or repeat:
                self.repeated += int(repeat)
                bad_run += int(frame is None)
                if stamp - last_new > self.watchdog_s:
                    bad_run = 0
                    if not self._drop("no new image for {:.1f} s (frozen stream)".format(stamp - last_new)):
                        return
                    previous, last_new = None, time.time()
                elif bad_run >= MAX_BAD_LIVE_FRAMES:
                    bad_run = 0
                    log.warning("%s delivered %d bad frames in a row; reconnecting", self.name, MAX_BAD_LIVE_FRAMES)
                    with self._lock:
                        self._release()
                continue
            bad_run = 0
            previous, last_new = frame.image, stamp
            self._attempts = 0
            if self.outages.frame(stamp) is not None:
                log.warning("%s is back", self.name)
            yield frame

    def _drop(self, reason: str) -> bool:
        """Report the outage, release the capture and reopen; False when closed meanwhile."""
        if self.outages.lose(reason) is not None:
            log.warning("%s lost: %s; reconnecting", self.name, reason)
        with self._lock:
            self._release()
        return self._reconnect()

    def stalled(self, now: Optional[float] = None) -> bool:
        """Called by the consumer: a reader stuck inside a native read (a backend without read timeouts)
        cannot report its outage itself; True when this call reported it."""
        last = self.outages.last_frame
        now = time.time() if now is None else now
        if last is None or self.outages.lost or now - last <= self.watchdog_s + STALL_MARGIN_S:
            return False
        return self.outages.lose("no frame for {:.1f} s (the read is stuck)".format(now - last), now) is not None

    def close(self) -> None:
        """As _CaptureSource.close, then waits (bounded) for abandoned opens: none is left inside native code."""
        super(LiveCaptureSource, self).close()
        deadline = time.time() + self.open_timeout_s + OPEN_MARGIN_S + 1.0
        for thread in list(self._openers):
            thread.join(max(0.0, deadline - time.time()))

    def _reconnect(self) -> bool:
        """Reopen with capped exponential backoff; False when closed meanwhile; JistEdgeError when a
        ``max_retries`` was given and is used up."""
        while not self.closed:
            if self.max_retries is not None and self._attempts >= self.max_retries:
                if self.max_retries == 0:
                    raise SourceOutage("{} stopped delivering frames (reconnecting is off: max retries 0)".format(
                        self.name), self.outages.lost_for())
                raise SourceOutage("{} stopped delivering frames and could not be reopened after {} "
                                   "attempt(s)".format(self.name, self._attempts), self.outages.lost_for())
            if self._closing.wait(backoff_delay(self._attempts, self.backoff_s, self.backoff_max_s)):
                return False
            self._attempts += 1
            try:
                cap = self._open_once()
            except JistEdgeError as exc:
                self.reconnect_failures += 1
                log.warning("reconnect %d%s failed: %s", self._attempts,
                            "/{}".format(self.max_retries) if self.max_retries is not None else "", exc)
                continue
            with self._lock:
                if self.closed:
                    cap.release()
                    return False
                self._cap = cap
            self.reconnects += 1
            self.outages.reconnects += 1
            log.warning("%s reopened (attempt %d)", self.name, self._attempts)
            return True
        return False


def call_with_timeout(fn: Callable[[], Any], timeout_s: float, what: str,
                      threads: Optional[List[threading.Thread]] = None) -> Any:
    """fn() in a helper thread, given up after timeout_s (a hung open cannot hang the run).

    A late result of an abandoned call is released if it has ``release()``. ``threads``, when
    given, keeps the helper threads still running (for the owner to wait for at close)."""
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
    if threads is not None:
        threads[:] = [t for t in threads if t.is_alive()] + [thread]
    if not done.wait(timeout_s):
        with lock:
            if not done.is_set():
                state["abandoned"] = True
                raise JistEdgeError("{} did not open within {:g} s".format(what, timeout_s))
    if state["error"] is not None:
        raise state["error"]
    return state["value"]


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
