"""Geometry and layout of a synthetic street route (no pixels here).

A route is a smooth polyline in metres (UTM-like easting/northing) made of straights
and turns, plus everything that stands along it: buildings on both sides, street
trees and lamp poles, intersections with crosswalks, and road marks. Everything is
drawn from one seed, so two traversals of the same route see the same places.
"""
import bisect
import math
from typing import List, Optional, Tuple

import numpy as np

from jist_edge.errors import JistEdgeError

# How far ahead of the drivable length the scenery goes, so a camera at the end of
# the route still looks down a built street.
LOOKAHEAD_M = 170.0
SAMPLE_M = 0.25
TURN_RADIUS_M = 14.0
INTERSECTION_HALF_M = 7.0
FACADE_HEIGHT_M = 30.0  # tallest thing a facade texture holds (buildings, trees)

# Base colours (BGR) per facade material; each building jitters its own.
MATERIALS = {
    "brick": [(40, 60, 150), (50, 75, 165), (45, 55, 120), (60, 90, 170)],
    "plaster": [(170, 200, 220), (150, 190, 215), (200, 215, 225), (140, 170, 200), (180, 180, 150), (160, 200, 190)],
    "concrete": [(150, 150, 150), (130, 135, 140), (175, 170, 165), (110, 115, 120)],
    "glass": [(120, 100, 80), (110, 110, 90), (130, 120, 100)],
    "paint": [(90, 140, 200), (120, 160, 110), (180, 140, 120), (100, 100, 170), (200, 190, 230)],
}
MATERIAL_NAMES = sorted(MATERIALS)


class Building(object):
    """One facade: its span along the street, height and style; details come from ``seed``."""

    __slots__ = ("side", "start", "end", "height", "material", "colour", "floor_h", "ground_h",
                 "bay_m", "win_w", "win_h", "frame_colour", "glass_colour", "shop", "awning",
                 "sign_colour", "sign_text", "cornice", "balconies", "seed")

    def __init__(self, side: int, start: float, end: float, rng: np.random.RandomState) -> None:
        self.side = side
        self.start = start
        self.end = end
        self.material = MATERIAL_NAMES[rng.randint(len(MATERIAL_NAMES))]
        palette = MATERIALS[self.material]
        base = np.array(palette[rng.randint(len(palette))], dtype=np.float64)
        self.colour = tuple(int(c) for c in np.clip(base * rng.uniform(0.8, 1.15) + rng.uniform(-12, 12, 3), 0, 255))
        self.height = float(rng.uniform(7.0, 25.0))
        self.floor_h = float(rng.uniform(2.9, 3.7))
        self.ground_h = float(rng.uniform(3.6, 4.6))
        self.bay_m = float(rng.uniform(2.0, 3.6))
        self.win_w = float(min(rng.uniform(0.8, 1.7), self.bay_m - 0.5))
        self.win_h = float(min(rng.uniform(1.2, 2.0), self.floor_h - 0.9))
        self.frame_colour = tuple(int(c) for c in (rng.choice([235, 60, 190]) + rng.uniform(-15, 15, 3)).clip(0, 255))
        self.glass_colour = tuple(int(c) for c in (rng.uniform(40, 90) + rng.uniform(-10, 25, 3)).clip(0, 255))
        self.shop = bool(rng.rand() < 0.6)
        self.awning = tuple(int(c) for c in rng.randint(20, 230, 3)) if rng.rand() < 0.5 else None
        self.sign_colour = tuple(int(c) for c in rng.randint(0, 255, 3))
        letters = "ABCDEFGHIKLMNOPRSTUVWZ"
        self.sign_text = "".join(letters[i] for i in rng.randint(len(letters), size=rng.randint(3, 9)))
        self.cornice = bool(rng.rand() < 0.6)
        self.balconies = bool(rng.rand() < 0.25)
        self.seed = int(rng.randint(2 ** 31 - 1))


class Prop(object):
    """A street tree or lamp pole in front of a facade, or a mark on the road."""

    __slots__ = ("kind", "side", "at", "size", "seed")

    def __init__(self, kind: str, side: int, at: float, size: float, seed: int) -> None:
        self.kind = kind
        self.side = side
        self.at = at
        self.size = size
        self.seed = seed


