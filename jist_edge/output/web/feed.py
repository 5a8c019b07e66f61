"""What the live web view shows, handed over from the pipeline thread without ever blocking it.

The pipeline thread only stores a reference to the newest result and image in a
latest-only slot (a lock held for microseconds, no copy, no encoding). A separate
encoder thread turns the newest image into a small JPEG at a capped rate, and only
while someone watches; the status JSON is built on request from a snapshot. Slow or
many viewers therefore lose frames, never the pipeline.
"""
import collections
import json
import math
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

SCHEMA = "jist-edge-live/1"


def _position(value: Any) -> Optional[List[float]]:
    """[easting, northing] as plain floats, or None when missing or not finite."""
    if value is None:
        return None
    try:
        pair = [float(value[0]), float(value[1])]
    except (TypeError, ValueError, IndexError):
        return None
    return pair if all(math.isfinite(v) for v in pair) else None


def estimate_of(result: Any) -> Optional[Dict[str, Any]]:
    """The route filter's estimate when the result carries one, else the raw best match."""
    est = result.estimate  # filter.route_filter.Estimate, None without the filter
    if est is not None:
        out = est.to_dict()
        out["position"] = _position(out["position"])
        out["source"] = "filter"
        return out
    best = result.best
    if best is None:
        return None
    return {"seq_id": best.seq_id, "position": _position(best.position), "confidence": None,
            "state": "partial" if result.partial else "raw", "source": "raw match"}


