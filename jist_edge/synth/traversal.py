"""Synthetic street routes: a database pass and a query pass of the same places.

Feeds the tests, the demo and the benchmarks with data where place recognition is a
real task: the query pass sees the same facades as the database pass, but under other
light, with noise and blur, from a slightly different lane position and heading, at a
different speed (other frame spacing and starting offset). Everything is seeded.

    route = Route(seed=0, length_m=600)
    for frame, easting, northing in make_traversal(route, "query"):
        ...
    make_route_dataset("/tmp/route", frames=300)   # database/ and queries/ images (synth.dataset)

Images are named ``000123@500012.34@4000045.67@@.jpg`` (frame index, then easting and
northing, the VPR convention read by jist_edge.positions); videos are MJPG .avi files
with a ``frame,easting,northing`` CSV of the same name.
"""
import math
import os
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import atomic_path, staged_directory
from jist_edge.fileio import check_complete
from jist_edge.positions import write_positions_csv
from jist_edge.synth.render import DEFAULT_PITCH_DEG, RIGHT_LANE_M, Condition, render_frame, renderer_for
from jist_edge.synth.route import Route

__all__ = ["Route", "Condition", "Traversal", "render_frame", "make_traversal", "query_condition",
           "write_images", "write_video", "image_name", "video_positions_path",
           "frames_that_fit"]

DATABASE_SPACING_M = 2.0
QUERY_SPEED_RATIO = 1.3  # the query pass drives 30% faster
QUERY_OFFSET_M = 0.7
JPEG_QUALITY = 95

Progress = Optional[Callable[[int], None]]


def query_condition(seed: int) -> Condition:
    """A seeded "other day" for the query pass: light, noise, blur and camera pose."""
    rng = np.random.RandomState((seed * 7919 + 17) % (2 ** 32))
    gain = float(rng.uniform(0.6, 0.8) if rng.rand() < 0.5 else rng.uniform(1.15, 1.3))
    return Condition(
        gain=gain,
        gamma=float(rng.uniform(0.75, 1.35)),
        cast=tuple(float(c) for c in 1.0 + rng.uniform(-0.12, 0.12, 3)),
        noise_sigma=float(rng.uniform(3.0, 6.0)),
        blur_sigma=float(rng.uniform(0.6, 1.2)),
        lateral_m=float(rng.uniform(-0.8, 0.8)),
        yaw_deg=float(rng.uniform(-3.0, 3.0)),
        pitch_deg=DEFAULT_PITCH_DEG + float(rng.uniform(-1.5, 1.5)),
        height_m=1.6 + float(rng.uniform(-0.15, 0.15)),
        seed=seed,
    )


def frames_that_fit(length_m: float, start_m: float, spacing_m: float) -> int:
    """How many frames ``spacing_m`` apart fit from ``start_m`` to the end of the route."""
    return int(math.floor((length_m - start_m) / spacing_m + 1e-9)) + 1


class Traversal(object):
    """One drive along a route: frame positions, camera conditions, and the frames.

    Iterating yields ``(frame_bgr_uint8, easting, northing)``. The query pass sways
    slowly within its lane (lateral +-0.4 m, yaw +-2 degrees) around its base pose.
    """

    def __init__(self, route: Route, kind: str = "database", spacing_m: Optional[float] = None,
                 height: int = 240, width: int = 320, seed: Optional[int] = None, start_m: Optional[float] = None,
                 count: Optional[int] = None, condition: Optional[Condition] = None) -> None:
        if kind not in ("database", "query"):
            raise JistEdgeError("traversal kind must be 'database' or 'query', got {!r}".format(kind))
        self.route = route
        self.kind = kind
        self.seed = route.seed if seed is None else int(seed)
        query = kind == "query"
        default_spacing = DATABASE_SPACING_M * (QUERY_SPEED_RATIO if query else 1.0)
        self.spacing_m = float(spacing_m if spacing_m is not None else default_spacing)
        self.start_m = float(start_m if start_m is not None else (QUERY_OFFSET_M if query else 0.0))
        if not (self.spacing_m > 0 and math.isfinite(self.spacing_m)):
            raise JistEdgeError("frame spacing must be a positive number of metres, got {}".format(spacing_m))
        if not 0 <= self.start_m <= route.length_m:
            raise JistEdgeError("start offset {} m is outside the route (0..{} m)".format(self.start_m, route.length_m))
        fits = frames_that_fit(route.length_m, self.start_m, self.spacing_m)
        self.count = fits if count is None else int(count)
        if not 1 <= self.count <= fits:
            raise JistEdgeError("{} frames {} m apart do not fit on a {:.1f} m route (at most {})".format(
                self.count, self.spacing_m, route.length_m, fits))
        self.height, self.width = int(height), int(width)
        if condition is None:
            condition = query_condition(self.seed) if query else Condition(noise_sigma=1.0, seed=self.seed + 1)
        self.condition = condition
        wobble = np.random.RandomState((self.seed * 104729 + 3) % (2 ** 32)).uniform(0, 1, 4)
        self._sway = (0.4, 90.0 + 80.0 * wobble[0], 2 * math.pi * wobble[1],
                      2.0, 60.0 + 60.0 * wobble[2], 2 * math.pi * wobble[3]) if query else None

    def __len__(self) -> int:
        return self.count

    def arc_positions(self) -> np.ndarray:
        return self.start_m + self.spacing_m * np.arange(self.count)

    def condition_at(self, s_m: float) -> Condition:
        if self._sway is None:
            return self.condition
        lat_amp, lat_period, lat_phase, yaw_amp, yaw_period, yaw_phase = self._sway
        # Quantized (5 cm, 0.25 degree) so nearby frames share the renderer's geometry.
        lateral = self.condition.lateral_m + lat_amp * math.sin(2 * math.pi * s_m / lat_period + lat_phase)
        yaw = self.condition.yaw_deg + yaw_amp * math.sin(2 * math.pi * s_m / yaw_period + yaw_phase)
        return self.condition.replace(lateral_m=round(lateral * 20) / 20.0, yaw_deg=round(yaw * 4) / 4.0)

    def samples(self) -> List[Tuple[float, Condition, float, float]]:
        """(arc length, condition, easting, northing) of every frame."""
        out = []
        for s in self.arc_positions():
            c = self.condition_at(float(s))
            e, n = self.route.position(float(s), RIGHT_LANE_M + c.lateral_m)
            out.append((float(s), c, float(e), float(n)))
        return out

    def positions(self) -> np.ndarray:
        return np.array([[e, n] for _, _, e, n in self.samples()], dtype=np.float64)

    def __iter__(self) -> Iterator[Tuple[np.ndarray, float, float]]:
        renderer = renderer_for(self.route)
        for s, c, e, n in self.samples():
            yield renderer.render(s, self.height, self.width, c), e, n

    def describe(self) -> Dict[str, object]:
        return {"kind": self.kind, "frames": self.count, "spacing_m": self.spacing_m, "start_m": self.start_m,
                "height": self.height, "width": self.width, "seed": self.seed, "condition": self.condition.as_dict()}