class Route(object):
    """A seeded street route: centreline positions by arc length and what stands along it.

    ``side`` 0 is the left of the driving direction, 1 the right. Arc length ``s`` runs
    from 0 to ``length_m``; scenery continues ``LOOKAHEAD_M`` beyond.
    """

    def __init__(self, seed: int = 0, length_m: float = 600.0, street_width_m: Optional[float] = None,
                 origin: Tuple[float, float] = (500000.0, 4000000.0), pixels_per_m: int = 16) -> None:
        if not (length_m > 0 and math.isfinite(length_m)):
            raise JistEdgeError("route length must be a positive number of metres, got {}".format(length_m))
        if not 4 <= pixels_per_m <= 64:
            raise JistEdgeError("route texture resolution must be 4..64 pixels per metre, got {}".format(pixels_per_m))
        self.seed = int(seed)
        self.length_m = float(length_m)
        self.pixels_per_m = int(pixels_per_m)
        rng = np.random.RandomState(self.seed % (2 ** 32))
        self.street_width_m = float(street_width_m if street_width_m else rng.uniform(15.0, 19.0))
        self.sidewalk_m = float(rng.uniform(2.6, 3.6))
        self.sky_top = tuple(int(c) for c in rng.uniform([170, 120, 60], [230, 180, 140]))
        self.haze = tuple(int(c) for c in rng.uniform([200, 195, 185], [235, 225, 215]))
        self.asphalt = tuple(int(c) for c in np.full(3, rng.uniform(60, 95)) + rng.uniform(-4, 4, 3))
        self.extent_m = self.length_m + LOOKAHEAD_M
        self._build_path(rng, origin)
        self.intersections = self._place_intersections(rng)
        self.buildings = [self._place_buildings(rng, side) for side in (0, 1)]
        self._starts = [[b.start for b in side] for side in self.buildings]
        self._max_width = max(b.end - b.start for side in self.buildings for b in side)
        self.props = [self._place_props(rng, side) for side in (0, 1)]
        self.road_marks = self._place_road_marks(rng)

    # -- centreline ---------------------------------------------------------------
    def _build_path(self, rng: np.random.RandomState, origin: Tuple[float, float]) -> None:
        pieces = []  # (length, curvature)
        total = 0.0
        self.turns = []  # type: List[float]
        while total < self.extent_m:
            straight = float(rng.uniform(90.0, 220.0))
            pieces.append((straight, 0.0))
            total += straight
            angle = math.radians(float(rng.choice([90, 90, 90, 60, 45, 30]))) * (1 if rng.rand() < 0.5 else -1)
            arc = TURN_RADIUS_M * abs(angle)
            pieces.append((arc, angle / arc))
            self.turns.append(total + arc / 2.0)
            total += arc
        n = int(math.ceil(total / SAMPLE_M)) + 1
        s = np.arange(n) * SAMPLE_M
        ends = np.cumsum([p[0] for p in pieces])
        idx = np.minimum(np.searchsorted(ends, s, side="right"), len(pieces) - 1)
        curvature = np.array([p[1] for p in pieces])[idx]
        heading0 = float(rng.uniform(0, 2 * math.pi))
        heading = heading0 + np.concatenate([[0.0], np.cumsum(curvature[:-1] * SAMPLE_M)])
        mid = heading[:-1] + 0.5 * np.diff(heading)
        x = origin[0] + np.concatenate([[0.0], np.cumsum(np.cos(mid) * SAMPLE_M)])
        y = origin[1] + np.concatenate([[0.0], np.cumsum(np.sin(mid) * SAMPLE_M)])
        self._s, self._x, self._y, self._heading = s, x, y, heading

    def position(self, s_m, lateral_m=0.0) -> Tuple[np.ndarray, np.ndarray]:
        """(easting, northing) at arc length ``s_m``, ``lateral_m`` to the right of the centreline."""
        x = np.interp(s_m, self._s, self._x)
        y = np.interp(s_m, self._s, self._y)
        h = np.interp(s_m, self._s, self._heading)
        return x + np.sin(h) * lateral_m, y - np.cos(h) * lateral_m

    def heading(self, s_m) -> np.ndarray:
        """Direction of travel in radians, counter-clockwise from east."""
        return np.interp(s_m, self._s, self._heading)

    def view_yaw_deg(self, s_m: float, lookahead_m: float = 12.0) -> float:
        """The camera pans into an upcoming turn (positive = to the right)."""
        turn = float(self.heading(s_m + lookahead_m) - self.heading(s_m))
        return float(np.clip(-math.degrees(turn) * 0.35, -12.0, 12.0))

    # -- scenery --------------------------------------------------------------------
    def _place_intersections(self, rng: np.random.RandomState) -> List[float]:
        points = list(self.turns)
        a = float(rng.uniform(40, 120))
        while a < self.extent_m:
            if all(abs(a - t) > 45 for t in points):
                points.append(a)
            a += float(rng.uniform(110, 260))
        return sorted(points)

    def _gap_after(self, a: float) -> Tuple[float, float]:
        """The next intersection gap (start, end) beginning after ``a``."""
        for c in self.intersections:
            if c + INTERSECTION_HALF_M > a:
                return c - INTERSECTION_HALF_M, c + INTERSECTION_HALF_M
        return float("inf"), float("inf")

    def _place_buildings(self, rng: np.random.RandomState, side: int) -> List[Building]:
        out = []  # type: List[Building]
        a = -30.0
        while a < self.extent_m + 10:
            gap0, gap1 = self._gap_after(a)
            if a >= gap0:
                a = gap1
                continue
            end = min(a + float(rng.uniform(6.0, 22.0)), gap0)
            if end - a >= 3.0:
                out.append(Building(side, a, end, rng))
            a = end
            if rng.rand() < 0.12:
                a += float(rng.uniform(1.5, 4.0))  # an alley
        return out

    def _place_props(self, rng: np.random.RandomState, side: int) -> List[Prop]:
        props = []  # type: List[Prop]
        a = float(rng.uniform(0, 20)) - 20
        while a < self.extent_m + 10:
            kind = "tree" if rng.rand() < 0.45 else "pole"
            props.append(Prop(kind, side, a, float(rng.uniform(0.8, 1.3)), int(rng.randint(2 ** 31 - 1))))
            a += float(rng.uniform(9.0, 35.0))
        return [p for p in props if all(abs(p.at - c) > INTERSECTION_HALF_M + 1 for c in self.intersections)]

    def _place_road_marks(self, rng: np.random.RandomState) -> List[Prop]:
        marks = []  # type: List[Prop]
        a = float(rng.uniform(0, 15))
        half = self.street_width_m / 2 - self.sidewalk_m
        while a < self.extent_m:
            kind = "manhole" if rng.rand() < 0.5 else "patch"
            lateral = float(rng.uniform(-half + 0.8, half - 0.8))
            marks.append(Prop(kind, 0, a, lateral, int(rng.randint(2 ** 31 - 1))))
            a += float(rng.uniform(6.0, 30.0))
        return marks

    def buildings_between(self, side: int, a0: float, a1: float) -> List[Building]:
        """Buildings on ``side`` that overlap [a0, a1)."""
        starts = self._starts[side]
        lo = bisect.bisect_left(starts, a0 - self._max_width)
        hi = bisect.bisect_left(starts, a1)
        return [b for b in self.buildings[side][lo:hi] if b.end > a0]

    def describe(self) -> dict:
        e, n = self.position(np.array([0.0, self.length_m]))
        return {
            "seed": self.seed,
            "length_m": self.length_m,
            "street_width_m": round(self.street_width_m, 3),
            "turns_m": [round(t, 2) for t in self.turns if t < self.length_m],
            "intersections_m": [round(c, 2) for c in self.intersections if c < self.length_m],
            "start": [float(e[0]), float(n[0])],
            "end": [float(e[1]), float(n[1])],
            "buildings": sum(1 for side in self.buildings for b in side if b.start < self.length_m),
        }
