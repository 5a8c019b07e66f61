"""jist-edge calibrate [BUNDLE] --calibration DIR|VIDEO ...: INT8 encoders and their fidelity report (host)."""
import os
import shutil
import tempfile
from typing import Any, Dict, Optional

import click

from jist_edge import workspace
from jist_edge.cli.common import echo_table, warn, workspace_option
from jist_edge.errors import JistEdgeError


@click.command("calibrate")
@click.argument("bundle", required=False, type=click.Path(file_okay=False))
@click.option("--calibration", required=True, type=click.Path(exists=True),
              help="Image folder or video: frames spread over the route calibrate INT8.")
@click.option("--frames", type=click.IntRange(1), default=256, show_default=True, help="Calibration frames.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the frame selection.")
@click.option("--qdq", "qdq_out", type=click.Path(dir_okay=False), default=None,
              help="Write the explicitly quantized (Q/DQ) encoder for TensorRT 10 here.")
@click.option("--tensorrt-qdq/--no-tensorrt-qdq", default=True, show_default=True,
              help="Also make and measure the TensorRT Q/DQ variant (signed INT8) beside the CPU one.")
@click.option("--route", type=click.Path(exists=True), default=None,
              help="Route (folder/video) whose frames make the map of the top-1 agreement "
                   "[default: the calibration source].")
@click.option("--queries", type=click.Path(exists=True), default=None,
              help="A second pass of the route (folder/video) for the queries [default: the route re-seen "
                   "1 px further on, darker and with sensor noise].")
@click.option("--route-frames", type=click.IntRange(1), default=60, show_default=True,
              help="Frames taken evenly from the route (and from --queries).")
@click.option("--fp16/--no-fp16", default=True, show_default=True, help="Also emulate FP16 with the torch model.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The .pth the bundle was exported from (FP16 emulation of a real-weight bundle).")
@click.option("--force", is_flag=True,
              help="Install the CPU INT8 model even when it fails the fidelity gate (then only "
                   "--precision int8 uses it, never best).")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write the fidelity report (JSON).")
