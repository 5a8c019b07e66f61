"""One training step of both branches on cached features, descriptor refreshes, and the saved state.

A step runs the trained part once over the union of the frames both branches need: the
windows of B triplets (anchor, best positive, K hardest negatives) for the sequence branch,
and a batch of images of one CosPlace group for the image branch. The loss is
``triplet_weight * triplet + cosface_weight * cosface`` (JIST: 100 : 1).
"""
import contextlib
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from jist_edge.export.model import JistModel
from jist_edge.training import trainable
from jist_edge.training.data import TrainingSet
from jist_edge.training.losses import ClassGroups, triplet_loss
from jist_edge.training.mining import GeoPairs, Triplets, mine


class Config(object):
    """The recipe; every field is in the JSON summary and checked on --resume."""

    def __init__(self, kind: str = trainable.LAYER4, lr: float = 1e-4, lr_p: float = 1e-4, lr_classifier: float = 1e-2,
                 triplets: int = 4, images: int = 32, triplet_weight: float = 100.0, cosface_weight: float = 1.0,
                 seq_len: int = 5) -> None:
        self.kind = trainable.check_kind(kind)
        self.lr, self.lr_p, self.lr_classifier = float(lr), float(lr_p), float(lr_classifier)
        self.triplets, self.images = int(triplets), int(images)
        self.triplet_weight, self.cosface_weight = float(triplet_weight), float(cosface_weight)
        self.seq_len = int(seq_len)

    def as_dict(self) -> Dict[str, Any]:
        return dict(vars(self))


class Trainer(object):
    def __init__(self, model: JistModel, data: TrainingSet, pairs: GeoPairs, groups: ClassGroups, config: Config,
                 device: torch.device, seed: int = 0) -> None:
        self.model, self.data, self.pairs, self.groups, self.config = model, data, pairs, groups, config
        self.device = device
        self.rng = np.random.RandomState(seed)
        self.classifiers = groups.classifiers().to(device)
        self.features = data.features.to(device)
        model.to(device)
        trainable.set_training(model, config.kind)
        param_groups = trainable.parameter_groups(model, config.kind, config.lr, config.lr_p)
        param_groups.append({"params": list(self.classifiers.parameters()), "lr": config.lr_classifier,
                             "name": "classifiers"})
        self.optimizer = torch.optim.Adam(param_groups)
        self.amp = device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.step_count = 0
        self.triplets = None  # type: Optional[Triplets]
        self.frames_per_step = []  # type: List[int]

    def _autocast(self) -> Any:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def descriptors(self, rows: Optional[np.ndarray] = None, batch: int = 256) -> torch.Tensor:
        """Frame descriptors (eval mode, no gradient) of ``rows`` (all frames by default), on the CPU."""
        rows = np.arange(self.data.frames) if rows is None else rows
        self.model.eval()
        out = []
        with torch.no_grad(), self._autocast():
            for start in range(0, len(rows), batch):
                feats = self.features[torch.from_numpy(rows[start:start + batch]).to(self.device)].float()
                out.append(trainable.frame_descriptors(self.model, self.config.kind, feats).float().cpu())
        trainable.set_training(self.model, self.config.kind)
        return torch.cat(out, dim=0)

    def refresh(self) -> None:
        """Re-mine every anchor's best positive and hardest negatives under the current weights."""
        frames = self.descriptors()
        with torch.no_grad():
            seq = self.model.seq_gem.cpu()(frames[torch.from_numpy(self.data.windows)])
            self.model.seq_gem.to(self.device)
        self.triplets = mine(self.pairs, seq, self.rng)

    def step(self) -> Dict[str, float]:
        if self.triplets is None:
            self.refresh()
        cfg = self.config
        anchors, positives, negatives = self.triplets.sample(cfg.triplets, self.rng)
        seq_ids = np.concatenate([anchors, positives, negatives.reshape(-1)])
        windows = self.data.windows[seq_ids]
        group = self.step_count % len(self.groups) if len(self.groups) else -1
        image_rows, labels = (self.groups.batch(group, cfg.images, self.rng) if group >= 0
                              else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        rows, inverse = np.unique(np.concatenate([windows.reshape(-1), image_rows]), return_inverse=True)
        self.frames_per_step.append(len(rows))
        with self._autocast():
            feats = self.features[torch.from_numpy(rows).to(self.device)].float()
            desc = trainable.frame_descriptors(self.model, cfg.kind, feats).float()
            seq_part = inverse[:windows.size].reshape(windows.shape)
            seq = self.model.seq_gem(desc[torch.from_numpy(seq_part).to(self.device)])
            b = len(anchors)
            tri = triplet_loss(seq[:b], seq[b:2 * b], seq[2 * b:].reshape(b, negatives.shape[1], -1))
            cos = torch.zeros((), device=self.device)
            if group >= 0:
                img = desc[torch.from_numpy(inverse[windows.size:]).to(self.device)]
                cos = self.classifiers[group](img, torch.from_numpy(labels).to(self.device))
            loss = cfg.triplet_weight * tri + cfg.cosface_weight * cos
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        trainable.clamp_p(self.model)
        self.step_count += 1
        return {"loss": float(loss.detach()), "triplet": float(tri.detach()), "cosface": float(cos.detach())}

    def state(self) -> Dict[str, Any]:
        """What --resume needs beyond the checkpoint: optimizer, classifiers, step, RNG."""
        return {"step": self.step_count, "optimizer": self.optimizer.state_dict(),
                "classifiers": self.classifiers.state_dict(), "rng": self.rng.get_state()[1].tolist(),
                "rng_pos": int(self.rng.get_state()[2])}

    def load_state(self, state: Dict[str, Any]) -> None:
        self.classifiers.load_state_dict(state["classifiers"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = int(state["step"])
        self.rng.set_state(("MT19937", np.asarray(state["rng"], dtype=np.uint32), int(state["rng_pos"]), 0, 0.0))
