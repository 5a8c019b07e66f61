"""TensorRT behind the EncoderBackend interface: cached engine, pycuda buffers, one stream."""
import sys
from typing import Any, Dict, Optional

import numpy as np

from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.encoder import EncoderBackend
from jist_edge.errors import JistEdgeError


def _reason() -> Optional[str]:
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return "tensorrt is not importable ({}); it ships with JetPack or NVIDIA's wheels".format(exc)
    try:
        import pycuda.driver  # noqa: F401
    except ImportError as exc:
        return "pycuda is not importable ({}); pip install pycuda".format(exc)
    return None


def is_available() -> bool:
    return _reason() is None


def why_unavailable() -> str:
    return _reason() or "available"


class TensorRTEncoder(EncoderBackend):
    name = "tensorrt"

    def __init__(self, engine_bytes: bytes, header: Dict[str, Any], device: Any = None) -> None:
        super(TensorRTEncoder, self).__init__()
        from jist_edge.encoder.tensorrt.runner import EngineRunner

        self.header = header
        self.device = device  # owned: closed with the encoder (open_engine closes it if this raises)
        self.runner = EngineRunner(engine_bytes, device=device)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        parts = [self.runner.run(batch[a:b]) for a, b in trt_policy.split_batches(batch.shape[0], self.runner.max_batch)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def describe(self) -> Dict[str, Any]:
        info = {
            "backend": self.name,
            "tensorrt": self.header.get("tensorrt"),
            "typing": self.header.get("typing"),
            "gpu": self.header.get("gpu"),
            "precision": self.header.get("precision"),
            "api": self.runner.api,
            "max_batch": self.runner.max_batch,
            "fp32_layers": len(self.header.get("fp32_layers", [])),
        }
        info.update(self.runner.memory())
        return info

    def close(self) -> None:
        self.runner.close()
        if self.device is not None:
            self.device.close()
            self.device = None


def open_encoder(
    bundle,
    precision: str = "fp16",
    no_build: bool = False,
    cache_dir: Optional[str] = None,
    max_batch: Optional[int] = None,
    workspace_mib: int = trt_policy.DEFAULT_WORKSPACE_MIB,
    **_: Any
) -> TensorRTEncoder:
    """Load the cached engine if its header matches this setup, else rebuild (unless no_build)."""
    from jist_edge.encoder.tensorrt import build as engine_build
    from jist_edge.encoder.tensorrt.cuda_device import CudaDevice

    reason = _reason()
    if reason:
        raise JistEdgeError("backend tensorrt is not available: " + reason)
    device = CudaDevice()
    try:
        data, header = engine_build.load_or_build(
            bundle, precision=precision, no_build=no_build, cache_dir=cache_dir, max_batch=max_batch,
            workspace_mib=workspace_mib, device=device,
            log=lambda message: sys.stderr.write("tensorrt: {}\n".format(message)),
        )
    except BaseException:
        device.close()
        raise
    return open_engine(data, header, device)


def open_engine(engine_bytes: bytes, header: Dict[str, Any], device: Any) -> TensorRTEncoder:
    """An encoder that owns ``device``; the device is closed when the encoder cannot be made."""
    try:
        return TensorRTEncoder(engine_bytes, header, device=device)
    except BaseException:
        device.close()
        raise
