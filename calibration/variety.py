"""A calibration set must look like a route: 40 black frames calibrate a model that passes a gate
measured on black frames and then fails on real queries. Refused before minutes of quantization."""
from typing import Any

import numpy as np

from jist_edge.errors import JistEdgeError

MIN_FRAME_STD = 0.05  # normalized units (ImageNet std ~0.225 per unit): about 3 grey levels of 255
MAX_UNIFORM_SHARE = 0.5


def check_variety(frames: np.ndarray, source: str) -> None:
    """Refuse preprocessed frames (N, 3, H, W) that are mostly uniform, or all alike when there are many."""
    frames = np.asarray(frames, dtype=np.float32)
    n = frames.shape[0]
    spread = frames.reshape(n, frames.shape[1], -1).std(axis=2).max(axis=1)  # per channel: colours differ
    uniform = int((spread < MIN_FRAME_STD).sum())
    if uniform > MAX_UNIFORM_SHARE * n:
        raise JistEdgeError("calibration set {}: {} of {} frames are uniform (black, white or one colour); "
                            "calibrate on frames of the route the robot drives".format(source, uniform, n))
    if n >= 8:
        thumbs = _thumbnails(frames)
        spread = float(np.abs(thumbs - thumbs.mean(axis=0)).max())
        if spread < MIN_FRAME_STD:
            raise JistEdgeError("calibration set {}: its {} frames are all alike (one scene repeated); calibrate "
                                "on frames along the route".format(source, n))


def _thumbnails(frames: Any) -> np.ndarray:
    """8x8 block means per channel: what differs between scenes, not noise."""
    n, c, h, w = frames.shape
    bh, bw = max(1, h // 8), max(1, w // 8)
    cropped = frames[:, :, :bh * 8, :bw * 8] if h >= 8 and w >= 8 else frames
    if h < 8 or w < 8:
        return cropped.reshape(n, -1)
    return cropped.reshape(n, c, 8, bh, 8, bw).mean(axis=(3, 5)).reshape(n, -1)
