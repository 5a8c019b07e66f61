"""TensorRT on a real GPU: engines from a tiny bundle vs ONNX Runtime. Skipped without TensorRT/pycuda.

Runs the path the local TensorRT takes (weakly typed on 8.x, strongly typed from 10),
and checks that every resource is released on the failure paths too.
"""
# (The folder is not named "tensorrt": pytest puts tests/ on sys.path, and a
# tests/tensorrt folder would import as a namespace package named tensorrt.)
import threading
import warnings

from optional_imports import import_or_skip

import_or_skip("tensorrt")
import_or_skip("pycuda.driver")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jist_edge.encoder.onnxruntime.backend import OrtEncoder  # noqa: E402
from jist_edge.encoder.tensorrt.backend import open_encoder, open_engine  # noqa: E402
from jist_edge.encoder.tensorrt import build as engine_build  # noqa: E402
from jist_edge.encoder.tensorrt import cache as engine_cache  # noqa: E402
from jist_edge.encoder.tensorrt import compiler, policy, probe  # noqa: E402
from jist_edge.encoder.tensorrt.calibrator import make_entropy_calibrator  # noqa: E402
from jist_edge.encoder.tensorrt.cuda_device import CudaDevice  # noqa: E402
from jist_edge.encoder.tensorrt.runner import EngineRunner  # noqa: E402
from jist_edge.errors import JistEdgeError  # noqa: E402
from map_routes import route_frames, write_images  # noqa: E402

pytestmark = pytest.mark.tensorrt


def _frames(bundle, n, seed=0):
    rng = np.random.RandomState(seed)
    return rng.standard_normal((n, 3, bundle.height, bundle.width)).astype(np.float32)


def _cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _tensorrt_deprecations(caught):
    return [w for w in caught if issubclass(w.category, DeprecationWarning)]


