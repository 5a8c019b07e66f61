"""Every TensorRT decision that does not need TensorRT: API per version, precision, shapes.

``jist_edge.engines.runner`` (the one module that imports tensorrt/pycuda) asks these plain
functions what to do, so the choices are tested on machines without a GPU.

The version table (TensorRT Python API docs):
- 8.0+: ``Builder.build_serialized_network``; the ONNX parser needs an explicit-batch
  network (``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``, ignored from 10.0).
- 8.2+: ``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` (``STRICT_TYPES`` before, deprecated).
- 8.4+: ``IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)``;
  ``max_workspace_size`` before (deprecated in 8.4, removed in 10).
- 8.5+: named I/O tensors (``set_input_shape``, ``set_tensor_address``,
  ``execute_async_v3``); bindings with ``set_binding_shape`` + ``execute_async_v2`` before.
- 10.0+: implicit INT8 calibration is deprecated (10.1); an explicitly quantized
  (Q/DQ) ONNX is the way, and ``set_calibration_profile`` is not used.
- 11.0+: weakly typed builds are gone (``BuilderFlag.FP16``/``INT8``,
  ``OBEY_PRECISION_CONSTRAINTS``, ``platform_has_fast_fp16``/``int8``, calibrators and
  ``device_memory_size`` removed; TensorRT 10 to 11 migration guide), so 11+ is refused.

INT8 calibration with a dynamic batch (TensorRT < 10) runs on the kOPT shape of the
calibration profile, and the calibrator's batches must have exactly that shape;
``calibration_profile`` gives it its own fixed profile (as trtexec does).
"""
import re
from typing import Any, Dict, List, Sequence, Tuple

from jist_edge.errors import JistEdgeError

PRECISIONS = ("fp32", "fp16", "int8", "best")
DEFAULT_PRECISION = "fp16"
DEFAULT_WORKSPACE_MIB = 256  # fits a 4 GB Nano; builds with 1 GiB+ get "Killed" there
MIN_TENSORRT = (8, 0)
MAX_TENSORRT_MAJOR = 10  # 11 removed the weakly typed builder API used here

API_BINDINGS_V2 = "bindings_v2"
API_NAMED_V3 = "named_v3"


def parse_version(version: str) -> Tuple[int, ...]:
    """'8.2.1.8' -> (8, 2, 1, 8); trailing non-digits ('10.3.0.post1') are ignored."""
    parts = []
    for piece in str(version).strip().split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group(0)))
    if not parts:
        raise JistEdgeError("cannot read the TensorRT version {!r}".format(version))
    while len(parts) < 2:
        parts.append(0)
    return tuple(parts)


def check_supported(version: str) -> None:
    """TensorRT 7 and older lack build_serialized_network, 11+ the weakly typed builder: refuse."""
    parsed = parse_version(version)
    if parsed[:2] < MIN_TENSORRT:
        raise JistEdgeError(
            "TensorRT {} is too old: jist-edge needs TensorRT 8.0 or newer (JetPack 4.6+)".format(version)
        )
    if parsed[0] > MAX_TENSORRT_MAJOR:
        raise JistEdgeError(
            "TensorRT {} is not supported: jist-edge uses the FP16/INT8 builder flags and precision "
            "constraints that TensorRT 11 removed; use TensorRT 8.0-10.x".format(version)
        )


def api_for_version(version: str) -> str:
    """Which execution API the engine runner uses: bindings (< 8.5) or named tensors (>= 8.5)."""
    check_supported(version)
    return API_NAMED_V3 if parse_version(version)[:2] >= (8, 5) else API_BINDINGS_V2


def workspace_api_for_version(version: str) -> str:
    return "memory_pool_limit" if parse_version(version)[:2] >= (8, 4) else "max_workspace_size"


def precision_constraint_flag(version: str) -> str:
    """The BuilderFlag member that makes per-layer precisions binding."""
    return "OBEY_PRECISION_CONSTRAINTS" if parse_version(version)[:2] >= (8, 2) else "STRICT_TYPES"


def max_onnx_opset(version: str) -> int:
    """The newest ONNX opset the bundled ONNX parser reads (onnx-tensorrt docs/operators.md:
    up to 13 for TensorRT 8.0-8.4, 17 for 8.5/8.6); 0 means no known limit (10+ reads 18+).

    Opset 18 moved the axes of ReduceMean/ReduceL2 into an input, which older parsers
    do not read, so an opset-18 encoder must be refused there, not half-parsed.
    """
    major_minor = parse_version(version)[:2]
    if major_minor < (8, 5):
        return 13
    if major_minor[0] < 10:
        return 17
    return 0


def check_onnx_opset(version: str, opset: int, what: str) -> None:
    """Refuse an ONNX file whose opset this TensorRT's parser cannot read, naming the fix."""
    limit = max_onnx_opset(version)
    if limit and int(opset) > limit:
        raise JistEdgeError(
            "{} is ONNX opset {}, but TensorRT {} parses opsets up to {}: re-export the bundle with "
            "`jist-edge export --opset {}`".format(what, int(opset), version, limit, min(limit, 13))
        )


