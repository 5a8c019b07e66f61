"""Route-like synthetic sequence descriptors for matching benchmarks at any map size.

I.i.d. Gaussian vectors are nothing like a map (every point is equally far from every
other; hnswlib's recall on them is poor, see DESIGN.md). A map is a drive: neighbouring
places look alike and far-apart places do not. So frame descriptors here follow a
mean-reverting random walk per drive (correlation decaying over ~``memory`` frames),
are L2-normalized like the model's frame descriptors, and are pooled over sliding
windows of L frames with the project's own SeqGeM, which makes them non-negative and
shaped like real sequence descriptors. Queries are a second pass over random places
of the same drives with the frame descriptors perturbed (another day, another light).
"""
import os
from typing import Optional, Tuple

import numpy as np

from jist_edge.encoder.seqgem import seqgem, sliding_windows

KIND = "route-walk"
DESCRIPTION = ("synthetic route-like descriptors: L2-normalized mean-reverting random walk of frame "
               "descriptors per drive, pooled with the project's SeqGeM over sliding windows")


def _l2n(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def drive_frames(rng: np.random.Generator, n_frames: int, dim: int, memory: float) -> np.ndarray:
    """One drive's frame descriptors: AR(1) walk with unit stationary variance, L2-normalized."""
    a = np.float32(np.exp(-1.0 / memory))
    noise = rng.standard_normal((n_frames, dim), dtype=np.float32) * np.float32(np.sqrt(1.0 - a * a))
    # x_t = a x_{t-1} + e_t, in blocks: x[block] = T @ e[block] + a^(1..B) x_prev, T[i, j] = a^(i-j) (j <= i)
    block = 128
    lags = np.arange(block)[:, None] - np.arange(block)[None, :]
    toeplitz = np.where(lags >= 0, a ** np.maximum(lags, 0), 0).astype(np.float32)
    decay = (a ** np.arange(1, block + 1)).astype(np.float32)[:, None]
    frames = np.empty((n_frames, dim), dtype=np.float32)
    state = rng.standard_normal(dim, dtype=np.float32)
    for start in range(0, n_frames, block):
        stop = min(start + block, n_frames)
        b = stop - start
        frames[start:stop] = toeplitz[:b, :b] @ noise[start:stop] + decay[:b] * state[None, :]
        state = frames[stop - 1]
    return _l2n(frames)


class RouteDescriptors(object):
    """``n`` map sequence descriptors plus a query generator, deterministic for a seed.

    Each drive has its own random stream (seed, drive number), so a drive's frames are
    regenerated when queries need them instead of being kept (2 GB at a million places).
    With ``cache_dir`` the database is saved there once and memory-mapped on later runs.
    """

    def __init__(self, n: int, dim: int = 512, seq_len: int = 5, p: float = 3.0, seed: int = 0,
                 drive_len: int = 5000, memory: float = 40.0, cache_dir: Optional[str] = None) -> None:
        if n < 1:
            raise ValueError("need at least one sequence")
        self.n, self.dim, self.seq_len, self.p = int(n), int(dim), int(seq_len), float(p)
        self.seed = int(seed)
        self.drive_len = int(drive_len)
        self.memory = float(memory)
        self.firsts = list(range(0, self.n, self.drive_len))  # first map index of each drive
        self._last = (-1, None)  # type: Tuple[int, Optional[np.ndarray]]
        self.key = "{}-v2-n{}-d{}-L{}-p{:g}-s{}-dl{}-m{:g}".format(KIND, self.n, self.dim, self.seq_len, self.p,
                                                                  self.seed, self.drive_len, self.memory)
        self.path = os.path.join(cache_dir, self.key + ".npy") if cache_dir else None
        if self.path and os.path.exists(self.path):
            self.database = np.load(self.path, mmap_mode="r")
        else:
            chunks = [sliding_windows(self._frames(d), self.seq_len, self.p) for d in range(len(self.firsts))]
            self.database = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
            if self.path:
                _save_atomic(self.path, self.database)

    def _frames(self, drive: int) -> np.ndarray:
        """Frame descriptors of one drive (the last one asked for is kept)."""
        if self._last[0] != drive:
            count = min(self.drive_len, self.n - self.firsts[drive])
            rng = np.random.default_rng([self.seed, drive])
            self._last = (drive, drive_frames(rng, count + self.seq_len - 1, self.dim, self.memory))
        return self._last[1]

    def float16_path(self) -> str:
        """The database rounded to float16 as a .npy beside the cache (what a pca map stores), made once."""
        if not self.path:
            raise ValueError("float16_path needs a cache_dir")
        path = self.path[:-4] + ".f16.npy"
        if not os.path.exists(path):
            _save_atomic(path, np.asarray(self.database).astype(np.float16))
        return path

    def queries(self, count: int, noise: float = 0.5, seed: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(queries (count, dim), the map index each was taken from)."""
        rng = np.random.default_rng(self.seed + 1 if seed is None else seed)
        out = np.empty((count, self.dim), dtype=np.float32)
        where = rng.integers(0, self.n, size=count)
        sigma = np.float32(noise / np.sqrt(self.dim))  # noise vector norm ~ noise
        for i in np.argsort(where, kind="stable"):  # drive by drive: each drive is generated once
            frames = self._window_frames(int(where[i]))
            perturbed = _l2n(frames + sigma * rng.standard_normal(frames.shape, dtype=np.float32))
            out[i] = seqgem(perturbed, self.p)
        return out, where

    def drive_of(self, idx: int) -> Tuple[np.ndarray, int]:
        """(frame descriptors of the drive holding map sequence ``idx``, that drive's first map index)."""
        if not 0 <= idx < self.n:
            raise IndexError(idx)
        drive = idx // self.drive_len
        return self._frames(drive), self.firsts[drive]

    def _window_frames(self, idx: int) -> np.ndarray:
        frames, first = self.drive_of(idx)
        return frames[idx - first:idx - first + self.seq_len]


def _save_atomic(path: str, array: np.ndarray) -> None:
    from jist_edge.fileio import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
