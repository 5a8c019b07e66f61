"""`jist-edge bench`: latency, FPS and memory per stage, matching vs map size, paper claims.

The benchmark code lives in jist_edge.benchmarks (host side); it is imported only
when the command runs.
"""
import os
from typing import Optional, Sequence, Tuple

import click

from jist_edge import workspace
from jist_edge.cli.common import workspace_option
from jist_edge.claims import OutputKind, check_writable, claim_entries


def _report_kind() -> OutputKind:
    """A bench report folder: its bench.json says so; README.md, bench.json and the plots are ours."""
    from jist_edge.benchmarks.report import PLOTS

    return OutputKind("bench report", "bench.json", lambda m: str(m.get("schema", "")).startswith("jist-edge-bench"),
                      lambda m: ["README.md", "bench.json"] + list(PLOTS))


@click.command("bench")
@click.option("--model", type=click.Path(file_okay=False), default=None,
              help="Model bundle to time [default: export a random-init one; weights do not change speed].")
@click.option("--map", "map_dir", type=click.Path(file_okay=False), default=None,
              help="Map folder for the per-stage run (must belong to --model) [default: synthesize one].")
@click.option("--backend", "backends", multiple=True,
              help="Encoder backend(s) to time: onnxruntime, tensorrt, torch-cpu-fp32, torch-cuda-fp16, ... "
                   "Repeatable [default: every one available]. The first one runs the streaming sections.")
@click.option("--img-size", type=(int, int), default=None, metavar="H W",
              help="Input size of the exported model when no --model is given [default: 480 640; quick: 120 160].")
@click.option("--quick", is_flag=True, help="Tiny sizes and few runs (about a minute): checks the bench works.")
@click.option("--max-places", type=click.IntRange(1000), default=None,
              help="Run the index-kinds table (memory, p50/p95, agreement per kind) up to this many places "
                   "[default: 100000; quick: 5000]. A 1,000,000-place build takes tens of minutes on 2 cores; "
                   "built indexes are kept in <workspace>/bench-cache/matching for later runs.")
@click.option("--large", is_flag=True, help="Same as --max-places 1000000.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write every figure plus the machine to this JSON file.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write README.md, bench.json and PNG plots to this folder.")
@workspace_option
def command(model: Optional[str], map_dir: Optional[str], backends: Sequence[str], img_size: Optional[Tuple[int, int]],
            quick: bool, max_places: Optional[int], large: bool, json_path: Optional[str], report_dir: Optional[str],
            workspace_path: Optional[str]) -> None:
    """Measure the pipeline on this machine and set it beside the paper's claims.

    \b
    Sections: encoder latency per backend and input size; streaming vs re-encoding
    windows (L = 3, 5, 10); sequence length at test time; matching time vs map size
    (hnswlib at several ef vs exact, 512-D vs 4096-D) and per index kind; encoder
    precision (FP32 vs CPU INT8); the route filter's cost; per-stage latency, FPS and
    peak memory of the runtime on an MJPG video; the live view's cost; a memory soak;
    a paper-claims table.
    Absolute times hold only for this machine; ratios are interleaved and come with
    their spread.

    \b
      jist-edge bench --quick                 # smoke test, about a minute
      jist-edge bench --report bench-report   # full run (about 30 minutes on 2 cores, 24 of them the 5,000-frame soak)
    """
    from jist_edge.benchmarks import report, runner

    if map_dir and not model:
        raise click.UsageError("--map needs the --model it was built with")
    if img_size is not None and model:
        raise click.UsageError("--img-size applies to the exported random-init model; --model has its own size")
    if img_size is not None and (img_size[0] < 32 or img_size[1] < 32):
        raise click.BadParameter("height and width must be at least 32", param_hint="--img-size")
    # Everything that can be refused is refused now, not after minutes of timing.
    if map_dir:
        from jist_edge.bundle import load_bundle
        from jist_edge.maps.store import load_map

        load_map(map_dir, bundle=load_bundle(model))
    if json_path:
        json_path = check_writable(json_path, "--json")
    if report_dir:  # a README.md (or plot) of someone else's in that folder is never replaced
        kind = _report_kind()
        report_dir = claim_entries(report_dir, list(kind.entries({})), kind, "--report")
    cfg = runner.settings(quick=quick, large=large, img_size=img_size, max_places=max_places)
    cache = os.path.join(workspace.workspace_dir(workspace_path), "bench-cache")
    result = runner.run_bench(cfg, cache, model=model, map_dir=map_dir, backends=list(backends) or None,
                              log=lambda line: click.echo(line, err=True))
    click.echo("")
    report.terminal_summary(result, click.echo)
    if json_path:
        report.write_json(result, json_path)
        click.echo("JSON written to {}".format(json_path))
    if report_dir:
        written = report.write_report(result, report_dir)
        click.echo("report written to {}{}".format(written["markdown"],
                                                   " ({})".format(written["plot_note"]) if written["plot_note"] else ""))
    click.echo("bench took {:.0f} s".format(result["durations_s"]["total"]))
