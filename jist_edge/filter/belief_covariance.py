"""How far the route filter's belief is spread over the map: a 2 x 2 covariance in metres squared.

A robot's state estimator (robot_localization's EKF, Nav2's AMCL) weighs a pose by its
covariance. The route filter's belief is a mass per place plus an off-map mass; the
covariance is a second moment of the places' positions about the reported position,
weighted by the belief, in one of two ways:

* tracking (``local``): over the places within the same-place radius of the estimate (the
  mode, as AMCL reports the covariance of its best particle cluster), divided by the mass
  they hold (the confidence): a mode holding half the belief gets twice its spread. A
  2 % uniform background would otherwise dominate: on a 2 km route it alone is ~80 m.
* initializing or lost: over the whole belief. Each supported place i carries
  ``u + exc[i]``, every other place the background ``u`` (summed in closed form from the
  map's moments, so a frame costs O(window), not O(map)); the off-map mass is spread like
  the background (the vehicle may be anywhere), so a lost filter's covariance is about
  as large as the map itself.

Both add a floor of ``floor_m`` squared on the diagonal (the place spacing: a place is
never known better than the distance between two places), so it is never zero.

Places without a position take no part. Positions are centred on the map's mean first
so UTM-sized coordinates lose no precision in the squares.
"""
from typing import List, Optional, Tuple

import numpy as np

DEFAULT_FLOOR_M = 1.0


class PositionMoments(object):
    """The map's positions (centred) and their sums, computed once per filter."""

    def __init__(self, positions: np.ndarray, floor_m: Optional[float] = None) -> None:
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        self.known = np.isfinite(pos).all(axis=1)
        self.centre = pos[self.known].mean(axis=0) if self.known.any() else np.zeros(2)
        self.centred = np.where(self.known[:, None], pos - self.centre, 0.0)
        self.n = float(self.known.sum())
        self.s1 = self.centred.sum(axis=0)
        self.s2 = self.centred.T.dot(self.centred)
        self.floor = float(floor_m) if floor_m and floor_m > 0 else DEFAULT_FLOOR_M

    def about(self, x: np.ndarray) -> np.ndarray:
        """Sum over every positioned place of (p - x)(p - x)^T (x centred)."""
        return self.s2 - np.outer(x, self.s1) - np.outer(self.s1, x) + self.n * np.outer(x, x)

    def spread(self) -> Tuple[List[float], List[List[float]]]:
        """The uniform belief's answer: the map's mean position and its covariance (plus the floor)."""
        cov = self.about(np.zeros(2)) / max(self.n, 1.0) + self.floor ** 2 * np.eye(2)
        return [float(v) for v in self.centre], _as_list(cov)


def belief_covariance(moments: PositionMoments, idx: np.ndarray, exc: np.ndarray, u: float, p_off: float,
                      seq_id: int, local_radius_m: Optional[float] = None) -> Optional[List[List[float]]]:
    """The 2 x 2 covariance (m^2) of the belief about place ``seq_id``'s position; None without one.

    ``local_radius_m``: the mode's covariance (places within this radius, divided by their mass);
    None: the whole belief's."""
    if moments.n == 0 or not moments.known[seq_id]:
        return None
    x = moments.centred[seq_id]
    keep = moments.known[idx]
    d = moments.centred[idx[keep]] - x
    w = np.asarray(exc, dtype=np.float64)[keep]
    if local_radius_m is not None:
        return _local(moments, d, w + float(u), local_radius_m)
    background = float(u) + float(p_off) / moments.n  # off-map mass: anywhere on the map
    second = background * moments.about(x) + (d * w[:, None]).T.dot(d)
    mass = background * moments.n + float(w.sum())
    cov = second / mass if mass > 0 else moments.about(x) / moments.n
    cov = 0.5 * (cov + cov.T) + moments.floor ** 2 * np.eye(2)
    return _as_list(cov)


def _local(moments: PositionMoments, d: np.ndarray, w: np.ndarray, radius_m: float) -> List[List[float]]:
    near = (d ** 2).sum(axis=1) <= float(radius_m) ** 2
    dn, wn = d[near], w[near]
    mass = float(wn.sum())
    cov = (dn * wn[:, None]).T.dot(dn) / mass if mass > 0 else np.zeros((2, 2))
    cov = cov / min(max(mass, 1e-6), 1.0)  # the mode's spread, widened by the mass it lacks
    return _as_list(0.5 * (cov + cov.T) + moments.floor ** 2 * np.eye(2))


def _as_list(cov: np.ndarray) -> List[List[float]]:
    return [[round(float(cov[0, 0]), 6), round(float(cov[0, 1]), 6)],
            [round(float(cov[1, 0]), 6), round(float(cov[1, 1]), 6)]]
