"""How far the route filter's belief is spread over the map: a 2 x 2 covariance in metres squared.

A robot's state estimator (robot_localization's EKF, Nav2's AMCL) weighs a pose by its
covariance. The route filter's belief is a mass per place plus an off-map mass, so the
covariance of the estimate is the second moment of the places' positions about the
reported position, weighted by the belief:

* each supported place i carries ``u + exc[i]``, every other place the background ``u``
  (summed in closed form from the map's moments, so a frame costs O(window), not O(map));
* the off-map mass is spread like the background (the vehicle may be anywhere), which
  makes the covariance about as large as the map itself when the filter is lost;
* a floor of ``floor_m`` squared on the diagonal (the place spacing: a place is never
  known better than the distance between two places), so the covariance is never zero.

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
                      seq_id: int) -> Optional[List[List[float]]]:
    """The 2 x 2 covariance (m^2) of the belief about place ``seq_id``'s position; None without one."""
    if moments.n == 0 or not moments.known[seq_id]:
        return None
    x = moments.centred[seq_id]
    keep = moments.known[idx]
    d = moments.centred[idx[keep]] - x
    w = np.asarray(exc, dtype=np.float64)[keep]
    background = float(u) + float(p_off) / moments.n  # off-map mass: anywhere on the map
    second = background * moments.about(x) + (d * w[:, None]).T.dot(d)
    mass = background * moments.n + float(w.sum())
    cov = second / mass if mass > 0 else moments.about(x) / moments.n
    cov = 0.5 * (cov + cov.T) + moments.floor ** 2 * np.eye(2)
    return _as_list(cov)


def _as_list(cov: np.ndarray) -> List[List[float]]:
    return [[round(float(cov[0, 0]), 6), round(float(cov[0, 1]), 6)],
            [round(float(cov[1, 0]), 6), round(float(cov[1, 1]), 6)]]
