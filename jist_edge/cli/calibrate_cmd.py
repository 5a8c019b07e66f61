"""jist-edge calibrate [BUNDLE] --calibration DIR|VIDEO ...: Q/DQ encoder and fidelity report (host)."""
import os
import shutil
import tempfile
from typing import Optional

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
              help="Write the explicitly quantized (Q/DQ) encoder here (for TensorRT 10).")
@click.option("--route", type=click.Path(exists=True), default=None,
              help="Route (folder/video) for the top-1 agreement [default: the calibration source].")
@click.option("--route-frames", type=click.IntRange(1), default=60, show_default=True,
              help="Frames taken evenly from the route; even ones are the map, odd ones the queries.")
@click.option("--fp16/--no-fp16", default=True, show_default=True, help="Also emulate FP16 with the torch model.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The .pth the bundle was exported from (FP16 emulation of a real-weight bundle).")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write the fidelity report (JSON).")
@workspace_option
def command(bundle: Optional[str], calibration: str, frames: int, seed: int, qdq_out: Optional[str],
            route: Optional[str], route_frames: int, fp16: bool, checkpoint: Optional[str],
            report: Optional[str], workspace_path: Optional[str]) -> None:
    """Quantize the encoder to INT8 (Q/DQ) on the CPU and measure what INT8 and FP16 change.

    Prints cosine similarity to FP32 of frame and sequence descriptors and the top-1
    agreement of sequence matching on a route map, for INT8 (Q/DQ in ONNX Runtime)
    and FP16 (emulated, with the GeM/normalization head in FP32 and in FP16).
    """
    import numpy as np

    from jist_edge.bundle import load_bundle
    from jist_edge.calibration import fidelity
    from jist_edge.calibration.dataset import open_calibration_set
    from jist_edge.calibration.qdq import make_qdq_encoder
    from jist_edge.fileio import write_json_atomic

    model = load_bundle(bundle or workspace.model_dir(workspace_path))
    calib = open_calibration_set(calibration, model, frames=frames, seed=seed)
    click.echo("calibrating on {} of {} frames of {}".format(len(calib), calib.total, calibration), err=True)
    work = tempfile.mkdtemp(prefix="jist-edge-calibrate-")
    try:
        out = os.path.abspath(qdq_out) if qdq_out else os.path.join(work, "encoder-qdq.onnx")
        info = make_qdq_encoder(model, calib, out)
        route_set = open_calibration_set(route or calibration, model, frames=route_frames, seed=seed)
        count = min(route_frames, route_set.total)
        route_set.indices = sorted(set(int(i) for i in np.linspace(0, route_set.total - 1, count)))
        db, q = fidelity.split_route(route_set.array(), model.seq_len)
        for name, frame_set in (("calibration", calib), ("route", route_set)):
            if frame_set.skipped:
                warn("{} of {} selected {} frames of {} could not be read and were skipped".format(
                    frame_set.skipped, len(frame_set), name, frame_set.source))
        variants = {"int8-qdq": fidelity.ort_encoder(out)}
        if fp16:
            try:
                torch_model = fidelity.torch_model_for(model, checkpoint)
                fidelity.check_torch_matches(torch_model, model, db)
                variants["fp16"] = fidelity.fp16_encoder(torch_model, head_fp32=True)
                variants["fp16-all"] = fidelity.fp16_encoder(torch_model, head_fp32=False)
            except (ImportError, JistEdgeError) as exc:
                warn("FP16 emulation skipped: {}".format(exc))
        result = fidelity.fidelity_report(model, db, q, variants)
        result["calibration"] = calib.identity()
        result["qdq"] = {k: v for k, v in info.items() if k != "path"}
        result["qdq"]["path"] = out if qdq_out else None
        result["bundle_id"] = model.bundle_id
        result["random_weights"] = model.random_init
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name, n in result["variants"].items():
        cos = ["{:.5f}".format(n[k]) for k in ("frame_cosine_mean", "frame_cosine_min",
                                                "sequence_cosine_mean", "sequence_cosine_min")]
        rows.append([name] + cos + [n["top1_agreement"], n["top1_within_one_window"]])
    echo_table(["variant", "frame cos", "frame min", "seq cos", "seq min", "top-1 agree", "within 1"], rows)
    click.echo("{} map windows, {} query windows; reference: FP32 ONNX Runtime{}".format(
        n["database"], n["queries"], "; RANDOM WEIGHTS" if model.random_init else ""))
    if qdq_out:
        click.echo("Q/DQ encoder: {} ({} QuantizeLinear, head kept FP32: {} nodes)".format(
            out, info["quantize_linear"], len(info["fp32_nodes"])))
    if report:
        write_json_atomic(report, result)
        click.echo("report: {}".format(report))
