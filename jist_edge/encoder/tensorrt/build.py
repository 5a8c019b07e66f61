"""Bundle -> cached TensorRT engine: what to build, from which ONNX file, where it lives, when to rebuild.

Used by ``jist-edge engine build`` and by the TensorRT backend (which rebuilds a
stale or missing engine automatically unless told ``no_build``). The header logic is
``cache``; the TensorRT calls are ``compiler`` and ``probe`` (imported only when a
build or load really happens).
"""
import os
from typing import Any, Callable, Dict, Optional, Tuple

from jist_edge import workspace
from jist_edge.bundle import ENCODER_FILE
from jist_edge.encoder.tensorrt import cache as engine_cache
from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.errors import JistEdgeError
from jist_edge.locks import output_lock
from jist_edge.fileio import sha256_file

MODELS = {"encoder": ENCODER_FILE}  # the runtime loads the encoder only (SeqGeM runs in numpy)

Log = Callable[[str], None]
# (platform, profile) -> {"calibrator": ...} or {"onnx": qdq_path}: INT8 data, made by the caller
# (jist_edge.calibration.int8_source, host side), so the runtime never imports the calibration code
Int8Source = Callable[[Dict[str, Any], Dict[str, Any]], Dict[str, Any]]


def _quiet(message: str) -> None:
    pass


def model_input_tail(bundle, model: str = "encoder") -> Tuple[int, int, int]:
    """The non-batch input axes of the encoder: (3, H, W)."""
    if model not in MODELS:
        raise JistEdgeError("unknown model {!r}: engines are built for the encoder only".format(model))
    return (3, int(bundle.height), int(bundle.width))


def default_max_batch(bundle) -> int:
    """L frames: map building encodes a whole window in one call."""
    return int(bundle.seq_len)


