"""Every TensorRT decision that does not need TensorRT: API per version, typing, precision, shapes.

The modules that import tensorrt/pycuda ask these plain functions what to do, so the
choices are tested on machines without a GPU.

The version table (TensorRT Python API docs and the 10.x -> 11.x migration guide):
- 8.0+: ``Builder.build_serialized_network``; the ONNX parser needs an explicit-batch
  network (``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``, ignored in 10, gone in 11).
- 8.2+: ``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` (``STRICT_TYPES`` before).
- 8.4+: ``set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)``; ``max_workspace_size``
  before (removed in 10). onnx-tensorrt parses opset 13 on 8.0-8.2, up to 17 from 8.4.
- 8.5+: named I/O tensors (``set_input_shape``, ``set_tensor_address``,
  ``execute_async_v3``); bindings with ``set_binding_shape`` + ``execute_async_v2`` before.
- 10.0+: ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``. From here jist-edge builds
  strongly typed: precision comes from the ONNX file (an FP16 copy with an FP32 head,
  or the Q/DQ file for INT8) and no precision flag is set. 10.1 deprecates the INT8
  calibrators, 10.5 ``platform_has_fast_fp16/int8`` (fast precisions then come from the
  compute capability), 10.12 weak typing; ``device_memory_size_v2`` is read from 10.13.
- 11.0+: strongly typed only; the weakly typed API (precision flags, ``layer.precision``,
  calibrators, ``platform_has_fast_*``, ``device_memory_size``) is gone.
The weakly typed path (flags + FP32 head pinned by precision constraints + entropy
calibrator) stays for 8.x: the Jetson Nano stays on TensorRT 8.2.

``for_tensorrt`` marks the functions that touch TensorRT with the versions they run on;
``tests/encoder/test_tensorrt_api_surface.py`` reads these marks from the source and checks every
TensorRT name such a function uses against that version's Python bindings.
"""
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from jist_edge.errors import JistEdgeError

PRECISIONS = ("fp32", "fp16", "int8", "best")
DEFAULT_WORKSPACE_MIB = 256  # fits a 4 GB Nano; builds with 1 GiB+ get "Killed" there
MIN_TENSORRT = (8, 0)

API_BINDINGS_V2 = "bindings_v2"
API_NAMED_V3 = "named_v3"
WEAK = "weak"
STRONG = "strong"
STRONG_TYPING_FROM = (10, 0)


def for_tensorrt(first: str, before: Optional[str] = None) -> Callable[[Any], Any]:
    """Mark a function as run only on TensorRT ``first`` <= version < ``before``.

    The mark is read statically by the API-surface test (give literal strings) and is
    kept on the function as ``tensorrt_versions`` for the dispatch tests.
    """
    def mark(func: Any) -> Any:
        func.tensorrt_versions = (first, before)
        return func

    return mark


def in_range(version: str, versions: Tuple[str, Optional[str]]) -> bool:
    """Whether ``version`` lies in a ``for_tensorrt`` range (first inclusive, before exclusive)."""
    first, before = versions
    parsed = parse_version(version)
    return parsed >= parse_version(first) and (before is None or parsed < parse_version(before))


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


def _at_least(version: str, major_minor: Tuple[int, int]) -> bool:
    return parse_version(version)[:2] >= major_minor


def check_supported(version: str) -> None:
    """TensorRT 7 and older lack build_serialized_network: refuse. 11+ builds strongly typed."""
    if not _at_least(version, MIN_TENSORRT):
        raise JistEdgeError(
            "TensorRT {} is too old: jist-edge needs TensorRT 8.0 or newer (JetPack 4.6+)".format(version)
        )


def typing_for_version(version: str) -> str:
    """'strong' from TensorRT 10.0 (where STRONGLY_TYPED exists; the only mode in 11), else 'weak'."""
    check_supported(version)
    return STRONG if _at_least(version, STRONG_TYPING_FROM) else WEAK


def typing_description(version: str) -> str:
    """One line for ``doctor``: which build path this TensorRT takes and what it uses."""
    if typing_for_version(version) == STRONG:
        return ("strongly typed: precision from the ONNX file (FP16 copy with an FP32 head, Q/DQ "
                "file for INT8), no precision flags")
    return ("weakly typed: FP16/INT8 builder flags, the FP32 head pinned by precision constraints, "
            "entropy calibrator for INT8")


def api_for_version(version: str) -> str:
    """Which execution API the engine runner uses: bindings (< 8.5) or named tensors (>= 8.5)."""
    check_supported(version)
    return API_NAMED_V3 if _at_least(version, (8, 5)) else API_BINDINGS_V2


def workspace_api_for_version(version: str) -> str:
    return "memory_pool_limit" if _at_least(version, (8, 4)) else "max_workspace_size"


def precision_constraint_flag(version: str) -> str:
    """The BuilderFlag that makes per-layer precisions binding (weakly typed path only)."""
    return "OBEY_PRECISION_CONSTRAINTS" if _at_least(version, (8, 2)) else "STRICT_TYPES"


