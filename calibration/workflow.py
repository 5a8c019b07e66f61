"""`jist-edge calibrate` as a function: INT8 encoders made from a calibration set, measured against FP32.

Makes the CPU INT8 encoder for ONNX Runtime (uint8 activations, int8 per-channel weights,
head in FP32) and installs it in the engine folder for `run --precision int8|best` when its
fidelity gate passes (``cpu_int8.gate``; ``force`` installs it regardless). Beside it, the
TensorRT Q/DQ variant (signed INT8) and FP16 (emulated with the torch model, head in FP32
and in FP16) are measured the same way; the report holds them side by side.
"""
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, Optional, Tuple

from jist_edge.errors import JistEdgeError

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def calibrate(model: Any, calibration: str, engines: str, frames: int = 256, seed: int = 0,
              qdq_out: Optional[str] = None, tensorrt_qdq: bool = True, route: Optional[str] = None,
              queries: Optional[str] = None, route_frames: int = 60, fp16: bool = True,
              checkpoint: Optional[str] = None, force: bool = False, log: Log = _quiet,
              warn: Log = _quiet) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """(fidelity report, the installed CPU INT8 model's header or None when the gate refused it).

    ``model``: a loaded bundle; ``route``: the folder/video whose frames make the top-1 agreement's
    map (default: the calibration source); ``queries``: its second pass (default: the route re-seen
    by ``fidelity.revisit``)."""
    from jist_edge.calibration.dataset import open_calibration_set

    calib = open_calibration_set(calibration, model, frames=frames, seed=seed)
    log("calibrating on {} of {} frames of {}".format(len(calib), calib.total, calibration))
    work = tempfile.mkdtemp(prefix="jist-edge-calibrate-")
    try:
        db, q = _route_passes(model, route or calibration, queries, route_frames, seed, warn)  # before the slow part
        files, result, expected = _quantize(model, calib, engines, work, qdq_out, tensorrt_qdq, log, warn)
        result.update(_fidelity(model, db, q, files, fp16, checkpoint, warn))
        result["queries"] = "second pass {}".format(queries) if queries else "the route re-seen (fidelity.revisit)"
        installed = _gate_and_install(model, result, files["int8-cpu"], engines, expected, force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result, installed


def _quantize(model: Any, calib: Any, engines: str, work: str, qdq_out: Optional[str], tensorrt_qdq: bool,
              log: Log, warn: Log):
    """The INT8 files to measure ({variant: path}), the report's start, the CPU model's expected header."""
    import onnxruntime

    from jist_edge.encoder.onnxruntime import int8_model
    from jist_edge.calibration import cpu_int8
    from jist_edge.calibration.qdq import quantize_encoder

    frames = calib.array()
    _warn_skipped(calib, "calibration", warn)
    expected = int8_model.expected_header(model, onnxruntime.__version__, calib.identity())
    result = {"calibration": calib.identity(), "bundle_id": model.bundle_id, "random_weights": model.random_init,
              "onnxruntime": onnxruntime.__version__}  # type: Dict[str, Any]
    files = {}  # type: Dict[str, str]
    current = cpu_int8.existing_current(engines, expected)
    if current:
        log("CPU INT8 model {} is up to date (same bundle, ONNX Runtime and calibration set): "
            "measuring it again".format(current))
        files["int8-cpu"] = current
        result["cpu_int8_quantization"] = int8_model.read_header(current).get("quantization", {})
    else:
        files["int8-cpu"] = os.path.join(work, "encoder-int8-cpu.onnx")
        info = cpu_int8.quantize_cpu_int8(model, frames, files["int8-cpu"])
        result["cpu_int8_quantization"] = {k: v for k, v in info.items() if k != "path"}
    if tensorrt_qdq:
        files["int8-qdq"] = os.path.abspath(qdq_out) if qdq_out else os.path.join(work, "encoder-qdq.onnx")
        info = quantize_encoder(model.encoder_path, frames, files["int8-qdq"])
        result["qdq"] = {k: v for k, v in info.items() if k != "path"}
        result["qdq"]["path"] = files["int8-qdq"] if qdq_out else None
    return files, result, expected


def _route_passes(model: Any, route: str, queries: Optional[str], count: int, seed: int, warn: Log):
    """(map, queries) as preprocessed frames: ``count`` frames evenly along the route (a route is a
    sequence, so not stratified at random), and as many from the second pass or from fidelity.revisit."""
    import numpy as np

    from jist_edge.calibration import fidelity
    from jist_edge.calibration.dataset import open_calibration_set
    from jist_edge.encoder.preprocess import Preprocessor

    passes = []
    for source in (route, queries) if queries else (route,):
        frames = open_calibration_set(source, model, frames=count, seed=seed)
        frames.indices = sorted(set(int(i) for i in np.linspace(0, frames.total - 1, min(count, frames.total))))
        passes.append(list(frames.images()))
        _warn_skipped(frames, "route", warn)
    if len(passes[0]) < model.seq_len or (queries and len(passes[1]) < model.seq_len):
        raise JistEdgeError("the fidelity route needs at least L={} frames per pass, got {}: give a longer "
                            "--route/--queries or more --route-frames".format(model.seq_len, min(map(len, passes))))
    pre = Preprocessor.for_bundle(model)
    return pre.batch(passes[0]), pre.batch(passes[1] if queries else fidelity.revisit(passes[0], seed))


def _warn_skipped(frame_set: Any, name: str, warn: Log) -> None:
    """Unreadable frames are skipped (as map build and run skip them); say how many."""
    if frame_set.skipped:
        warn("{} of {} selected {} frames of {} could not be read and were skipped".format(
            frame_set.skipped, len(frame_set), name, frame_set.source))


def _fidelity(model: Any, db: Any, q: Any, files: Dict[str, str], fp16: bool, checkpoint: Optional[str], warn: Log):
    from jist_edge.calibration import fidelity

    variants = {name: fidelity.ort_encoder(path) for name, path in files.items()}
    if fp16:
        try:
            torch_model = fidelity.torch_model_for(model, checkpoint)
            fidelity.check_torch_matches(torch_model, model, db)
            variants["fp16"] = fidelity.fp16_encoder(torch_model, head_fp32=True)
            variants["fp16-all"] = fidelity.fp16_encoder(torch_model, head_fp32=False)
        except (ImportError, JistEdgeError) as exc:
            warn("FP16 emulation skipped: {}".format(exc))
    return fidelity.fidelity_report(model, db, q, variants)


def _gate_and_install(model: Any, result: Dict[str, Any], model_file: str, engines: str, expected: Dict[str, Any],
                      force: bool):
    """Install the CPU INT8 model when the gate passes (or --force); the header, or None when refused."""
    from jist_edge.calibration import cpu_int8

    numbers = result["variants"]["int8-cpu"]
    failures = cpu_int8.gate(numbers)
    record = cpu_int8.fidelity_record(numbers, failures, force, model.random_init)
    result["cpu_int8"] = dict(record, installed=None)
    if failures and not force:
        return None
    header = cpu_int8.install(model_file, engines, expected, record, result["cpu_int8_quantization"])
    result["cpu_int8"]["installed"] = header["path"]
    return header
