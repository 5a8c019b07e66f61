"""Textures of a synthetic route: facades and road, unrolled along the street.

The street is drawn once, flat, as an atlas: the left facade, the right facade and
the road surface, each a strip whose x axis is arc length along the route. The
renderer only looks pixels up in it (cv2.remap), which keeps a frame cheap. Strips
are drawn in tiles of ``TILE_M`` metres on demand, so a long route costs memory only
for the few tiles a camera sees.
"""
import collections
import math
from typing import Dict, Tuple

import cv2
import numpy as np

from jist_edge.synth.route import FACADE_HEIGHT_M, INTERSECTION_HALF_M, Building, Prop, Route

TILE_M = 64.0
PAD_PX = 4  # transparent rows between strips, so bilinear lookups never bleed
RIGHT_SHADE = 0.82  # the right facades are in shade


class AtlasLayout(object):
    """Row offsets of the three strips in an atlas tile for a route."""

    def __init__(self, route: Route) -> None:
        ppm = route.pixels_per_m
        self.ppm = ppm
        self.facade_rows = int(round(FACADE_HEIGHT_M * ppm))
        self.left_row0 = PAD_PX
        self.right_row0 = self.left_row0 + self.facade_rows + PAD_PX
        self.road_row0 = self.right_row0 + self.facade_rows + PAD_PX
        self.road_rows = int(round(route.street_width_m * ppm))
        self.rows = self.road_row0 + self.road_rows + PAD_PX
        self.tile_px = int(round(TILE_M * ppm))


def _jitter(colour, rng: np.random.RandomState, amount: float) -> Tuple[int, int, int]:
    return tuple(int(c) for c in np.clip(np.asarray(colour, np.float64) + rng.uniform(-amount, amount, 3), 0, 255))


def _scale(colour, factor: float) -> Tuple[int, int, int]:
    return tuple(int(min(255, max(0, c * factor))) for c in colour)


