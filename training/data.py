"""Training drives as cached trunk features, positions, headings and L-frame windows.

Routes are read the way ``map build`` reads them (``jist_edge.maps.build.encode_route``:
videos, image folders, positions from VPR names or a CSV); the "encoder" it drives here is
the frozen part of the network, whose output is kept per frame (the trunk runs once per
frame, never again). A synthetic route folder (``route.json``: ``jist-edge synth``) is its
two passes of the same streets; each such folder is an area of its own, because synthetic
routes of different seeds share coordinates but not streets. Other drives share area 0.
"""
import json
import math
import os
import types
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from jist_edge.bundle import IMAGENET_MEAN, IMAGENET_STD
from jist_edge.errors import JistEdgeError


class DriveSpec(object):
    """One drive to read: a video or image folder, its positions (None: file names), its area."""

    def __init__(self, source: str, positions: Optional[str] = None, area: int = 0) -> None:
        self.source = source
        self.positions = positions
        self.area = int(area)

    def __repr__(self) -> str:
        return "DriveSpec({!r}, positions={!r}, area={})".format(self.source, self.positions, self.area)


def expand_routes(routes: Sequence[str], positions: Sequence[Optional[str]]) -> List[DriveSpec]:
    """``--route``/``--positions`` as drives; a synthetic route folder becomes its two passes, own area."""
    if positions and len(positions) != len(routes):
        raise JistEdgeError("{} --route but {} --positions: give one per route (or '-'), or none".format(
            len(routes), len(positions)))
    drives = []  # type: List[DriveSpec]
    next_area = 1
    for n, route in enumerate(routes):
        pos = positions[n] if positions else None
        pos = None if pos in (None, "-") else pos
        if not os.path.exists(route):
            raise JistEdgeError("--route {} does not exist".format(route))
        pair = synthetic_pair(route)
        if pair is None:
            drives.append(DriveSpec(route, pos, 0))
            continue
        if pos is not None:
            raise JistEdgeError("--route {} is a synthetic route folder: its positions come with it; "
                                "give '-' as its --positions".format(route))
        drives.extend(DriveSpec(src, p, next_area) for src, p in pair)
        next_area += 1
    return drives


def synthetic_pair(path: str) -> Optional[List[Tuple[str, Optional[str]]]]:
    """(source, positions) of the database and query passes of a `jist-edge synth` folder, or None."""
    manifest = os.path.join(path, "route.json")
    if not os.path.isdir(path) or not os.path.isfile(manifest):
        return None
    try:
        with open(manifest) as handle:
            meta = json.load(handle)
    except (OSError, ValueError) as exc:
        raise JistEdgeError("{} is not readable JSON: {}".format(manifest, exc))
    if not isinstance(meta, dict) or meta.get("generator") != "jist_edge.synth.traversal":
        return None
    if meta.get("format") == "video":
        return [(os.path.join(path, k + ".avi"), os.path.join(path, k + ".csv")) for k in ("database", "queries")]
    return [(os.path.join(path, k), None) for k in ("database", "queries")]


