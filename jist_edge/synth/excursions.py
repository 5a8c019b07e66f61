"""Query passes that leave the map: a detour through streets the database never saw, and kidnaps.

A plain query pass drives the mapped route from start to end. A planned pass is made of
segments: stretches of the mapped route (``kind="route"``) and, with a detour, a stretch
of other streets (``kind="detour"``): a second seeded route, rendered like the first, whose
positions run parallel to the mapped route ``DETOUR_OFFSET_M`` to its side, so that the
ground truth (positions within the threshold) has no database place near them. After the
detour the pass cuts back onto the route where it would have been had it not left. A
kidnap ends a route segment and starts the next one at another part of the route (at
least ``KIDNAP_MIN_JUMP_M`` away), as a robot that is carried somewhere else would see it.
Everything is drawn from the seed.
"""
import math
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.synth.render import RIGHT_LANE_M, renderer_for
from jist_edge.synth.route import Route
from jist_edge.synth.traversal import Traversal, frames_that_fit

DETOUR_OFFSET_M = 80.0  # the detour streets run this far to the side of the mapped route
DETOUR_FRACTION = 0.2  # of the route length, driven off the map
DETOUR_MIN_CLEARANCE_M = 50.0  # every detour position is at least this far from the mapped route
KIDNAP_MIN_JUMP_M = 100.0
_DETOUR_SEED_OFFSET = 100003


class Segment(object):
    """Consecutive frames of one pass: arc positions on ``route``, positions ``lateral_m`` to its side.

    ``street`` is the route whose pixels are rendered (the mapped route, or the detour's own streets).
    """

    __slots__ = ("kind", "route", "street", "s", "side_m")

    def __init__(self, kind: str, route: Route, s: np.ndarray, street: Optional[Route] = None,
                 side_m: float = 0.0) -> None:
        self.kind = kind
        self.route = route
        self.street = street if street is not None else route
        self.s = np.asarray(s, dtype=np.float64)
        self.side_m = float(side_m)

    def describe(self, first_frame: int) -> Dict[str, Any]:
        return {"kind": self.kind, "first_frame": int(first_frame), "frames": int(len(self.s)),
                "from_m": round(float(self.s[0]), 2) if len(self.s) else None,
                "to_m": round(float(self.s[-1]), 2) if len(self.s) else None, "side_m": self.side_m}


class PlannedTraversal(Traversal):
    """A query pass made of segments; iterating yields ``(frame_bgr_uint8, easting, northing)``."""

    def __init__(self, route: Route, segments: List[Segment], height: int = 240, width: int = 320,
                 seed: Optional[int] = None, spacing_m: Optional[float] = None) -> None:
        count = sum(len(seg.s) for seg in segments)
        if count < 1:
            raise JistEdgeError("a planned query pass needs at least one frame")
        first = segments[0].s[0] if len(segments[0].s) else 0.0
        super(PlannedTraversal, self).__init__(route, "query", spacing_m, height, width, seed,
                                               start_m=float(min(max(first, 0.0), route.length_m)), count=1)
        self.segments = [seg for seg in segments if len(seg.s)]
        self.count = count

    def arc_positions(self) -> np.ndarray:
        return np.concatenate([seg.s for seg in self.segments])

    def _frames(self) -> Iterator[Tuple[Segment, float, Any, float, float]]:
        for seg in self.segments:
            for s in seg.s:
                c = self.condition_at(float(s))
                along = float(s) if seg.street is seg.route else float(s - seg.s[0])
                e, n = seg.route.position(float(s), RIGHT_LANE_M + c.lateral_m + seg.side_m)
                yield seg, along, c, float(e), float(n)

    def samples(self) -> List[Tuple[float, Any, float, float]]:
        return [(along, c, e, n) for _, along, c, e, n in self._frames()]

    def __iter__(self) -> Iterator[Tuple[np.ndarray, float, float]]:
        for seg, along, c, e, n in self._frames():
            yield renderer_for(seg.street).render(along, self.height, self.width, c), e, n

    def describe(self) -> Dict[str, object]:
        out = super(PlannedTraversal, self).describe()
        out["frames"] = self.count
        segments, first = [], 0
        for seg in self.segments:
            segments.append(seg.describe(first))
            first += len(seg.s)
        out["segments"] = segments
        out["events"] = plan_events(segments)
        return out


