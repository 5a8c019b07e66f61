"""Bundle -> cached TensorRT engine: what to build, where it lives, when to rebuild.

Used by ``jist-edge engine build`` and by the TensorRT backend (which rebuilds a
stale or missing engine automatically unless told ``no_build``). The header logic is
``engine_cache``; the TensorRT calls are ``jist_edge.engines.runner`` (imported only when a
build or load really happens).
"""
import os
from typing import Any, Callable, Dict, Optional, Tuple

from jist_edge import workspace

from jist_edge.engines import cache as engine_cache

from jist_edge.engines import policy as trt_policy
from jist_edge.bundle import ENCODER_FILE, SEQUENCE_FILE
from jist_edge.errors import JistEdgeError

MODELS = {"encoder": ENCODER_FILE, "sequence": SEQUENCE_FILE}


def model_input_tail(bundle, model: str):
    """The non-batch input axes: encoder (3, H, W), sequence (L, 3, H, W)."""
    chw = (3, int(bundle.height), int(bundle.width))
    if model == "encoder":
        return chw
    if model == "sequence":
        return (int(bundle.seq_len),) + chw
    raise JistEdgeError("unknown model {!r}; choose encoder or sequence".format(model))


def default_max_batch(bundle, model: str) -> int:
    """Encoder: L frames (a whole window in one call when mapping); sequence: 1 window."""
    return int(bundle.seq_len) if model == "encoder" else 1


def expected_for(bundle, model: str, precision: str, platform: Dict[str, Any],
                 max_batch: Optional[int] = None) -> Dict[str, Any]:
    """The header an engine of this bundle must carry on this platform (plain function)."""
    tail = model_input_tail(bundle, model)
    profile = trt_policy.batch_profile(tail, max_batch or default_max_batch(bundle, model))
    files = bundle.manifest["files"]
    return engine_cache.expected_header(
        tensorrt=platform["tensorrt"],
        gpu=platform["gpu"],
        compute_capability=platform["compute_capability"],
        model=model,
        precision=precision,
        input_shape=tail,
        profile=profile,
        onnx_sha256=files[MODELS[model]]["sha256"],
        bundle_id=bundle.bundle_id,
    )


def cache_dir_for(cache_dir: Optional[str] = None, workspace_override: Optional[str] = None) -> str:
    return os.path.abspath(cache_dir) if cache_dir else workspace.engine_dir(workspace_override)


def build(
    bundle,
    model: str = "encoder",
    precision: str = "fp16",
    workspace_mib: int = trt_policy.DEFAULT_WORKSPACE_MIB,
    max_batch: Optional[int] = None,
    force: bool = False,
    cache_dir: Optional[str] = None,
    int8_source: Optional[Callable[[Dict[str, Any], Dict[str, Any]], Dict[str, Any]]] = None,
    platform: Optional[Dict[str, Any]] = None,
    device: Any = None,
    log: Callable[[str], None] = lambda message: None,
) -> Tuple[str, Dict[str, Any]]:
    """Build one engine and write it (with header and timing cache) into the cache.

    ``int8_source(platform, profile)`` supplies INT8 data when the plan needs it:
    ``{"calibrator": ...}`` (TensorRT < 10) or ``{"onnx": qdq_path}`` (TensorRT >= 10).
    """
    from jist_edge.engines import runner as trt  # the only place TensorRT is imported

    own = device is None
    device = device or trt.CudaDevice()
    try:
        platform = platform or trt.platform_info(device)
        plan = trt_policy.resolve_precision(precision, platform["fast_fp16"], platform["fast_int8"],
                                            force=force, device=platform["gpu"])
        for note in plan.notes:
            log(note)
        expected = expected_for(bundle, model, plan.name, platform, max_batch)
        directory = cache_dir_for(cache_dir)
        onnx_path = os.path.join(bundle.path, MODELS[model])
        trt_policy.check_onnx_opset(platform["tensorrt"], bundle.manifest["opset"], onnx_path)
        extra = {"workspace_mib": int(workspace_mib), "precision_requested": precision}
        calibrator = None
        if plan.int8 and int8_source is None and precision == "best":
            log("best would use INT8 on {} but no calibration data was given: building FP16".format(platform["gpu"]))
            plan = trt_policy.resolve_precision("fp16", platform["fast_fp16"], platform["fast_int8"])
            expected = expected_for(bundle, model, plan.name, platform, max_batch)
        if plan.int8:
            if int8_source is None:
                raise JistEdgeError(
                    "an INT8 engine needs calibration data: pass --calibration DIR|VIDEO "
                    "(or build --precision fp16)"
                )
            source = int8_source(platform, expected["profile"])
            calibrator = source.get("calibrator")
            if source.get("onnx"):
                onnx_path = source["onnx"]
                extra["qdq_onnx"] = os.path.basename(onnx_path)
            extra["int8_method"] = trt_policy.int8_method_for_version(platform["tensorrt"])
        log("building {} {} engine for {} (TensorRT {}, workspace {} MiB)...".format(
            model, plan.name, platform["gpu"], platform["tensorrt"], workspace_mib))
        result = trt.build_engine(
            onnx_path, plan, expected["profile"], workspace_mib=workspace_mib, calibrator=calibrator,
            timing_cache=engine_cache.timing_cache_path(directory, platform["tensorrt"],
                                                        platform["compute_capability"]),
            device=device,
        )
        extra["fp32_layers"] = result["fp32_layers"]
        path = engine_cache.engine_path(directory, model, plan.name)
        header = engine_cache.write_engine(path, result["engine"], expected, extra=extra)
        return path, header
    finally:
        if own:
            device.close()


def load_or_build(
    bundle,
    precision: str = "fp16",
    no_build: bool = False,
    cache_dir: Optional[str] = None,
    max_batch: Optional[int] = None,
    workspace_mib: int = trt_policy.DEFAULT_WORKSPACE_MIB,
    device: Any = None,
    log: Callable[[str], None] = lambda message: None,
) -> Tuple[bytes, Dict[str, Any]]:
    """The encoder engine for this bundle: the cached one if its header matches, else rebuilt.

    With ``no_build`` a missing or mismatched engine is an error naming the field.
    INT8 engines are never rebuilt here (they need calibration data): build them with
    ``jist-edge engine build --precision int8 --calibration ...``.
    """
    from jist_edge.engines import runner as trt

    platform = trt.platform_info(device)
    plan = trt_policy.resolve_precision(precision, platform["fast_fp16"], platform["fast_int8"],
                                        device=platform["gpu"])
    expected = expected_for(bundle, "encoder", plan.name, platform, max_batch)
    directory = cache_dir_for(cache_dir)
    path = engine_cache.engine_path(directory, "encoder", plan.name)
    try:
        return engine_cache.load_engine(path, expected)
    except JistEdgeError as exc:
        if plan.int8 and precision == "best":
            log("{}; using FP16 (INT8 engines are built with `jist-edge engine build --calibration`)".format(exc))
            return load_or_build(bundle, "fp16", no_build, cache_dir, max_batch, workspace_mib, device, log)
        if no_build or plan.int8:
            raise
        log("{}; rebuilding".format(exc))
    path, _ = build(bundle, "encoder", precision, workspace_mib=workspace_mib, max_batch=max_batch,
                    cache_dir=directory, platform=platform, device=device, log=log)
    return engine_cache.load_engine(path, expected)
