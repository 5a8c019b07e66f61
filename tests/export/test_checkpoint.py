"""Checkpoints: the official layout loads and reproduces the model; anything else is refused
with one line naming the file or keys, through the API and through `jist-edge export`."""
import os
import pickle

import numpy as np
import pytest
from optional_imports import import_or_skip

torch = import_or_skip("torch")

from click.testing import CliRunner  # noqa: E402

from jist_edge.cli import main  # noqa: E402
from jist_edge.errors import JistEdgeError  # noqa: E402
from jist_edge.export.checkpoint import load_checkpoint, read_state_dict, save_official  # noqa: E402
from jist_edge.export.model import build_model  # noqa: E402
from jist_edge.fileio import sha256_file  # noqa: E402

from conftest import copy_bundle  # noqa: E402


class CodePayload(object):
    """Unpickling this runs a shell command: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch '{}'".format(self.marker),))


@pytest.fixture(scope="module")
def source_model():
    return build_model(random_init=True, seed=5, gem_p=3.6, seqgem_p=2.2)


@pytest.fixture(scope="module")
def official_ckpt(source_model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ckpt") / "JIST_test_seqgem.pth")
    save_official(source_model, path)
    return path


def _frames(seed=0, n=2):
    return torch.from_numpy(np.random.RandomState(seed).randn(n, 3, 64, 96).astype(np.float32))


def test_official_layout_loads_and_reproduces_outputs(source_model, official_ckpt):
    model = build_model(random_init=False)
    record = load_checkpoint(model, official_ckpt)
    assert record["name"] == "JIST_test_seqgem.pth" and record["sha256"] == sha256_file(official_ckpt)
    assert model.gem_p == pytest.approx(3.6) and model.seqgem_p == pytest.approx(2.2)
    x = _frames()
    seqs = x.reshape(1, 2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model.encode_frames(x), source_model.encode_frames(x))
        assert torch.equal(model(seqs), source_model(seqs))
    # it really is a plain state_dict with the official keys
    raw = torch.load(official_ckpt, map_location="cpu", weights_only=True)
    assert "model.aggregation.1.p" in raw and "seq_gem.p" in raw and "model.backbone.7.1.bn2.weight" in raw


def test_training_checkpoint_wrapper_and_missing_bn_counters_are_accepted(source_model, tmp_path):
    state = source_model.state_dict()
    trimmed = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = str(tmp_path / "last_checkpoint.pth")
    torch.save({"epoch_num": 3, "model_state_dict": trimmed, "best_seq_val_recall5": 0.9}, path)
    model = build_model(random_init=False)
    load_checkpoint(model, path)
    with torch.no_grad():
        assert torch.equal(model.encode_frames(_frames(1)), source_model.encode_frames(_frames(1)))


def _save_variant(source_model, path, drop=(), add=None, replace=None):
    state = {k: v for k, v in source_model.state_dict().items() if k not in drop}
    state.update(add or {})
    state.update(replace or {})
    torch.save(state, path)
    return path


def test_missing_and_unexpected_keys_are_named(source_model, tmp_path):
    path = _save_variant(source_model, str(tmp_path / "a.pth"), drop=("seq_gem.p", "model.aggregation.3.bias"),
                         add={"model.extra.weight": torch.zeros(3), "seq_gem.q": torch.ones(1)})
    with pytest.raises(JistEdgeError) as err:
        load_checkpoint(build_model(), path)
    message = str(err.value)
    for key in ("seq_gem.p", "model.aggregation.3.bias", "model.extra.weight", "seq_gem.q", "a.pth"):
        assert key in message
    assert "\n" not in message


def test_many_missing_keys_are_listed_short(source_model, tmp_path):
    drop = [k for k in source_model.state_dict() if k.startswith("model.backbone.")]
    path = _save_variant(source_model, str(tmp_path / "b.pth"), drop=drop)
    with pytest.raises(JistEdgeError) as err:
        load_checkpoint(build_model(), path)
    message = str(err.value)
    assert "more)" in message and len(message) < 800 and "model.backbone.0.weight" in message


def test_shape_mismatch_names_key_and_both_shapes(source_model, tmp_path):
    path = _save_variant(source_model, str(tmp_path / "c.pth"),
                         replace={"model.aggregation.3.weight": torch.zeros(256, 512)})
    with pytest.raises(JistEdgeError) as err:
        load_checkpoint(build_model(), path)
    message = str(err.value)
    assert "model.aggregation.3.weight" in message and "[256, 512]" in message and "[512, 512]" in message


# ---- refused files, through the CLI -------------------------------------------------------------


def _truncated(source_ckpt, path):
    with open(source_ckpt, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])


def _text(_, path):
    with open(path, "w") as handle:
        handle.write("model.backbone.0.weight = [0.1, 0.2]\nthis is not a checkpoint\n")


def _jpeg(_, path):
    import cv2

    image = np.random.RandomState(0).randint(0, 255, (48, 64, 3)).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    with open(path, "wb") as handle:
        handle.write(data.tobytes())


def _empty(_, path):
    open(path, "wb").close()


def _code_torch_save(_, path):
    torch.save({"model.backbone.0.weight": CodePayload(path + ".pwned")}, path)


def _code_plain_pickle(_, path):
    with open(path, "wb") as handle:
        pickle.dump({"seq_gem.p": CodePayload(path + ".pwned")}, handle, protocol=2)


@pytest.fixture(scope="module")
def protected_output(tiny_bundle, tmp_path_factory):
    """An output folder holding a real bundle; every refused export (even with --force) must leave it be."""
    return copy_bundle(tiny_bundle, str(tmp_path_factory.mktemp("protected") / "model"))


def _snapshot(folder):
    parent = os.path.dirname(folder)
    files = {name: sha256_file(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}
    return files, sorted(os.listdir(parent))


@pytest.mark.parametrize("make, reason", [
    (_truncated, "truncated"), (_text, "text file"), (_jpeg, "JPEG image"), (_empty, "empty"),
    (_code_torch_save, "posix.system"), (_code_plain_pickle, "posix.system"),
], ids=["truncated", "text", "jpeg", "empty", "code-torch-save", "code-pickle"])
def test_bad_checkpoint_is_refused_in_one_line(make, reason, official_ckpt, protected_output, tmp_path):
    bad = str(tmp_path / "bad_checkpoint.pth")
    make(official_ckpt, bad)
    marker = bad + ".pwned"
    before = _snapshot(protected_output)
    result = CliRunner().invoke(main, ["export", "--checkpoint", bad, "--img-size", "64", "96",
                                       "--output", protected_output, "--force"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # a handled error, not a crash
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and bad in errors[0] and reason in errors[0], result.output
    assert "Traceback" not in result.output
    assert not os.path.exists(marker)
    assert _snapshot(protected_output) == before
    with pytest.raises(JistEdgeError):
        read_state_dict(bad)
    assert not os.path.exists(marker)


def test_code_payload_is_live(tmp_path):
    """The payload used above really runs under a plain unpickler, so its refusal means something."""
    marker = str(tmp_path / "ran")
    pickle.loads(pickle.dumps(CodePayload(marker), protocol=2))
    assert os.path.exists(marker)


def test_code_payload_is_refused_with_a_clear_reason(tmp_path):
    path = str(tmp_path / "evil.pth")
    _code_torch_save(None, path)
    with pytest.raises(JistEdgeError, match="weights_only"):
        read_state_dict(path)
    assert not os.path.exists(path + ".pwned")


def test_non_state_dict_contents_are_refused(tmp_path):
    path = str(tmp_path / "list.pth")
    torch.save([torch.zeros(1)], path)
    with pytest.raises(JistEdgeError, match="not a state_dict"):
        read_state_dict(path)
    path2 = str(tmp_path / "mixed.pth")
    torch.save({"seq_gem.p": torch.ones(1), "epoch": 3}, path2)
    with pytest.raises(JistEdgeError, match="epoch"):
        read_state_dict(path2)
