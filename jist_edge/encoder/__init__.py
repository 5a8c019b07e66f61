"""Encoder backends: one small interface, several engines behind it.

``create_encoder(bundle, "auto")`` picks TensorRT where it can run, else ONNX Runtime.
Every backend counts the frames it encodes, so tests can prove each frame is encoded
exactly once.
"""
import importlib
from typing import Any, Dict, List

import numpy as np

from jist_edge.errors import JistEdgeError

# name -> module under jist_edge.encoder; order is the preference of "auto".
BACKENDS = {
    "tensorrt": "tensorrt.backend",
    "onnxruntime": "onnxruntime.backend",
}
# what precision "auto" means on each backend: FP16 engines on TensorRT, FP32 on ONNX Runtime
# (its INT8 needs a calibrated model: --precision int8 or best)
AUTO_PRECISION = {"tensorrt": "fp16", "onnxruntime": "fp32"}


class EncoderBackend(object):
    """Nx3xHxW float32 (normalized) -> NxD float32 frame descriptors."""

    name = "base"

    def __init__(self) -> None:
        self.calls = 0
        self.frames = 0

    def encode(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4:
            raise ValueError("encoder input must be Nx3xHxW, got shape {}".format(batch.shape))
        out = self._run(batch)
        self.calls += 1
        self.frames += batch.shape[0]
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> Dict[str, Any]:
        """What ran: shown by `doctor`, written into run summaries and bench reports."""
        return {"backend": self.name}

    def close(self) -> None:
        pass

    def __enter__(self) -> "EncoderBackend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _module(name: str):
    return importlib.import_module("jist_edge.encoder." + BACKENDS[name])


def available_backends() -> List[str]:
    """Backends whose libraries import and whose hardware is present, best first."""
    names = []
    for name in BACKENDS:
        try:
            if _module(name).is_available():
                names.append(name)
        except ImportError:
            continue
    return names


def resolve_backend(name: str) -> str:
    if name == "auto":
        names = available_backends()
        if not names:
            raise JistEdgeError("no encoder backend is available: install onnxruntime (pip install onnxruntime)")
        return names[0]
    if name not in BACKENDS:
        raise JistEdgeError("unknown backend {!r}; choose from auto, {}".format(name, ", ".join(BACKENDS)))
    return name


def create_encoder(bundle, backend: str = "auto", **options: Any) -> EncoderBackend:
    """Open the bundle's encoder on the named backend ("auto" picks the best available);
    ``precision="auto"`` becomes the backend's default (AUTO_PRECISION)."""
    name = resolve_backend(backend)
    if options.get("precision") == "auto":
        options["precision"] = AUTO_PRECISION[name]
    try:
        module = _module(name)
    except ImportError as exc:
        raise JistEdgeError("backend {} cannot be imported: {}".format(name, exc))
    if not module.is_available():
        raise JistEdgeError("backend {} is not available on this machine: {}".format(name, module.why_unavailable()))
    return module.open_encoder(bundle, **options)
