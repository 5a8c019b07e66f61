"""INT8 calibration on the CPU: set selection and batching, cache reuse, Q/DQ fidelity."""
import json
import os

import numpy as np
import pytest
from optional_imports import import_or_skip

from jist_edge.calibration import cache as ccache
from jist_edge.calibration import dataset
from jist_edge.errors import JistEdgeError
from jist_edge.encoder.preprocess import Preprocessor
from map_routes import route_frames, write_images, write_video


def test_select_indices_spread_seeded_sorted():
    picks = dataset.select_indices(1000, 10, seed=3)
    assert picks == sorted(picks) and len(picks) == 10 and len(set(picks)) == 10
    # one pick per tenth of the route
    assert [p // 100 for p in picks] == list(range(10))
    assert picks == dataset.select_indices(1000, 10, seed=3)
    assert picks != dataset.select_indices(1000, 10, seed=4)
    assert dataset.select_indices(7, 20) == list(range(7))
    assert sorted(set(dataset.select_indices(11, 10, seed=1))) == dataset.select_indices(11, 10, seed=1)
    with pytest.raises(JistEdgeError, match="^frames must be at least 1"):
        dataset.select_indices(10, 0)
    with pytest.raises(JistEdgeError, match="no frames"):
        dataset.select_indices(0, 5)


@pytest.fixture(scope="module")
def route_folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("calib_images"))
    write_images(folder, route_frames(30, height=48, width=64, seed=2))
    return folder


def test_folder_set_uses_runtime_preprocessing_and_batches(route_folder):
    pre = Preprocessor(32, 40)
    calib = dataset.CalibrationSet(route_folder, pre, frames=7, seed=0)
    assert len(calib) == 7 and calib.kind == "images" and calib.frames_read == 0
    batches = list(calib.batches(3))
    assert [b.shape[0] for b in batches] == list(dataset.batch_shapes(7, 3, pad=False)) == [3, 3, 1]
    assert calib.frames_read == 7
    import cv2
    first = cv2.imread(os.path.join(route_folder, calib.names[calib.indices[0]]))
    np.testing.assert_array_equal(batches[0][0], pre(first))
    padded = list(calib.batches(3, pad=True))
    assert [b.shape for b in padded] == [(3, 3, 32, 40)] * 3
    np.testing.assert_array_equal(padded[-1][1], padded[-1][0])  # the pad repeats frames


def test_video_set_matches_frames(tmp_path):
    frames = route_frames(20, height=48, width=64, seed=4)
    path = str(tmp_path / "route.avi")
    write_video(path, frames)
    pre = Preprocessor(48, 64)
    calib = dataset.CalibrationSet(path, pre, frames=5, seed=1)
    assert calib.kind == "video" and calib.total == 20
    got = calib.array()
    assert got.shape == (5, 3, 48, 64)
    # MJPG is lossy: each selected frame is closest to its own source frame
    sources = pre.batch(frames)
    for row, index in zip(got, calib.indices):
        errors = np.abs(sources - row[None]).mean(axis=(1, 2, 3))
        assert int(np.argmin(errors)) == index


def test_bad_source_named(tmp_path):
    stray = tmp_path / "notes.txt"
    stray.write_text("x")
    with pytest.raises(JistEdgeError, match="notes.txt"):
        dataset.CalibrationSet(str(stray), Preprocessor(32, 40))


