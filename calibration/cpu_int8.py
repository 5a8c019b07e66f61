"""The CPU INT8 encoder for ONNX Runtime: quantize, gate on fidelity, install beside the bundle.

Why a second INT8 file next to the TensorRT Q/DQ one: ONNX Runtime's CPU kernels are
fast for uint8 activations x int8 weights (U8S8); the TensorRT recipe (signed, symmetric
activations) runs no faster than FP32 there (measured 0.95-1.00x, DESIGN.md). So this
one has asymmetric uint8 activations (MinMax ranges from frames of the user's route),
per-channel symmetric int8 weights, Q/DQ format (ONNX Runtime fuses the pairs into
integer kernels when it loads the file), and the GeM/L2 head left in FP32
(``jist_edge.encoder.tensorrt.fp32_layers``), exactly as the TensorRT builders pin it.

The gate: the model is installed (and so usable by ``run --precision int8|best``) only
when the mean frame-descriptor cosine to FP32 is >= 0.99 and the top-1 agreement of
sequence matching on the route map >= 0.95; ``force`` installs it anyway, marked as not
passed. A refused model leaves whatever was installed before untouched.
Host tool: needs onnx and onnxruntime's quantization tools.
"""
import os
from typing import Any, Dict, List, Optional

import numpy as np

from jist_edge.encoder.onnxruntime import int8_model
from jist_edge.calibration.qdq import quantize_encoder
from jist_edge.errors import JistEdgeError
from jist_edge.locks import output_lock

MIN_COSINE = 0.99
MIN_TOP1 = 0.95
METHOD = "minmax"


def quantize_cpu_int8(bundle: Any, frames: np.ndarray, out_path: str) -> Dict[str, Any]:
    """frames (Nx3xHxW, preprocessed like the runtime) -> U8S8 Q/DQ encoder at ``out_path``."""
    return quantize_encoder(bundle.encoder_path, frames, out_path, method=METHOD, activations="uint8")


def gate(numbers: Dict[str, Any], min_cosine: Optional[float] = None, min_top1: Optional[float] = None) -> List[str]:
    """What fails the gate, in words ([] when it passes); thresholds default to MIN_COSINE, MIN_TOP1."""
    min_cosine = MIN_COSINE if min_cosine is None else min_cosine
    min_top1 = MIN_TOP1 if min_top1 is None else min_top1
    failures = []
    if not numbers.get("finite", False):
        failures.append("descriptors are not all finite")
    if numbers["frame_cosine_mean"] < min_cosine:
        failures.append("frame-descriptor cosine to FP32 {:.4f} < {}".format(numbers["frame_cosine_mean"], min_cosine))
    if numbers["top1_agreement"] < min_top1:
        failures.append("top-1 agreement on the route map {:.3f} < {}".format(numbers["top1_agreement"], min_top1))
    return failures


def fidelity_record(numbers: Dict[str, Any], failures: List[str], forced: bool, random_weights: bool) -> Dict[str, Any]:
    """What the header keeps of the fidelity report (the gate's inputs and verdict)."""
    keep = ("frame_cosine_mean", "frame_cosine_min", "sequence_cosine_mean", "sequence_cosine_min",
            "top1_agreement", "queries", "database")
    record = {k: numbers[k] for k in keep}  # type: Dict[str, Any]
    record.update({"passed": not failures, "failures": failures, "forced": bool(forced and failures),
                   "thresholds": {"frame_cosine_mean": MIN_COSINE, "top1_agreement": MIN_TOP1},
                   "random_weights": bool(random_weights)})
    return record


def install(model_file: str, cache_dir: str, expected: Dict[str, Any], fidelity: Dict[str, Any],
            info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Copy a quantized file to ``<cache_dir>/encoder-int8-cpu.onnx`` with its header (atomically)."""
    if not fidelity["passed"] and not fidelity["forced"]:
        raise JistEdgeError("refusing to install a CPU INT8 model that failed its fidelity gate without --force")
    with open(model_file, "rb") as handle:
        data = handle.read()
    quantization = {k: v for k, v in (info or {}).items() if k not in ("path", "fp32_nodes")}
    if "fp32_nodes" in (info or {}):
        quantization["fp32_head_nodes"] = len(info["fp32_nodes"])
    path = int8_model.model_path(cache_dir)
    with output_lock(cache_dir, "engine cache"):  # the cache TensorRT engines share
        header = int8_model.write_model(path, data, expected, fidelity, {"quantization": quantization})
    header["path"] = path
    return header


def existing_current(cache_dir: str, expected: Dict[str, Any]) -> Optional[str]:
    """The installed model's path when it was made from the same bundle, ONNX Runtime and calibration set."""
    path = int8_model.model_path(cache_dir)
    return path if os.path.isfile(path) and int8_model.is_current(path, expected) else None
