"""jist-edge engine build [BUNDLE] ...: TensorRT engines, built on the target device."""
from typing import Optional

import click

from jist_edge.cli.common import echo_table, warn, workspace_option
from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.errors import JistEdgeError


@click.group("engine")
def command() -> None:
    """Build TensorRT engines from a model bundle (on the device that will run them)."""


@command.command("build")
@click.argument("bundle", required=False, type=click.Path(file_okay=False))
@click.option("--precision", type=click.Choice(trt_policy.PRECISIONS), default="best", show_default=True,
              help="best = FP16, plus INT8 only where the GPU has fast INT8 (not the Nano).")
@click.option("--trt-workspace", "workspace_mib", type=click.IntRange(16), default=trt_policy.DEFAULT_WORKSPACE_MIB,
              show_default=True, metavar="MiB",
              help="TensorRT builder memory in MiB (trtexec's --memPoolSize workspace); a 4 GB Nano needs it small.")
@click.option("--calibration", type=click.Path(exists=True), default=None,
              help="Image folder or video for INT8 calibration.")
@click.option("--frames", type=click.IntRange(1), default=256, show_default=True, help="Calibration frames spread over the route.")
@click.option("--max-batch", type=click.IntRange(1), default=None, help="Largest encoder batch [default: the bundle's L].")
@click.option("--force", is_flag=True, help="Build INT8 even where the GPU has no fast INT8.")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Engine folder [default: <workspace>/engines].")
@workspace_option
def build_command(bundle: Optional[str], precision: str, workspace_mib: int, calibration: Optional[str],
                  frames: int, max_batch: Optional[int], force: bool, output: Optional[str],
                  workspace_path: Optional[str]) -> None:
    """Build the bundle's encoder engine into the engine cache.

    BUNDLE defaults to the workspace model (<workspace>/model). The engine gets a
    header (TensorRT version and typing path, GPU, precision, shapes, ONNX sha256,
    bundle identity) that is checked before every load; `run --backend tensorrt`
    rebuilds on mismatch.
    """
    from jist_edge import workspace
    from jist_edge.encoder.tensorrt import backend as tensorrt_backend
    from jist_edge.bundle import load_bundle
    from jist_edge.encoder.tensorrt import build as engine_build
    from jist_edge.calibration.int8_source import int8_source

    if not tensorrt_backend.is_available():
        raise JistEdgeError("cannot build engines here: " + tensorrt_backend.why_unavailable())
    if precision == "int8" and calibration is None:
        raise JistEdgeError("--precision int8 needs --calibration DIR|VIDEO")
    model = load_bundle(bundle or workspace.model_dir(workspace_path))
    directory = engine_build.cache_dir_for(output, workspace_path)
    source = int8_source(model, calibration, frames, directory, log=warn) if calibration else None
    path, header = engine_build.build(
        model, "encoder", precision, workspace_mib=workspace_mib, max_batch=max_batch, force=force,
        cache_dir=directory, int8_source=source, log=lambda m: click.echo(m, err=True),
    )
    echo_table(["model", "precision", "typing", "max batch", "FP32 head", "size", "engine"],
               [["encoder", header["precision"], header["typing"], header["profile"]["max"][0],
                 len(header.get("fp32_layers", [])), "{:.1f} MB".format(header["engine_bytes"] / 1e6), path]])