def test_cache_reused_without_reading_images(route_folder, tiny_bundle, tmp_path):
    def open_set():
        return dataset.open_calibration_set(route_folder, tiny_bundle, frames=6, seed=0)

    first = open_set()
    cache = ccache.cache_for(str(tmp_path), tiny_bundle, first, extra={"tensorrt": "8.6.1"})
    made = cache.get_or_make(lambda: b"TRT-8601-EntropyCalibration2\n" + bytes(first.array().shape[0]))
    assert first.frames_read == 6 and cache.writes == 1
    second = open_set()
    again = ccache.cache_for(str(tmp_path), tiny_bundle, second, extra={"tensorrt": "8.6.1"})
    assert again.key == cache.key
    assert again.get_or_make(lambda: second.array().tobytes()) == made
    assert second.frames_read == 0 and again.hits == 1 and again.writes == 0
    meta = json.loads(open(again.sidecar).read())
    assert meta["key"] == again.key and meta["describe"]["bundle_id"] == tiny_bundle.bundle_id
    # another TensorRT, another seed or a touched image: another key
    assert ccache.cache_for(str(tmp_path), tiny_bundle, second, extra={"tensorrt": "8.2.1"}).key != cache.key
    other_seed = dataset.open_calibration_set(route_folder, tiny_bundle, frames=6, seed=5)
    assert ccache.cache_for(str(tmp_path), tiny_bundle, other_seed, extra={"tensorrt": "8.6.1"}).key != cache.key


def test_cache_tampering_and_atomic_write(tmp_path):
    cache = ccache.CalibrationCache(str(tmp_path), "k1")
    assert cache.read() is None
    cache.write(b"scales")
    assert cache.read() == b"scales"
    with open(cache.path, "wb") as handle:
        handle.write(b"other")
    assert cache.read() is None  # bytes no longer match the sidecar
    assert ccache.CalibrationCache(str(tmp_path), "k2").read() is None
    with pytest.raises(JistEdgeError, match="empty"):
        cache.write(b"")

    def boom():
        raise RuntimeError("calibration interrupted")

    good = ccache.CalibrationCache(str(tmp_path), "k3")
    good.write(b"kept")
    with pytest.raises(RuntimeError):
        ccache.CalibrationCache(str(tmp_path), "k4").get_or_make(boom)
    assert good.read() == b"kept"
    assert not [n for n in os.listdir(str(tmp_path)) if n.endswith(".tmp")]


def test_fp32_head_is_the_aggregation(tiny_bundle):
    import onnx

    from jist_edge.encoder.tensorrt.fp32_layers import onnx_fp32_head, onnx_nodes

    model = onnx.load(tiny_bundle.encoder_path)
    head = onnx_fp32_head(model)
    kinds = {n.name: n.kind for n in onnx_nodes(model)}
    ops = [kinds[name] for name in head]
    assert ops.count("ReduceL2") == 2 and "ReduceMean" in ops and "Gemm" in ops and ops.count("Pow") >= 2
    assert not any(k in ("Conv", "Relu", "Add", "MaxPool") for k in ops)
    assert not any(kinds[name] == "Shape" for name in head)
    # everything from the first reduction on is in the head (nothing downstream is missed),
    # and GeM's exponent 1/p (computed from the parameter p) is FP32 too
    names = [n.name for n in onnx_nodes(model) if n.kind not in ("Shape", "Constant")]
    first = next(name for name in names if kinds[name] == "ReduceL2")
    assert set(names[names.index(first):]) <= set(head)
    assert "Reciprocal" in ops or ops.count("Div") >= 3


@pytest.mark.slow
def test_qdq_encoder_fidelity(tiny_bundle, tmp_path):
    """Required: Q/DQ INT8 runs in ONNX Runtime, cosine >= 0.99, top-1 agreement >= 0.95."""
    import onnx

    from jist_edge.calibration import fidelity
    from jist_edge.calibration.qdq import quantize_encoder

    pre = Preprocessor.for_bundle(tiny_bundle)
    h, w = tiny_bundle.height, tiny_bundle.width
    calib = pre.batch(route_frames(16, height=h, width=w, seed=11))
    out = str(tmp_path / "encoder-qdq.onnx")
    info = quantize_encoder(tiny_bundle.encoder_path, calib, out)
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert ops.count("QuantizeLinear") > 10 and info["fp32_nodes"]
    assert os.path.getsize(out) < 0.5 * os.path.getsize(tiny_bundle.encoder_path)
    # the query pass sees the same places 1 px off, darker and noisier; a half-step
    # shift (3 px) would put every query exactly between two database windows, where
    # any perturbation flips the nearest one (measured: agreement 0.69 there)
    db = pre.batch(route_frames(30, height=h, width=w, seed=5))
    q = pre.batch(route_frames(30, height=h, width=w, seed=5, shift=1, gain=0.9, noise=4.0))
    report = fidelity.fidelity_report(tiny_bundle, db, q, {"int8-qdq": fidelity.ort_encoder(out)})
    numbers = report["variants"]["int8-qdq"]
    print(json.dumps(numbers, indent=1))
    assert numbers["finite"]
    assert numbers["frame_cosine_min"] >= 0.99 and numbers["sequence_cosine_min"] >= 0.99
    assert numbers["top1_agreement"] >= 0.95
    assert numbers["max_abs_diff"] > 0  # it really is quantized


