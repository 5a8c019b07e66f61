"""The two branches' losses: CosFace over CosPlace classes, triplet margin on SeqGeM descriptors."""
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jist_edge.training.data import TrainingSet, heading_bin

COSFACE_S = 30.0
COSFACE_M = 0.40
TRIPLET_MARGIN = 0.1


class CosFace(nn.Module):
    """Large-margin cosine classifier (CosPlace's MarginCosineProduct): s * (cos - m at the true class)."""

    def __init__(self, dim: int, classes: int, s: float = COSFACE_S, m: float = COSFACE_M) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.s = float(s)
        self.m = float(m)

    def forward(self, desc: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(desc, dim=1), F.normalize(self.weight, dim=1))
        margin = F.one_hot(labels, cos.shape[1]).to(cos.dtype) * self.m
        return F.cross_entropy(self.s * (cos - margin), labels)


class ClassGroups(object):
    """CosPlace classes: (area, M-metre cell, heading bin); groups of cells N x N apart and heading
    bins ``heading_groups`` apart, so two classes of one group never sit side by side."""

    def __init__(self, data: TrainingSet, cell_m: float = 10.0, heading_deg: float = 30.0, groups_n: int = 5,
                 heading_groups: int = 2, min_images: int = 4) -> None:
        pos = data.positions
        ok = np.isfinite(pos).all(axis=1) & np.isfinite(data.headings)
        cells = np.zeros((pos.shape[0], 2), dtype=np.int64)
        cells[ok] = np.floor(pos[ok] / float(cell_m)).astype(np.int64)
        heads = heading_bin(data.headings, heading_deg)
        self.groups = []  # type: List[Tuple[np.ndarray, np.ndarray]]  (frame rows, class label per row)
        keys = {}  # type: dict
        for row in np.nonzero(ok)[0]:
            group = (int(cells[row, 0]) % groups_n, int(cells[row, 1]) % groups_n, int(heads[row]) % heading_groups)
            klass = (int(data.frame_area[row]), int(cells[row, 0]), int(cells[row, 1]), int(heads[row]))
            keys.setdefault(group, {}).setdefault(klass, []).append(int(row))
        for group in sorted(keys):
            members = [rows for rows in keys[group].values() if len(rows) >= min_images]
            if len(members) < 2:
                continue
            rows = np.concatenate([np.asarray(r) for r in members])
            labels = np.concatenate([np.full(len(r), n) for n, r in enumerate(members)])
            self.groups.append((rows.astype(np.int64), labels.astype(np.int64)))

    def __len__(self) -> int:
        return len(self.groups)

    def classifiers(self, dim: int = 512) -> nn.ModuleList:
        return nn.ModuleList([CosFace(dim, int(labels.max()) + 1) for _, labels in self.groups])

    def batch(self, group: int, size: int, rng: np.random.RandomState) -> Tuple[np.ndarray, np.ndarray]:
        rows, labels = self.groups[group]
        pick = rng.choice(len(rows), size=min(size, len(rows)), replace=False)
        return rows[pick], labels[pick]

    def describe(self) -> dict:
        return {"groups": len(self.groups), "classes": int(sum(int(l.max()) + 1 for _, l in self.groups)),
                "images": int(sum(len(r) for r, _ in self.groups))}


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                 margin: float = TRIPLET_MARGIN) -> torch.Tensor:
    """Mean triplet margin loss (L2) of B anchors, B positives and B x K negatives (K triplets each)."""
    k = negatives.shape[1]
    a = anchor[:, None, :].expand(-1, k, -1).reshape(-1, anchor.shape[1])
    p = positive[:, None, :].expand(-1, k, -1).reshape(-1, anchor.shape[1])
    return F.triplet_margin_loss(a, p, negatives.reshape(-1, anchor.shape[1]), margin=margin, p=2)
