"""Forward-looking camera views of a synthetic street, by ray casting into a corridor.

The street is modelled locally as a straight corridor (left and right facades at
plus/minus half the street width, the road between them), unrolled along the route:
turns show as the camera panning into them. Each pixel's ray hits a facade, the
road, or nothing (sky, or ground seen through a gap); its texture comes from the
atlas with one cv2.remap, then haze, illumination, blur and sensor noise are applied.
The per-pixel geometry depends only on the camera pose and image size and is cached.
"""
import collections
import math
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.synth.route import FACADE_HEIGHT_M, Route
from jist_edge.synth.texture import TILE_M, Atlas

HFOV_DEG = 70.0
FAR_M = 150.0  # beyond this, rays see only the haze/sky background
FOG_M = 60.0
RIGHT_LANE_M = 2.2  # default camera: centre of the right lane
DEFAULT_PITCH_DEG = 3.0
GEOMETRY_CACHE = 8  # camera poses kept (a query pass sways between a few)


class Condition(object):
    """How one traversal sees the route: camera pose offsets and image degradations.

    gain/gamma/cast change the illumination (cast multiplies B, G, R), noise_sigma is
    Gaussian sensor noise in 8-bit levels, blur_sigma a Gaussian blur in pixels;
    lateral_m shifts the camera right of the lane centre, yaw/pitch in degrees turn
    it (positive: right, up); height_m is its height above the road. ``seed`` drives the noise.
    """

    FIELDS = ("gain", "gamma", "cast", "noise_sigma", "blur_sigma", "lateral_m", "yaw_deg",
              "pitch_deg", "height_m", "seed")

    def __init__(self, gain: float = 1.0, gamma: float = 1.0, cast: Tuple[float, float, float] = (1.0, 1.0, 1.0),
                 noise_sigma: float = 0.0, blur_sigma: float = 0.0, lateral_m: float = 0.0, yaw_deg: float = 0.0,
                 pitch_deg: float = DEFAULT_PITCH_DEG, height_m: float = 1.6, seed: int = 0) -> None:
        self.gain = float(gain)
        self.gamma = float(gamma)
        self.cast = tuple(float(c) for c in cast)
        self.noise_sigma = float(noise_sigma)
        self.blur_sigma = float(blur_sigma)
        self.lateral_m = float(lateral_m)
        self.yaw_deg = float(yaw_deg)
        self.pitch_deg = float(pitch_deg)
        self.height_m = float(height_m)
        self.seed = int(seed)
        if not (self.gain > 0 and self.gamma > 0 and 0.1 <= self.height_m <= 10 and len(self.cast) == 3):
            raise JistEdgeError("synthetic camera condition out of range: {!r}".format(self))

    def replace(self, **changes) -> "Condition":
        values = {name: getattr(self, name) for name in self.FIELDS}
        values.update(changes)
        return Condition(**values)

    def as_dict(self) -> Dict[str, object]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        return "Condition({})".format(", ".join("{}={!r}".format(k, getattr(self, k)) for k in self.FIELDS))


