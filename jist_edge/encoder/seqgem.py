"""SeqGeM in numpy float32: the generalized mean over time of L frame descriptors.

``(mean_t(max(x_t, eps) ** p)) ** (1/p)`` per dimension, as in the official model's
``seq_gem``. Order of frames does not matter, and any L >= 1 works, so a stream can
emit (partial) results from its first frame.
"""
import numpy as np


def seqgem(frames: np.ndarray, p: float, eps: float = 1e-6) -> np.ndarray:
    """(..., L, D) frame descriptors -> (..., D) float32 sequence descriptors (not normalized)."""
    x = np.asarray(frames, dtype=np.float32)
    if x.ndim < 2 or x.shape[-2] < 1:
        raise ValueError("seqgem needs (..., L, D) with L >= 1, got shape {}".format(x.shape))
    p32 = np.float32(p)
    powered = np.power(np.maximum(x, np.float32(eps)), p32)
    return np.power(powered.mean(axis=-2, dtype=np.float32), np.float32(1.0) / p32).astype(np.float32)


def sliding_windows(frame_descriptors: np.ndarray, seq_len: int, p: float, eps: float = 1e-6) -> np.ndarray:
    """All windows of ``seq_len`` consecutive frames (stride 1) -> (N - L + 1, D).

    Each frame's power is computed once and shared by the L windows it belongs to.
    """
    x = np.asarray(frame_descriptors, dtype=np.float32)
    n = x.shape[0]
    if seq_len < 1 or n < seq_len:
        raise ValueError("need at least L={} frames, got {}".format(seq_len, n))
    p32 = np.float32(p)
    powered = np.power(np.maximum(x, np.float32(eps)), p32)
    csum = np.concatenate([np.zeros((1, x.shape[1]), np.float64), np.cumsum(powered, axis=0, dtype=np.float64)])
    means = ((csum[seq_len:] - csum[:-seq_len]) / seq_len).astype(np.float32)
    return np.power(np.maximum(means, 0), np.float32(1.0) / p32).astype(np.float32)