@pytest.mark.slow
def test_fp16_emulation_fidelity(tiny_bundle):
    from jist_edge.calibration import fidelity

    import_or_skip("torch")
    pre = Preprocessor.for_bundle(tiny_bundle)
    h, w = tiny_bundle.height, tiny_bundle.width
    db = pre.batch(route_frames(12, height=h, width=w, seed=6))
    q = pre.batch(route_frames(12, height=h, width=w, seed=6, shift=3))
    model = fidelity.torch_model_for(tiny_bundle)
    assert fidelity.check_torch_matches(model, tiny_bundle, db) < 1e-4
    report = fidelity.fidelity_report(tiny_bundle, db, q, {
        "fp16": fidelity.fp16_encoder(model, head_fp32=True),
        "fp16-all": fidelity.fp16_encoder(model, head_fp32=False),
    })
    for name in ("fp16", "fp16-all"):
        numbers = report["variants"][name]
        assert numbers["finite"] and numbers["frame_cosine_min"] >= 0.999, (name, numbers)
        assert 0 < numbers["max_abs_diff"] < 0.05


@pytest.mark.slow
def test_calibrate_cli_writes_qdq_and_report(tiny_bundle, route_folder, tmp_path):
    from click.testing import CliRunner

    from jist_edge.cli import main

    qdq = str(tmp_path / "q.onnx")
    report = str(tmp_path / "fidelity.json")
    result = CliRunner().invoke(main, [
        "calibrate", tiny_bundle.path, "--calibration", route_folder, "--frames", "6",
        "--route-frames", "14", "--no-fp16", "--qdq", qdq, "--report", report, "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "int8-qdq" in result.output and "int8-cpu" in result.output and "top-1 agree" in result.output
    data = json.loads(open(report).read())
    assert data["bundle_id"] == tiny_bundle.bundle_id and data["calibration"]["frames"] == 6
    assert data["variants"]["int8-qdq"]["frame_cosine_min"] > 0.99
    # both INT8 variants side by side; only the CPU one is installed for ONNX Runtime
    assert data["qdq"]["activations"] == "int8" and data["cpu_int8_quantization"]["activations"] == "uint8"
    assert data["cpu_int8"]["installed"] == str(tmp_path / "engines" / "encoder-int8-cpu.onnx")
    import onnxruntime as ort
    session = ort.InferenceSession(qdq, providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: np.zeros(
        (1, 3, tiny_bundle.height, tiny_bundle.width), np.float32)})[0]
    assert out.shape == (1, tiny_bundle.dim)


def test_calibrate_cli_refuses_zero_frame_counts_by_name_before_quantizing(tiny_bundle, tmp_path):
    """--route-frames 0 used to be reported as '--frames' after the INT8 quantization ran."""
    from click.testing import CliRunner

    from jist_edge.cli import main

    for option in ("--frames", "--route-frames"):
        result = CliRunner().invoke(main, ["calibrate", tiny_bundle.path, "--calibration", str(tmp_path),
                                           "--report", str(tmp_path / "r.json"), option, "0"])
        assert result.exit_code == 2 and "Invalid value for '{}'".format(option) in result.output
        assert os.listdir(str(tmp_path)) == []
