"""Which part of the JIST network trains, and the frozen part whose output is cached.

``layer4`` (JIST's own recipe): everything before layer4 is frozen, layer4 + GeM p + FC +
SeqGeM p train; the cache holds layer3's output. ``head`` (tiny budgets): the whole trunk
is frozen, GeM p + FC + SeqGeM p train on cached layer4 output. Both train the model
export/model.py builds, so its state_dict is the official 124-key layout.
"""
from typing import Dict, List

import torch
from torch import nn

from jist_edge.errors import JistEdgeError
from jist_edge.export.model import JistModel

LAYER4 = "layer4"
HEAD = "head"
KINDS = (LAYER4, HEAD)
LAYER4_INDEX = 7  # backbone children: conv1, bn1, relu, maxpool, layer1..layer4
P_RANGE = (1.0, 8.0)  # GeM/SeqGeM p is clamped here after each step: it diverges otherwise (DESIGN.md)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise JistEdgeError("--trainable must be one of {}, got {!r}".format(", ".join(KINDS), kind))
    return kind


def frozen_part(model: JistModel, kind: str) -> nn.Module:
    """The trunk up to what trains (run once per frame, in eval mode, its output cached)."""
    stop = LAYER4_INDEX if check_kind(kind) == LAYER4 else LAYER4_INDEX + 1
    return nn.Sequential(*list(model.model.backbone.children())[:stop]).eval()


def trained_modules(model: JistModel, kind: str) -> List[nn.Module]:
    """The modules in train mode during training (layer4's BatchNorm trains, as in JIST)."""
    mods = [model.model.aggregation, model.seq_gem]  # type: List[nn.Module]
    if check_kind(kind) == LAYER4:
        mods.insert(0, model.model.backbone[LAYER4_INDEX])
    return mods


def frame_descriptors(model: JistModel, kind: str, cached: torch.Tensor) -> torch.Tensor:
    """Cached frozen-part output -> (N, 512) L2-normalized frame descriptors."""
    x = model.model.backbone[LAYER4_INDEX](cached) if kind == LAYER4 else cached
    return model.model.aggregation(x)


def parameter_groups(model: JistModel, kind: str, lr: float, lr_p: float) -> List[Dict]:
    """Adam groups: the weights at ``lr``, the two p at ``lr_p`` (small: p is unstable)."""
    p_params = [model.model.aggregation[1].p, model.seq_gem.p]
    weights = list(model.model.aggregation[3].parameters())
    if kind == LAYER4:
        weights = list(model.model.backbone[LAYER4_INDEX].parameters()) + weights
    return [{"params": weights, "lr": float(lr), "name": "weights"},
            {"params": p_params, "lr": float(lr_p), "name": "p"}]


def set_training(model: JistModel, kind: str) -> None:
    """Frozen parts in eval mode without gradients, trained parts in train mode with."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    for module in trained_modules(model, kind):
        module.train()
        for param in module.parameters():
            param.requires_grad_(True)


def clamp_p(model: JistModel) -> None:
    with torch.no_grad():
        model.model.aggregation[1].p.clamp_(*P_RANGE)
        model.seq_gem.p.clamp_(*P_RANGE)
