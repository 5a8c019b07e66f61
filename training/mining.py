"""Triplets for the sequence branch: geography says which windows may pair, descriptors pick the hardest.

Positives lie within ``pos_m`` (10 m) of the anchor: in another drive of the same area, or in
the same drive at another time (at least ``revisit_frames`` frames apart, so overlapping
windows never count). Negatives lie beyond ``neg_m`` (25 m), or in another area. From cached
descriptors (refreshed periodically by the trainer) the best positive and the ``negatives``
hardest negatives of each anchor are taken, as JIST does.
"""
from typing import Optional, Tuple

import numpy as np
import torch

from jist_edge.errors import JistEdgeError
from jist_edge.training.data import TrainingSet

POSITIVE_M = 10.0
NEGATIVE_M = 25.0
NEGATIVES = 5
MAX_ANCHORS = 2000  # anchors mined per refresh (a random subset on big sets)


class GeoPairs(object):
    """Which windows are positives/negatives of which, from positions, areas, drives and times."""

    def __init__(self, data: TrainingSet, pos_m: float = POSITIVE_M, neg_m: float = NEGATIVE_M,
                 negatives: int = NEGATIVES, revisit_frames: Optional[int] = None) -> None:
        self.data = data
        self.pos_m = float(pos_m)
        self.neg_m = float(neg_m)
        self.negatives = int(negatives)
        self.revisit = int(revisit_frames if revisit_frames is not None else 10 * data.seq_len)
        counts = np.zeros(len(data.windows), dtype=np.int64)
        for start, stop in _chunks(len(data.windows)):
            pos, neg = self.masks(np.arange(start, stop))
            ok = neg.sum(axis=1) >= self.negatives
            counts[start:stop] = np.where(ok, pos.sum(axis=1), 0)
        self.anchors = np.nonzero(counts > 0)[0]
        if len(self.anchors) == 0:
            raise JistEdgeError("no training window has a positive within {:g} m in another drive of the same "
                                "streets (or the same drive at another time) and {} negatives beyond {:g} m: "
                                "give two drives of the same route".format(self.pos_m, self.negatives, self.neg_m))

    def masks(self, anchors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(positive, negative) boolean masks, anchors x all windows."""
        d = self.data
        same_area = d.seq_area[anchors][:, None] == d.seq_area[None, :]
        diff = d.seq_positions[anchors][:, None, :] - d.seq_positions[None, :, :]
        dist = np.hypot(diff[..., 0], diff[..., 1])
        other_time = (d.seq_drive[anchors][:, None] != d.seq_drive[None, :]) | (
            np.abs(d.seq_time[anchors][:, None] - d.seq_time[None, :]) >= self.revisit)
        positive = same_area & (dist <= self.pos_m) & other_time
        negative = ~same_area | (dist > self.neg_m)
        return positive, negative


def _chunks(count: int, size: int = 512):
    for start in range(0, count, size):
        yield start, min(count, start + size)


class Triplets(object):
    """Per mined anchor: the best positive and the hardest negatives (window ids)."""

    def __init__(self, anchors: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> None:
        self.anchors = anchors
        self.positives = positives
        self.negatives = negatives  # (A, K)

    def __len__(self) -> int:
        return len(self.anchors)

    def sample(self, size: int, rng: np.random.RandomState) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        pick = rng.choice(len(self.anchors), size=min(size, len(self.anchors)), replace=False)
        return self.anchors[pick], self.positives[pick], self.negatives[pick]


def mine(pairs: GeoPairs, seq_desc: torch.Tensor, rng: np.random.RandomState) -> Triplets:
    """Best positive and hardest negatives of (up to MAX_ANCHORS) anchors under the given descriptors."""
    anchors = pairs.anchors
    if len(anchors) > MAX_ANCHORS:
        anchors = np.sort(rng.choice(anchors, MAX_ANCHORS, replace=False))
    desc = seq_desc.float()
    best_pos, hard_neg = [], []
    for start, stop in _chunks(len(anchors)):
        rows = anchors[start:stop]
        dist = torch.cdist(desc[torch.from_numpy(rows)], desc).numpy()
        pos, neg = pairs.masks(rows)
        best_pos.append(np.where(pos, dist, np.inf).argmin(axis=1))
        neg_dist = np.where(neg, dist, np.inf)
        hard_neg.append(np.argpartition(neg_dist, pairs.negatives - 1, axis=1)[:, :pairs.negatives])
    return Triplets(anchors, np.concatenate(best_pos), np.concatenate(hard_neg, axis=0))
