"""jist-edge calibrate [BUNDLE] --calibration DIR|VIDEO ...: INT8 encoders and their fidelity report (host)."""
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
    from jist_edge.calibration.workflow import calibrate
    from jist_edge.claims import check_writable
    from jist_edge.fileio import write_json_atomic

    if qdq_out and not tensorrt_qdq:
        raise click.UsageError("--qdq writes the TensorRT Q/DQ variant: drop --no-tensorrt-qdq")
    # outputs are refused now, not after minutes of calibration
    qdq_out = check_writable(qdq_out, "--qdq") if qdq_out else None
    report = check_writable(report, "--report") if report else None
    model = load_bundle(bundle or workspace.model_dir(workspace_path))
    result, installed = calibrate(model, calibration, workspace.engine_dir(workspace_path), frames, seed, qdq_out,
                                  tensorrt_qdq, route, queries, route_frames, fp16, checkpoint, force,
                                  log=lambda message: click.echo(message, err=True), warn=warn)
    _print(result, model.random_init)
    if report:
        write_json_atomic(report, result)
        click.echo("report: {}".format(report))
    if installed is None:
        raise JistEdgeError("CPU INT8 model not installed: {} (gate: cosine >= 0.99, top-1 >= 0.95); pass --force "
                            "to install it anyway".format("; ".join(result["cpu_int8"]["failures"])))


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
