"""ONNX Runtime: the CPU backend everywhere, CUDA where onnxruntime-gpu is installed."""
from typing import Any, Dict, List, Optional

import numpy as np

from jist_edge.backends import EncoderBackend


def is_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def why_unavailable() -> str:
    return "onnxruntime is not installed (pip install onnxruntime)"


def default_providers() -> List[str]:
    import onnxruntime as ort

    preferred = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    present = ort.get_available_providers()
    return [p for p in preferred if p in present] or present


class OrtEncoder(EncoderBackend):
    name = "onnxruntime"

    def __init__(self, onnx_path: str, providers: Optional[List[str]] = None, threads: int = 0) -> None:
        super(OrtEncoder, self).__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(onnx_path, sess_options=opts, providers=providers or default_providers())
        self.input_name = self.session.get_inputs()[0].name
        self.onnx_path = onnx_path

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def describe(self) -> Dict[str, Any]:
        import onnxruntime as ort

        return {"backend": self.name, "onnxruntime": ort.__version__, "providers": self.session.get_providers()}


def open_encoder(bundle, providers: Optional[List[str]] = None, threads: int = 0, **_: Any) -> OrtEncoder:
    return OrtEncoder(bundle.encoder_path, providers=providers, threads=threads)