def plan_events(segments: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Where the pass leaves the map, comes back, or is carried elsewhere (by first frame)."""
    events = []
    for prev, seg in zip(segments, segments[1:]):
        if seg["kind"] == "detour":
            kind = "leave"
        elif prev["kind"] == "detour":
            kind = "return"
        else:
            kind = "kidnap"
        events.append({"kind": kind, "frame": seg["first_frame"]})
    return events


def plan_query_pass(route: Route, spacing_m: float, start_m: float, detour: bool = False, kidnaps: int = 0,
                    seed: int = 0, database_positions: Optional[np.ndarray] = None) -> List[Segment]:
    """The segments of a query pass with an optional detour and ``kidnaps`` jumps, about as many
    frames as the plain pass; ``database_positions`` (N, 2) lets the detour check its clearance."""
    if kidnaps < 0:
        raise JistEdgeError("--kidnap must be 0 or more, got {}".format(kidnaps))
    total = frames_that_fit(route.length_m, start_m, spacing_m)
    per = total // (kidnaps + 1)
    if per < 8:
        raise JistEdgeError("a {:.0f} m route is too short for {} kidnaps ({} frames between them)".format(
            route.length_m, kidnaps, per))
    rng = np.random.RandomState((seed * 2654435761 + 11) % (2 ** 32))
    starts = [float(start_m)]
    for _ in range(kidnaps):
        starts.append(_kidnap_target(route, starts[-1] + per * spacing_m, per * spacing_m, rng))
    segments = [Segment("route", route, s0 + spacing_m * np.arange(per if i < kidnaps else total - per * kidnaps))
                for i, s0 in enumerate(starts)]
    segments = [_clip_to_route(seg, route) for seg in segments]
    if detour:
        longest = int(np.argmax([len(seg.s) for seg in segments]))
        segments[longest:longest + 1] = _with_detour(route, segments[longest], spacing_m, seed, database_positions)
    return [seg for seg in segments if len(seg.s)]


def _clip_to_route(seg: Segment, route: Route) -> Segment:
    return Segment(seg.kind, route, seg.s[seg.s <= route.length_m + 1e-9])


def _kidnap_target(route: Route, here_m: float, span_m: float, rng: np.random.RandomState) -> float:
    """A start at least KIDNAP_MIN_JUMP_M from ``here_m`` with ``span_m`` of route after it."""
    room = route.length_m - span_m
    jump = min(KIDNAP_MIN_JUMP_M, route.length_m / 4.0)
    candidates = [s for s in np.linspace(0.0, max(room, 0.0), 64) if abs(s - here_m) >= jump]
    if not candidates:
        raise JistEdgeError("the {:.0f} m route has no place {:.0f} m from {:.0f} m to be kidnapped to".format(
            route.length_m, jump, here_m))
    return float(candidates[rng.randint(len(candidates))])


def _with_detour(route: Route, seg: Segment, spacing_m: float, seed: int,
                 database_positions: Optional[np.ndarray]) -> List[Segment]:
    """Split ``seg`` at its middle: route, a detour along a parallel street, route again."""
    length = max(DETOUR_FRACTION * route.length_m, 6 * spacing_m)
    n_off = int(math.floor(length / spacing_m))
    if len(seg.s) < n_off + 4:
        raise JistEdgeError("the query pass is too short for a detour of {:.0f} m".format(length))
    street = Route(seed=(seed + _DETOUR_SEED_OFFSET) % (2 ** 31), length_m=n_off * spacing_m + 1.0)
    for shift in range(0, len(seg.s) - n_off - 3):
        for a in sorted({(len(seg.s) - n_off) // 2 + shift, (len(seg.s) - n_off) // 2 - shift}):
            if not 2 <= a <= len(seg.s) - n_off - 2:
                continue
            for side in (DETOUR_OFFSET_M, -DETOUR_OFFSET_M):
                off = seg.s[a:a + n_off]
                if _clear(route, off, side, database_positions):
                    return [Segment("route", route, seg.s[:a]), Segment("detour", route, off, street, side),
                            Segment("route", route, seg.s[a + n_off:])]
    raise JistEdgeError("no stretch of this route leaves room for a detour {:.0f} m to its side".format(
        DETOUR_OFFSET_M))


def _clear(route: Route, s: np.ndarray, side_m: float, database_positions: Optional[np.ndarray]) -> bool:
    """Whether every detour position keeps DETOUR_MIN_CLEARANCE_M from the mapped route."""
    e, n = route.position(s, RIGHT_LANE_M + side_m)
    detour = np.stack([e, n], axis=1)
    if database_positions is None:
        ref_s = np.arange(0.0, route.length_m + 1e-9, 1.0)
        database_positions = np.stack(route.position(ref_s, RIGHT_LANE_M), axis=1)
    d2 = ((detour[:, None, :] - np.asarray(database_positions)[None, :, :]) ** 2).sum(axis=2)
    return bool(d2.min() >= DETOUR_MIN_CLEARANCE_M ** 2)