def make_traversal(route: Route, kind: str = "database", spacing_m: Optional[float] = None, height: int = 240,
                   width: int = 320, seed: Optional[int] = None, **options) -> Traversal:
    """A database or query pass of ``route``; iterate it for (frame, easting, northing)."""
    return Traversal(route, kind, spacing_m, height, width, seed, **options)


def image_name(index: int, easting: float, northing: float) -> str:
    """Zero-padded index first so name order is frame order; then the VPR position fields."""
    return "{:06d}@{:.2f}@{:.2f}@@.jpg".format(index, easting, northing)


def video_positions_path(video_path: str) -> str:
    """The positions CSV that goes with a video: same name, .csv extension."""
    return os.path.splitext(video_path)[0] + ".csv"


def _tick(progress: Progress) -> None:
    if progress is not None:
        progress(1)


def write_images(traversal: Traversal, out_dir: str, progress: Progress = None) -> List[str]:
    """Write every frame as a JPEG named by :func:`image_name`; the folder appears whole."""
    names = []  # type: List[str]
    params = [int(cv2.IMWRITE_JPEG_QUALITY), JPEG_QUALITY]
    with staged_directory(out_dir) as stage:
        for i, (frame, e, n) in enumerate(traversal):
            name = image_name(i, e, n)
            if not cv2.imwrite(os.path.join(stage, name), frame, params):
                check_complete(os.path.join(stage, name))  # OpenCV does not say why: a full disk is one reason
                raise JistEdgeError("could not write image {}".format(os.path.join(out_dir, name)))
            names.append(name)
            _tick(progress)
    return [os.path.join(out_dir, name) for name in names]


def write_video(traversal: Traversal, path: str, fps: float = 10.0, progress: Progress = None) -> Tuple[str, str]:
    """Write an MJPG .avi and its ``frame,easting,northing`` CSV; returns both paths."""
    if not path.lower().endswith(".avi"):
        raise JistEdgeError("synthetic videos are MJPG in .avi; got {}".format(path))
    rows = []  # type: List[Tuple[int, float, float]]
    with atomic_path(path) as tmp:
        tmp_avi = tmp + ".avi"  # OpenCV picks the container from the extension
        writer = cv2.VideoWriter(tmp_avi, cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (traversal.width, traversal.height))
        try:
            if not writer.isOpened():
                raise JistEdgeError("OpenCV cannot write an MJPG video at {}".format(path))
            writer.set(cv2.VIDEOWRITER_PROP_QUALITY, JPEG_QUALITY)
            for i, (frame, e, n) in enumerate(traversal):
                writer.write(frame)
                rows.append((i, e, n))
                _tick(progress)
            writer.release()
            check_complete(tmp_avi)  # OpenCV drops frames silently when the disk fills up
            os.replace(tmp_avi, tmp)
        finally:
            writer.release()
            if os.path.exists(tmp_avi):
                os.unlink(tmp_avi)
    csv_path = video_positions_path(path)
    write_positions_csv(csv_path, rows)
    return path, csv_path
