"""The official JIST network (ResNet-18 + CosPlace head + SeqGeM), written for export.

The module tree reproduces the official one so that ``state_dict()`` keys match the
public checkpoint ``JIST_r18_512_seqgem.pth`` exactly:

* ``JistModel.model`` is CosPlace's ``GeoLocalizationNet``: ``backbone`` is an
  ``nn.Sequential`` of torchvision ResNet-18's children up to layer4
  (``model.backbone.{0,1,4,5,6,7}.*``), ``aggregation`` is
  ``Sequential(L2Norm, GeM, Flatten, Linear(512, 512), L2Norm)``
  (``model.aggregation.1.p``, ``model.aggregation.3.weight/bias``);
* ``JistModel.seq_gem`` is SeqGeM (``seq_gem.p``).

GeM and SeqGeM are written as means over H,W and over time: the same math as the
official ``avg_pool2d``/``avg_pool1d`` with a full-size kernel, but without a kernel
size frozen at trace time, so exported graphs keep dynamic shapes.
"""
from typing import List, Optional, Tuple

import torch
from torch import nn

DESCRIPTOR_DIM = 512
BACKBONE_CHANNELS = 512
GEM_EPS = 1e-6
SEQGEM_EPS = 1e-6
DEFAULT_P = 3.0
L2_EPS = 1e-12  # F.normalize's default


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (same attribute names, so the same keys)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _layer(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes),
        )
    return nn.Sequential(BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes))


def resnet18_trunk() -> nn.Sequential:
    """conv1, bn1, relu, maxpool, layer1..layer4 of torchvision's resnet18, as CosPlace keeps them."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        _layer(64, 64, 1),
        _layer(64, 128, 2),
        _layer(128, 256, 2),
        _layer(256, 512, 2),
    )


class L2Norm(nn.Module):
    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.normalize's math, broadcast instead of expand_as: no Shape/Expand nodes in the graph
        return x / x.norm(p=2.0, dim=self.dim, keepdim=True).clamp_min(L2_EPS)


class _PowerMean(nn.Module):
    """Generalized mean ``(mean(max(x, eps) ** p)) ** (1/p)`` over ``dims``, learnable p (shape [1])."""

    dims = (-1,)  # type: Tuple[int, ...]
    keepdim = False

    def __init__(self, p: float = DEFAULT_P, eps: float = GEM_EPS) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=self.dims, keepdim=self.keepdim).pow(1.0 / self.p)


class GeM(_PowerMean):
    """Over H,W, as in CosPlace; a mean over H,W is the same math as its avg_pool2d and keeps shapes dynamic."""

    dims = (-2, -1)
    keepdim = True


class Flatten(nn.Module):
    """(N, C, 1, 1) -> (N, C); CosPlace indexes [:, :, 0, 0], one ONNX Flatten is the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)


class SeqGeM(_PowerMean):
    """Over the time axis of (B, L, D); any L >= 1, order-invariant."""

    dims = (1,)

    def __init__(self, p: float = DEFAULT_P, eps: float = SEQGEM_EPS) -> None:
        super().__init__(p, eps)


class GeoLocalizationNet(nn.Module):
    """CosPlace's per-frame network: ResNet-18 trunk + (L2Norm, GeM, Flatten, Linear, L2Norm)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = resnet18_trunk()
        self.aggregation = nn.Sequential(
            L2Norm(), GeM(), Flatten(), nn.Linear(BACKBONE_CHANNELS, DESCRIPTOR_DIM), L2Norm()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aggregation(self.backbone(x))


class JistModel(nn.Module):
    """JIST with SeqGeM aggregation: frames -> 512-D, sequences -> 512-D (not normalized)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = GeoLocalizationNet()
        self.seq_gem = SeqGeM()

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W (normalized RGB) -> N x 512, L2-normalized."""
        return self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x L x 3 x H x W -> B x 512: every frame through the backbone, then SeqGeM over L."""
        seq_len = x.shape[1]
        frames = x.reshape((-1,) + tuple(x.shape[2:]))
        desc = self.encode_frames(frames)
        return self.seq_gem(desc.reshape(-1, seq_len, desc.shape[-1]))

    @property
    def gem_p(self) -> float:
        return float(self.model.aggregation[1].p.detach()[0])

    @property
    def seqgem_p(self) -> float:
        return float(self.seq_gem.p.detach()[0])


class SequenceEncoder(nn.Module):
    """Export wrapper: JistModel.forward with L and the frame shape as constants.

    Tracing ``x.shape`` would turn them into graph computations and leave the output's
    descriptor axis unnamed; constants give a graph whose only free axis is B.
    """

    def __init__(self, jist: JistModel, seq_len: int, height: int, width: int) -> None:
        super().__init__()
        self.jist = jist
        self.seq_len = int(seq_len)
        self.frame_shape = (3, int(height), int(width))

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        desc = self.jist.encode_frames(sequences.reshape((-1,) + self.frame_shape))
        return self.jist.seq_gem(desc.reshape(-1, self.seq_len, DESCRIPTOR_DIM))


class FrameEncoder(nn.Module):
    """Export wrapper: the per-frame half of a JistModel as its own forward."""

    def __init__(self, jist: JistModel) -> None:
        super().__init__()
        self.jist = jist

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.jist.encode_frames(frames)


def seed_derived_p(generator: torch.Generator) -> float:
    """A p in [1.8, 2.6] or [3.4, 4.2]: never near the default 3, so a hard-coded p=3 shows."""
    u = torch.rand(2, generator=generator)
    offset = 0.4 + 0.8 * float(u[0])
    return round(DEFAULT_P + (offset if float(u[1]) < 0.5 else -offset), 4)


def _randomize(model: JistModel, generator: torch.Generator) -> None:
    """Kaiming convs (as torchvision) and non-trivial BN statistics, so parity tests see real BN math."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            module.weight.data.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=generator)
        elif isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.weight.data.copy_(0.5 + torch.rand(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
        elif isinstance(module, nn.Linear):
            bound = 1.0 / module.in_features ** 0.5
            module.weight.data.uniform_(-bound, bound, generator=generator)
            module.bias.data.uniform_(-bound, bound, generator=generator)


def build_model(
    random_init: bool = False,
    seed: int = 0,
    gem_p: Optional[float] = None,
    seqgem_p: Optional[float] = None,
) -> JistModel:
    """A JistModel in eval mode.

    ``random_init`` fills every weight from ``seed`` (tests and demos only: the
    descriptors mean nothing); GeM/SeqGeM p then default to seed-derived values away
    from 3. Without it the model holds placeholders for a checkpoint to overwrite.
    """
    model = JistModel()
    if random_init:
        generator = torch.Generator().manual_seed(int(seed))
        _randomize(model, generator)
        if gem_p is None:
            gem_p = seed_derived_p(generator)
        if seqgem_p is None:
            seqgem_p = seed_derived_p(generator)
    with torch.no_grad():
        if gem_p is not None:
            model.model.aggregation[1].p.fill_(float(gem_p))
        if seqgem_p is not None:
            model.seq_gem.p.fill_(float(seqgem_p))
    return model.eval()


def official_keys() -> List[str]:
    """The state_dict keys of the official checkpoint, in order."""
    return list(JistModel().state_dict().keys())
