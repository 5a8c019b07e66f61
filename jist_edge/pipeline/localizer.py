"""The streaming pipeline as a Python API: frames in, place estimates out.

    from jist_edge.pipeline.localizer import Localizer
    loc = Localizer.open("~/.jist-edge/model", "~/.jist-edge/map")
    for result in loc.stream("csi://0"):
        print(result.frame_index, result.best.position, result.latency["total"])

Each frame is preprocessed and encoded once; its descriptor enters a ring of the last
L descriptors; SeqGeM pools the ring (partial windows from the first frame on) and the
matcher answers. The CLI's `run` and `demo` are thin shells over this class.
"""
import math
import numbers
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from jist_edge.errors import BadFrame, JistEdgeError
from jist_edge.encoder import EncoderBackend, create_encoder
from jist_edge.bundle import Bundle, load_bundle
from jist_edge.pipeline.descriptor_ring import DescriptorRing
from jist_edge.encoder.preprocess import Preprocessor
from jist_edge.encoder.seqgem import seqgem
from jist_edge.stream.blind import blind_frame
from jist_edge.stream.events import SOURCE_BACK
from jist_edge.stream.frame import to_bgr
from jist_edge.filter.route_filter import BLIND, INITIALIZING, Estimate
from jist_edge.filter.tracker import RouteTracker
from jist_edge.maps.store import check_bundle, load_map
from jist_edge.search.matcher import Matcher
from jist_edge.stream.capture import iter_frames
from jist_edge.stream.sources import as_frame_source

STAGES = ("capture_wait", "preprocess", "encode", "seqgem", "match")


class Match(object):
    """One map sequence: its id, squared-L2 distance, centre position and frames."""

    __slots__ = ("seq_id", "distance", "position", "frames")

    def __init__(self, seq_id: int, distance: float, position: Optional[Sequence[float]], frames: List[Any]) -> None:
        self.seq_id = seq_id
        self.distance = distance
        self.position = position
        self.frames = frames

    def to_dict(self) -> Dict[str, Any]:
        return {"seq_id": self.seq_id, "distance": self.distance, "position": self.position, "frames": self.frames}


class Result(object):
    """What the pipeline says about one frame."""

    __slots__ = ("frame_index", "timestamp", "partial", "window_size", "matches", "latency", "dropped", "skipped",
                 "descriptor", "name", "estimate", "blind")

    def __init__(self, frame_index: int, timestamp: float, partial: bool, window_size: int, matches: List[Match],
                 latency: Dict[str, float], descriptor: np.ndarray, dropped: int = 0, skipped: int = 0,
                 name: Optional[str] = None) -> None:
        self.frame_index = frame_index
        self.timestamp = timestamp
        self.partial = partial
        self.window_size = window_size  # frame descriptors pooled into this result (L once the ring is full)
        self.matches = matches
        self.latency = latency
        self.descriptor = descriptor
        self.dropped = dropped
        self.skipped = skipped
        self.name = name
        self.estimate = None  # type: Any  # the route filter's Estimate, when the filter runs
        self.blind = False  # a uniform frame (lens cap, darkness): not localized, no match

    @property
    def best(self) -> Optional[Match]:
        return self.matches[0] if self.matches else None

    def to_dict(self) -> Dict[str, Any]:
        """The JSON line `jist-edge run` writes per frame."""
        out = {
            "frame": self.frame_index,
            "timestamp": self.timestamp,
            "name": self.name,
            "partial": self.partial,
            "window": self.window_size,
            "match": self.best.to_dict() if self.best else None,
            "top_k": [m.to_dict() for m in self.matches],
            "latency_ms": {k: round(v, 3) for k, v in self.latency.items()},
            "dropped": self.dropped,
            "skipped": self.skipped,
        }
        if self.estimate is not None:
            out["estimate"] = self.estimate.to_dict()
        if self.blind:
            out["blind"] = True
        return out


