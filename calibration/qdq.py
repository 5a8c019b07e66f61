"""An explicitly quantized (Q/DQ) encoder, made on the CPU with ONNX Runtime.

TensorRT 10 deprecates implicit calibration; it builds INT8 engines from ONNX files
whose QuantizeLinear/DequantizeLinear pairs carry the scales. ONNX Runtime's static
quantization writes exactly that (QuantFormat.QDQ). Choices, for TensorRT:
- symmetric INT8 for activations and weights (TensorRT supports zero point 0 only);
- per-channel weight scales (TensorRT's explicit quantization supports them on convs);
- the descriptor head (L2 norms, GeM, Linear) is excluded: it stays FP32, the same
  layers the FP16/INT8 builders pin to FP32 (``jist_edge.encoder.tensorrt.fp32_layers``);
- pre-processing (``quant_pre_process``) with ``skip_symbolic_shape=True``: the symbolic
  shape pass fails on the dynamo exporter's graphs.
Host tool: needs onnx and onnxruntime, not TensorRT.
"""
import contextlib
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import atomic_path
from jist_edge.encoder.tensorrt.fp32_layers import onnx_fp32_head


class _Reader(object):
    """onnxruntime.quantization.CalibrationDataReader over prepared batches; ``set_range`` lets
    ONNX Runtime calibrate a few batches at a time (``CalibStridedMinMax``)."""

    def __init__(self, input_name: str, batches: List[np.ndarray]) -> None:
        self.input_name = input_name
        self.batches = batches
        self._it = None  # type: Optional[Iterator[np.ndarray]]

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        if self._it is None:
            self._it = iter(self.batches)
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._it = None

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self.batches[start_index:end_index])


def quantize_encoder(onnx_path: str, frames: np.ndarray, out_path: str, method: str = "entropy",
                     batch_size: int = 1, activations: str = "int8") -> Dict[str, Any]:
    """frames (Nx3xHxW, preprocessed) -> Q/DQ ONNX at ``out_path`` (written atomically).

    Batches must all have one size (ONNX Runtime's histogram collectors stack them), so
    a ``batch_size`` that does not divide N is reduced to one that does. ``activations``
    "int8" is symmetric signed (TensorRT's); "uint8" is asymmetric unsigned, the U8S8 recipe
    of ONNX Runtime's CPU kernels (``jist_edge.calibration.cpu_int8``).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    methods = {"entropy": CalibrationMethod.Entropy, "minmax": CalibrationMethod.MinMax,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise JistEdgeError("calibration method {!r} is not one of {}".format(method, ", ".join(methods)))
    if activations not in ("int8", "uint8"):
        raise ValueError("activations must be int8 or uint8, got {!r}".format(activations))
    if frames.ndim != 4 or frames.shape[0] < 1:
        raise JistEdgeError("need at least one calibration frame (Nx3xHxW), got shape {}".format(frames.shape))
    work = tempfile.mkdtemp(prefix="jist-edge-qdq-")
    try:
        pre = os.path.join(work, "pre.onnx")
        quant_pre_process(onnx_path, pre, skip_symbolic_shape=True)
        model = onnx.load(pre)
        head = onnx_fp32_head(model)
        input_name = model.graph.input[0].name
        batch_size = max(d for d in range(1, max(1, batch_size) + 1) if frames.shape[0] % d == 0)
        batches = [np.ascontiguousarray(frames[i:i + batch_size], dtype=np.float32)
                   for i in range(0, frames.shape[0], batch_size)]
        reader = type("Reader", (_Reader, CalibrationDataReader), {})(input_name, batches)
        # the quantizer prints progress to stdout, where calibrate prints its report
        with atomic_path(out_path) as tmp, contextlib.redirect_stdout(sys.stderr):
            quantize_static(
                pre, tmp, reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=head,
                calibrate_method=methods[method],
                extra_options=_extra_options(activations, len(batches)),
            )
        quantized = onnx.load(out_path)
        ops = [n.op_type for n in quantized.graph.node]
        return {
            "path": out_path,
            "calibration_frames": int(frames.shape[0]),
            "method": method,
            "activations": activations,
            "fp32_nodes": head,
            "quantize_linear": ops.count("QuantizeLinear"),
            "dequantize_linear": ops.count("DequantizeLinear"),
            "bytes": os.path.getsize(out_path),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extra_options(activations: str, batches: int) -> Dict[str, Any]:
    """Symmetric weights; activations symmetric for TensorRT only. ``CalibStridedMinMax`` (despite
    its name, any method) calibrates at most 4 batches at a time: the entropy and percentile
    collectors keep every activation of a chunk, ~100 MB per frame at 480x640, so a whole set
    at once would need tens of GB. It must divide the batch count."""
    stride = max(d for d in range(1, min(4, batches) + 1) if batches % d == 0)
    return {"ActivationSymmetric": activations == "int8", "WeightSymmetric": True, "CalibStridedMinMax": stride}


def make_qdq_encoder(bundle, calibration_set, out_path: str, method: str = "entropy") -> Dict[str, Any]:
    """The bundle's encoder quantized with a calibration set (``calibration.dataset``)."""
    return quantize_encoder(bundle.encoder_path, calibration_set.array(), out_path, method=method)