class _Geometry(object):
    """Per-pixel ray hits for one camera pose and image size, relative to the camera.

    Without roll, a ray's vertical part depends only on its row and its horizontal
    part on its column, so most terms are 1-D and the rest one broadcast away.
    """

    def __init__(self, route: Route, layout, height: int, width: int, lateral: float, cam_h: float,
                 yaw: float, pitch: float) -> None:
        f = (width / 2.0) / math.tan(math.radians(HFOV_DEG) / 2.0)
        x = ((np.arange(width) - (width - 1) / 2.0) / f).astype(np.float32)[None, :]
        y = ((np.arange(height) - (height - 1) / 2.0) / f).astype(np.float32)[:, None]
        cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
        up = -y * cp + sp  # (H, 1)
        fwd = cp + y * sp  # (H, 1)
        cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        da = fwd * cy - x * sy  # (H, W)
        dl = fwd * sy + x * cy
        half = route.street_width_m / 2.0
        lateral = float(np.clip(lateral, -half + 0.5, half - 0.5))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t_wall = np.where(dl > 0, np.float32(half - lateral), np.float32(half + lateral)) / np.abs(dl)
            t_ground = np.where(up < 0, cam_h / -up, np.inf).astype(np.float32)  # (H, 1)
            ground = t_ground <= t_wall
            t = np.minimum(t_ground, t_wall)
            ppm = layout.ppm
            z_wall = cam_h + t_wall * up
            wall_row = np.where(dl > 0, np.float32(layout.right_row0 + FACADE_HEIGHT_M * ppm),
                                np.float32(layout.left_row0 + FACADE_HEIGHT_M * ppm)) - z_wall * ppm
            road_row = np.float32(layout.road_row0 + (lateral + half) * ppm) + (t_ground * ppm) * dl
            # |ray|^2 = fwd^2 + x^2 + up^2: yaw does not change it, so it is a sum of 1-D terms.
            dist = t * np.sqrt((fwd * fwd + up * up) + x * x)
            visible = (dist < FAR_M) & (ground | ((z_wall >= 0) & (z_wall < FACADE_HEIGHT_M)))
            ahead = t * da
            map_x = np.where(visible, ahead * ppm, np.float32(-100))
            map_y = np.where(visible, np.where(ground, road_row, wall_row), np.float32(-100))
            self.keep = np.exp(dist * np.float32(-1.0 / FOG_M))  # 0 where nothing is hit
        self.map1, self.map2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        self.fog = 1.0 - self.keep
        haze = np.array(route.haze, np.float32)
        self.haze = np.empty((height, width, 3), np.uint8)
        self.haze[:] = route.haze
        # What shows where no facade or road is hit, by row: sky above the horizon,
        # distant ground (through gaps and beyond FAR_M) below it.
        up1, fwd1 = up[:, 0], fwd[:, 0]
        sky_t = np.clip(np.arctan2(up1, fwd1) / math.radians(40.0), 0.0, 1.0)[:, None] ** 0.7
        sky = haze * (1 - sky_t) + np.array(route.sky_top, np.float32) * sky_t
        with np.errstate(divide="ignore"):
            far = np.where(up1 < 0, cam_h / -up1 * np.sqrt(fwd1 * fwd1 + up1 * up1), 1e4)
        ground_fog = (1.0 - np.exp(-np.minimum(far, 1e4) / FOG_M))[:, None]
        far_ground = np.array(route.asphalt, np.float32) * (1 - ground_fog) + haze * ground_fog
        rows = np.where((up1 < 0)[:, None], far_ground, sky)
        self.background = np.ascontiguousarray(
            np.broadcast_to(np.clip(rows + 0.5, 0, 255).astype(np.uint8)[:, None, :], (height, width, 3))
        )


