"""`jist-edge export`: checkpoint -> ONNX bundle (host only; torch is imported on use)."""
import os
import time
from typing import Any, List, Optional, Tuple

import click

from jist_edge import workspace
from jist_edge.cli.common import echo_json, echo_table, keeps_previous, warn, workspace_option
from jist_edge.errors import JistEdgeError

INSTALL_HINT = "pip install 'jist-edge[export]' torch==2.13.0"


def _import_exporter() -> Any:
    """The export code needs torch and onnx; say how to get them instead of a traceback."""
    for name in ("torch", "onnx"):
        try:
            __import__(name)
        except ImportError:
            raise JistEdgeError("jist-edge export needs {} (host only): {}".format(name, INSTALL_HINT))
    from jist_edge.export import exporter

    return exporter


def _mib(path: str) -> str:
    return "{:.1f} MiB".format(os.path.getsize(path) / 1048576.0)


@click.command("export")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Official JIST checkpoint (.pth state_dict, e.g. JIST_r18_512_seqgem.pth).")
@click.option("--random-init", is_flag=True,
              help="Random weights instead of a checkpoint: for tests and demos, recognizes nothing.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random-init.")
@click.option("--img-size", type=(int, int), default=(480, 640), show_default=True, metavar="H W",
              help="Input height and width of the exported graphs.")
@click.option("--seq-len", type=int, default=5, show_default=True, help="Frames per sequence in sequence.onnx.")
@click.option("--opset", type=int, default=None,
              help="ONNX opset [default: 13, the newest TensorRT 8.2 on the Jetson Nano parses].")
@click.option("--gem-p", type=float, default=None, hidden=True, help="Override GeM p (random-init tests).")
@click.option("--seqgem-p", type=float, default=None, hidden=True, help="Override SeqGeM p (random-init tests).")
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Bundle folder [default: <workspace>/model].")
@click.option("--force", is_flag=True, help="Replace a different bundle already in the output folder.")
@click.option("--engine", type=click.Choice(["fp32", "fp16", "int8", "best"]), default=None,
              help="Also build a TensorRT engine of the encoder at this precision (only where TensorRT runs; "
                   "same as `jist-edge engine build` afterwards).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@workspace_option
def command(
    checkpoint: Optional[str],
    random_init: bool,
    seed: int,
    img_size: Tuple[int, int],
    seq_len: int,
    opset: Optional[int],
    gem_p: Optional[float],
    seqgem_p: Optional[float],
    output: Optional[str],
    force: bool,
    engine: Optional[str],
    as_json: bool,
    workspace_path: Optional[str],
) -> None:
    """Export a JIST checkpoint to encoder.onnx + sequence.onnx + manifest.json.

    \b
    encoder.onnx   frames    N x 3 x H x W     -> N x 512 frame descriptors
    sequence.onnx  sequences B x L x 3 x H x W -> B x 512 (SeqGeM inside)
    Parity with the torch model is checked before anything is written; the output
    folder is replaced atomically, and a different bundle only with --force.
    """
    if (checkpoint is None) == (not random_init):
        raise click.UsageError("give exactly one of --checkpoint PATH or --random-init")
    if (gem_p is not None or seqgem_p is not None) and not random_init:
        raise click.UsageError("--gem-p/--seqgem-p only apply to --random-init (a checkpoint has its own p)")
    out_dir = os.path.abspath(output or workspace.model_dir(workspace_path))
    if random_init:
        warn("--random-init: the weights are RANDOM. This bundle demonstrates the pipeline only; "
             "it does not recognize places. Use --checkpoint JIST_r18_512_seqgem.pth for real use.")
    if engine is not None:
        _check_engine_possible(engine)

    def progress(step: str, index: int, total: int) -> None:
        click.echo("[{}/{}] {} ... ({:.1f} s)".format(index, total, step, time.perf_counter() - started), err=True)

    with keeps_previous("export", out_dir, "bundle"):  # the lock on out_dir is export_bundle's
        exporter = _import_exporter()
        started = time.perf_counter()
        bundle = exporter.export_bundle(
            out_dir, checkpoint=checkpoint, random_init=random_init, seed=seed, img_size=img_size,
            seq_len=seq_len, opset=opset, force=force, gem_p=gem_p, seqgem_p=seqgem_p, progress=progress,
        )
    elapsed = time.perf_counter() - started
    _summary(bundle, elapsed, as_json)
    if engine is not None:
        from jist_edge.encoder.tensorrt import build as engine_build

        cache_dir = engine_build.cache_dir_for(None, workspace_path)
        path, header = engine_build.build(bundle, "encoder", engine, cache_dir=cache_dir,
                                          log=lambda m: click.echo(m, err=True))
        click.echo("engine: {} ({}, TensorRT {})".format(path, header["precision"], header.get("tensorrt")))


def _check_engine_possible(precision: str) -> None:
    """Fail before the export, not after it, when no engine can be built here."""
    from jist_edge.encoder.tensorrt import backend as tensorrt_backend

    if not tensorrt_backend.is_available():
        raise JistEdgeError("--engine needs TensorRT on this machine ({}); export here and run "
                            "`jist-edge engine build` on the device".format(tensorrt_backend.why_unavailable()))
    if precision == "int8":
        raise JistEdgeError("--engine int8 needs calibration data: use `jist-edge engine build --precision int8 "
                            "--calibration DIR|VIDEO`")


def _summary(bundle: Any, elapsed: float, as_json: bool) -> None:
    m = bundle.manifest
    parity = m.get("parity", {})
    if as_json:
        echo_json({
            "output": bundle.path, "bundle_id": bundle.bundle_id, "random_init": bundle.random_init,
            "files": m["files"], "parity": parity,
            "opset": m["opset"], "tools": m["tools"], "seconds": round(elapsed, 3),
            "input": [bundle.height, bundle.width], "seq_len": bundle.seq_len,
            "gem_p": bundle.gem_p, "seqgem_p": bundle.seqgem_p,
        })
        return
    click.echo("files:")
    echo_table(["file", "size", "sha256"], [
        [name, _mib(os.path.join(bundle.path, name)), rec["sha256"][:16]] for name, rec in sorted(m["files"].items())
    ])
    click.echo("parity (random inputs, max abs diff / min cosine):")
    rows = []  # type: List[List[Any]]
    for key in ("frames_torch_vs_onnx", "sequence_torch_vs_onnx", "stream_encoder_seqgem_vs_sequence_onnx"):
        if key in parity:
            rows.append([key, parity[key]["max_abs_diff"], "{:.7f}".format(parity[key]["min_cosine"])])
    echo_table(["check", "max_abs_diff", "min_cosine"], rows)
    click.echo("input {}x{}, L={}, GeM p={:.4f}, SeqGeM p={:.4f}, opset {} via {}".format(
        bundle.height, bundle.width, bundle.seq_len, bundle.gem_p, bundle.seqgem_p, m["opset"], m["tools"]["exporter"]))
    click.echo("bundle {}{} in {:.1f} s".format(bundle.bundle_id, " (RANDOM WEIGHTS)" if bundle.random_init else "", elapsed))
    click.echo("output: {}".format(bundle.path))