class _FeatureEncoder(object):
    """encode_route's encoder: runs ``trunk`` on each preprocessed batch and keeps its output."""

    def __init__(self, trunk: torch.nn.Module, device: torch.device, dim: int) -> None:
        self.trunk = trunk
        self.device = device
        self.dim = dim
        self.parts = []  # type: List[torch.Tensor]

    def encode(self, batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.trunk(torch.from_numpy(batch).to(self.device))
        self.parts.append(out.to("cpu", torch.float16))
        return np.zeros((batch.shape[0], self.dim), dtype=np.float32)

    def close(self) -> None:
        pass


class CachedDrive(object):
    """A drive read once: per usable frame its cached features, position, heading, name."""

    def __init__(self, spec: DriveSpec, features: torch.Tensor, route: Any) -> None:
        self.spec = spec
        self.features = features  # (N, C, h, w) float16
        self.route = route  # the EncodedRoute: frame table (names, positions, timestamps), source info
        self.positions = np.asarray(route.frames.positions, dtype=np.float64)
        self.headings = travel_headings(self.positions)

    def __len__(self) -> int:
        return int(self.features.shape[0])


def shape_of(height: int, width: int, dim: int = 512, seq_len: int = 5) -> Any:
    """The bundle fields route reading and evaluation look at, for a model that is not exported."""
    return types.SimpleNamespace(height=int(height), width=int(width), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                 scale=1.0 / 255.0, dim=int(dim), seq_len=int(seq_len))


def read_drive(spec: DriveSpec, trunk: torch.nn.Module, img_size: Sequence[int], device: torch.device,
               batch_size: int = 16) -> CachedDrive:
    """Read and preprocess one drive like map build, cache ``trunk``'s output per frame."""
    from jist_edge.maps.build import encode_route

    encoder = _FeatureEncoder(trunk, device, 512)
    route = encode_route(shape_of(img_size[0], img_size[1]), spec.source, positions=spec.positions,
                         batch_size=batch_size, encoder=encoder)
    if not encoder.parts:
        raise JistEdgeError("route {} has no usable frames".format(spec.source))
    features = torch.cat(encoder.parts, dim=0)
    known = np.isfinite(route.frames.positions).all(axis=1)
    if not known.any():
        raise JistEdgeError("route {} has no positions: give --positions CSV or VPR file names".format(spec.source))
    return CachedDrive(spec, features, route)


def travel_headings(positions: np.ndarray) -> np.ndarray:
    """Compass heading (degrees, 0 = north, clockwise) of the direction of travel at each frame; NaN unknown."""
    pos = np.asarray(positions, dtype=np.float64)
    out = np.full(pos.shape[0], np.nan)
    if pos.shape[0] < 2:
        return out
    nxt = np.vstack([pos[1:], pos[-1:]])
    prv = np.vstack([pos[:1], pos[:-1]])
    step = nxt - prv
    with np.errstate(invalid="ignore"):
        moving = np.isfinite(step).all(axis=1) & (np.hypot(step[:, 0], step[:, 1]) > 1e-6)
    out[moving] = np.degrees(np.arctan2(step[moving, 0], step[moving, 1])) % 360.0
    return out


class TrainingSet(object):
    """All drives' frames in one table, and every window of L consecutive frames of one drive."""

    def __init__(self, drives: List[CachedDrive], seq_len: int) -> None:
        if not drives:
            raise JistEdgeError("no training drives")
        self.drives = drives
        self.seq_len = int(seq_len)
        self.features = torch.cat([d.features for d in drives], dim=0)
        self.positions = np.concatenate([d.positions for d in drives], axis=0)
        self.headings = np.concatenate([d.headings for d in drives], axis=0)
        self.frame_area = np.concatenate([np.full(len(d), d.spec.area) for d in drives]).astype(np.int64)
        windows, seq_drive, seq_time = [], [], []
        offset = 0
        for n, drive in enumerate(drives):
            starts = np.arange(max(0, len(drive) - seq_len + 1))
            rows = offset + starts[:, None] + np.arange(seq_len)[None, :]
            ok = np.isfinite(self.positions[rows]).all(axis=(1, 2))
            windows.append(rows[ok])
            seq_drive.append(np.full(int(ok.sum()), n))
            seq_time.append(starts[ok] + seq_len // 2)
            offset += len(drive)
        self.windows = np.concatenate(windows).astype(np.int64)  # (S, L) frame rows
        self.seq_drive = np.concatenate(seq_drive).astype(np.int64)
        self.seq_time = np.concatenate(seq_time).astype(np.int64)  # centre frame index within its drive
        self.seq_area = self.frame_area[self.windows[:, 0]]
        self.seq_positions = self.positions[self.windows[:, seq_len // 2]]
        if len(self.windows) == 0:
            raise JistEdgeError("no drive has {} consecutive positioned frames".format(seq_len))

    @property
    def frames(self) -> int:
        return int(self.features.shape[0])

    def describe(self) -> List[dict]:
        return [{"source": d.spec.source, "area": d.spec.area, "frames": len(d),
                 "length_m": round(path_length(d.positions), 1)} for d in self.drives]


def path_length(positions: np.ndarray) -> float:
    pos = positions[np.isfinite(positions).all(axis=1)]
    if len(pos) < 2:
        return 0.0
    return float(np.hypot(*np.diff(pos, axis=0).T).sum())


def heading_bin(headings: np.ndarray, degrees: float) -> np.ndarray:
    """Heading class of each frame (-1 where unknown)."""
    out = np.full(headings.shape[0], -1, dtype=np.int64)
    ok = np.isfinite(headings)
    out[ok] = np.floor(headings[ok] / float(degrees)).astype(np.int64) % int(math.ceil(360.0 / degrees))
    return out
