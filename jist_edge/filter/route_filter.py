"""A discrete Bayes filter (HMM) over the map's places: from retrieval to localization.

Each frame the matcher gives the K nearest places and their squared distances. On its
own that is a guess per frame; along a route the guesses must also make a trajectory.
The filter keeps a belief over the map's places and an off-map state:

* motion: each frame the vehicle moves forward along its drive by an unknown, slowly
  varying number of places (offsets ``-back_steps .. max_step``). The offset has its
  own belief ``q`` (a velocity), predicted by diffusion toward a broad prior and updated
  by how well each offset explains the new observation. Moves are clipped to the place's
  own drive (``PlaceMap.drive_bounds``): a belief never steps from one drive into the next,
  and what drives past the end of its drive leaves the map.
  A small probability ``p_jump`` moves mass anywhere (kidnap, re-localization), and
  ``p_leave``/``p_enter`` move it to and from the off-map state.
* observation: the K distances relative to the best, ``exp(-(d - d_1) / T)``, with the
  temperature ``T`` from the map's own confuser statistics; places outside the top K
  get the K-th's likelihood (a floor). The off-map state is a virtual place at the
  distance of the map's worst usual confuser (``confuser_best.p99``, ``off_quantile``): a
  best match further than that is far from anything the map holds.

The belief is sparse: a uniform background ``u`` for every place plus the excess of at
most ``window`` places over it, so a frame costs O(K + window * steps), not O(map size).
"""
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.filter.belief_covariance import PositionMoments, belief_covariance
from jist_edge.positions import POSITIVE_RADIUS_M

INITIALIZING = "initializing"
TRACKING = "tracking"
LOST = "lost"
BLIND = "blind"  # the camera shows nothing (uniform frames): no update
NO_CAMERA = "no_camera"  # no frame arrives (an outage): no update
STATES = (INITIALIZING, TRACKING, LOST, BLIND, NO_CAMERA)
MAX_PREDICT_STEPS = 300  # motion steps at most for one gap (a 20 s outage at 15 fps)


