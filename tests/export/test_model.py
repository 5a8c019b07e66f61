"""The torch JIST model: official structure and key layout, GeM/SeqGeM math, free sequence length."""
import numpy as np
import pytest
from optional_imports import import_or_skip

torch = import_or_skip("torch")
F = torch.nn.functional

from jist_edge.export.model import JistModel, build_model, official_keys  # noqa: E402
from jist_edge.encoder.seqgem import seqgem  # noqa: E402

# torchvision's resnet18 has 11,689,512 parameters, of which fc (512*1000 + 1000) is dropped.
RESNET18_TRUNK_PARAMS = 11689512 - 513000


def test_state_dict_matches_the_official_layout():
    state = JistModel().state_dict()
    backbone = {k.split(".")[2] for k in state if k.startswith("model.backbone.")}
    assert backbone == {"0", "1", "4", "5", "6", "7"}  # relu (2) and maxpool (3) have no weights
    others = sorted(k for k in state if not k.startswith("model.backbone."))
    assert others == ["model.aggregation.1.p", "model.aggregation.3.bias", "model.aggregation.3.weight", "seq_gem.p"]
    shapes = {
        "model.backbone.0.weight": (64, 3, 7, 7),
        "model.backbone.1.running_var": (64,),
        "model.backbone.4.1.conv2.weight": (64, 64, 3, 3),
        "model.backbone.5.0.downsample.0.weight": (128, 64, 1, 1),
        "model.backbone.5.0.downsample.1.running_mean": (128,),
        "model.backbone.7.1.bn2.weight": (512,),
        "model.aggregation.1.p": (1,),
        "model.aggregation.3.weight": (512, 512),
        "model.aggregation.3.bias": (512,),
        "seq_gem.p": (1,),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert "model.backbone.1.num_batches_tracked" in state
    assert "model.backbone.4.0.downsample.0.weight" not in state  # layer1 keeps its width: no downsample
    assert official_keys() == list(state)


def test_parameter_count_is_resnet18_trunk_plus_head():
    model = JistModel()
    trunk = sum(p.numel() for p in model.model.backbone.parameters())
    assert trunk == RESNET18_TRUNK_PARAMS
    head = sum(p.numel() for p in model.model.aggregation.parameters())
    assert head == 512 * 512 + 512 + 1
    assert model.seq_gem.p.numel() == 1


def test_random_init_p_is_seed_derived_and_never_default():
    ps = set()
    for seed in range(3):
        model = build_model(random_init=True, seed=seed)
        for p in (model.gem_p, model.seqgem_p):
            assert abs(p - 3.0) >= 0.39
            ps.add(round(p, 4))
    assert len(ps) >= 5  # differs with the seed
    same = build_model(random_init=True, seed=2)
    again = build_model(random_init=True, seed=2)
    for a, b in zip(same.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    given = build_model(random_init=True, seed=0, gem_p=3.3, seqgem_p=1.7)
    assert given.gem_p == pytest.approx(3.3) and given.seqgem_p == pytest.approx(1.7)


def _official_gem(x, p, eps=1e-6):
    """CosPlace's formulation: avg_pool2d with the input's full H,W as kernel."""
    return F.avg_pool2d(x.clamp(min=eps).pow(p), (x.size(-2), x.size(-1))).pow(1.0 / p)


def _official_seq_gem(x, p, eps=1e-6):
    """JIST's formulation: (B, L, D) -> (B, D, L) -> avg_pool1d over L."""
    xt = x.permute(0, 2, 1)
    return F.avg_pool1d(xt.clamp(min=eps).pow(p), xt.shape[-1]).pow(1.0 / p)[:, :, 0]


def test_l2norm_gem_and_seqgem_equal_the_official_formulations():
    model = build_model(random_init=True, seed=2)
    gen = torch.Generator().manual_seed(0)
    fmap = torch.rand(2, 512, 3, 5, generator=gen) - 0.2  # some negatives hit the eps clamp
    gem = model.model.aggregation[1]
    ours = gem(fmap)
    assert torch.allclose(ours, _official_gem(fmap, gem.p), atol=1e-6)
    l2 = model.model.aggregation[0]
    assert torch.equal(l2(fmap), F.normalize(fmap, p=2.0, dim=1))
    seq = torch.rand(3, 7, 512, generator=gen) - 0.2
    assert torch.allclose(model.seq_gem(seq), _official_seq_gem(seq, model.seq_gem.p), atol=1e-6)


def test_encode_frames_is_unit_norm_and_forward_is_seqgem_of_frames():
    model = build_model(random_init=True, seed=3)
    gen = torch.Generator().manual_seed(1)
    seqs = torch.randn(2, 4, 3, 64, 96, generator=gen)
    with torch.no_grad():
        per_frame = model.encode_frames(seqs.reshape(-1, 3, 64, 96))
        out = model(seqs)
    assert per_frame.shape == (8, 512) and out.shape == (2, 512)
    assert torch.allclose(per_frame.norm(dim=1), torch.ones(8), atol=1e-5)
    expected = model.seq_gem(per_frame.reshape(2, 4, 512))
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-3)  # sequence descriptor is not normalized


@pytest.mark.parametrize("seq_len", [1, 3, 5, 10])
def test_numpy_seqgem_matches_torch_and_ignores_order(seq_len):
    model = build_model(random_init=True, seed=seq_len)
    rng = np.random.RandomState(seq_len)
    frames = rng.randn(4, seq_len, 512).astype(np.float32) * 0.05
    with torch.no_grad():
        ref = model.seq_gem(torch.from_numpy(frames)).numpy()
    ours = seqgem(frames, model.seqgem_p, model.seq_gem.eps)
    assert ours.dtype == np.float32 and ours.shape == (4, 512)
    assert np.abs(ours - ref).max() <= 1e-6
    shuffled = frames[:, rng.permutation(seq_len)]
    assert np.abs(seqgem(shuffled, model.seqgem_p) - ours).max() <= 1e-6
    if seq_len == 1:
        assert np.allclose(ours, np.maximum(frames[:, 0], 1e-6), atol=1e-6)


@pytest.mark.parametrize("seq_len", [1, 3, 10])
def test_model_takes_any_sequence_length(seq_len):
    model = build_model(random_init=True, seed=0)
    x = torch.randn(1, seq_len, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        reversed_out = model(x.flip(1))
    assert out.shape == (1, 512)
    assert torch.allclose(out, reversed_out, atol=1e-6)