def finite(obj: Any) -> Any:
    """A copy that JSON.parse accepts: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def map_payload(place_map: Any, max_points: int = 4000) -> Dict[str, Any]:
    """The route to draw: sequence centre positions per drive, thinned to about ``max_points``."""
    count = int(place_map.count)
    positions = np.asarray(place_map.sequence_positions, dtype=np.float64).reshape(-1, 2)
    bounds = [int(b) for b in getattr(place_map, "drive_bounds", [0, count])]
    stride = max(1, int(math.ceil(count / float(max_points))))
    drives = []
    for first, end in zip(bounds[:-1], bounds[1:]):
        ids = list(range(first, end, stride))
        if ids and ids[-1] != end - 1:
            ids.append(end - 1)
        drives.append({"first": first, "count": end - first, "points": [_position(positions[i]) for i in ids]})
    known = positions[np.isfinite(positions).all(axis=1)]
    extent = None
    if len(known):
        lo, hi = known.min(axis=0), known.max(axis=0)
        extent = [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]
    return {"sequences": count, "seq_len": int(place_map.seq_len), "stride": stride, "extent": extent,
            "drives": drives}


def encode_jpeg(image: np.ndarray, max_width: int, quality: int) -> Optional[bytes]:
    """A JPEG of the frame, shrunk to ``max_width`` pixels wide; None if OpenCV refuses it."""
    import cv2

    height, width = image.shape[:2]
    if width > max_width:
        scale = max_width / float(width)
        image = cv2.resize(image, (max_width, max(1, int(round(height * scale)))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    return buf.tobytes() if ok else None


class LiveFeed(object):
    """The latest-only slot between the pipeline and the web server, plus the JPEG encoder thread."""

    def __init__(self, max_fps: float = 10.0, max_width: int = 640, quality: int = 75, max_viewers: int = 4,
                 trail: int = 120, window: int = 30) -> None:
        self.max_fps = float(max_fps)
        self.max_width = int(max_width)
        self.quality = int(quality)
        self.max_viewers = int(max_viewers)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the encoder thread waits here
        self._published = threading.Condition(threading.Lock())  # viewers wait here for a new JPEG
        self._stop = threading.Event()
        self._last = None  # type: Optional[Tuple[Any, Any]]
        self._version = 0  # results seen so far; the slot's version
        self._arrivals = collections.deque(maxlen=window)  # type: collections.deque
        self._latencies = collections.deque(maxlen=window)  # type: collections.deque
        self._trail = collections.deque(maxlen=trail)  # type: collections.deque
        self._open = {"viewers": 0, "pages": 0}  # MJPEG streams, event streams (the page's status)
        self._shared = (0.0, b"")  # (monotonic time, status JSON) shared by the event streams
        self._jpeg_wanted_until = 0.0
        self._jpeg = None  # type: Optional[bytes]
        self._jpeg_version = 0
        self._info = {}  # type: Dict[str, Any]
        self._map_version = 0
        self._ended = None  # type: Optional[str]
        self._thread = None  # type: Optional[threading.Thread]
        self._lost = None  # type: Optional[Tuple[float, str]]  # (perf_counter when lost, reason) in an outage

    # --- the pipeline thread ------------------------------------------------------------
    def offer(self, result: Any, image: Any) -> None:
        """Keep a reference to the newest result and frame; O(1), never waits for a viewer."""
        est = result.estimate
        if est is None:
            where = result.best.position if result.best is not None else None
        else:
            where = est.position
        now = time.perf_counter()
        with self._wake:
            self._last = (result, image)
            self._version += 1
            self._arrivals.append(now)
            self._latencies.append(result.latency)
            if where is not None:
                self._trail.append(where)
            self._wake.notify()

    def source_event(self, event: Any) -> None:
        """source_lost / source_back from the pipeline thread; O(1)."""
        with self._lock:
            if event.kind == "source_lost":
                self._lost = (time.perf_counter(), str(event.reason or "no frame"))
            elif event.kind == "source_back":
                self._lost = None

    # --- set-up and end -----------------------------------------------------------------
    def set_info(self, info: Dict[str, Any], new_map: bool = False) -> None:
        with self._lock:
            self._info = dict(info)
            self._map_version += int(new_map)

    def finish(self, message: str) -> None:
        """The run is over; the last state stays on show with this message."""
        with self._lock:
            self._ended = message

    def start(self) -> None:
        self._thread = threading.Thread(target=self._encode_loop, name="jist-web-jpeg", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        with self._published:
            self._published.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # --- viewers (server threads) ---------------------------------------------------------
    def admit(self, kind: str) -> bool:
        """Count one more open stream of a kind ("viewers": MJPEG, "pages": events); False at ``max_viewers``."""
        with self._wake:
            if self._open[kind] >= self.max_viewers:
                return False
            self._open[kind] += 1
            self._wake.notify()  # a new viewer may want a JPEG of the current frame
            return True

    def release(self, kind: str) -> None:
        with self._lock:
            self._open[kind] -= 1

    def wait_stop(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the feed stops."""
        return self._stop.wait(seconds)

    def shared_status_json(self, max_age: float) -> bytes:
        """The status JSON built at most once per ``max_age`` seconds, however many pages listen."""
        built, text = self._shared
        now = time.monotonic()
        if now - built >= max_age or not text:
            text = self.status_json()
            self._shared = (now, text)
        return text

    def next_jpeg(self, after: int, timeout: float) -> Tuple[Optional[bytes], int]:
        """The newest JPEG once it is newer than version ``after`` (or the current one after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._published:
            while self._jpeg_version <= after and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._published.wait(left)
            return self._jpeg, self._jpeg_version

    def latest_jpeg(self, timeout: float) -> Optional[bytes]:
        """For /frame.jpg: asks the encoder for the newest frame and waits up to ``timeout`` for it."""
        with self._wake:
            self._jpeg_wanted_until = time.monotonic() + 3.0
            version = self._version
            self._wake.notify()
        return self.next_jpeg(version - 1, timeout)[0]

    # --- the encoder thread ---------------------------------------------------------------
    def _jpeg_due(self) -> bool:
        wanted = self._open["viewers"] > 0 or time.monotonic() < self._jpeg_wanted_until
        return wanted and self._last is not None and self._jpeg_version != self._version

    def _encode_loop(self) -> None:
        period = 1.0 / self.max_fps if self.max_fps > 0 else 0.0
        while not self._stop.is_set():
            with self._wake:
                while not self._stop.is_set() and not self._jpeg_due():
                    self._wake.wait(0.5)
                if self._stop.is_set():
                    return
                (_, image), version = self._last, self._version
            started = time.monotonic()
            jpeg = encode_jpeg(image, self.max_width, self.quality)
            with self._published:
                if jpeg is not None:
                    self._jpeg = jpeg
                self._jpeg_version = version
                self._published.notify_all()
            self._stop.wait(max(0.0, period - (time.monotonic() - started)))

    # --- status (server threads) ----------------------------------------------------------
    def status(self) -> Dict[str, Any]:
        """The latest result and the live numbers, as a JSON-able dict (built from a snapshot)."""
        with self._lock:
            last = self._last
            arrivals = list(self._arrivals)
            latencies = list(self._latencies)
            trail = list(self._trail)
            out = {"schema": SCHEMA, "frames": self._version, "viewers": self._open["viewers"],
                   "pages": self._open["pages"],
                   "max_viewers": self.max_viewers, "max_fps": self.max_fps, "info": self._info,
                   "map_version": self._map_version, "ended": self._ended is not None, "message": self._ended,
                   "dropped": 0, "skipped": 0}
            lost = self._lost
        out["fps"] = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 and \
            arrivals[-1] > arrivals[0] else None
        out["seconds_since_result"] = time.perf_counter() - arrivals[-1] if arrivals else None
        out["latency_ms"] = _median_latency(latencies)
        out["trail"] = [p for p in (_position(p) for p in trail) if p is not None]
        out["result"] = out["estimate"] = None
        if last is not None:
            result = last[0]
            data = result.to_dict()
            data["top_k"] = [{k: m.get(k) for k in ("seq_id", "distance", "position")} for m in data["top_k"]]
            out["result"] = data
            out["estimate"] = estimate_of(result)
            out["dropped"], out["skipped"] = result.dropped, result.skipped
        out["camera"] = camera_state(lost, arrivals[-1] if arrivals else None)
        if lost is not None and out["estimate"] is not None:
            out["estimate"] = dict(out["estimate"], state="no_camera")  # the last place is not a live one
        return out

    def status_json(self) -> bytes:
        """The status as JSON that browsers parse (no NaN); the cheap path first, it runs for every poll."""
        status = self.status()
        try:
            text = json.dumps(status, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):  # a NaN or a numpy number somewhere (e.g. in a filter's estimate)
            text = json.dumps(finite(status), separators=(",", ":"))
        return text.encode("utf-8")


def camera_state(lost: Optional[Tuple[float, str]], last_arrival: Optional[float]) -> Dict[str, Any]:
    """{"lost": bool, "lost_s", "reason", "message"} for the page: "camera lost for N s" in an outage,
    counted from the last result (the last frame before it)."""
    if lost is None:
        return {"lost": False}
    since = last_arrival if last_arrival is not None and last_arrival <= lost[0] else lost[0]
    seconds = max(0.0, time.perf_counter() - since)
    return {"lost": True, "lost_s": round(seconds, 1), "reason": lost[1],
            "message": "camera lost for {:.0f} s".format(seconds)}


def _median_latency(latencies: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Per stage, the median over the recent results (steadier to read than the last value)."""
    stages = {}  # type: Dict[str, List[float]]
    for lat in latencies:
        for name, value in lat.items():
            stages.setdefault(name, []).append(float(value))
    out = {}
    for name, values in stages.items():
        values.sort()
        mid = len(values) // 2
        out[name] = round(values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid]), 3)
    return out
