"""ONNX export: torch vs ONNX Runtime parity at two sizes, streaming equivalence, dynamic batch,
the manifest's records, opset choice, and the overwrite rules of `jist-edge export`."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from optional_imports import import_or_skip

torch = import_or_skip("torch")
onnx = import_or_skip("onnx")
ort = import_or_skip("onnxruntime")

from click.testing import CliRunner  # noqa: E402

from jist_edge.bundle import load_bundle  # noqa: E402
from jist_edge.cli import main  # noqa: E402
from jist_edge.errors import JistEdgeError  # noqa: E402
from jist_edge.export.onnx_export import exporter_for  # noqa: E402
from jist_edge.fileio import sha256_file  # noqa: E402
from jist_edge.encoder.seqgem import seqgem, sliding_windows  # noqa: E402

from conftest import copy_bundle  # noqa: E402


def _session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def _inputs(bundle, shape_prefix, seed):
    rng = np.random.RandomState(seed)
    return rng.randn(*(tuple(shape_prefix) + (3, bundle.height, bundle.width))).astype(np.float32)


@pytest.fixture(scope="module", params=["tiny_bundle", "alt_bundle"])
def bundle_and_model(request, reference_model):
    bundle = request.getfixturevalue(request.param)
    return bundle, reference_model(bundle)


def test_torch_and_onnxruntime_agree_on_frames_and_sequences(bundle_and_model):
    bundle, model = bundle_and_model
    assert abs(bundle.gem_p - 3.0) > 0.3 and abs(bundle.seqgem_p - 3.0) > 0.3  # p=3 hard-coded anywhere fails
    frames = _inputs(bundle, (4,), 11)  # batch sizes unlike the trace's (2)
    sequences = _inputs(bundle, (3, bundle.seq_len), 12)
    with torch.no_grad():
        ref_frames = model.encode_frames(torch.from_numpy(frames)).numpy()
        ref_seq = model(torch.from_numpy(sequences)).numpy()
    got_frames = _session(bundle.encoder_path).run(None, {"frames": frames})[0]
    got_seq = _session(bundle.sequence_path).run(None, {"sequences": sequences})[0]
    assert got_frames.shape == (4, 512) and got_seq.shape == (3, 512)
    assert np.abs(got_frames - ref_frames).max() <= 1e-4
    assert np.abs(got_seq - ref_seq).max() <= 1e-4
    # the descriptors are not degenerate (else parity would prove little)
    assert np.abs(ref_seq[0] - ref_seq[1]).max() > 1e-3


def test_a_wrong_p_would_be_caught(tiny_bundle, reference_model):
    """The parity check that guards every export refuses graphs that a model with another p
    (the default 3 instead of the bundle's seed-derived p) does not reproduce."""
    from jist_edge.export.model import build_model
    from jist_edge.export.parity import check_parity

    L, h, w = tiny_bundle.seq_len, tiny_bundle.height, tiny_bundle.width
    right = check_parity(reference_model(tiny_bundle), tiny_bundle.encoder_path, tiny_bundle.sequence_path, h, w, L)
    assert right["sequence_torch_vs_onnx"]["max_abs_diff"] <= 1e-4
    wrong = build_model(random_init=True, seed=0, gem_p=3.0, seqgem_p=3.0)
    with pytest.raises(JistEdgeError, match="parity check failed"):
        check_parity(wrong, tiny_bundle.encoder_path, tiny_bundle.sequence_path, h, w, L)


def test_streaming_encoder_plus_numpy_seqgem_equals_sequence_onnx(tiny_bundle):
    enc = _session(tiny_bundle.encoder_path)
    seq = _session(tiny_bundle.sequence_path)
    n, L = 8, tiny_bundle.seq_len
    frames = _inputs(tiny_bundle, (n,), 21)
    per_frame = np.concatenate([enc.run(None, {"frames": frames[i:i + 1]})[0] for i in range(n)])
    windows = np.stack([frames[i:i + L] for i in range(n - L + 1)])
    expected = seq.run(None, {"sequences": windows})[0]
    streamed = np.stack([seqgem(per_frame[i:i + L], tiny_bundle.seqgem_p, tiny_bundle.seqgem_eps)
                         for i in range(n - L + 1)])
    assert np.abs(streamed - expected).max() <= 1e-5
    slid = sliding_windows(per_frame, L, tiny_bundle.seqgem_p, tiny_bundle.seqgem_eps)
    assert np.abs(slid - expected).max() <= 1e-5
    # order of frames inside a window does not matter, in the graph either
    shuffled = windows[:, ::-1].copy()
    assert np.abs(seq.run(None, {"sequences": shuffled})[0] - expected).max() <= 1e-5


def test_batch_axis_is_dynamic_and_files_are_self_contained(tiny_bundle):
    for path, name, prefix in ((tiny_bundle.encoder_path, "frames", ()), (tiny_bundle.sequence_path, "sequences",
                                                                          (tiny_bundle.seq_len,))):
        sess = _session(path)
        assert isinstance(sess.get_inputs()[0].shape[0], str)
        assert isinstance(sess.get_outputs()[0].shape[0], str)
        assert sess.get_outputs()[0].shape[1] == 512
        for batch in (1, 5):
            out = sess.run(None, {name: _inputs(tiny_bundle, (batch,) + prefix, batch)})[0]
            assert out.shape == (batch, 512)
        model = onnx.load(path, load_external_data=False)
        assert [imp.version for imp in model.opset_import if imp.domain in ("", "ai.onnx")] == [13]
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
        # shapes are constants apart from the batch: no shape arithmetic for TensorRT 8.2 to resolve
        assert not {n.op_type for n in model.graph.node} & {"Shape", "Gather", "Expand", "If", "Loop"}
    assert sorted(os.listdir(tiny_bundle.path)) == ["encoder.onnx", "manifest.json", "sequence.onnx"]


def test_manifest_records_what_the_runtime_and_a_reader_need(tiny_bundle, reference_model):
    m = tiny_bundle.manifest
    model = reference_model(tiny_bundle)
    assert m["random_init"] is True and "RANDOM" in m["warning"]
    assert m["source_checkpoint"] is None and m["seed"] == 0
    assert (m["input"]["height"], m["input"]["width"]) == (tiny_bundle.height, tiny_bundle.width)
    assert m["gem_p"] == pytest.approx(model.gem_p) and m["seqgem_p"] == pytest.approx(model.seqgem_p)
    assert m["opset"] == 13 and "dynamo=False" in m["tools"]["exporter"]
    assert m["tools"]["torch"] == torch.__version__ and m["tools"]["onnxruntime"] == ort.__version__
    for key in ("frames_torch_vs_onnx", "sequence_torch_vs_onnx"):
        assert 0 <= m["parity"][key]["max_abs_diff"] <= 1e-4
        assert m["parity"][key]["min_cosine"] > 0.9999
    assert m["parity"]["stream_encoder_seqgem_vs_sequence_onnx"]["max_abs_diff"] <= 1e-5
    assert m["export"]["seconds"]["total_before_write_s"] > 0
    for name, rec in m["files"].items():
        assert sha256_file(os.path.join(tiny_bundle.path, name)) == rec["sha256"]


def test_opset_choice():
    assert exporter_for(13) == "legacy" and exporter_for(17) == "legacy" and exporter_for(18) == "dynamo"
    for bad in (9, 99):
        with pytest.raises(JistEdgeError, match="opset"):
            exporter_for(bad)


@pytest.mark.slow
def test_opset_18_uses_the_dynamo_exporter(tmp_path, reference_model, tiny_bundle):
    """The dynamo path (opset >= 18): exact opset, one file, dynamic batch, same numbers."""
    from jist_edge.export.model import FrameEncoder
    from jist_edge.export.onnx_export import example_inputs, export_onnx

    model = reference_model(tiny_bundle)
    frames, _ = example_inputs(tiny_bundle.height, tiny_bundle.width, 1)
    path = str(tmp_path / "encoder18.onnx")
    export_onnx(FrameEncoder(model), frames, path, "frames", "descriptors", "N", 18)
    assert sorted(os.listdir(str(tmp_path))) == ["encoder18.onnx"]  # no external data file
    proto = onnx.load(path)
    assert [imp.version for imp in proto.opset_import if imp.domain in ("", "ai.onnx")] == [18]
    sess = _session(path)
    assert isinstance(sess.get_inputs()[0].shape[0], str)
    x = _inputs(tiny_bundle, (3,), 5)
    with torch.no_grad():
        ref = model.encode_frames(torch.from_numpy(x)).numpy()
    assert np.abs(sess.run(None, {"frames": x})[0] - ref).max() <= 1e-4


def _cli(args):
    return CliRunner().invoke(main, ["export"] + args)


def _snapshot(folder):
    return {name: sha256_file(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}


@pytest.mark.slow
def test_overwrite_rules(tiny_bundle, tmp_path):
    """Same weights re-export in place; different weights need --force; a refused export changes nothing."""
    from jist_edge.export.checkpoint import save_official

    out = copy_bundle(tiny_bundle, str(tmp_path / "model"))
    before = _snapshot(out)
    ckpt = str(tmp_path / "same_weights.pth")
    from jist_edge.export.model import build_model

    save_official(build_model(random_init=True, seed=0), ckpt)
    size = [str(tiny_bundle.height), str(tiny_bundle.width)]

    same = _cli(["--checkpoint", ckpt, "--img-size"] + size + ["--output", out])
    assert same.exit_code == 0, same.output
    again = load_bundle(out)
    assert again.bundle_id == tiny_bundle.bundle_id and again.random_init is False
    assert again.manifest["source_checkpoint"]["sha256"] == sha256_file(ckpt)
    for name in ("encoder.onnx", "sequence.onnx"):  # export is deterministic
        assert sha256_file(os.path.join(out, name)) == before[name]

    before = _snapshot(out)
    other = _cli(["--random-init", "--seed", "1", "--img-size"] + size + ["--output", out])
    assert other.exit_code != 0
    assert "different bundle" in other.output and "--force" in other.output
    assert "Traceback" not in other.output
    assert _snapshot(out) == before
    assert sorted(os.listdir(str(tmp_path))) == ["model", "same_weights.pth"]  # no staging left behind

    forced = _cli(["--random-init", "--seed", "1", "--img-size"] + size + ["--output", out, "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    summary = json.loads(forced.output[forced.output.index("{"):])
    replaced = load_bundle(out)
    assert replaced.bundle_id == summary["bundle_id"] != tiny_bundle.bundle_id
    assert replaced.random_init is True and replaced.manifest["seed"] == 1


def test_cli_argument_errors(tmp_path):
    out = str(tmp_path / "never")
    for args in ([], ["--random-init", "--checkpoint", str(tmp_path / "x.pth")], ["--checkpoint", "x", "--gem-p", "2"]):
        result = _cli(args + ["--output", out])
        assert result.exit_code != 0 and "Traceback" not in result.output
    bad_opset = _cli(["--random-init", "--opset", "9", "--output", out])
    assert bad_opset.exit_code != 0 and "--opset 9" in bad_opset.output
    for size in (["31", "31"], ["0", "0"], ["100000", "100000"]):
        bad_size = _cli(["--random-init", "--img-size"] + size + ["--output", out])
        assert bad_size.exit_code == 1 and isinstance(bad_size.exception, SystemExit), bad_size.output
        assert "--img-size" in bad_size.output and "Traceback" not in bad_size.output
    assert not os.path.exists(out)


def test_export_without_torch_says_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from jist_edge.cli import main\n"
        "main(['export', '--random-init', '--output', sys.argv[1]])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "pip install 'jist-edge[export]' torch==2.13.0" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(str(tmp_path / "out"))


def test_engine_shortcut_fails_before_exporting_where_tensorrt_is_missing(tmp_path):
    from jist_edge.encoder.tensorrt import backend as tensorrt_backend

    if tensorrt_backend.is_available():
        pytest.skip("TensorRT is available here: the shortcut builds an engine instead")
    out = tmp_path / "model"
    result = _cli(["--random-init", "--img-size", "64", "96", "--output", str(out), "--engine", "fp16"])
    assert result.exit_code != 0 and "TensorRT" in result.output and "jist-edge engine build" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_non_bundle_output_folder_is_refused_before_exporting(tmp_path, monkeypatch):
    from jist_edge.export import exporter

    out = tmp_path / "photos"
    out.mkdir()
    (out / "keep.jpg").write_bytes(b"not mine")
    built = []
    monkeypatch.setattr(exporter, "build_model", lambda **kw: built.append(kw))  # must never be reached
    result = _cli(["--random-init", "--img-size", "64", "96", "--output", str(out)])
    assert result.exit_code != 0 and "holds no bundle" in result.output and "--force" in result.output
    assert built == [] and sorted(p.name for p in out.iterdir()) == ["keep.jpg"]
