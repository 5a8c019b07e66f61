"""What distances mean on one map: database-vs-database statistics for the route filter.

A squared-L2 distance between descriptors has no absolute scale: it depends on the
weights, the input size and the route. The route filter needs one to turn distances
into likelihoods (a temperature) and to tell "far from anything on the map" (lost).
Both come from the map itself: a sample of its places is searched against the map,
places near the probe are left out (the paper's positive rule: any frame within the
threshold of any frame; by place index when positions are unknown), and what remains
are confusers: places that look alike but are elsewhere. Their distances, and the
distances between places of one drive that share no frame, are summarised here.

The result is stored with the map (``distance_stats.json``, checksummed in the
manifest) and computed on load for maps made before it existed.
"""
import os
from typing import Any, Dict, Optional

import numpy as np

from jist_edge.positions import POSITIVE_RADIUS_M
from jist_edge.fileio import read_json
from jist_edge.search.matcher import ExactSearch

STATS_FILE = "distance_stats.json"  # stored with the map, listed (and checked) in its manifest when present
STATS_VERSION = 1
DEFAULT_SAMPLE = 400
DEFAULT_K = 32
DEFAULT_THRESHOLD_M = POSITIVE_RADIUS_M
_SEED = 7
_QUANTILES = (5, 25, 50, 75, 95, 99, 100)
MAX_SEARCH = 1024  # nearest places searched per probe for confusers at most


def compute_distance_stats(descriptors: np.ndarray, drive_bounds: np.ndarray, seq_len: int,
                           frame_positions: Optional[np.ndarray] = None, sequence_frames: Optional[np.ndarray] = None,
                           index: Any = None, threshold_m: float = DEFAULT_THRESHOLD_M, k: int = DEFAULT_K,
                           sample: int = DEFAULT_SAMPLE) -> Dict[str, Any]:
    """Confuser and same-route distance statistics of a sample of the map's places (JSON-ready)."""
    db = np.ascontiguousarray(descriptors, dtype=np.float32)
    count = db.shape[0]
    bounds = np.asarray(drive_bounds, dtype=np.int64)
    rng = np.random.RandomState(_SEED)
    probes = np.sort(rng.choice(count, size=min(int(sample), count), replace=False)) if count else np.zeros(0, int)
    positioned = _positioned(frame_positions, sequence_frames, count)
    exclusion = Exclusion(bounds, seq_len, threshold_m, frame_positions if positioned else None, sequence_frames)
    want = max(1, min(int(k), count - 1))
    first, kth, gap = _confusers(db, probes, exclusion, want, index)
    if not first and count > 1:  # every place is near every other: compare with all but the probe itself
        exclusion = Exclusion(bounds, 0, 0.0, None, None)
        first, kth, gap = _confusers(db, probes, exclusion, want, index)
    near = _same_drive(db, probes, bounds, seq_len)
    out = {
        "version": STATS_VERSION,
        "places": int(count),
        "probes": int(len(probes)),
        "probes_with_confusers": int(len(first)),
        "k": int(want),
        "exclusion": exclusion.describe(),
        "confuser_best": _quantiles(first),
        "confuser_kth": _quantiles(kth),
        "confuser_spread": _quantiles(gap),
        "next_place": _quantiles(near),
        "place_spacing_m": _spacing(frame_positions, sequence_frames, bounds) if positioned else None,
    }
    return out  # no timing in it: a map's files are byte-reproducible (merge = build of both, Ray = local)


class Exclusion(object):
    """Which places count as "the same place" as a probe, and so are not confusers."""

    def __init__(self, bounds: np.ndarray, seq_len: int, threshold_m: float, frame_positions: Optional[np.ndarray],
                 sequence_frames: Optional[np.ndarray]) -> None:
        self.bounds = bounds
        self.threshold_m = float(threshold_m)
        self.radius_places = 3 * int(seq_len)  # without positions: this many places either way in one drive
        self.positions = frame_positions
        self.sequence_frames = sequence_frames

    def near(self, probe: int, ids: np.ndarray) -> np.ndarray:
        if self.positions is None:
            drive = np.searchsorted(self.bounds, probe, side="right")
            same = (ids >= self.bounds[drive - 1]) & (ids < self.bounds[drive])
            return same & (np.abs(ids - probe) <= self.radius_places)
        mine = self.positions[self.sequence_frames[probe]]  # (L, 2)
        theirs = self.positions[self.sequence_frames[ids]]  # (n, L, 2)
        d2 = ((theirs[:, :, None, :] - mine[None, None, :, :]) ** 2).sum(axis=3)
        with np.errstate(invalid="ignore"):
            return (d2 <= self.threshold_m ** 2).any(axis=(1, 2)) | (ids == probe)

    def describe(self) -> Dict[str, Any]:
        if self.positions is None:
            return {"rule": "places" if self.radius_places else "self", "radius_places": self.radius_places}
        return {"rule": "frames", "threshold_m": self.threshold_m}