class Localizer(object):
    """Bundle + map + encoder backend; ``process`` one frame or ``stream`` a source."""

    def __init__(self, bundle: Bundle, place_map: Any, backend: str = "auto", top_k: int = 1,
                 ef: Optional[int] = None, exact: bool = False, encoder: Optional[EncoderBackend] = None,
                 seq_len: Optional[int] = None, route_filter: bool = True, filter_params: Any = None,
                 **backend_options: Any) -> None:
        check_bundle(place_map.manifest, place_map.path, bundle)  # a map runs only with the model that made it
        self.bundle = bundle
        self.place_map = place_map
        self.top_k = min(_whole_number("top_k", top_k), place_map.count)
        self.preprocess = Preprocessor.for_bundle(bundle)
        self.encoder = encoder if encoder is not None else create_encoder(bundle, backend, **backend_options)
        self.matcher = Matcher(place_map, ef=ef, exact=exact)
        self.seq_len = _whole_number("seq_len", place_map.seq_len if seq_len is None else seq_len)
        self.ring = DescriptorRing(self.seq_len, bundle.dim)
        self.tracker = None  # type: Any  # the route filter beside the raw match (jist_edge.filter.tracker)
        if route_filter:
            self.tracker = RouteTracker(place_map, self.matcher, filter_params)
        self.bad_frames = 0  # frames the source delivered but preprocessing refused (BadFrame)
        self.source_skipped = 0  # frames the last streamed source could not deliver (unreadable files/frames)
        self.blind_frames = 0  # uniform frames (lens cap, darkness): counted, not localized
        self.source = None  # type: Any  # the source being streamed (its outages and repeats are read at the end)
        self._gap = False  # frames were missing (outage, blind): the filter predicts over the time before its next step
        self.last_image = None  # type: Optional[np.ndarray]
        # one input buffer for the whole stream: no per-frame allocation of 3 x H x W floats
        self._input = np.empty((1, 3, bundle.height, bundle.width), dtype=np.float32)

    @classmethod
    def open(cls, model_dir: str, map_dir: str, **options: Any) -> "Localizer":
        """Verify the bundle and the map (and that they belong together), then open the encoder.

        Options: backend ("auto", "onnxruntime", "tensorrt"), precision ("auto", "fp32", "fp16",
        "int8", "best"; see `jist-edge run --help`), cache_dir (engines and the CPU INT8 model,
        default <workspace>/engines), top_k, ef, exact; an option the backend cannot honour is refused."""
        bundle = load_bundle(os.path.expanduser(model_dir))
        return cls(bundle, load_map(os.path.expanduser(map_dir), bundle=bundle), **options)

    def reset(self) -> None:
        """Forget the window and where the route filter thought we were (e.g. after a long gap)."""
        self.ring.clear()
        if self.tracker is not None:
            self.tracker.reset()

    def gap(self) -> None:
        """Frames are missing here (the camera was lost or blind): the window starts again, so no window
        pools frames from both sides, and the filter widens its belief by the time that passed."""
        self.ring.clear()
        self._gap = True

    def process(self, image_bgr: np.ndarray, frame_index: int = 0, timestamp: Optional[float] = None,
                capture_wait: float = 0.0, dropped: int = 0, name: Optional[str] = None) -> Result:
        """One frame through preprocess -> encoder -> ring -> SeqGeM -> matcher. Raises BadFrame.

        Grey (HxW) and BGRA frames are converted as for streamed frames (jist_edge.stream.frame)."""
        t0 = time.perf_counter()
        batch = self._input
        image_bgr = to_bgr(image_bgr)[0]
        if blind_frame(image_bgr):
            return self._blind(image_bgr, frame_index, timestamp, capture_wait, dropped, name, t0)
        self.preprocess(image_bgr, out=batch[0])
        self.last_image = image_bgr  # for --display; a reference, not a copy
        t1 = time.perf_counter()
        descriptor = self.encoder.encode(batch)[0]
        t2 = time.perf_counter()
        self.ring.push(descriptor, frame_index)
        pooled = seqgem(self.ring.window(), self.bundle.seqgem_p, self.bundle.seqgem_eps)
        t3 = time.perf_counter()
        ids, dists = self.matcher.query(pooled[None], k=self.top_k)
        matches = self._matches(ids[0], dists[0])
        t4 = time.perf_counter()
        stamp = time.time() if timestamp is None else timestamp
        estimate = self._estimate(pooled, stamp)
        t5 = time.perf_counter()
        latency = {
            "capture_wait": capture_wait * 1e3,
            "preprocess": (t1 - t0) * 1e3,
            "encode": (t2 - t1) * 1e3,
            "seqgem": (t3 - t2) * 1e3,
            "match": (t4 - t3) * 1e3,
        }
        if self.tracker is not None:
            latency["filter"] = (t5 - t4) * 1e3
        latency["total"] = (t5 - t0) * 1e3
        result = Result(frame_index, stamp, not self.ring.full, len(self.ring), matches, latency, pooled, dropped,
                        self.bad_frames, name)
        result.estimate = estimate
        return result

    def _estimate(self, pooled: np.ndarray, timestamp: float) -> Any:
        """The route filter's estimate; it sees full windows only (as the map holds them)."""
        if self.tracker is None:
            return None
        if not self.ring.full:
            return Estimate(None, None, 0.0, INITIALIZING)
        if self._gap:
            self._gap = False
            self.tracker.predict_to(timestamp)
        return self.tracker.step(pooled, timestamp)

    def _blind(self, image: np.ndarray, frame_index: int, timestamp: Optional[float], capture_wait: float,
               dropped: int, name: Optional[str], t0: float) -> Result:
        """A uniform frame: counted, no match, the filter does not update; its state says blind."""
        self.blind_frames += 1
        self.last_image = image
        self.gap()
        total = (time.perf_counter() - t0) * 1e3
        result = Result(frame_index, time.time() if timestamp is None else timestamp, True, 0, [],
                        {"capture_wait": capture_wait * 1e3, "total": total}, None, dropped, self.bad_frames, name)
        result.blind = True
        if self.tracker is not None:
            result.estimate = Estimate(None, None, 0.0, BLIND)
        return result

    def _matches(self, ids: np.ndarray, dists: np.ndarray) -> List[Match]:
        positions = self.place_map.positions_of(ids)
        out = []
        for seq_id, dist, pos in zip(ids, dists, positions):
            position = None if pos is None or any(math.isnan(v) for v in pos) else [float(v) for v in pos]
            out.append(Match(int(seq_id), float(dist), position, self.place_map.frames_of(int(seq_id))))
        return out

    def stream(self, source: Union[str, int, Any], realtime: bool = False, max_frames: Optional[int] = None,
               on_event: Optional[Callable[[Any], None]] = None, max_outage_s: Optional[float] = None,
               **source_options: Any) -> Iterator[Result]:
        """Results for every usable frame of a source; bad frames are skipped and counted.

        ``source``: a camera number, device, URL, video file or image folder (str, int or
        path), a FrameSource, or any iterable of BGR numpy arrays (a list, a generator, a
        queue filled by a ROS callback; see jist_edge.stream.sources.arrays). Anything else
        raises JistEdgeError. ``source_options`` go to open_source and need a URI or path.
        ``on_event`` gets a live source's outage events (jist_edge.stream.events) in this thread, between
        results; after each outage the window starts again. ``max_outage_s`` ends the stream with
        SourceOutage (a JistEdgeError) after a longer outage; by default a live source is waited for."""
        if max_frames is not None and int(max_frames) < 1:
            raise JistEdgeError("max_frames must be at least 1, got {}".format(max_frames))
        # csi://: nvvidconv scales to the model's input size in hardware (scale_to=None: full frames)
        src, own = as_frame_source(source, realtime=realtime, uri_defaults={
            "scale_to": (self.bundle.width, self.bundle.height)}, **source_options)
        emitted = 0
        self.source = src

        def event(ev: Any) -> None:
            if ev.kind == SOURCE_BACK:
                self.gap()
            if on_event is not None:
                on_event(ev)

        try:
            for frame, wait, dropped in iter_frames(src, realtime, on_event=event, max_outage_s=max_outage_s):
                try:
                    result = self.process(frame.image, frame.index, frame.timestamp, wait, dropped, frame.name)
                except BadFrame:
                    self.bad_frames += 1
                    continue
                result.skipped = self.bad_frames + getattr(src, "skipped", 0)
                yield result
                emitted += 1
                if max_frames is not None and emitted >= max_frames:
                    break
        finally:
            self.source_skipped = getattr(src, "skipped", 0)
            if own:
                src.close()

    @property
    def frames_skipped(self) -> int:
        """Unusable frames so far (refused by the source or by preprocessing), counted even when no result
        followed them; ``Result.skipped`` is the same count at that frame."""
        return self.bad_frames + self.source_skipped

    def source_counts(self) -> Dict[str, Any]:
        """What the last streamed source lived through: outages, outage time, reconnects, repeated
        images (a stalled decoder's), blind frames."""
        src = self.source
        outages = getattr(src, "outages", None)
        counts = outages.summary() if outages is not None else {"outages": 0, "outage_s": 0.0, "reconnects": 0}
        counts["repeated"] = int(getattr(src, "repeated", 0))
        counts["blind"] = self.blind_frames
        return counts

    def describe(self) -> Dict[str, Any]:
        info = self.encoder.describe()
        info.update({"bundle": self.bundle.path, "bundle_id": self.bundle.bundle_id, "map": self.place_map.path,
                     "map_sequences": self.place_map.count, "seq_len": self.seq_len,
                     "matcher": self.matcher.method,
                     "route_filter": self.tracker.describe() if self.tracker is not None else None})
        return info

    def close(self) -> None:
        self.encoder.close()


def _whole_number(name: str, value: Any) -> int:
    """An API parameter that must be an int >= 1, refused by its own name."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise JistEdgeError("{} must be a whole number of at least 1, got {!r}".format(name, value))
    return int(value)
