"""`jist-edge train`: the checkpoint's layout, export, an independent JIST implementation, and learning.

The independent implementation below is written from the state_dict with plain
torch.nn.functional ops (no export/model.py): conv/bn/relu/maxpool, basic blocks, L2,
GeM (avg_pool2d, as CosPlace), FC, L2, SeqGeM. The exported ONNX files, run by ONNX
Runtime, must give its descriptors.
"""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
ort = pytest.importorskip("onnxruntime")

from click.testing import CliRunner  # noqa: E402

from jist_edge.cli import main  # noqa: E402

SIZE = (64, 80)
FRAMES = 40  # 80 m: negatives beyond 25 m exist


@pytest.fixture(scope="module")
def routes(tmp_path_factory):
    from jist_edge.synth import make_route_dataset

    root = tmp_path_factory.mktemp("train-routes")
    return [make_route_dataset(str(root / "s{}".format(s)), frames=FRAMES, size=SIZE, seed=s)["root"] for s in (1, 2)]


@pytest.fixture(scope="module")
def trained(routes, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("train-out") / "ck.pth")
    result = CliRunner().invoke(main, ["train", "--route", routes[0], "--val-route", routes[1], "--random-init",
                                       "--img-size", str(SIZE[0]), str(SIZE[1]), "--minutes", "0.1", "--output", out,
                                       "--quiet", "--images", "8"])
    assert result.exit_code == 0, result.output
    return out, result.output


def _bn(x, sd, pre):
    return F.batch_norm(x, sd[pre + ".running_mean"], sd[pre + ".running_var"], sd[pre + ".weight"],
                        sd[pre + ".bias"], False, 0.0, 1e-5)


def _block(x, sd, pre, stride):
    out = F.relu(_bn(F.conv2d(x, sd[pre + ".conv1.weight"], stride=stride, padding=1), sd, pre + ".bn1"))
    out = _bn(F.conv2d(out, sd[pre + ".conv2.weight"], padding=1), sd, pre + ".bn2")
    if pre + ".downsample.0.weight" in sd:
        x = _bn(F.conv2d(x, sd[pre + ".downsample.0.weight"], stride=stride), sd, pre + ".downsample.1")
    return F.relu(out + x)