@workspace_option
def command(bundle: Optional[str], calibration: str, frames: int, seed: int, qdq_out: Optional[str],
            tensorrt_qdq: bool, route: Optional[str], queries: Optional[str], route_frames: int, fp16: bool,
            checkpoint: Optional[str],
            force: bool, report: Optional[str], workspace_path: Optional[str]) -> None:
    """Quantize the encoder to INT8 on the CPU and measure what INT8 and FP16 change.

    Makes the CPU INT8 encoder for ONNX Runtime (uint8 activations, int8 per-channel
    weights, head in FP32) and installs it in <workspace>/engines for `run --precision
    int8|best` when its frame-descriptor cosine to FP32 is >= 0.99 and its top-1
    agreement on a route map >= 0.95 (--force installs it regardless). Beside it, the
    TensorRT Q/DQ variant (signed INT8) and FP16 (emulated, head in FP32 and in FP16)
    are measured the same way and reported side by side.
    """
    from jist_edge.bundle import load_bundle
    from jist_edge.calibration.dataset import open_calibration_set
    from jist_edge.fileio import write_json_atomic
    from jist_edge.claims import check_writable

    if qdq_out and not tensorrt_qdq:
        raise click.UsageError("--qdq writes the TensorRT Q/DQ variant: drop --no-tensorrt-qdq")
    # outputs are refused now, not after minutes of calibration
    qdq_out = check_writable(qdq_out, "--qdq") if qdq_out else None
    report = check_writable(report, "--report") if report else None
    model = load_bundle(bundle or workspace.model_dir(workspace_path))
    calib = open_calibration_set(calibration, model, frames=frames, seed=seed)
    click.echo("calibrating on {} of {} frames of {}".format(len(calib), calib.total, calibration), err=True)
    engines = workspace.engine_dir(workspace_path)
    work = tempfile.mkdtemp(prefix="jist-edge-calibrate-")
    try:
        db, q = _route_passes(model, route or calibration, queries, route_frames, seed)  # before the slow part
        files, result, expected = _quantize(model, calib, engines, work, qdq_out, tensorrt_qdq)
        result.update(_fidelity(model, db, q, files, fp16, checkpoint))
        result["queries"] = "second pass {}".format(queries) if queries else "the route re-seen (fidelity.revisit)"
        installed = _gate_and_install(model, result, files["int8-cpu"], engines, expected, force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print(result, model.random_init)
    if report:
        write_json_atomic(report, result)
        click.echo("report: {}".format(report))
    if installed is None:
        raise JistEdgeError("CPU INT8 model not installed: {} (gate: cosine >= 0.99, top-1 >= 0.95); pass --force "
                            "to install it anyway".format("; ".join(result["cpu_int8"]["failures"])))


def _quantize(model: Any, calib: Any, engines: str, work: str, qdq_out: Optional[str], tensorrt_qdq: bool):
    """The INT8 files to measure ({variant: path}), the report's start, the CPU model's expected header."""
    import onnxruntime

    from jist_edge.encoder.onnxruntime import int8_model
    from jist_edge.calibration import cpu_int8
    from jist_edge.calibration.qdq import quantize_encoder

    frames = calib.array()
    _warn_skipped(calib, "calibration")
    expected = int8_model.expected_header(model, onnxruntime.__version__, calib.identity())
    result = {"calibration": calib.identity(), "bundle_id": model.bundle_id, "random_weights": model.random_init,
              "onnxruntime": onnxruntime.__version__}  # type: Dict[str, Any]
    files = {}  # type: Dict[str, str]
    current = cpu_int8.existing_current(engines, expected)
    if current:
        click.echo("CPU INT8 model {} is up to date (same bundle, ONNX Runtime and calibration set): "
                   "measuring it again".format(current), err=True)
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


def _route_passes(model: Any, route: str, queries: Optional[str], count: int, seed: int):
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
        _warn_skipped(frames, "route")
    if len(passes[0]) < model.seq_len or (queries and len(passes[1]) < model.seq_len):
        raise JistEdgeError("the fidelity route needs at least L={} frames per pass, got {}: give a longer "
                            "--route/--queries or more --route-frames".format(model.seq_len, min(map(len, passes))))
    pre = Preprocessor.for_bundle(model)
    return pre.batch(passes[0]), pre.batch(passes[1] if queries else fidelity.revisit(passes[0], seed))


def _warn_skipped(frame_set: Any, name: str) -> None:
    """Unreadable frames are skipped (as map build and run skip them); say how many."""
    if frame_set.skipped:
        warn("{} of {} selected {} frames of {} could not be read and were skipped".format(
            frame_set.skipped, len(frame_set), name, frame_set.source))


def _fidelity(model: Any, db: Any, q: Any, files: Dict[str, str], fp16: bool, checkpoint: Optional[str]):
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


def _print(result: Dict[str, Any], random_init: bool) -> None:
    rows = []
    for name, n in result["variants"].items():
        cos = ["{:.5f}".format(n[k]) for k in ("frame_cosine_mean", "frame_cosine_min",
                                                "sequence_cosine_mean", "sequence_cosine_min")]
        rows.append([name] + cos + [n["top1_agreement"], n["top1_within_one_window"]])
    echo_table(["variant", "frame cos", "frame min", "seq cos", "seq min", "top-1 agree", "within 1"], rows)
    click.echo("{} map windows, {} query windows; reference: FP32 ONNX Runtime{}".format(
        n["database"], n["queries"], "; RANDOM WEIGHTS (fidelity near-meaningless)" if random_init else ""))
    click.echo("int8-cpu: U8S8 for ONNX Runtime's CPU kernels; int8-qdq: signed Q/DQ for TensorRT")
    cpu = result["cpu_int8"]
    if cpu["installed"]:
        click.echo("CPU INT8 model: {} ({}; `jist-edge run --precision int8` uses it{})".format(
            cpu["installed"], "gate passed" if cpu["passed"] else "gate FAILED, installed by --force",
            ", and so does best" if cpu["passed"] else ""))
    qdq = result.get("qdq")
    if qdq and qdq.get("path"):
        click.echo("Q/DQ encoder: {} ({} QuantizeLinear, head kept FP32: {} nodes)".format(
            qdq["path"], qdq["quantize_linear"], len(qdq["fp32_nodes"])))