def expected_for(bundle, model: str, precision: str, platform: Dict[str, Any],
                 max_batch: Optional[int] = None) -> Dict[str, Any]:
    """The header an engine of this bundle must carry on this platform (plain function)."""
    tail = model_input_tail(bundle, model)
    profile = trt_policy.batch_profile(tail, max_batch or default_max_batch(bundle))
    files = bundle.manifest["files"]
    return engine_cache.expected_header(
        tensorrt=platform["tensorrt"],
        typing=platform["typing"],
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


def resolve_plan(precision: str, platform: Dict[str, Any], force: bool, has_int8_data: bool,
                 log: Log = _quiet) -> "trt_policy.PrecisionPlan":
    """The precision to build here; ``best`` without calibration data falls back to FP16."""
    plan = trt_policy.resolve_precision(precision, platform["fast_fp16"], platform["fast_int8"],
                                        force=force, device=platform["gpu"])
    for note in plan.notes:
        log(note)
    if plan.int8 and not has_int8_data:
        if precision != "best":
            raise JistEdgeError("an INT8 engine needs calibration data: pass --calibration DIR|VIDEO "
                                "(or build --precision fp16)")
        log("best would use INT8 on {} but no calibration data was given: building FP16".format(platform["gpu"]))
        plan = trt_policy.resolve_precision("fp16", platform["fast_fp16"], platform["fast_int8"])
    return plan


def onnx_for_recipe(recipe: "trt_policy.BuildRecipe", bundle, platform: Dict[str, Any],
                    profile: Dict[str, Any], int8_source: Optional[Int8Source], directory: str,
                    log: Log = _quiet) -> Tuple[str, Any, Dict[str, Any]]:
    """(ONNX file to build from, calibrator or None, header extras) for this recipe."""
    extra = {}  # type: Dict[str, Any]
    if recipe.onnx == "fp16":
        from jist_edge.encoder.tensorrt.fp16_onnx import fp16_onnx_name, make_fp16_encoder

        path = os.path.join(directory, fp16_onnx_name(bundle.bundle_id))
        info = make_fp16_encoder(bundle.encoder_path, path)
        log("FP16 encoder for the strongly typed build: {} (head kept FP32: {} nodes)".format(
            path, len(info["fp32_nodes"])))
        extra.update(fp16_converter=info["converter"], fp32_layers=info["fp32_nodes"])
        return path, None, _built_from(path, extra)
    if not (recipe.onnx == "qdq" or recipe.calibrator):
        return bundle.encoder_path, None, extra
    if int8_source is None:
        raise JistEdgeError("an INT8 engine needs calibration data: pass --calibration DIR|VIDEO")
    source = int8_source(platform, profile)
    extra["int8_method"] = trt_policy.int8_method_for_version(platform["tensorrt"])
    if recipe.onnx == "qdq":
        if not source.get("onnx"):
            raise JistEdgeError("a strongly typed INT8 engine is built from a Q/DQ ONNX file; none was made")
        return source["onnx"], None, _built_from(source["onnx"], extra)
    if source.get("calibrator") is None:
        raise JistEdgeError("a weakly typed INT8 engine needs an entropy calibrator; none was made")
    return bundle.encoder_path, source["calibrator"], extra


def _built_from(path: str, extra: Dict[str, Any]) -> Dict[str, Any]:
    extra["built_from"] = os.path.basename(path)
    extra["built_from_sha256"] = sha256_file(path)
    return extra


def build(
    bundle,
    model: str = "encoder",
    precision: str = "fp16",
    workspace_mib: int = trt_policy.DEFAULT_WORKSPACE_MIB,
    max_batch: Optional[int] = None,
    force: bool = False,
    cache_dir: Optional[str] = None,
    int8_source: Optional[Int8Source] = None,
    platform: Optional[Dict[str, Any]] = None,
    device: Any = None,
    log: Log = _quiet,
) -> Tuple[str, Dict[str, Any]]:
    """Build the encoder engine and write it (with header and timing cache) into the cache.

    ``int8_source(platform, profile)`` (``calibration.int8_source``) supplies INT8 data when the
    plan needs it: an entropy calibrator (weakly typed) or a Q/DQ ONNX (strongly typed).
    """
    from jist_edge.encoder.tensorrt import probe
    from jist_edge.encoder.tensorrt.cuda_device import CudaDevice

    own = device is None
    try:
        device = device or CudaDevice()
        platform = platform or probe.platform_info(device)
        plan = resolve_plan(precision, platform, force, int8_source is not None, log)
        recipe = trt_policy.build_recipe(plan, platform["typing"])
        expected = expected_for(bundle, model, plan.name, platform, max_batch)
        trt_policy.check_onnx_opset(platform["tensorrt"], bundle.manifest["opset"], bundle.encoder_path)
        directory = cache_dir_for(cache_dir)
        with output_lock(directory, "engine cache"):  # one builder per cache: engines, timing cache, Q/DQ files
            return _build_locked(bundle, model, precision, workspace_mib, platform, plan, recipe, expected, directory,
                                 int8_source, device, log)
    finally:
        if own and device is not None:
            device.close()


def _build_locked(bundle, model: str, precision: str, workspace_mib: int, platform: Dict[str, Any], plan: Any,
                  recipe: Any, expected: Dict[str, Any], directory: str, int8_source: Optional[Int8Source],
                  device: Any, log: Log) -> Tuple[str, Dict[str, Any]]:
    from jist_edge.encoder.tensorrt import compiler

    onnx_path, calibrator, extra = onnx_for_recipe(recipe, bundle, platform, expected["profile"],
                                                   int8_source, directory, log)
    log("building {} {} engine for {} (TensorRT {}, {}ly typed, workspace {} MiB)...".format(
        model, plan.name, platform["gpu"], platform["tensorrt"], recipe.typing, workspace_mib))
    result = compiler.build_engine(
        onnx_path, recipe, expected["profile"], workspace_mib=workspace_mib, calibrator=calibrator,
        timing_cache=engine_cache.timing_cache_path(directory, platform["tensorrt"],
                                                    platform["compute_capability"]),
        device=device,
    )
    # FP32 head: pinned layers (weakly typed) or the head nodes kept FP32 in the FP16 ONNX
    extra["fp32_layers"] = result["fp32_layers"] or extra.get("fp32_layers", [])
    extra.update(workspace_mib=int(workspace_mib), precision_requested=precision, recipe=recipe.as_dict())
    path = engine_cache.engine_path(directory, model, plan.name)
    return path, engine_cache.write_engine(path, result["engine"], expected, extra=extra)


def load_or_build(
    bundle,
    precision: str = "fp16",
    no_build: bool = False,
    cache_dir: Optional[str] = None,
    max_batch: Optional[int] = None,
    workspace_mib: int = trt_policy.DEFAULT_WORKSPACE_MIB,
    device: Any = None,
    log: Log = _quiet,
) -> Tuple[bytes, Dict[str, Any]]:
    """The encoder engine for this bundle: the cached one if its header matches, else rebuilt.

    With ``no_build`` a missing or mismatched engine is an error naming the field.
    INT8 engines are never rebuilt here (they need calibration data): build them with
    ``jist-edge engine build --precision int8 --calibration ...``.
    """
    from jist_edge.encoder.tensorrt import probe

    platform = probe.platform_info(device)
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