def needs_explicit_batch_flag(version: str) -> bool:
    return parse_version(version)[0] < 10


def int8_method_for_version(version: str) -> str:
    """'calibrator' (IInt8EntropyCalibrator2 + cache) before 10, 'qdq' (explicit) from 10."""
    return "qdq" if parse_version(version)[0] >= 10 else "calibrator"


def uses_calibration_profile(version: str) -> bool:
    return parse_version(version)[0] < 10


class PrecisionPlan(object):
    """What the builder enables: flags, and whether the FP32 head must be pinned."""

    def __init__(self, name: str, fp16: bool, int8: bool, notes: List[str]) -> None:
        self.name = name  # the precision recorded in the engine header: fp32, fp16, int8
        self.fp16 = fp16
        self.int8 = int8
        self.notes = notes

    @property
    def pin_fp32_head(self) -> bool:
        """GeM and L2 normalizations stay FP32 whenever a reduced precision is allowed."""
        return self.fp16 or self.int8

    def as_dict(self) -> Dict[str, Any]:
        return {"precision": self.name, "fp16": self.fp16, "int8": self.int8, "notes": list(self.notes)}

    def __repr__(self) -> str:
        return "PrecisionPlan({})".format(self.as_dict())


def resolve_precision(
    requested: str,
    fast_fp16: bool,
    fast_int8: bool,
    force: bool = False,
    device: str = "this GPU",
) -> PrecisionPlan:
    """fp32 | fp16 | int8 | best -> builder flags for this platform.

    ``best`` is FP16 plus INT8 only where the platform has fast INT8. INT8 on a
    platform without fast INT8 (the Nano: INT8 ResNet-18 runs at about half its FP16
    speed) is refused unless ``force``.
    """
    requested = (requested or "").lower()
    if requested not in PRECISIONS:
        raise JistEdgeError("--precision {!r} is not one of {}".format(requested, ", ".join(PRECISIONS)))
    notes = []  # type: List[str]
    if requested == "fp32":
        return PrecisionPlan("fp32", False, False, notes)
    if requested == "best":
        if not fast_fp16:
            notes.append("{} has no fast FP16; best falls back to FP32".format(device))
        if fast_int8:
            notes.append("{} has fast INT8: INT8 with FP16 fallback".format(device))
            return PrecisionPlan("int8", fast_fp16, True, notes)
        notes.append("{} has no fast INT8: FP16 only".format(device))
        return PrecisionPlan("fp16" if fast_fp16 else "fp32", fast_fp16, False, notes)
    if requested == "fp16":
        if not fast_fp16:
            notes.append("{} has no fast FP16; TensorRT may pick FP32 kernels".format(device))
        return PrecisionPlan("fp16", True, False, notes)
    # int8
    if not fast_int8:
        if not force:
            raise JistEdgeError(
                "--precision int8 refused: {} has no fast INT8 (on a Jetson Nano INT8 runs at about "
                "half the FP16 speed); FP16 is the Nano's precision. Use --precision fp16 (or best), "
                "or pass --force to build INT8 anyway".format(device)
            )
        notes.append("INT8 forced on {} without fast INT8: expect it to be slower than FP16".format(device))
    return PrecisionPlan("int8", True, True, notes)


def workspace_bytes(mib: int) -> int:
    mib = int(mib)
    if mib < 16:
        raise JistEdgeError("--workspace {} MiB is too small; use at least 16 (default {})".format(
            mib, DEFAULT_WORKSPACE_MIB))
    return mib << 20


def batch_profile(input_chw: Sequence[int], max_batch: int) -> Dict[str, Tuple[int, ...]]:
    """One optimization profile for batch 1..N, tuned for batch 1 (the per-frame hot path).

    N defaults to L (the sequence length) at the caller, so map building can encode a
    whole window in one call.
    """
    max_batch = int(max_batch)
    if max_batch < 1:
        raise JistEdgeError("--max-batch must be at least 1, got {}".format(max_batch))
    chw = tuple(int(v) for v in input_chw)
    return {"min": (1,) + chw, "opt": (1,) + chw, "max": (max_batch,) + chw}


def calibration_profile(batch_shape: Sequence[int]) -> Dict[str, Tuple[int, ...]]:
    """A fixed profile (min = opt = max) for INT8 calibration batches of exactly this shape.

    TensorRT calibrates a dynamic-shape network at the calibration profile's kOPT
    shape; without one it uses the first profile, whose kOPT batch is 1 here, and
    batches of any other size would not match.
    """
    shape = tuple(int(v) for v in batch_shape)
    if not shape or any(v < 1 for v in shape):
        raise JistEdgeError("calibration batch shape {} must be fully specified and positive".format(shape))
    return {"min": shape, "opt": shape, "max": shape}


def split_batches(n: int, max_batch: int) -> List[Tuple[int, int]]:
    """[start, stop) chunks no larger than the engine's profile allows."""
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    return [(start, min(start + max_batch, n)) for start in range(0, n, max_batch)]


def compute_capability_text(cc: Sequence[int]) -> str:
    return "{}.{}".format(int(cc[0]), int(cc[1]))
