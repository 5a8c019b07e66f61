"""The route filter in the pipeline: descriptor -> (centred) top-K from the matcher -> filter.

A live drive rarely looks like the mapping drive: other light and another camera add a
common offset to every sequence descriptor, and then the nearest places are the ones
closest to that offset, not to the place (measured on the demo route with random weights:
the raw top 30 held a correct place for 57% of the windows, 96% after centring). So the
filter's observation comes from the stream's descriptor with the stream's recent mean
replaced by the map's mean: ``d - mean_recent(d) + mean(map)``. Frames the filter thinks
are off the map do not move that mean. The raw match stays as it was; the filter asks the
matcher for its own top-K. ``centre_frames=0`` turns the centring off (then the filter
observes the raw top-K).
"""
from typing import Any, Dict, Optional

import numpy as np

from jist_edge.filter.route_filter import Estimate, FilterParams, RouteFilter
from jist_edge.positions import POSITIVE_RADIUS_M
from jist_edge.filter.distance_stats import map_distance_stats

DEFAULT_CENTRE_FRAMES = 50
RAMP_WINDOWS = 3.0


def mean_descriptor(descriptors: Any, block: int = 65536) -> np.ndarray:
    """The map's mean descriptor, summed in float64 a block of rows at a time: a city-scale map's
    descriptors are a float16 memory map (1M x 512), which one float64 copy would make 4 GB."""
    rows = int(descriptors.shape[0])
    total = np.zeros(descriptors.shape[1], dtype=np.float64)
    for start in range(0, rows, block):
        total += np.asarray(descriptors[start:start + block], dtype=np.float64).sum(axis=0)
    return total / max(rows, 1)


class StreamCentre(object):
    """The stream's running mean descriptor (an exponential mean over about ``frames`` windows).

    ``d -> d - w * (mean - map_mean)`` with ``w`` = windows seen / ``frames`` (at most 1): an offset
    estimated from few windows is applied in part, so an easy stream is matched as it is at first.
    """

    def __init__(self, map_mean: np.ndarray, frames: int = DEFAULT_CENTRE_FRAMES) -> None:
        self.map_mean = np.asarray(map_mean, dtype=np.float64)
        self.frames = max(1, int(frames))
        self.reset()

    def reset(self) -> None:
        self.mean = None  # type: Optional[np.ndarray]
        self.weight = 0.0

    def __call__(self, descriptor: np.ndarray, weight: float = 1.0) -> np.ndarray:
        """Update the mean with ``descriptor`` (by ``weight`` in 0..1, full weight while the mean is
        young), return it centred."""
        d = np.asarray(descriptor, dtype=np.float64).ravel()
        seen = self.weight
        if self.mean is None:
            self.mean, self.weight = d.copy(), 1.0
        else:
            weight = 1.0 if self.weight < self.frames else weight
            if weight > 0:
                self.weight = min(self.weight + weight, float(self.frames))
                self.mean += (weight / self.weight) * (d - self.mean)
        # an offset estimated from few windows is trusted in part: the first window is matched as it is
        trust = min(1.0, seen / float(RAMP_WINDOWS))
        return (d - trust * (self.mean - self.map_mean)).astype(np.float32)


class RouteTracker(object):
    """Runs the route filter beside the raw match, one window descriptor at a time, in order."""

    def __init__(self, place_map: Any, matcher: Any, params: Optional[FilterParams] = None,
                 stats: Optional[Dict[str, Any]] = None, radius_m: float = POSITIVE_RADIUS_M,
                 centre_frames: int = DEFAULT_CENTRE_FRAMES) -> None:
        self.params = params or FilterParams()
        self.stats = stats if stats is not None else map_distance_stats(place_map, radius_m)
        self.top_k = max(1, min(self.params.top_k, place_map.count))
        self.matcher = matcher
        self.filter = RouteFilter(place_map.count, place_map.drive_bounds, self.stats, place_map.sequence_positions,
                                  radius_m, self.params)
        self.centre = None  # type: Optional[StreamCentre]
        if centre_frames:
            self.centre = StreamCentre(mean_descriptor(place_map.descriptors), centre_frames)

    def step(self, descriptor: np.ndarray, timestamp: Optional[float] = None) -> Estimate:
        """One full window's sequence descriptor -> the filter's estimate."""
        query = np.asarray(descriptor, dtype=np.float32)
        if self.centre is not None:
            query = self.centre(query, 1.0 - self.filter.p_off)
        ids, dists = self.matcher.query(query[None], k=self.top_k)
        return self.filter.update(ids[0], dists[0], timestamp)

    def predict_to(self, timestamp: float) -> int:
        """The time without frames before ``timestamp`` widens the belief (RouteFilter.predict)."""
        return self.filter.predict_to(timestamp)

    def reset(self) -> None:
        self.filter.reset()
        if self.centre is not None:
            self.centre.reset()

    def describe(self) -> Dict[str, Any]:
        return {"params": self.params.as_dict(), "temperature": self.filter.temperature,
                "off_distance": self.filter.off_distance, "centre_frames": self.centre.frames if self.centre else 0,
                "positions": self.filter.has_positions,
                "stats_computed_on_load": bool(self.stats.get("computed_on_load", False))}
