"""Capture side of the streaming runtime: one function hides threads, pacing and drops.

- A live source (camera, CSI, RTSP) is read by a daemon CaptureThread into a small
  FrameRing, so the encoder always gets the newest frame and latency stays bounded
  when inference is slower than the camera; stale frames are dropped and counted.
- A file or image folder is read frame by frame in the caller's thread, without drops,
  unless ``realtime`` is set: then it is paced at its frame rate in a CaptureThread and
  drops frames exactly like a camera.

A fatal source error (a camera gone for good) ends the iteration by re-raising it in
the consumer, not by a silent end. A live source's outages (jist_edge.stream.events) reach
the consumer's ``on_event`` in the consumer's thread, with ``waiting`` ticks while the
camera is gone; ``max_outage_s`` ends the iteration with SourceOutage after a longer one.
"""
import threading
import time
from typing import Any, Callable, Iterator, Optional, Tuple

from jist_edge.errors import JistEdgeError
from jist_edge.stream.events import WAITING, SourceEvent, SourceOutage
from jist_edge.stream.frame import Frame
from jist_edge.stream.frame_ring import FrameRing

EventCallback = Callable[[SourceEvent], None]

DEFAULT_RING_CAPACITY = 2
_POLL_S = 0.25


class CaptureThread(threading.Thread):
    """Reads ``source`` into ``ring`` until the source ends, ``stop()`` or a source error.

    ``pace=True`` holds each frame until its timestamp (relative to the first) has come,
    so a file plays at its frame rate. ``error`` holds what ended the thread, if anything;
    the ring is closed when the thread ends, which wakes the consumer."""

    def __init__(self, source: Any, ring: FrameRing, pace: bool = False) -> None:
        super(CaptureThread, self).__init__(name="jist-edge-capture", daemon=True)
        self.source = source
        self.ring = ring
        self.pace = pace
        self.error = None  # type: Optional[BaseException]
        self.frames = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        frames = iter(self.source)
        start_wall = start_stamp = None  # type: Optional[float]
        try:
            for frame in frames:
                if self._stop_event.is_set():
                    break
                if self.pace:
                    if start_wall is None:
                        start_wall, start_stamp = time.time(), frame.timestamp
                    delay = start_wall + (frame.timestamp - start_stamp) - time.time()
                    if delay > 0 and self._stop_event.wait(delay):
                        break
                if not self.ring.put(frame):
                    break
                self.frames += 1
        except BaseException as exc:  # handed to the consumer by iter_frames
            self.error = exc
        finally:
            try:
                close = getattr(frames, "close", None)
                if close is not None:
                    close()
            except Exception as exc:  # closing must not hide the first error
                if self.error is None:
                    self.error = exc
            self.ring.close()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Ask the thread to end and wait for it. A live source that does not end within a second is
        closed (a reader in its reconnect backoff ends then; one inside a read ends at the read's
        timeout). ``timeout`` defaults to the source's ``stop_timeout_s``: a thread left inside a
        native read at exit aborts the process."""
        if timeout is None:
            timeout = float(getattr(self.source, "stop_timeout_s", 2.0))
        self._stop_event.set()
        self.ring.close()
        if getattr(self.source, "live", False):
            self.join(min(timeout, 1.0))
            if self.is_alive():
                self.source.close()
        if self.is_alive():
            self.join(timeout)
        if self.is_alive():
            self.source.close()
            self.join(timeout)


def iter_frames(source: Any, realtime: Optional[bool] = None, ring_capacity: int = DEFAULT_RING_CAPACITY,
                on_event: Optional[EventCallback] = None,
                max_outage_s: Optional[float] = None) -> Iterator[Tuple[Frame, float, int]]:
    """(frame, capture_wait_s, dropped_so_far) for every frame the pipeline should process.

    ``capture_wait_s`` is how long the consumer waited for this frame (reading and
    decoding it, for files without realtime). ``realtime=None`` takes the source's own
    ``realtime`` flag (set by open_source). ``on_event`` gets a live source's outage events
    before the next frame."""
    if realtime is None:
        realtime = bool(getattr(source, "realtime", False))
    if not getattr(source, "live", False) and not realtime:
        for item in _iter_direct(source):
            yield item
        return
    if not getattr(source, "live", False) and not getattr(source, "fps", None):
        raise JistEdgeError("cannot play {} in real time: its frame rate is unknown (give an fps)".format(
            getattr(source, "description", source)))
    ring = FrameRing(ring_capacity)
    thread = CaptureThread(source, ring, pace=not getattr(source, "live", False))
    thread.start()
    try:
        while True:
            began = time.perf_counter()
            frame = ring.get(_POLL_S)
            while frame is None and not ring.closed:
                _outage_tick(source, on_event, max_outage_s)
                frame = ring.get(_POLL_S)
            _outage_tick(source, on_event, max_outage_s, until=frame.timestamp if frame is not None else None)
            if frame is None:
                if thread.error is not None:
                    raise thread.error
                return
            yield frame, time.perf_counter() - began, ring.dropped
    finally:
        thread.stop()


def _outage_tick(source: Any, on_event: Optional[EventCallback], max_outage_s: Optional[float],
                 waiting: bool = True, until: Optional[float] = None) -> None:
    """Hand the source's outage events to the consumer (with ``until``, a frame's timestamp: only those
    up to it, and no waiting tick); a waiting tick while it is gone; end an outage longer than
    ``max_outage_s``."""
    outages = getattr(source, "outages", None)
    if outages is None:
        return
    waiting = waiting and until is None
    stalled = getattr(source, "stalled", None)
    if waiting and stalled is not None:
        stalled()
    for event in outages.drain(until):
        if on_event is not None:
            on_event(event)
    if not waiting or not outages.lost:
        return
    lost_s = outages.lost_for()
    if on_event is not None:
        on_event(SourceEvent(WAITING, time.time(), lost_s=lost_s))
    if max_outage_s is not None and lost_s > max_outage_s:
        raise SourceOutage.too_long(getattr(source, "description", "the source"), lost_s, max_outage_s)


def _iter_direct(source: Any) -> Iterator[Tuple[Frame, float, int]]:
    """Every frame in order in the caller's thread; nothing is dropped."""
    frames = iter(source)
    try:
        while True:
            began = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                return
            yield frame, time.perf_counter() - began, 0
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