def test_fp16_engine_matches_onnxruntime_without_deprecation_warnings(tiny_bundle, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path, header = engine_build.build(tiny_bundle, "encoder", "fp16", cache_dir=str(tmp_path))
        encoder = open_encoder(tiny_bundle, precision="fp16", no_build=True, cache_dir=str(tmp_path))
    info = probe.platform_info()
    assert header["typing"] == info["typing"] == policy.typing_for_version(info["tensorrt"])
    assert header["fp32_layers"], "the GeM/normalization head must stay FP32"
    if header["typing"] == policy.STRONG:  # built from the FP16 copy, no precision flag set
        assert header["built_from"].startswith("encoder-fp16-") and header["recipe"]["flags"] == []
    else:
        assert header["recipe"]["flags"] == ["FP16"] and header["recipe"]["pin_fp32_head"]
    assert _tensorrt_deprecations(caught) == [], [str(w.message) for w in caught]
    try:
        frames = _frames(tiny_bundle, 2 * tiny_bundle.seq_len + 1)  # more than max batch: split
        got = encoder.encode(frames)
        want = OrtEncoder(tiny_bundle.encoder_path).encode(frames)
        diff = float(np.abs(got - want).max())
        cos = _cos(got, want)
        print("fp16 ({}) vs ORT: max abs diff {:.3g}, cosine min {:.6f} (random weights)".format(
            header["typing"], diff, cos.min()))
        assert got.shape == want.shape and np.isfinite(got).all()
        assert cos.min() > 0.999 and diff < 0.02
        # the encoder works from another thread (capture thread) too
        out = {}
        thread = threading.Thread(target=lambda: out.setdefault("x", encoder.encode(frames[:1])))
        thread.start()
        thread.join()
        np.testing.assert_allclose(out["x"], got[:1], atol=1e-3)
        described = encoder.describe()
        assert described["api"] == policy.api_for_version(info["tensorrt"])
        assert described["typing"] == header["typing"] and described["engine_device_memory_bytes"] > 0
    finally:
        encoder.close()


def test_fp32_and_int8_engines(tiny_bundle, tmp_path):
    from jist_edge.calibration.int8_source import int8_source

    images = str(tmp_path / "calib")
    write_images(images, route_frames(12, height=tiny_bundle.height, width=tiny_bundle.width, seed=3))
    frames = _frames(tiny_bundle, 3)
    want = OrtEncoder(tiny_bundle.encoder_path).encode(frames)
    for precision, source in (("fp32", None), ("int8", int8_source(tiny_bundle, images, 12, str(tmp_path)))):
        path, header = engine_build.build(tiny_bundle, "encoder", precision, force=True,
                                          cache_dir=str(tmp_path), int8_source=source)
        assert header["precision"] == precision
        if precision == "int8":
            method = "qdq" if header["typing"] == policy.STRONG else "calibrator"
            assert header["int8_method"] == method
        data = engine_cache.load_engine(path, {k: header[k] for k in engine_cache.IDENTITY_FIELDS})[0]
        encoder = open_engine(data, header, CudaDevice())
        try:
            got = encoder.encode(frames)
        finally:
            encoder.close()
        print("{} vs ORT: cosine min {:.6f} (random weights)".format(precision, _cos(got, want).min()))
        assert _cos(got, want).min() > (0.9999 if precision == "fp32" else 0.99)


def test_mismatched_engine_refused_then_rebuilt(tiny_bundle, tmp_path):
    path, header = engine_build.build(tiny_bundle, "encoder", "fp16", cache_dir=str(tmp_path))
    stale = dict(header, gpu="some other GPU")
    engine_cache.write_engine(path, open(path, "rb").read(), {k: stale[k] for k in engine_cache.IDENTITY_FIELDS})
    with pytest.raises(engine_cache.EngineMismatch, match="gpu"):
        open_encoder(tiny_bundle, precision="fp16", no_build=True, cache_dir=str(tmp_path))
    encoder = open_encoder(tiny_bundle, precision="fp16", cache_dir=str(tmp_path))
    encoder.close()
    assert engine_cache.read_header(path)["gpu"] == probe.platform_info()["gpu"]


def test_runner_failing_half_way_releases_and_closes_its_device(monkeypatch):
    device = CudaDevice()
    with pytest.raises(JistEdgeError, match="deserialize"):
        EngineRunner(b"not an engine", device=device)
    assert device.cuda_context is not None  # not its device: left open, and still usable
    device.memory()
    device.close()
    made = []
    original = CudaDevice.__init__

    def remember(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(CudaDevice, "__init__", remember)
    with pytest.raises(JistEdgeError, match="deserialize"):
        EngineRunner(b"not an engine")
    assert len(made) == 1 and made[0].cuda_context is None  # its own device: closed


def test_open_engine_closes_the_device_when_the_encoder_fails(tiny_bundle):
    device = CudaDevice()
    with pytest.raises(JistEdgeError):
        open_engine(b"not an engine", {}, device)
    assert device.cuda_context is None


def test_calibrator_buffer_freed_when_calibration_fails(tiny_bundle, tmp_path):
    if policy.typing_for_version(probe.platform_info()["tensorrt"]) == policy.STRONG:
        pytest.skip("strongly typed TensorRT builds INT8 from a Q/DQ file, without a calibrator")
    shape = (2, 3, tiny_bundle.height, tiny_bundle.width)

    def batches():
        yield np.zeros(shape, np.float32)
        raise RuntimeError("the calibration video broke")

    calibrator = make_entropy_calibrator(batches, shape, lambda: None, lambda data: None)
    recipe = policy.build_recipe(policy.resolve_precision("int8", True, True), policy.WEAK)
    profile = policy.batch_profile(shape[1:], 2)
    with pytest.raises(RuntimeError, match="calibration video broke"):
        compiler.build_engine(tiny_bundle.encoder_path, recipe, profile, calibrator=calibrator)
    assert calibrator.feeder.buffer is None and calibrator.feeder.batches_served == 1


def test_device_close_is_safe_from_two_threads():
    for _ in range(20):
        device = CudaDevice()
        errors = []

        def close():
            try:
                device.close()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=close) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and device.cuda_context is None
