"""TensorRT on a real GPU: FP16 engine from a tiny bundle vs ONNX Runtime. Skipped without TensorRT."""
# (The folder is not named "tensorrt": pytest puts tests/ on sys.path, and a
# tests/tensorrt folder would import as a namespace package named tensorrt.)
import pytest

pytest.importorskip("tensorrt", exc_type=ImportError)
pytest.importorskip("pycuda.driver", exc_type=ImportError)

import threading  # noqa: E402

import numpy as np  # noqa: E402

from jist_edge.engines import build as engine_build

from jist_edge.engines import cache as engine_cache

from jist_edge.engines import runner as trt  # noqa: E402
from jist_edge.backends.onnxruntime_backend import OrtEncoder  # noqa: E402
from jist_edge.backends.tensorrt_backend import open_encoder  # noqa: E402

pytestmark = pytest.mark.tensorrt


def _frames(bundle, n, seed=0):
    rng = np.random.RandomState(seed)
    return rng.standard_normal((n, 3, bundle.height, bundle.width)).astype(np.float32)


def _cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fp16_engine_matches_onnxruntime(tiny_bundle, tmp_path):
    path, header = engine_build.build(tiny_bundle, "encoder", "fp16", cache_dir=str(tmp_path))
    assert header["fp32_layers"], "the GeM/normalization head must be pinned to FP32"
    assert engine_cache.check_header(header, header) == []
    encoder = open_encoder(tiny_bundle, precision="fp16", no_build=True, cache_dir=str(tmp_path))
    try:
        frames = _frames(tiny_bundle, 2 * tiny_bundle.seq_len + 1)  # more than max batch: split
        got = encoder.encode(frames)
        want = OrtEncoder(tiny_bundle.encoder_path).encode(frames)
        diff = float(np.abs(got - want).max())
        cos = _cos(got, want)
        print("fp16 vs ORT: max abs diff {:.3g}, cosine min {:.6f}".format(diff, cos.min()))
        assert got.shape == want.shape and np.isfinite(got).all()
        assert cos.min() > 0.999 and diff < 0.02
        # the encoder works from another thread (capture thread) too
        out = {}
        thread = threading.Thread(target=lambda: out.setdefault("x", encoder.encode(frames[:1])))
        thread.start()
        thread.join()
        np.testing.assert_allclose(out["x"], got[:1], atol=1e-3)
        assert encoder.describe()["api"] in ("bindings_v2", "named_v3")
    finally:
        encoder.close()


def test_mismatched_engine_refused_then_rebuilt(tiny_bundle, tmp_path):
    path, header = engine_build.build(tiny_bundle, "encoder", "fp16", cache_dir=str(tmp_path))
    stale = dict(header, gpu="some other GPU")
    engine_cache.write_engine(path, open(path, "rb").read(), {k: stale[k] for k in engine_cache.IDENTITY_FIELDS})
    with pytest.raises(engine_cache.EngineMismatch, match="gpu"):
        open_encoder(tiny_bundle, precision="fp16", no_build=True, cache_dir=str(tmp_path))
    encoder = open_encoder(tiny_bundle, precision="fp16", cache_dir=str(tmp_path))
    encoder.close()
    assert engine_cache.read_header(path)["gpu"] == trt.platform_info()["gpu"]
