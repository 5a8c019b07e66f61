"""Where an INT8 engine's scales come from, per TensorRT typing path.

Weakly typed (TensorRT 8.x): an entropy calibrator fed by the calibration set, its
result cached beside the engines (a valid cache means no image is decoded).
Strongly typed (10+): the explicitly quantized (Q/DQ) encoder that ``jist-edge
calibrate`` writes (``calibration.qdq.make_qdq_encoder``), made from the same set and
built with no precision flag.

The calibration code lives in the host package ``jist_edge.calibration`` and is
imported only when INT8 data is really asked for.
"""
import os
from typing import Any, Callable, Dict

from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.encoder.tensorrt.build import Int8Source


def qdq_onnx_name(bundle_id: str) -> str:
    return "encoder-qdq-{}.onnx".format(bundle_id)


def calibration_batch(profile: Dict[str, Any]) -> int:
    """Calibrator batch size: the engine's largest batch, at most 8 (memory on a 4 GB Jetson)."""
    return max(1, min(8, int(profile["max"][0])))


def int8_source(bundle, calibration: str, frames: int, directory: str,
                log: Callable[[str], None] = lambda message: None) -> Int8Source:
    """``source(platform, profile)`` -> {"calibrator": ...} (weak) or {"onnx": qdq_path} (strong)."""

    def source(platform: Dict[str, Any], profile: Dict[str, Any]) -> Dict[str, Any]:
        from jist_edge.calibration.dataset import open_calibration_set

        calib = open_calibration_set(calibration, bundle, frames=frames)
        if trt_policy.int8_method_for_version(platform["tensorrt"]) == "qdq":
            return {"onnx": _qdq_file(bundle, calib, directory, log)}
        return {"calibrator": _calibrator(bundle, calib, calibration, platform, profile, directory, log)}

    return source


def _qdq_file(bundle, calib, directory: str, log: Callable[[str], None]) -> str:
    from jist_edge.calibration.qdq import make_qdq_encoder

    out = os.path.join(directory, qdq_onnx_name(bundle.bundle_id))
    log("quantizing the encoder on {} calibration frames (Q/DQ ONNX {})".format(len(calib), out))
    make_qdq_encoder(bundle, calib, out)
    return out


def _calibrator(bundle, calib, calibration: str, platform: Dict[str, Any], profile: Dict[str, Any],
                directory: str, log: Callable[[str], None]) -> Any:
    from jist_edge.calibration.cache import cache_for
    from jist_edge.encoder.tensorrt.calibrator import make_entropy_calibrator

    batch = calibration_batch(profile)
    cache = cache_for(directory, bundle, calib, extra={"tensorrt": platform["tensorrt"], "batch": batch})
    if cache.read() is None:
        log("calibrating on {} frames of {} (cached in {})".format(len(calib), calibration, cache.path))
    return make_entropy_calibrator(
        lambda: calib.batches(batch, pad=True), (batch,) + tuple(profile["max"][1:]), cache.read, cache.write)
