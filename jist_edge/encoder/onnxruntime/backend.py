"""ONNX Runtime: the CPU backend everywhere, CUDA where onnxruntime-gpu is installed.

Precisions: ``fp32`` (the bundle's encoder.onnx), ``int8`` (the CPU INT8 model that
`jist-edge calibrate` made for this bundle and this ONNX Runtime, see .int8_model) and
``best`` (INT8 where such a model exists and passed its fidelity gate, else FP32).
FP16 is TensorRT's precision; asking for it here is refused, as is any TensorRT-only
option, in one line.

Session tuning (measured, see the README's "ONNX Runtime on the CPU"): intra-op threads
= physical cores, all graph optimizations, the CPU memory arena on, and idle threads
that sleep instead of spinning: spinning threads compete with the capture thread and
with anything else on a loaded board.
"""
from typing import Any, Dict, List, Optional

import numpy as np

from jist_edge.encoder import EncoderBackend
from jist_edge.encoder.onnxruntime import int8_model
from jist_edge.encoder.cpu_features import physical_cores
from jist_edge.errors import JistEdgeError
from jist_edge import workspace

PRECISIONS = ("fp32", "int8", "best")
DEFAULT_SPINNING = False


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


def session_options(threads: int = 0, spinning: Optional[bool] = None, arena: bool = True) -> Any:
    """SessionOptions for one encoder: ``threads`` 0 means the physical cores this process may use."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = int(threads) if threads else physical_cores()
    opts.enable_cpu_mem_arena = bool(arena)
    spin = DEFAULT_SPINNING if spinning is None else bool(spinning)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return opts


class OrtEncoder(EncoderBackend):
    name = "onnxruntime"

    def __init__(self, model: Any, providers: Optional[List[str]] = None, threads: int = 0,
                 spinning: Optional[bool] = None, precision: str = "fp32",
                 int8_header: Optional[Dict[str, Any]] = None, note: Optional[str] = None) -> None:
        """``model``: a path or the model's bytes (what was checksummed is what runs)."""
        super(OrtEncoder, self).__init__()
        import onnxruntime as ort

        self.options = session_options(threads, spinning)
        self.session = ort.InferenceSession(model, sess_options=self.options,
                                            providers=providers or default_providers())
        self.input_name = self.session.get_inputs()[0].name
        self.onnx_path = model if isinstance(model, str) else (int8_header or {}).get("path")
        self.precision = precision
        self.int8_header = int8_header
        self.note = note

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def describe(self) -> Dict[str, Any]:
        import onnxruntime as ort

        info = {"backend": self.name, "onnxruntime": ort.__version__, "providers": self.session.get_providers(),
                "precision": self.precision, "threads": self.options.intra_op_num_threads}  # type: Dict[str, Any]
        if self.int8_header is not None:
            info["int8_model"] = self.onnx_path
            info["int8_fidelity"] = self.int8_header.get("fidelity")
        if self.note:
            info["precision_note"] = self.note
        return info


def open_encoder(bundle: Any, precision: str = "fp32", cache_dir: Optional[str] = None,
                 providers: Optional[List[str]] = None, threads: int = 0, spinning: Optional[bool] = None,
                 **options: Any) -> OrtEncoder:
    """The bundle's encoder at ``precision`` (fp32, int8, best; "auto" is fp32 here)."""
    refuse_options(options)
    precision = "fp32" if precision == "auto" else precision
    if precision not in PRECISIONS:
        raise JistEdgeError("--precision {} is not available on the onnxruntime backend (it runs {}); fp16 "
                            "needs --backend tensorrt".format(precision, ", ".join(PRECISIONS)))
    if precision == "fp32":
        return OrtEncoder(bundle.encoder_path, providers, threads, spinning)
    path, loaded, problem = _int8_for(bundle, cache_dir, best=precision == "best")
    if loaded is None:
        if precision == "int8":
            raise problem
        note = "best: FP32, because {}".format(problem)
        return OrtEncoder(bundle.encoder_path, providers, threads, spinning, note=note)
    data, header = loaded
    header = dict(header, path=path)
    # a CPU artifact: CUDA's provider would run its Q/DQ pairs as slow FP32 fallbacks
    return OrtEncoder(data, ["CPUExecutionProvider"], threads, spinning, "int8", header)


def _int8_for(bundle: Any, cache_dir: Optional[str], best: bool):
    """(path, (bytes, header), None) for a usable INT8 model, else (path, None, the JistEdgeError saying why)."""
    import onnxruntime as ort


    path = int8_model.model_path(cache_dir or workspace.engine_dir())
    try:
        loaded = int8_model.load_model(path, int8_model.expected_header(bundle, ort.__version__))
    except JistEdgeError as exc:
        return path, None, exc
    if best and not int8_model.passed(loaded[1]):
        return path, None, JistEdgeError("the CPU INT8 model {} did not pass its fidelity gate (installed with "
                                         "--force); ask for --precision int8 to use it anyway".format(path))
    return path, loaded, None


# TensorRT's options, and the values that mean "not asked for"
_TENSORRT_OPTIONS = {"no_build": (False, None), "max_batch": (None,), "workspace_mib": (None,)}


def refuse_options(options: Dict[str, Any]) -> None:
    """One line for an option this backend cannot honour (instead of ignoring it)."""
    for name, value in sorted(options.items()):
        if name in _TENSORRT_OPTIONS and any(value is v or value == v for v in _TENSORRT_OPTIONS[name]):
            continue
        flag = "--" + name.replace("_", "-")
        if name in _TENSORRT_OPTIONS:
            raise JistEdgeError("{} is a TensorRT option; the onnxruntime backend cannot honour it "
                                "(use --backend tensorrt)".format(flag))
        raise JistEdgeError("the onnxruntime backend has no option {} (given {!r})".format(name, value))