class _Canvas(object):
    """Metric drawing on one facade strip: x = arc length, y = height above the ground."""

    def __init__(self, img: np.ndarray, a0: float, ppm: int, mirror_text: bool) -> None:
        self.img = img
        self.a0 = a0
        self.ppm = ppm
        self.rows = img.shape[0]
        self.mirror_text = mirror_text

    def x(self, a: float) -> int:
        return int(round((a - self.a0) * self.ppm))

    def y(self, z: float) -> int:
        return int(round(self.rows - z * self.ppm))

    def rect(self, a0: float, z0: float, a1: float, z1: float, colour) -> None:
        cv2.rectangle(self.img, (self.x(a0), self.y(z1)), (self.x(a1) - 1, self.y(z0) - 1), tuple(colour) + (255,), -1)

    def line(self, a0: float, z0: float, a1: float, z1: float, colour, width_m: float) -> None:
        t = max(1, int(round(width_m * self.ppm)))
        cv2.line(self.img, (self.x(a0), self.y(z0)), (self.x(a1), self.y(z1)), tuple(colour) + (255,), t)

    def circle(self, a: float, z: float, r: float, colour) -> None:
        cv2.circle(self.img, (self.x(a), self.y(z)), max(1, int(round(r * self.ppm))), tuple(colour) + (255,), -1)

    def text(self, a0: float, z0: float, a1: float, z1: float, text: str, colour, background) -> None:
        """A sign: text fitted into a box; mirrored on the right side of the street."""
        w, h = self.x(a1) - self.x(a0), self.y(z0) - self.y(z1)
        if w < 4 or h < 4:
            return
        patch = np.zeros((h, w, 4), np.uint8)
        patch[:] = tuple(background) + (255,)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.0, 2)
        scale = min(0.9 * w / tw, 0.75 * h / th)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 1)
        org = ((w - tw) // 2, (h + th) // 2)
        cv2.putText(patch, text, org, cv2.FONT_HERSHEY_DUPLEX, scale, tuple(colour) + (255,), max(1, int(scale * 1.5)), cv2.LINE_AA)
        if self.mirror_text:
            patch = patch[:, ::-1]
        x0, y0 = self.x(a0), self.y(z1)
        cx0, cy0 = max(0, x0), max(0, y0)
        cx1, cy1 = min(self.img.shape[1], x0 + w), min(self.rows, y0 + h)
        if cx1 > cx0 and cy1 > cy0:
            self.img[cy0:cy1, cx0:cx1] = patch[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]


def _draw_building(c: _Canvas, b: Building) -> None:
    rng = np.random.RandomState(b.seed)
    c.rect(b.start, 0, b.end, b.height, b.colour)
    width = b.end - b.start
    if b.material == "brick":  # mortar courses
        mortar = _scale(b.colour, 0.8)
        for z in np.arange(b.ground_h, b.height, 0.5):
            c.line(b.start, z, b.end, z, mortar, 0.04)
    if b.material == "glass":  # curtain wall mullions
        for a in np.arange(b.start + 0.2, b.end, 1.5):
            c.line(a, b.ground_h, a, b.height, b.frame_colour, 0.08)
    if b.cornice:
        c.rect(b.start - 0.1, b.height - 0.5, b.end + 0.1, b.height, _scale(b.colour, rng.choice([0.65, 1.3])))
    bays = max(1, int((width - 0.8) // b.bay_m))
    margin = (width - bays * b.bay_m) / 2.0
    centres = [b.start + margin + (i + 0.5) * b.bay_m for i in range(bays)]
    z = b.ground_h + 0.8
    floor = 0
    while z + b.win_h < b.height - 0.7:
        for a in centres:
            _draw_window(c, b, rng, a, z)
        if b.balconies and floor % 2 == 0:
            c.rect(b.start + margin, z - 0.25, b.end - margin, z, _scale(b.colour, 0.7))
        z += b.floor_h
        floor += 1
    c.rect(b.start, b.ground_h - 0.25, b.end, b.ground_h, _scale(b.colour, 0.75))  # string course
    if b.shop:
        _draw_shop(c, b, rng)
    else:
        _draw_entrance(c, b, rng, centres)


def _draw_window(c: _Canvas, b: Building, rng: np.random.RandomState, a: float, z: float) -> None:
    hw = b.win_w / 2.0
    c.rect(a - hw - 0.1, z - 0.1, a + hw + 0.1, z + b.win_h + 0.1, b.frame_colour)
    roll = rng.rand()
    if roll < 0.12:
        glass = _jitter((90, 200, 240), rng, 20)  # lit
    elif roll < 0.2:
        glass = _jitter((40, 40, 45), rng, 10)  # open / dark
    else:
        glass = _jitter(b.glass_colour, rng, 12)
    c.rect(a - hw, z, a + hw, z + b.win_h, glass)
    if rng.rand() < 0.35:  # blinds
        drop = b.win_h * rng.uniform(0.2, 0.7)
        c.rect(a - hw, z + b.win_h - drop, a + hw, z + b.win_h, _jitter((200, 210, 215), rng, 30))
    c.line(a, z, a, z + b.win_h, b.frame_colour, 0.05)
    c.rect(a - hw - 0.15, z - 0.18, a + hw + 0.15, z - 0.08, _scale(b.colour, 1.25))  # sill


def _draw_shop(c: _Canvas, b: Building, rng: np.random.RandomState) -> None:
    top = b.ground_h - 0.35
    c.rect(b.start + 0.3, 0.0, b.end - 0.3, top, _scale(b.colour, 0.6))
    c.rect(b.start + 0.5, 0.3, b.end - 0.5, top - 1.0, _jitter((70, 60, 50), rng, 15))  # shop window
    for a in np.arange(b.start + 2.0, b.end - 1.0, rng.uniform(1.8, 3.0)):
        c.line(a, 0.3, a, top - 1.0, (40, 40, 40), 0.08)
    door = b.start + rng.uniform(0.8, max(0.9, b.end - b.start - 2.0))
    c.rect(door, 0.0, door + 1.1, 2.3, _jitter((50, 70, 90), rng, 20))
    sign_l, sign_r = b.start + 0.6, b.end - 0.6
    c.text(sign_l, top - 0.95, sign_r, top - 0.1, b.sign_text, _scale(b.sign_colour, 0.25) if sum(b.sign_colour) > 380 else (245, 245, 245), b.sign_colour)
    if b.awning is not None:
        z0, z1 = top - 1.6, top - 1.0
        stripe = 0.5
        for i, a in enumerate(np.arange(b.start + 0.4, b.end - 0.4, stripe)):
            colour = b.awning if i % 2 == 0 else (235, 235, 235)
            c.rect(a, z0, min(a + stripe, b.end - 0.4), z1, colour)
        c.line(b.start + 0.4, z0, b.end - 0.4, z0, _scale(b.awning, 0.5), 0.08)


def _draw_entrance(c: _Canvas, b: Building, rng: np.random.RandomState, centres) -> None:
    door_at = centres[rng.randint(len(centres))]
    for a in centres:
        if a == door_at:
            c.rect(a - 0.75, 0.0, a + 0.75, 2.6, _scale(b.colour, 0.55))
            c.rect(a - 0.6, 0.0, a + 0.6, 2.45, _jitter((35, 55, 80), rng, 20))
            c.rect(a - 0.9, 0.0, a + 0.9, 0.25, (150, 150, 150))  # step
        else:
            _draw_window(c, b, rng, a, 1.0)


def _draw_prop(c: _Canvas, p: Prop) -> None:
    rng = np.random.RandomState(p.seed)
    if p.kind == "tree":
        c.rect(p.at - 0.18, 0.0, p.at + 0.18, 2.8 * p.size, (30, 50, 70))
        greens = [(40, 110, 60), (30, 90, 45), (50, 130, 80), (35, 100, 70)]
        for _ in range(7):
            da, dz = rng.uniform(-1.4, 1.4) * p.size, rng.uniform(3.2, 5.2) * p.size
            c.circle(p.at + da, dz, rng.uniform(0.9, 1.6) * p.size, _jitter(greens[rng.randint(len(greens))], rng, 15))
    else:
        top = 6.5 * p.size
        c.line(p.at, 0.0, p.at, top, (55, 55, 60), 0.15)
        c.line(p.at, top, p.at + 1.2, top + 0.3, (55, 55, 60), 0.1)
        c.rect(p.at + 0.9, top - 0.05, p.at + 1.6, top + 0.3, (200, 230, 240))


def draw_facade_tile(route: Route, side: int, index: int, layout: AtlasLayout) -> np.ndarray:
    """BGRA strip of one side for tile ``index``; alpha 0 where the sky shows."""
    a0 = index * TILE_M
    img = np.zeros((layout.facade_rows, layout.tile_px, 4), np.uint8)
    canvas = _Canvas(img, a0, layout.ppm, mirror_text=(side == 1))
    for b in route.buildings_between(side, a0 - 1.0, a0 + TILE_M + 1.0):
        _draw_building(canvas, b)
    for p in route.props[side]:
        if a0 - 4 < p.at < a0 + TILE_M + 4:
            _draw_prop(canvas, p)
    _weather(img, route.seed, index, side, RIGHT_SHADE if side == 1 else 1.0)
    # Transparent texels carry the haze colour, so bilinear lookups at roof lines
    # blend towards the sky instead of leaving a dark fringe.
    img[img[..., 3] == 0, :3] = route.haze
    return img


def _weather(img: np.ndarray, seed: int, index: int, side: int, shade: float = 1.0) -> None:
    """Low-frequency grime so flat colours get some texture (and the shade of a side)."""
    rng = np.random.RandomState((seed * 7919 + index * 31 + side) % (2 ** 32))
    small = rng.uniform(0.88 * shade, 1.1 * shade, (max(2, img.shape[0] // 6), max(2, img.shape[1] // 6)))
    factor = cv2.resize(small.astype(np.float32), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    img[:] = cv2.multiply(img, cv2.merge([factor, factor, factor, np.ones_like(factor)]), dtype=cv2.CV_8U)


def draw_road_tile(route: Route, index: int, layout: AtlasLayout) -> np.ndarray:
    """BGRA road strip: rows run from the left wall (row 0) to the right wall."""
    ppm = layout.ppm
    a0 = index * TILE_M
    rows, cols = layout.road_rows, layout.tile_px
    img = np.zeros((rows, cols, 4), np.uint8)
    img[..., 3] = 255
    img[..., :3] = route.asphalt
    half = route.street_width_m / 2.0

    def xa(a: float) -> int:
        return int(round((a - a0) * ppm))

    def yl(lat: float) -> int:
        return int(round((lat + half) * ppm))

    def rect(a_lo, l_lo, a_hi, l_hi, colour) -> None:
        cv2.rectangle(img, (xa(a_lo), yl(l_lo)), (xa(a_hi) - 1, yl(l_hi) - 1), tuple(colour) + (255,), -1)

    kerb = half - route.sidewalk_m
    crossings = [c for c in route.intersections if a0 - 20 < c < a0 + TILE_M + 20]
    # Sidewalks with joints, interrupted at intersections.
    for sign in (-1, 1):
        lo, hi = (-half, -kerb) if sign < 0 else (kerb, half)
        rect(a0 - 1, lo, a0 + TILE_M + 1, hi, (150, 152, 150))
        for a in np.arange(math.floor(a0 / 1.5) * 1.5, a0 + TILE_M + 1.5, 1.5):
            cv2.line(img, (xa(a), yl(lo)), (xa(a), yl(hi)), (120, 122, 120, 255), 1)
        edge = -kerb if sign < 0 else kerb
        rect(a0 - 1, edge - 0.15, a0 + TILE_M + 1, edge + 0.15, (185, 185, 185))  # kerb stone
        rect(a0 - 1, edge - 0.45 * sign - 0.08, a0 + TILE_M + 1, edge - 0.45 * sign + 0.08, (220, 220, 220))  # edge line
        for cpos in crossings:
            rect(cpos - INTERSECTION_HALF_M, lo, cpos + INTERSECTION_HALF_M, hi, route.asphalt)
    # Dashed centre line, continuous across tiles because dashes sit at multiples of 9 m.
    for a in np.arange(math.floor(a0 / 9.0) * 9.0, a0 + TILE_M + 9.0, 9.0):
        rect(a, -0.08, a + 3.0, 0.08, (210, 225, 230))
    for cpos in crossings:
        rect(cpos - INTERSECTION_HALF_M, -kerb, cpos + INTERSECTION_HALF_M, kerb, route.asphalt)
        z0 = cpos - INTERSECTION_HALF_M - 4.0
        for lat in np.arange(-kerb + 0.3, kerb - 0.3, 1.0):
            rect(z0, lat, z0 + 3.0, lat + 0.5, (225, 228, 230))
        rect(z0 - 0.8, -kerb, z0 - 0.4, kerb, (225, 228, 230))  # stop line
    for m in route.road_marks:
        if a0 - 3 < m.at < a0 + TILE_M + 3:
            if m.kind == "manhole":
                cv2.circle(img, (xa(m.at), yl(m.size)), int(0.35 * ppm), (50, 52, 55, 255), -1)
                cv2.circle(img, (xa(m.at), yl(m.size)), int(0.35 * ppm), (95, 95, 95, 255), 1)
            else:
                rng = np.random.RandomState(m.seed)
                shade = _scale(route.asphalt, rng.uniform(0.7, 0.85))
                rect(m.at, m.size - rng.uniform(0.3, 1.2), m.at + rng.uniform(1.0, 3.5), m.size + rng.uniform(0.3, 1.2), shade)
    _weather(img, route.seed + 1, index, 2)
    return img


class Atlas(object):
    """Tiles drawn on demand and windows of consecutive tiles for the renderer."""

    def __init__(self, route: Route, max_tiles: int = 12) -> None:
        self.route = route
        self.layout = AtlasLayout(route)
        self.max_tiles = max_tiles
        self._tiles = collections.OrderedDict()  # type: Dict[int, np.ndarray]
        self._window_key = None
        self._window = None  # type: np.ndarray
        self.clear = tuple(route.haze) + (0,)  # what lies outside the atlas

    def tile(self, index: int) -> np.ndarray:
        if index in self._tiles:
            self._tiles.move_to_end(index)
            return self._tiles[index]
        lay = self.layout
        tile = np.empty((lay.rows, lay.tile_px, 4), np.uint8)
        tile[:] = self.clear
        tile[lay.left_row0:lay.left_row0 + lay.facade_rows] = draw_facade_tile(self.route, 0, index, lay)
        tile[lay.right_row0:lay.right_row0 + lay.facade_rows] = draw_facade_tile(self.route, 1, index, lay)
        tile[lay.road_row0:lay.road_row0 + lay.road_rows] = draw_road_tile(self.route, index, lay)
        self._tiles[index] = tile
        while len(self._tiles) > self.max_tiles:
            self._tiles.popitem(last=False)
        return tile

    def window(self, first: int, count: int) -> np.ndarray:
        """Tiles first..first+count-1 side by side (x = 0 is arc length first*TILE_M)."""
        key = (first, count)
        if key != self._window_key:
            self._window = np.ascontiguousarray(np.concatenate([self.tile(i) for i in range(first, first + count)], axis=1))
            self._window_key = key
        return self._window