def independent_frames(x, sd):
    """N x 3 x H x W -> N x 512, straight from the official keys."""
    b = "model.backbone."
    x = F.relu(_bn(F.conv2d(x, sd[b + "0.weight"], stride=2, padding=3), sd, b + "1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for layer in (4, 5, 6, 7):
        for j in (0, 1):
            x = _block(x, sd, "{}{}.{}".format(b, layer, j), 2 if (j == 0 and layer > 4) else 1)
    x = F.normalize(x, p=2, dim=1)
    p = float(sd["model.aggregation.1.p"][0])
    x = F.avg_pool2d(x.clamp(min=1e-6).pow(p), (x.shape[-2], x.shape[-1])).pow(1.0 / p)[:, :, 0, 0]
    x = F.linear(x, sd["model.aggregation.3.weight"], sd["model.aggregation.3.bias"])
    return F.normalize(x, p=2, dim=1)


def independent_sequences(frames, sd):
    p = float(sd["seq_gem.p"][0])
    return frames.clamp(min=1e-6).pow(p).mean(dim=1).pow(1.0 / p)


def _frames(route, count):
    import cv2

    from jist_edge.encoder.preprocess import Preprocessor

    folder = os.path.join(route, "queries")
    names = sorted(os.listdir(folder))[:count]
    return Preprocessor(*SIZE).batch([cv2.imread(os.path.join(folder, n)) for n in names])


def test_checkpoint_exports_and_matches_an_independent_jist(trained, routes, tmp_path):
    from jist_edge.bundle import load_bundle
    from jist_edge.export.checkpoint import read_state_dict
    from jist_edge.export.model import official_keys

    out, _ = trained
    sd = read_state_dict(out)
    assert list(sd) == official_keys() and len(sd) == 124
    bundle_dir = str(tmp_path / "bundle")
    result = CliRunner().invoke(main, ["export", "--checkpoint", out, "--img-size", str(SIZE[0]), str(SIZE[1]),
                                       "--output", bundle_dir])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(bundle_dir)
    frames = _frames(routes[1], 10)
    enc = ort.InferenceSession(bundle.encoder_path, providers=["CPUExecutionProvider"])
    onnx_frames = enc.run(None, {enc.get_inputs()[0].name: frames})[0]
    seqs = frames.reshape(2, 5, 3, SIZE[0], SIZE[1])
    seq = ort.InferenceSession(bundle.sequence_path, providers=["CPUExecutionProvider"])
    onnx_seqs = seq.run(None, {seq.get_inputs()[0].name: seqs})[0]
    with torch.no_grad():
        ref_frames = independent_frames(torch.from_numpy(frames), sd)
        ref_seqs = independent_sequences(ref_frames.reshape(2, 5, -1), sd).numpy()
    np.testing.assert_allclose(onnx_frames, ref_frames.numpy(), atol=2e-5)
    np.testing.assert_allclose(onnx_seqs, ref_seqs, atol=2e-5)
    assert abs(bundle.seqgem_p - float(sd["seq_gem.p"][0])) < 1e-6


def test_training_changes_only_the_trainable_set_and_writes_its_summary(trained):
    from jist_edge.export.checkpoint import read_state_dict
    from jist_edge.export.model import build_model

    out, output = trained
    start = build_model(random_init=True, seed=0).state_dict()
    sd = read_state_dict(out)
    frozen = [k for k in sd if k.startswith("model.backbone.") and not k.startswith("model.backbone.7.")]
    assert all(torch.equal(sd[k], start[k]) for k in frozen)
    assert not torch.equal(sd["model.backbone.7.0.conv1.weight"], start["model.backbone.7.0.conv1.weight"])
    assert not torch.equal(sd["model.aggregation.3.weight"], start["model.aggregation.3.weight"])
    summary = json.load(open(os.path.splitext(out)[0] + ".train.json"))
    assert summary["steps"] > 0 and summary["recipe"]["kind"] == "layer4"
    for when in ("before", "after"):
        rep = summary["held_out"][when]
        assert 0.0 <= rep["mean_r1"] <= 100.0 and rep["routes"][0]["filtered_r1"] is not None
    assert 1.0 <= summary["gem_p"] <= 8.0 and 1.0 <= summary["seqgem_p"] <= 8.0
    assert "R@1 before" in output


@pytest.mark.parametrize("kind", ["head", "layer4"])
def test_training_reduces_the_loss_on_fixed_triplets(routes, kind):
    from jist_edge.export.model import build_model
    from jist_edge.training import trainable
    from jist_edge.training.data import TrainingSet, expand_routes, read_drive
    from jist_edge.training.loop import Config, Trainer
    from jist_edge.training.losses import ClassGroups, triplet_loss
    from jist_edge.training.mining import GeoPairs

    torch.manual_seed(0)
    model = build_model(random_init=True, seed=3)
    frozen = trainable.frozen_part(model, kind)
    data = TrainingSet([read_drive(d, frozen, SIZE, torch.device("cpu")) for d in expand_routes(routes, [])], 5)
    trainer = Trainer(model, data, GeoPairs(data), ClassGroups(data, min_images=2),
                      Config(kind, lr=1e-3 if kind == "head" else 3e-4, lr_p=1e-4), torch.device("cpu"))
    trainer.refresh()
    fixed = trainer.triplets

    def loss():
        desc = trainer.descriptors()
        with torch.no_grad():
            seq = model.seq_gem(desc[torch.from_numpy(data.windows)])
            return float(triplet_loss(seq[fixed.anchors], seq[fixed.positives], seq[fixed.negatives]))

    before = loss()
    for _ in range(40):
        trainer.step()
    assert loss() < 0.7 * before
    assert 1.0 <= model.gem_p <= 8.0


def test_resume_continues_and_refuses_another_recipe(routes, tmp_path):
    out = str(tmp_path / "r.pth")
    args = ["train", "--route", routes[0], "--random-init", "--img-size", str(SIZE[0]), str(SIZE[1]), "--output", out,
            "--quiet", "--trainable", "head"]
    first = CliRunner().invoke(main, args + ["--minutes", "0.03"])
    assert first.exit_code == 0, first.output
    steps = json.load(open(str(tmp_path / "r.train.json")))["steps"]
    again = CliRunner().invoke(main, args + ["--minutes", "0.03"])
    assert again.exit_code != 0 and "--resume" in again.output  # an existing output is never replaced silently
    resumed = CliRunner().invoke(main, args + ["--minutes", "0.06", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.load(open(str(tmp_path / "r.train.json")))
    assert summary["steps"] > steps and "resumed at step {}".format(steps) in resumed.output
    other = CliRunner().invoke(main, args[:-1] + ["layer4", "--minutes", "0.1", "--resume"])
    assert other.exit_code != 0 and "another recipe" in other.output


def test_bad_inputs_are_one_line_errors(routes, tmp_path):
    base = ["train", "--img-size", str(SIZE[0]), str(SIZE[1]), "--output", str(tmp_path / "x.pth"), "--quiet"]
    cases = [
        (["--route", routes[0]], "--random-init"),
        (["--route", str(tmp_path / "nope"), "--random-init"], "nope"),
        (["--route", routes[0], "--checkpoint", str(tmp_path / "none.pth")], "none.pth"),
        (["--route", os.path.join(routes[0], "database"), "--random-init"], "positive"),
    ]
    for extra, needle in cases:
        result = CliRunner().invoke(main, base + extra)
        assert result.exit_code != 0 and needle in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    assert not os.path.exists(str(tmp_path / "x.pth"))