def _confusers(db: np.ndarray, probes: np.ndarray, exclusion: "Exclusion", want: int, index: Any):
    first, kth, gap = [], [], []
    for _, ids, dists in _far_neighbours(db, probes, exclusion, want, index):
        if len(ids):
            first.append(dists[0])
            kth.append(dists[-1])
            gap.append(dists[-1] - dists[0])
    return first, kth, gap


def _far_neighbours(db: np.ndarray, probes: np.ndarray, exclusion: Exclusion, want: int, index: Any):
    """Per probe: (probe, ids, squared distances) of its ``want`` nearest places that are not near it.
    A probe with fewer such places among its MAX_SEARCH nearest (or the whole map) gets what there is."""
    count = db.shape[0]
    cap = min(count, MAX_SEARCH)
    k = min(cap, want + 2 * exclusion.radius_places + 8)
    while len(probes):
        ids, dists = _search(db, probes, k, index)
        short = []
        for row, probe in enumerate(probes):
            keep = ~exclusion.near(int(probe), ids[row])
            if keep.sum() >= want or k >= cap:
                yield int(probe), ids[row][keep][:want], dists[row][keep][:want]
            else:
                short.append(row)
        probes, k = probes[short], min(cap, k * 4)


def _search(db: np.ndarray, probes: np.ndarray, k: int, index: Any):
    """``index``: the map's search (search.index.HnswSearch or ReducedSearch), or None for exact search."""
    if index is not None:
        try:
            labels, dists = index.knn(db[probes], k, ef=max(64, k))
            return labels.astype(np.int64), dists.astype(np.float64)
        except RuntimeError:  # a sparse graph (small M) cannot always return k: search exactly instead
            pass

    ids, dists = ExactSearch(db).query(db[probes], k)
    return ids, dists.astype(np.float64)


def _same_drive(db: np.ndarray, probes: np.ndarray, bounds: np.ndarray, seq_len: int) -> np.ndarray:
    """Distance from a place to the one ``seq_len`` ahead in its drive (they share no frame)."""
    drive = np.searchsorted(bounds, probes, side="right")
    ahead = probes + int(seq_len)
    ok = ahead < bounds[np.minimum(drive, len(bounds) - 1)]
    a, b = db[probes[ok]].astype(np.float64), db[ahead[ok]].astype(np.float64)
    return ((a - b) ** 2).sum(axis=1)


def _positioned(frame_positions: Optional[np.ndarray], sequence_frames: Optional[np.ndarray], count: int) -> bool:
    if frame_positions is None or sequence_frames is None or count == 0:
        return False
    return bool(np.isfinite(np.asarray(frame_positions)).all(axis=1).any())


def _spacing(frame_positions: np.ndarray, sequence_frames: np.ndarray, bounds: np.ndarray) -> Optional[float]:
    """Median distance in metres between consecutive places of a drive (their centre frames)."""
    centre = np.asarray(frame_positions)[sequence_frames[:, sequence_frames.shape[1] // 2]]
    steps = np.sqrt(((centre[1:] - centre[:-1]) ** 2).sum(axis=1))
    crossing = np.zeros(len(steps), dtype=bool)
    inner = bounds[1:-1]
    crossing[inner[(inner > 0) & (inner <= len(steps))] - 1] = True
    steps = steps[~crossing & np.isfinite(steps)]
    return round(float(np.median(steps)), 4) if len(steps) else None


def _quantiles(values: Any) -> Optional[Dict[str, float]]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return None
    return {"p{}".format(q): float(np.percentile(arr, q)) for q in _QUANTILES}


def map_distance_stats(place_map: Any, threshold_m: float = DEFAULT_THRESHOLD_M) -> Dict[str, Any]:
    """The map's statistics: stored with it when they were made with this threshold, else computed
    now (maps made before they existed) and kept on the map object for the next caller."""
    cached = getattr(place_map, "_distance_stats", None)
    if cached is not None and _made_for(cached, threshold_m):
        return cached
    stats = None
    if STATS_FILE in place_map.manifest.get("files", {}):
        stored = read_json(os.path.join(place_map.path, STATS_FILE), "map distance statistics")
        if isinstance(stored, dict) and stored.get("version") == STATS_VERSION and _made_for(stored, threshold_m):
            stats = stored
    if stats is None:
        stats = compute_distance_stats(place_map.descriptors, place_map.drive_bounds, place_map.seq_len,
                                       place_map.frames.positions, place_map.sequence_frames,
                                       place_map.search_index() if place_map.count > 2000 else None,
                                       threshold_m=threshold_m)
        stats["computed_on_load"] = True
    place_map._distance_stats = stats
    return stats


def _made_for(stats: Dict[str, Any], threshold_m: float) -> bool:
    exclusion = stats.get("exclusion") or {}
    return exclusion.get("rule") in ("places", "self") or abs(float(exclusion.get("threshold_m", -1)) - threshold_m) < 1e-9