def network_flag_for_version(version: str) -> str:
    """The NetworkDefinitionCreationFlag a network is created with: EXPLICIT_BATCH (8.x, the
    ONNX parser needs it), STRONGLY_TYPED (10.x), none ('') from 11, where every network is
    strongly typed and the flag is deprecated and ignored."""
    if typing_for_version(version) == WEAK:
        return "EXPLICIT_BATCH"
    return "STRONGLY_TYPED" if parse_version(version)[0] < 11 else ""


def fast_precision_source(version: str) -> str:
    """'builder' (platform_has_fast_fp16/int8) before 10.5, 'compute_capability' from 10.5, where
    NVIDIA deprecated them ("query data type support from CUDA directly") and 11, where they are gone."""
    return "compute_capability" if _at_least(version, (10, 5)) else "builder"


def device_memory_api(version: str) -> str:
    """'device_memory_size_v2' from 10.13 (the first bindings that have it), else 'device_memory_size'."""
    return "device_memory_size_v2" if _at_least(version, (10, 13)) else "device_memory_size"


def fast_precisions_for_compute_capability(cc: Sequence[int]) -> Tuple[bool, bool]:
    """(fast FP16, fast INT8) of a GPU architecture, as TensorRT's platform_has_fast_* reported them.

    FP16 runs at full rate on SM 5.3 (Nano, TX1), 6.0 (P100), 6.2 (TX2) and 7.0+, but not on
    SM 6.1 (GeForce 10, P4/P40: 1/64 rate); INT8 (DP4A or tensor cores) on SM 6.1 and 7.0+.
    """
    major_minor = (int(cc[0]), int(cc[1]))
    fast_fp16 = major_minor in ((5, 3), (6, 0), (6, 2)) or major_minor >= (7, 0)
    fast_int8 = major_minor == (6, 1) or major_minor >= (7, 0)
    return fast_fp16, fast_int8


def max_onnx_opset(version: str) -> int:
    """The newest ONNX opset the bundled ONNX parser reads (onnx-tensorrt docs/operators.md:
    13 for TensorRT 8.0-8.2, 17 for 8.4-8.6); 0 means no known limit (10+ reads 18+).

    Opset 18 moved the axes of ReduceMean/ReduceL2 into an input, which older parsers
    do not read, so an opset-18 encoder must be refused there, not half-parsed.
    """
    if not _at_least(version, (8, 4)):
        return 13
    if parse_version(version)[0] < 10:
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


def int8_method_for_version(version: str) -> str:
    """'calibrator' (IInt8EntropyCalibrator2 + cache) on the weakly typed path, 'qdq' (the
    explicitly quantized ONNX) on the strongly typed one."""
    return "qdq" if typing_for_version(version) == STRONG else "calibrator"


class PrecisionPlan(object):
    """What the engine computes in: the precision's name and which reduced precisions it allows."""

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


class BuildRecipe(object):
    """How one plan is built on one typing path.

    weak:   the bundle's ONNX, BuilderFlag FP16/INT8, the FP32 head pinned by precision
            constraints, an entropy calibrator for INT8.
    strong: no precision flag; the ONNX file carries the precision: the bundle's encoder
            (FP32), its FP16 copy (``fp16_onnx``) or the Q/DQ file (INT8).
    """

    def __init__(self, typing: str, flags: Tuple[str, ...], pin_fp32_head: bool, onnx: str,
                 calibrator: bool) -> None:
        self.typing = typing
        self.flags = flags  # BuilderFlag member names
        self.pin_fp32_head = pin_fp32_head
        self.onnx = onnx  # "encoder" | "fp16" | "qdq"
        self.calibrator = calibrator

    def as_dict(self) -> Dict[str, Any]:
        return {"typing": self.typing, "flags": list(self.flags), "pin_fp32_head": self.pin_fp32_head,
                "onnx": self.onnx, "calibrator": self.calibrator}


def build_recipe(plan: PrecisionPlan, typing: str) -> BuildRecipe:
    if typing == WEAK:
        flags = tuple(name for name, on in (("FP16", plan.fp16), ("INT8", plan.int8)) if on)
        return BuildRecipe(WEAK, flags, plan.pin_fp32_head, "encoder", plan.int8)
    if typing != STRONG:
        raise ValueError("typing must be {!r} or {!r}, got {!r}".format(WEAK, STRONG, typing))
    onnx = "qdq" if plan.int8 else "fp16" if plan.fp16 else "encoder"
    return BuildRecipe(STRONG, (), False, onnx, False)


def resolve_precision(
    requested: str,
    fast_fp16: bool,
    fast_int8: bool,
    force: bool = False,
    device: str = "this GPU",
) -> PrecisionPlan:
    """fp32 | fp16 | int8 | best -> what the engine computes in on this platform.

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
        raise JistEdgeError("--trt-workspace {} MiB is too small; use at least 16 (default {})".format(
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


def parse_compute_capability(text: str) -> Tuple[int, int]:
    """'8.7' -> (8, 7)."""
    match = re.match(r"^\s*(\d+)\.(\d+)\s*$", str(text))
    if not match:
        raise JistEdgeError("cannot read the compute capability {!r}".format(text))
    return int(match.group(1)), int(match.group(2))