class Renderer(object):
    """Renders frames of one route; keeps its texture atlas and the last pose's geometry."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.atlas = Atlas(route)
        self._geometries = collections.OrderedDict()  # type: Dict[tuple, _Geometry]
        self._noise = {}  # type: Dict[Tuple[int, int, int, float], np.ndarray]
        self._lut_key = None
        self._lut = None  # type: Optional[np.ndarray]

    def geometry(self, height: int, width: int, condition: Condition, yaw: float) -> _Geometry:
        # Poses are quantized (1 cm, 0.02 degree) and computed from the quantized
        # values, so a frame is the same whether or not the geometry came from cache.
        key = (height, width, round(RIGHT_LANE_M + condition.lateral_m, 2), round(condition.height_m, 2),
               round(yaw * 50) / 50.0, round(condition.pitch_deg * 50) / 50.0)
        geo = self._geometries.pop(key, None)
        if geo is None:
            geo = _Geometry(self.route, self.atlas.layout, *key)
            while len(self._geometries) >= GEOMETRY_CACHE:
                self._geometries.popitem(last=False)
        self._geometries[key] = geo
        return geo

    def render(self, s_m: float, height: int, width: int, condition: Optional[Condition] = None) -> np.ndarray:
        """The view from arc length ``s_m`` (rounded to the texture's 1/pixels_per_m)."""
        if not (height >= 8 and width >= 8):
            raise JistEdgeError("synthetic frame size must be at least 8x8, got {}x{}".format(height, width))
        condition = condition or Condition()
        s_m = float(s_m)
        if not (0.0 <= s_m <= self.route.length_m + 1e-6):
            raise JistEdgeError("position {:.2f} m is outside the route (0..{:.1f} m)".format(s_m, self.route.length_m))
        geo = self.geometry(height, width, condition, condition.yaw_deg + self.route.view_yaw_deg(s_m))
        ppm = self.atlas.layout.ppm
        first = int(math.floor(s_m / TILE_M))
        count = int(math.floor(FAR_M / TILE_M)) + 2  # fixed, so the window changes once per tile
        window = self.atlas.window(first, count)
        shift = int(round((s_m - first * TILE_M) * ppm))
        texel = cv2.remap(window[:, shift:], geo.map1, geo.map2, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=self.atlas.clear)
        alpha = texel[..., 3].astype(np.float32) * np.float32(1.0 / 255.0)
        lit = cv2.blendLinear(cv2.cvtColor(texel, cv2.COLOR_BGRA2BGR), geo.haze, geo.keep, geo.fog)
        frame = cv2.blendLinear(lit, geo.background, alpha, 1.0 - alpha)
        return self._degrade(frame, s_m, condition)

    def _degrade(self, frame: np.ndarray, s_m: float, c: Condition) -> np.ndarray:
        if (c.gain, c.gamma, c.cast) != (1.0, 1.0, (1.0, 1.0, 1.0)):
            key = (c.gain, c.gamma, c.cast)
            if key != self._lut_key:
                levels = (np.arange(256, dtype=np.float64) / 255.0) ** c.gamma * 255.0 * c.gain
                lut = np.stack([levels * k for k in c.cast], axis=-1)
                self._lut = np.clip(lut + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)
                self._lut_key = key
            frame = cv2.LUT(frame, self._lut)
        if c.blur_sigma > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), c.blur_sigma)
        if c.noise_sigma > 0:
            frame = self._add_noise(frame, s_m, c)
        return frame

    def _add_noise(self, frame: np.ndarray, s_m: float, c: Condition) -> np.ndarray:
        """Gaussian noise cut at a per-frame random offset from a seeded noise bank."""
        h, w = frame.shape[:2]
        key = (h, w, c.seed, c.noise_sigma)
        bank = self._noise.get(key)
        if bank is None:
            rng = np.random.RandomState(c.seed % (2 ** 32))
            bank = np.round(rng.standard_normal((h + 64, w + 64, 3)) * c.noise_sigma).astype(np.int16)
            self._noise = {key: bank}
        rng = np.random.RandomState((c.seed * 1000003 + int(round(s_m * 1000))) % (2 ** 32))
        dy, dx = rng.randint(0, 64, size=2)
        noisy = frame.astype(np.int16) + bank[dy:dy + h, dx:dx + w]
        return np.clip(noisy, 0, 255).astype(np.uint8)


_RENDERERS = {}  # type: Dict[int, Renderer]


def renderer_for(route: Route) -> Renderer:
    """One renderer per route object, so texture tiles and geometry are reused."""
    key = id(route)
    found = _RENDERERS.get(key)
    if found is None or found.route is not route:
        if len(_RENDERERS) > 4:
            _RENDERERS.clear()
        found = _RENDERERS[key] = Renderer(route)
    return found


def render_frame(route: Route, s_m: float, height: int = 240, width: int = 320,
                 condition: Optional[Condition] = None) -> np.ndarray:
    """BGR uint8 view from arc length ``s_m`` looking along the route."""
    return renderer_for(route).render(s_m, height, width, condition)
