"""jist-edge engine build [BUNDLE] ...: TensorRT engines, built on the target device."""
import os
from typing import Any, Dict, Optional

import click

from jist_edge.engines import policy as trt_policy
from jist_edge.cli.common import echo_table, warn
from jist_edge.errors import JistEdgeError


@click.group("engine")
def command() -> None:
    """Build TensorRT engines from a model bundle (on the device that will run them)."""


class _MiB(click.ParamType):
    """An integer MiB count, with a hint for those who expect the workspace *folder* option."""

    name = "MiB"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return int(value)
        except ValueError:
            self.fail("{!r} is not a number of MiB: in `engine build`, --workspace is TensorRT's builder memory "
                      "(as in trtexec); the jist-edge folder comes from $JIST_EDGE_HOME".format(value), param, ctx)


@command.command("build")
@click.argument("bundle", required=False, type=click.Path(file_okay=False))
@click.option("--precision", type=click.Choice(trt_policy.PRECISIONS), default="best", show_default=True,
              help="best = FP16, plus INT8 only where the GPU has fast INT8 (not the Nano).")
@click.option("--workspace", "--trt-workspace", "workspace_mib", type=_MiB(), default=trt_policy.DEFAULT_WORKSPACE_MIB,
              show_default=True, metavar="MiB",
              help="TensorRT builder workspace in MiB, as trtexec's --workspace (a 4 GB Nano needs it small). "
                   "The jist-edge folder comes from $JIST_EDGE_HOME here.")
@click.option("--calibration", type=click.Path(exists=True), default=None,
              help="Image folder or video for INT8 calibration.")
@click.option("--frames", type=click.IntRange(1), default=256, show_default=True, help="Calibration frames spread over the route.")
@click.option("--max-batch", type=click.IntRange(1), default=None, help="Largest encoder batch [default: the bundle's L].")
@click.option("--sequence", is_flag=True, help="Also build sequence.onnx (L frames -> one descriptor).")
@click.option("--force", is_flag=True, help="Build INT8 even where the GPU has no fast INT8.")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Engine folder [default: $JIST_EDGE_HOME/engines].")
def build_command(bundle: Optional[str], precision: str, workspace_mib: int, calibration: Optional[str],
                  frames: int, max_batch: Optional[int], sequence: bool, force: bool, output: Optional[str]) -> None:
    """Build the bundle's encoder engine (and sequence engine) into the engine cache.

    BUNDLE defaults to the workspace model ($JIST_EDGE_HOME/model). Each engine gets a
    header (TensorRT version, GPU, precision, shapes, ONNX sha256, bundle identity)
    that is checked before every load; `run --backend tensorrt` rebuilds on mismatch.
    """
    from jist_edge.engines import build as engine_build
    from jist_edge import workspace
    from jist_edge.backends import tensorrt_backend
    from jist_edge.bundle import load_bundle

    if not tensorrt_backend.is_available():
        raise JistEdgeError("cannot build engines here: " + tensorrt_backend.why_unavailable())
    if precision == "int8" and calibration is None:
        raise JistEdgeError("--precision int8 needs --calibration DIR|VIDEO")
    model = load_bundle(bundle or workspace.model_dir())
    directory = engine_build.cache_dir_for(output)
    source = _int8_source(model, calibration, frames, directory) if calibration else None
    rows = []
    for name in ["encoder"] + (["sequence"] if sequence else []):
        prec = precision if name == "encoder" or precision != "int8" else "fp16"
        path, header = engine_build.build(
            model, name, prec, workspace_mib=workspace_mib,
            max_batch=max_batch if name == "encoder" else None, force=force, cache_dir=directory,
            int8_source=source if name == "encoder" else None, log=lambda m: click.echo(m, err=True),
        )
        rows.append([name, header["precision"], header["profile"]["max"][0], len(header.get("fp32_layers", [])),
                     "{:.1f} MB".format(header["engine_bytes"] / 1e6), path])
    echo_table(["model", "precision", "max batch", "FP32 layers", "size", "engine"], rows)


def _int8_source(bundle, calibration: str, frames: int, directory: str):
    """INT8 data per TensorRT version: entropy calibrator + cache (< 10) or Q/DQ ONNX (>= 10)."""
    from jist_edge.calibration.cache import cache_for
    from jist_edge.calibration.dataset import open_calibration_set

    def source(platform: Dict[str, Any], profile: Dict[str, Any]) -> Dict[str, Any]:
        calib = open_calibration_set(calibration, bundle, frames=frames)
        if trt_policy.int8_method_for_version(platform["tensorrt"]) == "qdq":
            from jist_edge.calibration.qdq import make_qdq_encoder

            out = os.path.join(directory, "encoder-qdq-{}.onnx".format(bundle.bundle_id))
            make_qdq_encoder(bundle, calib, out)
            return {"onnx": out}
        from jist_edge.engines import runner as trt

        batch = max(1, min(8, int(profile["max"][0])))
        cache = cache_for(directory, bundle, calib, extra={"tensorrt": platform["tensorrt"], "batch": batch})
        if cache.read() is None:
            warn("calibrating on {} frames of {} (cached in {})".format(len(calib), calibration, cache.path))
        calibrator = trt.make_entropy_calibrator(
            lambda: calib.batches(batch, pad=True), (batch,) + tuple(profile["max"][1:]), cache.read, cache.write)
        return {"calibrator": calibrator}

    return source