class FilterParams(object):
    """The filter's settings; every default is a modelling choice stated in the README."""

    FIELDS = ("top_k", "max_step", "back_steps", "window", "p_jump", "p_leave", "p_enter", "velocity_mix",
              "velocity_blur", "temperature_scale", "off_quantile", "lost_confidence", "init_frames", "max_gap_s", "gap_frames")

    def __init__(self, top_k: int = 32, max_step: int = 6, back_steps: int = 2, window: int = 256,
                 p_jump: float = 0.01, p_leave: float = 0.005, p_enter: float = 0.3, velocity_mix: float = 0.05,
                 velocity_blur: float = 0.1, temperature_scale: float = 1.0,
                 off_quantile: str = "p99", lost_confidence: float = 0.15,
                 init_frames: int = 3, max_gap_s: float = 3.0, gap_frames: int = 10) -> None:
        self.top_k = int(top_k)
        self.max_step = int(max_step)
        self.back_steps = int(back_steps)
        self.window = int(window)
        self.p_jump = float(p_jump)
        self.p_leave = float(p_leave)
        self.p_enter = float(p_enter)
        self.velocity_mix = float(velocity_mix)
        self.velocity_blur = float(velocity_blur)
        self.temperature_scale = float(temperature_scale)
        self.off_quantile = str(off_quantile)
        self.lost_confidence = float(lost_confidence)
        self.init_frames = int(init_frames)
        self.max_gap_s = float(max_gap_s)
        self.gap_frames = int(gap_frames)
        self.check()

    def check(self) -> None:
        if self.top_k < 1 or self.window < 1 or self.max_step < 0 or self.back_steps < 0:
            raise JistEdgeError("route filter: top_k and window must be >= 1, max_step and back_steps >= 0")
        for name in ("p_jump", "p_leave", "p_enter", "velocity_mix", "velocity_blur", "lost_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise JistEdgeError("route filter: {} must be within 0..1, got {}".format(name, getattr(self, name)))
        if not self.temperature_scale > 0:
            raise JistEdgeError("route filter: temperature_scale must be positive")

    def as_dict(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}


class Estimate(object):
    """The filter's answer for one frame (beside the raw match)."""

    __slots__ = ("seq_id", "position", "confidence", "state", "off_map", "covariance_m2")

    def __init__(self, seq_id: Optional[int], position: Optional[List[float]], confidence: float, state: str,
                 off_map: float = 0.0, covariance_m2: Optional[List[List[float]]] = None) -> None:
        self.seq_id = seq_id
        self.position = position
        self.confidence = confidence
        self.state = state
        self.off_map = off_map
        self.covariance_m2 = covariance_m2  # 2 x 2 m^2 about position (filter.belief_covariance)

    def to_dict(self) -> Dict[str, Any]:
        out = {"seq_id": self.seq_id, "position": self.position, "confidence": round(float(self.confidence), 6),
               "state": self.state}
        if self.covariance_m2 is not None:
            out["covariance_m2"] = self.covariance_m2
        return out


class RouteFilter(object):
    """Sparse HMM over the places of one map; ``update(ids, dists)`` once per frame, in order.

    ``positions`` (N, 2) metres or None: without them the filter works by place index and
    the estimate has no position. ``stats``: the map's distance statistics
    (jist_edge.filter.distance_stats). ``radius_m`` is the "same place" radius of the confidence.
    """

    def __init__(self, count: int, drive_bounds: Sequence[int], stats: Dict[str, Any],
                 positions: Optional[np.ndarray] = None, radius_m: float = POSITIVE_RADIUS_M,
                 params: Optional[FilterParams] = None) -> None:
        self.params = params or FilterParams()
        self.count = int(count)
        if self.count < 1:
            raise JistEdgeError("route filter: the map has no places")
        self.bounds = _check_bounds(drive_bounds, self.count)
        self.offsets = np.arange(-self.params.back_steps, self.params.max_step + 1, dtype=np.int64)
        self.temperature = temperature_from(stats, self.params.temperature_scale)
        best = stats.get("confuser_best") or {}
        # a map of one place has no confusers: nothing calibrates "off the map", so there is no off-map state
        self.off_distance = float(best.get(self.params.off_quantile, float("inf")))
        self.positions = _usable_positions(positions, self.count)
        self.radius_m = float(radius_m)
        spacing = stats.get("place_spacing_m")
        self.radius_places = _radius_places(self.radius_m, spacing, stats)
        self.moments = PositionMoments(self.positions, spacing) if self.positions is not None else None
        self._prior_q = _velocity_prior(self.offsets)
        self.reset()

    @property
    def has_positions(self) -> bool:
        return self.positions is not None

    def reset(self) -> None:
        """Forget where we are (start of a stream, or after a long gap)."""
        self.idx = np.zeros(0, dtype=np.int64)
        self.exc = np.zeros(0, dtype=np.float64)
        self.u = 1.0 / self.count
        self.p_off = 0.0
        self.q = self._prior_q.copy()
        self.frames = 0
        self._last_t = None  # type: Optional[float]
        self._dts = []  # type: List[float]

    def gap(self, timestamp: Optional[float]) -> bool:
        """Whether ``timestamp`` comes after a long gap: longer than max_gap_s and than gap_frames
        frame intervals (the median of the recent ones). Records the timestamp."""
        if timestamp is None:
            return False
        t, last = float(timestamp), self._last_t
        self._last_t = t
        if last is None:
            return False
        dt = t - last
        typical = sorted(self._dts)[len(self._dts) // 2] if self._dts else 0.0
        if dt > self.params.max_gap_s and dt > self.params.gap_frames * typical:
            return True
        if dt >= 0:
            self._dts = (self._dts + [dt])[-16:]
        return False

    def update(self, ids: Sequence[int], dists: Sequence[float], timestamp: Optional[float] = None) -> Estimate:
        """One frame: the matcher's top-K (ids, squared distances, nearest first)."""
        if self.gap(timestamp):
            last = self._last_t
            self.reset()
            self._last_t = last
        ids = np.asarray(ids, dtype=np.int64).ravel()
        dists = np.asarray(dists, dtype=np.float64).ravel()
        keep = (ids >= 0) & (ids < self.count) & np.isfinite(dists)
        ids, dists = ids[keep][:self.params.top_k], dists[keep][:self.params.top_k]
        if len(ids) == 0:
            raise JistEdgeError("route filter: an observation without any place of the map")
        order = np.argsort(dists, kind="mergesort")
        ids, dists = ids[order], dists[order]
        by_id = np.sort(ids)
        if (by_id[1:] == by_id[:-1]).any():  # a place named twice keeps its nearest distance
            _, first = np.unique(ids, return_index=True)
            ids, dists = ids[np.sort(first)], dists[np.sort(first)]
        obs = Observation(ids, dists, self.temperature, self.off_distance, self.count)
        self._predict_and_observe(obs)
        self._prune()
        self.frames += 1
        return self.estimate(ids[0])

    def predict(self, dt: float) -> int:
        """Widen the belief by the motion model over ``dt`` seconds without an observation (a camera
        outage): one motion step per typical frame interval that passed, but the one the next update
        makes itself. Returns the steps made."""
        typical = sorted(self._dts)[len(self._dts) // 2] if self._dts else 0.0
        if not typical > 0 or not dt > 0 or self.frames == 0:
            return 0
        steps = min(int(round(dt / typical)) - 1, MAX_PREDICT_STEPS)
        blank = _NoObservation(self.count)
        for _ in range(max(steps, 0)):
            self._predict_and_observe(blank)
            self._prune()
        return max(steps, 0)

    def predict_to(self, timestamp: float) -> int:
        """predict() from the last update to ``timestamp``; the next update then sees an ordinary frame
        interval (no gap reset: the time is already accounted for)."""
        last = self._last_t
        if last is None:
            return 0
        steps = self.predict(float(timestamp) - last)
        if steps:
            self._last_t = float(timestamp) - sorted(self._dts)[len(self._dts) // 2]
        return steps

    def _predict_and_observe(self, obs: "Observation") -> None:
        p = self.params
        targets, beyond = self._targets()
        off_end = 0.0
        if len(self.idx):
            like = np.where(beyond, obs.floor, obs.at(targets))
            flow = (self.exc[:, None] * like).sum(axis=0) + self.u * obs.total
            weights = self.exc[:, None] * self.q[None, :]
            off_end = float(weights[beyond].sum())  # driven past the end of its drive: off the map
            moved_idx, moved_exc = _accumulate(targets[~beyond], weights[~beyond])
            q_post = self.q * np.maximum(flow, 1e-300)
        else:
            moved_idx, moved_exc = self.idx, self.exc
            q_post = self.q
        on = max(1.0 - self.p_off - off_end, 0.0)
        stay = (1.0 - p.p_leave) * (1.0 - p.p_jump)
        u = self.u * stay + ((1.0 - p.p_leave) * p.p_jump * on + p.p_enter * self.p_off) / self.count
        p_off = self.p_off * (1.0 - p.p_enter) + p.p_leave * on + off_end
        idx, exc = _union(moved_idx, moved_exc * stay, obs.ids)
        values = (u + exc) * obs.at(idx)
        u_new = u * obs.floor
        self.idx, self.exc = idx, values - u_new
        self.u = u_new
        self.p_off = p_off * obs.off
        total = self.u * self.count + self.exc.sum() + self.p_off
        self.u, self.exc, self.p_off = self.u / total, self.exc / total, self.p_off / total
        self.q = self._next_velocity(q_post)

    def _targets(self):
        """(n, steps) where each supported place moves by each offset, never before the start of its
        drive; and which moves go past the drive's end (they leave the map)."""
        drive = np.searchsorted(self.bounds, self.idx, side="right") - 1
        lo, hi = self.bounds[drive], self.bounds[drive + 1] - 1
        raw = self.idx[:, None] + self.offsets[None, :]
        beyond = raw > hi[:, None]
        return np.maximum(np.minimum(raw, hi[:, None]), lo[:, None]), beyond

    def _next_velocity(self, q_post: np.ndarray) -> np.ndarray:
        q = q_post / q_post.sum()
        b = self.params.velocity_blur
        if b > 0 and len(q) > 1:
            blurred = q * (1.0 - 2.0 * b)
            blurred[1:] += b * q[:-1]
            blurred[:-1] += b * q[1:]
            blurred[0] += b * q[0]
            blurred[-1] += b * q[-1]
            q = blurred
        m = self.params.velocity_mix
        return (1.0 - m) * q + m * self._prior_q

    def _prune(self) -> None:
        """Keep the ``window`` largest excesses; what is dropped goes to the background."""
        exc = self.exc
        keep = exc > 1e-12 * max(float(exc.max()) if len(exc) else 0.0, 1e-300)
        if keep.sum() > self.params.window:
            cut = np.argpartition(-exc, self.params.window - 1)[:self.params.window]
            keep = np.zeros(len(exc), dtype=bool)
            keep[cut] = True
        dropped = float(exc[~keep].sum())
        self.idx, self.exc = self.idx[keep], exc[keep]
        self.u += dropped / self.count

    def estimate(self, fallback: int) -> Estimate:
        """The most probable place, the mass within the same-place radius of it, and the state."""
        if len(self.exc) and self.exc.max() > 0:
            seq_id = int(self.idx[int(np.argmax(self.exc))])
        else:
            seq_id = int(fallback)
        confidence = min(max(self._mass_near(seq_id), 0.0), 1.0)
        if self.frames <= self.params.init_frames:
            state = INITIALIZING  # a few windows after a (re)start say nothing yet, whatever the belief
        elif self.p_off >= 0.5 or confidence < self.params.lost_confidence:
            state = LOST
        else:
            state = TRACKING
        position = None
        if self.positions is not None and np.isfinite(self.positions[seq_id]).all():
            position = [float(v) for v in self.positions[seq_id]]
        cov = None if position is None else belief_covariance(self.moments, self.idx, np.maximum(self.exc, 0.0),
                                                              self.u, self.p_off, seq_id,
                                                              self.radius_m if state == TRACKING else None)
        return Estimate(seq_id, position, confidence, state, float(self.p_off), cov)

    def _mass_near(self, seq_id: int) -> float:
        drive = int(np.searchsorted(self.bounds, seq_id, side="right") - 1)
        same = (self.idx >= self.bounds[drive]) & (self.idx < self.bounds[drive + 1])
        if self.positions is not None and np.isfinite(self.positions[seq_id]).all():
            d2 = ((self.positions[self.idx] - self.positions[seq_id]) ** 2).sum(axis=1)
            with np.errstate(invalid="ignore"):
                near = d2 <= self.radius_m ** 2
        else:
            near = same & (np.abs(self.idx - seq_id) <= self.radius_places)
        places = min(2 * self.radius_places + 1, self.count)
        return float(self.exc[near].sum() + self.u * places)


class Observation(object):
    """Likelihoods of one frame's top-K, relative to the best place (which gets 1)."""

    def __init__(self, ids: np.ndarray, dists: np.ndarray, temperature: float, off_distance: float,
                 count: int) -> None:
        rel = (dists - dists[0]) / temperature
        self.order = np.argsort(ids)
        self.sorted_ids = ids[self.order]
        self.sorted_like = np.exp(-rel)[self.order]
        self.ids = ids
        self.floor = float(np.exp(-rel[-1])) if len(ids) < count else 0.0
        # the off-map state: a virtual place at the map's usual worst best-confuser distance
        excess = min(dists[0] - off_distance, 50.0 * temperature)
        self.off = float(math.exp(max(excess / temperature, -700.0)))
        self.total = self.floor * (count - len(ids)) + float(self.sorted_like.sum())

    def at(self, places: np.ndarray) -> np.ndarray:
        """Likelihood of each place (any shape): its top-K value, else the floor."""
        pos = np.searchsorted(self.sorted_ids, places)
        pos = np.minimum(pos, len(self.sorted_ids) - 1)
        return np.where(self.sorted_ids[pos] == places, self.sorted_like[pos], self.floor)


class _NoObservation(object):
    """What an observation that says nothing looks like to _predict_and_observe: every place and the
    off-map state equally likely (so only the motion model acts)."""

    def __init__(self, count: int) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.floor = 1.0
        self.off = 1.0
        self.total = float(count)

    def at(self, places: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(places), dtype=np.float64)


def temperature_from(stats: Dict[str, Any], scale: float) -> float:
    """``scale`` x the median spread of the K best confusers' distances (d_K - d_1) on the map."""
    spread = (stats.get("confuser_spread") or {}).get("p50")
    if spread is None or not spread > 0:  # K = 1, or identical places: a tenth of the best confuser's distance
        spread = 0.1 * float((stats.get("confuser_best") or {}).get("p50") or 0.0)
    if not spread > 0:  # a map of one place (or of copies of one): any positive scale ranks the same
        spread = 1.0
    return float(scale) * float(spread)


def _accumulate(targets: np.ndarray, weights: np.ndarray):
    """Sum ``weights`` per distinct target place; (sorted places, sums)."""
    flat = targets.ravel()
    if not len(flat):
        return flat.astype(np.int64), np.zeros(0)
    order = np.argsort(flat, kind="mergesort")
    ordered = flat[order]
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    return ordered[starts], np.add.reduceat(weights.ravel()[order], starts)


def _union(idx: np.ndarray, exc: np.ndarray, new_ids: np.ndarray):
    """Sorted support with the observed places (distinct) added, with excess 0 where new."""
    if len(idx):
        pos = np.minimum(np.searchsorted(idx, new_ids), len(idx) - 1)
        missing = new_ids[idx[pos] != new_ids]
    else:
        missing = new_ids
    if not len(missing):
        return idx, exc
    all_idx = np.concatenate([idx, missing])
    all_exc = np.concatenate([exc, np.zeros(len(missing))])
    order = np.argsort(all_idx, kind="mergesort")
    return all_idx[order], all_exc[order]


def _velocity_prior(offsets: np.ndarray) -> np.ndarray:
    """Standing still to max_step forward equally likely; backward jitter 10x less likely."""
    prior = np.where(offsets < 0, 0.1, 1.0).astype(np.float64)
    return prior / prior.sum()


def _check_bounds(drive_bounds: Sequence[int], count: int) -> np.ndarray:
    bounds = np.asarray(drive_bounds, dtype=np.int64).ravel()
    if len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != count or (np.diff(bounds) < 0).any():
        raise JistEdgeError("route filter: drive bounds {} do not cover the map's {} places".format(
            list(bounds), count))
    return bounds


def _usable_positions(positions: Optional[np.ndarray], count: int) -> Optional[np.ndarray]:
    if positions is None:
        return None
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    if pos.shape[0] != count or not np.isfinite(pos).all(axis=1).any():
        return None
    return pos


def _radius_places(radius_m: float, spacing: Optional[float], stats: Dict[str, Any]) -> int:
    if spacing and spacing > 0:
        return max(1, int(round(radius_m / float(spacing))))
    return int((stats.get("exclusion") or {}).get("radius_places") or 15)
