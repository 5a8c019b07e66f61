"""Camera outages as data: the events a live source reports and the running account of them.

A live source that stops delivering frames reports ``source_lost`` (with why) and, at its
first new frame after that, ``source_back`` (with the gap since the last frame before it).
Both are written as JSON lines beside the results, told apart by their ``event`` key. While
the camera is gone the consumer also sees ``waiting`` ticks (not recorded) so that status
lines and the live view can say for how long.
"""
import threading
import time
from typing import Any, Dict, List, Optional

from jist_edge.errors import JistEdgeError

SOURCE_LOST = "source_lost"
SOURCE_BACK = "source_back"
WAITING = "waiting"
RECORDED = (SOURCE_LOST, SOURCE_BACK)


class SourceEvent(object):
    """``kind`` (SOURCE_LOST, SOURCE_BACK or WAITING), ``timestamp`` (time.time()), ``reason``
    (lost), ``gap_s`` (back: seconds since the last frame before the outage), ``lost_s``
    (waiting: seconds since the camera was lost)."""

    __slots__ = ("kind", "timestamp", "reason", "gap_s", "lost_s")

    def __init__(self, kind: str, timestamp: float, reason: Optional[str] = None, gap_s: Optional[float] = None,
                 lost_s: Optional[float] = None) -> None:
        self.kind = kind
        self.timestamp = timestamp
        self.reason = reason
        self.gap_s = gap_s
        self.lost_s = lost_s

    @property
    def recorded(self) -> bool:
        """Lost and back go into the JSON lines; waiting ticks do not."""
        return self.kind in RECORDED

    def to_dict(self) -> Dict[str, Any]:
        out = {"event": self.kind, "timestamp": self.timestamp}  # type: Dict[str, Any]
        if self.kind == SOURCE_LOST:
            out["reason"] = self.reason
        elif self.kind == SOURCE_BACK:
            out["gap_s"] = round(float(self.gap_s or 0.0), 3)
        else:
            out["lost_s"] = round(float(self.lost_s or 0.0), 3)
        return out

    def __repr__(self) -> str:
        return "SourceEvent({})".format(self.to_dict())


class OutageLog(object):
    """Thread-safe: the reader thread reports, the consumer drains events and reads the counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = []  # type: List[SourceEvent]
        self.outages = 0
        self.outage_s = 0.0  # finished outages, from the last frame before to the first frame after
        self.reconnects = 0
        self.lost_since = None  # type: Optional[float]  # time.time() of the last frame before the outage
        self.last_frame = None  # type: Optional[float]

    @property
    def lost(self) -> bool:
        return self.lost_since is not None

    def frame(self, now: Optional[float] = None) -> Optional[SourceEvent]:
        """A new frame arrived; the source_back event when it ends an outage."""
        now = time.time() if now is None else now
        with self._lock:
            event = None
            if self.lost_since is not None:
                gap = max(0.0, now - self.lost_since)
                self.outage_s += gap
                self.lost_since = None
                event = SourceEvent(SOURCE_BACK, now, gap_s=gap)
                self._pending.append(event)
            self.last_frame = now
            return event

    def lose(self, reason: str, now: Optional[float] = None) -> Optional[SourceEvent]:
        """The source stopped delivering; the source_lost event unless an outage is already under way."""
        now = time.time() if now is None else now
        with self._lock:
            if self.lost_since is not None:
                return None
            self.outages += 1
            self.lost_since = self.last_frame if self.last_frame is not None else now
            event = SourceEvent(SOURCE_LOST, now, reason=reason)
            self._pending.append(event)
            return event

    def lost_for(self, now: Optional[float] = None) -> float:
        """Seconds without a frame in the current outage (0 when none)."""
        since = self.lost_since
        return 0.0 if since is None else max(0.0, (time.time() if now is None else now) - since)

    def drain(self, until: Optional[float] = None) -> List[SourceEvent]:
        """The events reported so far, oldest first; with ``until``, only those up to that time (the
        rest stay for later: a frame that arrived before an outage is handed out before its event)."""
        with self._lock:
            if until is None:
                events, self._pending = self._pending, []
            else:
                events = [e for e in self._pending if e.timestamp <= until]
                self._pending = [e for e in self._pending if e.timestamp > until]
            return events

    def summary(self) -> Dict[str, Any]:
        """Counts for the run summary; an outage still under way counts with its time so far."""
        return {"outages": self.outages, "outage_s": round(self.outage_s + self.lost_for(), 3),
                "reconnects": self.reconnects}



class SourceOutage(JistEdgeError):
    """A live source is gone for longer than the run allows (``max_outage_s``, or a ``max_retries``
    used up): the run ends on purpose, with its summary."""

    def __init__(self, message: str, lost_s: Optional[float] = None) -> None:
        super(SourceOutage, self).__init__(message)
        self.lost_s = lost_s

    @classmethod
    def too_long(cls, description: str, lost_s: float, limit_s: float) -> "SourceOutage":
        return cls("{}: camera lost for {:.1f} s, longer than the allowed outage of {:g} s (--max-outage)".format(
            description, lost_s, limit_s), lost_s)
