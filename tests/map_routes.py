"""Small routes for the map/matcher/eval tests: real image files and real MJPG videos.

A route is a camera sliding along a long textured strip (a stand-in for a street
facade): neighbouring frames overlap, distant ones differ. The query pass sees the
same places shifted by a few pixels, with another exposure and sensor noise.
"""
import os
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

STEP_PX = 6  # strip pixels per frame
METRES_PER_FRAME = 2.0


def strip(height: int, length: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture, (height, length, 3) uint8."""
    rng = np.random.RandomState(seed)
    coarse = rng.randint(0, 256, size=(max(2, height // 8), max(2, length // 8), 3)).astype(np.uint8)
    fine = rng.randint(0, 256, size=(height, length, 3)).astype(np.float32)
    base = cv2.resize(coarse, (length, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return np.clip(0.8 * base + 0.2 * fine, 0, 255).astype(np.uint8)


def route_frames(n: int, height: int = 64, width: int = 96, seed: int = 0, shift: int = 0,
                 gain: float = 1.0, noise: float = 0.0) -> List[np.ndarray]:
    """n BGR frames of one pass; ``shift``/``gain``/``noise`` make a query pass."""
    tex = strip(height, n * STEP_PX + width + abs(shift) + 1, seed)
    rng = np.random.RandomState(seed + 1000)
    frames = []
    for i in range(n):
        x0 = i * STEP_PX + abs(shift) + shift
        frame = tex[:, x0:x0 + width].astype(np.float32) * gain
        if noise:
            frame += rng.normal(0, noise, size=frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def positions(n: int, offset: float = 0.0) -> np.ndarray:
    return np.c_[np.arange(n) * METRES_PER_FRAME + offset, np.full(n, 5000.0)]


def vpr_name(i: int, pos: Optional[Sequence[float]]) -> str:
    if pos is None:
        return "frame{:05d}.png".format(i)
    return "@{:.2f}@{:.2f}@frame{:05d}@.png".format(pos[0], pos[1], i)


def write_images(folder: str, frames: Sequence[np.ndarray], pos: Optional[np.ndarray] = None) -> List[str]:
    """PNG files (lossless, so images and MJPG-free comparisons are exact)."""
    os.makedirs(folder, exist_ok=True)
    names = []
    for i, frame in enumerate(frames):
        name = vpr_name(i, None if pos is None else pos[i])
        assert cv2.imwrite(os.path.join(folder, name), frame)
        names.append(name)
    return names


def write_video(path: str, frames: Sequence[np.ndarray], fps: float = 10.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def write_csv(path: str, rows: Sequence[Tuple]) -> None:
    with open(path, "w") as handle:
        handle.write("frame,easting,northing\n")
        for row in rows:
            handle.write(",".join(str(v) for v in row) + "\n")


def edit_map_manifest(map_dir: str, edit) -> None:
    """Edit a map's manifest and re-sign it (its own sha256 recomputed), as someone sharing a doctored
    map would: only the checks behind the digest can then refuse it."""
    import json

    from jist_edge.fileio import manifest_digest, write_json_atomic
    from jist_edge.maps.store import MANIFEST_FILE

    path = os.path.join(map_dir, MANIFEST_FILE)
    with open(path) as handle:
        manifest = json.load(handle)
    edit(manifest)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json_atomic(path, manifest)
