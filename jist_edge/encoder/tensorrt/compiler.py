"""ONNX file -> serialized TensorRT engine, following a ``policy.BuildRecipe``.

The recipe says which typing path (weak on 8.x, strong from 10), which precision
flags (weak only), whether the FP32 head is pinned (weak only) and whether an INT8
calibrator runs (weak only). Everything TensorRT makes is released before the call
returns or raises, while the CUDA context is current, and the calibrator's device
buffer is freed on every path (a failed calibration included).
"""
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.encoder.tensorrt.calibrator import attach_calibrator, release_calibrator
from jist_edge.encoder.tensorrt.cuda_device import CudaDevice
from jist_edge.encoder.tensorrt.network import parse_onnx, pin_fp32_head
from jist_edge.encoder.tensorrt.policy import for_tensorrt
from jist_edge.encoder.tensorrt.tensorrt_lib import drop_frames, get_logger, import_tensorrt, quiet_deprecations
from jist_edge.errors import JistEdgeError
from jist_edge.fileio import write_bytes_atomic


@for_tensorrt("8.4")
def _workspace_pool(trt: Any, config: Any, nbytes: int) -> None:
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, nbytes)


@for_tensorrt("8.0", "8.4")
def _workspace_legacy(trt: Any, config: Any, nbytes: int) -> None:
    config.max_workspace_size = nbytes


# policy.workspace_api_for_version -> setter
SET_WORKSPACE = {
    "memory_pool_limit": _workspace_pool,
    "max_workspace_size": _workspace_legacy,
}  # type: Dict[str, Callable[[Any, Any, int], None]]


@for_tensorrt("8.0", "10.0")
def _set_weak_flags(trt: Any, config: Any, flags: Sequence[str]) -> None:
    """BuilderFlag FP16/INT8 (weakly typed path only: gone in TensorRT 11)."""
    for name in flags:
        if name == "FP16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif name == "INT8":
            config.set_flag(trt.BuilderFlag.INT8)
        else:
            raise ValueError("unknown builder flag {!r}".format(name))


@for_tensorrt("8.2", "10.0")
def _obey_precision_constraints(trt: Any, config: Any) -> None:
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)


@for_tensorrt("8.0", "8.2")
def _strict_types(trt: Any, config: Any) -> None:
    config.set_flag(trt.BuilderFlag.STRICT_TYPES)


# policy.precision_constraint_flag -> setter
SET_PRECISION_CONSTRAINTS = {
    "OBEY_PRECISION_CONSTRAINTS": _obey_precision_constraints,
    "STRICT_TYPES": _strict_types,
}  # type: Dict[str, Callable[[Any, Any], None]]


def _load_timing_cache(config: Any, path: str) -> Any:
    """The timing cache from ``path``, or an empty one when it is missing or unreadable."""
    blob = b""
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            blob = handle.read()
    cache = None
    if blob:
        try:
            cache = config.create_timing_cache(blob)
        except (RuntimeError, TypeError, ValueError):  # a truncated or foreign cache file
            cache = None
    if cache is None or not config.set_timing_cache(cache, False):  # (cache, ignore_mismatch)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def _add_profile(builder: Any, config: Any, input_name: str, shapes: Dict[str, Sequence[int]]) -> None:
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, tuple(shapes["min"]), tuple(shapes["opt"]), tuple(shapes["max"]))
    config.add_optimization_profile(profile)


def _apply_recipe(trt: Any, builder: Any, network: Any, config: Any, recipe: "trt_policy.BuildRecipe",
                  calibrator: Any, input_name: str) -> List[str]:
    """Flags, FP32 pin and calibrator of the weakly typed path; returns the pinned layer names."""
    version = str(trt.__version__)
    if recipe.typing == trt_policy.STRONG:
        if recipe.flags or recipe.pin_fp32_head or calibrator is not None:
            raise ValueError("a strongly typed build takes its precision from the ONNX file only")
        return []
    _set_weak_flags(trt, config, recipe.flags)
    if calibrator is not None:
        attach_calibrator(builder, config, input_name, calibrator)
    pinned = pin_fp32_head(trt, network) if recipe.pin_fp32_head else []
    if pinned:
        SET_PRECISION_CONSTRAINTS[trt_policy.precision_constraint_flag(version)](trt, config)
    return pinned


def _serialize(trt: Any, onnx_path: str, recipe: "trt_policy.BuildRecipe",
               profile_shapes: Dict[str, Sequence[int]], workspace_mib: int, calibrator: Any,
               timing_cache: Optional[str], verbose: bool) -> Dict[str, Any]:
    """The build proper (CUDA context current); TensorRT's objects go with this frame."""
    version = str(trt.__version__)
    logger = get_logger(trt, verbose)
    builder = trt.Builder(logger)
    network, parser = parse_onnx(trt, builder, logger, onnx_path)
    config = builder.create_builder_config()
    SET_WORKSPACE[trt_policy.workspace_api_for_version(version)](
        trt, config, trt_policy.workspace_bytes(workspace_mib))
    input_name = network.get_input(0).name
    _add_profile(builder, config, input_name, profile_shapes)
    pinned = _apply_recipe(trt, builder, network, config, recipe, calibrator, input_name)
    cache = _load_timing_cache(config, timing_cache) if timing_cache else None
    serialized = builder.build_serialized_network(network, config)
    failure = getattr(calibrator, "error", None)
    if failure is not None:  # raised inside get_batch, where TensorRT cannot pass it on
        raise failure
    if serialized is None:
        raise JistEdgeError(
            "TensorRT could not build an engine from {} (see the TensorRT log above); on a "
            "4 GB Jetson try a smaller --trt-workspace or close other programs".format(onnx_path)
        )
    engine = bytes(serialized)
    if cache is not None:
        write_bytes_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    return {"engine": engine, "fp32_layers": pinned, "input_name": input_name}


def build_engine(
    onnx_path: str,
    recipe: "trt_policy.BuildRecipe",
    profile_shapes: Dict[str, Sequence[int]],
    workspace_mib: int = trt_policy.DEFAULT_WORKSPACE_MIB,
    calibrator: Any = None,
    timing_cache: Optional[str] = None,
    device: Optional[CudaDevice] = None,
    verbose: bool = False,
) -> Dict[str, Any]:
    """Parse ONNX, configure, build; returns {"engine": bytes, "fp32_layers": [...], ...}.

    ``calibrator`` comes from ``calibrator.make_entropy_calibrator`` (weakly typed INT8);
    it is freed here whatever happens. A strongly typed recipe takes no calibrator: its
    ``onnx_path`` is the FP16 copy or the Q/DQ file.
    """
    trt = import_tensorrt()
    version = str(trt.__version__)
    if recipe.typing != trt_policy.typing_for_version(version):
        raise ValueError("a {} recipe cannot run on TensorRT {}".format(recipe.typing, version))
    own = device is None
    try:
        device = device or CudaDevice()
        with device:
            try:
                with quiet_deprecations():
                    result = _serialize(trt, onnx_path, recipe, profile_shapes, workspace_mib, calibrator,
                                        timing_cache, verbose)
            except BaseException as exc:
                drop_frames(exc)  # TensorRT objects in the traceback die now, under the context
                raise
            finally:
                release_calibrator(calibrator)  # success or failure, while the context is current
        result.update(tensorrt=version, typing=recipe.typing, gpu=device.name,
                      compute_capability=device.compute_capability)
        return result
    finally:
        if own and device is not None:
            device.close()
