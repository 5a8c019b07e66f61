"""`jist-edge demo`: the whole product on a synthetic route, on any machine, in one command."""
import os
import time
from typing import Any, Dict, List

import click
import numpy as np

from jist_edge import workspace
from jist_edge.cli.common import FiniteFloatRange, echo_table, warn, workspace_option
from jist_edge.cli.demo_filter import check_frames, filter_step, print_filter_step, synthesize_excursions
from jist_edge.cli.serve_option import DEMO_HELP, open_view, serve_option, serve_until_interrupted
from jist_edge.errors import JistEdgeError
from jist_edge.positions import POSITIVE_RADIUS_M
from jist_edge.claims import check_writable

RECALLS = (1, 5, 10)


def _step(n: int, total: int, text: str) -> float:
    click.secho("[{}/{}] {}".format(n, total, text), bold=True)
    return time.perf_counter()


def _done(t0: float, text: str = "") -> None:
    click.echo("      done in {:.1f} s{}".format(time.perf_counter() - t0, ("  " + text) if text else ""))


DEMO_MARKER = ".jist-edge-demo"


def claim_demo_folder(out: str, force: bool) -> str:
    """The demo replaces model/, map/ and route/ in its folder: never in a folder it did not make
    (e.g. --output pointing at the workspace, whose model and map are the user's real ones), and
    with --force only where each is a bundle, map and route jist-edge wrote. The rest stays."""
    from jist_edge.bundle import BUNDLE_OUTPUT
    from jist_edge.fileio import resolve_link, write_bytes_atomic
    from jist_edge.maps.store import MAP_OUTPUT
    from jist_edge.claims import OutputKind, claim_folder
    from jist_edge.synth.dataset import ROUTE_OUTPUT

    real = resolve_link(out, "--output")
    made_here = OutputKind("demo folder", DEMO_MARKER, lambda m: True, lambda m: []).read(real) is not None
    if os.path.isdir(real) and os.listdir(real) and not made_here and not force:
        raise JistEdgeError("--output {} is not empty and was not made by `jist-edge demo`; its model/, map/, "
                            "route/ and route-excursions/ would be replaced: choose another folder or pass "
                            "--force".format(out))
    for name, kind in (("route", ROUTE_OUTPUT), ("route-excursions", ROUTE_OUTPUT), ("model", BUNDLE_OUTPUT),
                       ("map", MAP_OUTPUT)):
        claim_folder(os.path.join(real, name), kind, True, option="--output")
    write_bytes_atomic(os.path.join(real, DEMO_MARKER), b"made by jist-edge demo\n")
    return real


@click.command("demo")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Folder for the demo's route, model and map [default: <workspace>/demo].")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Use real JIST weights (e.g. JIST_r18_512_seqgem.pth) instead of random ones.")
@click.option("--frames", default=240, show_default=True, type=click.IntRange(20),
              help="Database frames of the synthetic route.")
@click.option("--img-size", nargs=2, type=int, default=(240, 320), show_default=True,
              help="Model input H W (the paper uses 480 640; smaller keeps the CPU demo quick).")
@click.option("--seq-len", default=5, show_default=True, type=click.IntRange(1), help="Frames per sequence (L).")
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", "onnxruntime", "tensorrt"]), help="Encoder backend.")
@click.option("--seed", default=0, show_default=True, help="Seed of the route and of random weights.")
@click.option("--threshold", default=POSITIVE_RADIUS_M, show_default=True, type=FiniteFloatRange(min=0, min_open=True),
              help="Positive distance in metres.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the summary as JSON.")
@click.option("--train", "train_minutes", is_flag=False, flag_value=2.0, default=None,
              type=FiniteFloatRange(min=0, min_open=True), metavar="[MINUTES]",
              help="Train the weights first (JIST's losses, head only) on synthetic drives of two other seeds, "
              "for MINUTES [2], so recall is that of trained weights.")
@click.option("--force", is_flag=True, help="Use an --output folder that a demo did not make (its model/, map/, "
              "route/ are replaced where they are ones jist-edge wrote; anything else there stays).")
@serve_option(DEMO_HELP)
@workspace_option
def command(output, checkpoint, frames, img_size, seq_len, backend, seed, threshold, json_path, train_minutes, force,
            serve, workspace_path):
    """Synthesize a route, export a model, build a map, run the live pipeline, report.

    With no arguments this runs anywhere: random weights demonstrate the pipeline
    (every stage, real files, real speed), not recognition quality; pass
    --checkpoint for the official weights. The query pass is streamed through the
    same runtime as `jist-edge run --video`, as if it came from a camera.
    """
    from jist_edge.locks import output_lock

    check_frames(frames, seed)  # before minutes of export and rendering
    try:
        from jist_edge.export.exporter import export_bundle
    except ImportError as exc:
        raise JistEdgeError("the demo exports a model and needs torch: pip install torch==2.13.0 "
                            "'jist-edge[export]' ({})".format(exc))
    if json_path:
        json_path = check_writable(json_path, "--json")  # refused now, not after the demo
    out = os.path.abspath(output or os.path.join(workspace.workspace_dir(workspace_path), "demo"))
    view = open_view(serve, click.echo, note="  (open it now: the query run plays there in step 4)")
    if view is not None:
        click.get_current_context().call_on_close(view.close)
    with output_lock(out, "demo folder"):
        _demo(claim_demo_folder(out, force), export_bundle, checkpoint, frames, img_size, seq_len, backend, seed,
              threshold, json_path, view, train_minutes)
    if view is not None:  # the folder's lock is released: serving goes on without it
        serve_until_interrupted(view, "the demo's query run has ended", click.echo)


def _demo(out: str, export_bundle, checkpoint, frames, img_size, seq_len, backend, seed, threshold, json_path,
          view: Any = None, train_minutes: Any = None) -> None:
    from jist_edge.fileio import write_json_atomic

    if train_minutes is not None and checkpoint is not None:
        raise JistEdgeError("--train trains from random weights; it does not combine with --checkpoint")
    data, query_frames, excursions = _synthesize(out, frames, img_size, seed)
    trained = None
    if train_minutes is not None:
        from jist_edge.cli.demo_train import train_weights

        t = _step("1b", STEPS, "training the weights for {:g} min on synthetic drives of other seeds".format(
            train_minutes))
        trained = train_weights(out, img_size, seq_len, seed, train_minutes)
        checkpoint = trained["checkpoint"]
        _done(t)
    summary = {"output": out, "random_init": checkpoint is None, "trained": trained}  # type: Dict[str, Any]
    t = _step(2, STEPS, "exporting the model ({})".format(
        ("TRAINED weights " if trained else "checkpoint ") + checkpoint if checkpoint
        else "RANDOM weights, seed {}".format(seed)))
    if checkpoint is None:
        warn("random weights demonstrate the pipeline and its speed, not recognition quality; "
             "pass --checkpoint JIST_r18_512_seqgem.pth for real recall, or --train")
    bundle = export_bundle(os.path.join(out, "model"), checkpoint=checkpoint, random_init=checkpoint is None,
                           seed=seed, img_size=img_size, seq_len=seq_len, force=True)
    _done(t, "bundle {}".format(bundle.bundle_id))
    place_map = _build_map(bundle, data, out, seq_len)
    streamed, run, encoder, encoder_frames = _stream_queries(bundle, place_map, data["queries"], query_frames, backend,
                                                             view)
    scores = _score(place_map, streamed, data["queries_positions"], threshold)
    t = _step(6, STEPS, "route filter: raw vs filtered, on the query pass and on a pass that leaves the map")
    filtered = filter_step(bundle, place_map, streamed, streamed.pop("setup"), data, excursions, threshold, out)
    _done(t)

    summary.update({"bundle_id": bundle.bundle_id, "img_size": list(img_size), "seq_len": seq_len,
                    "map_sequences": place_map.count, "encoder": encoder, "run": run,
                    "recall": {m: {"recall": r, "evaluated": scores["evaluated"],
                                   "without_positive": scores["without_positive"]}
                               for m, r in scores["recall"].items()},
                    "top1_agreement_hnsw_exact": scores["top1_agreement_hnsw_exact"],
                    "encoder_frames": encoder_frames})
    _print_report(summary, len(streamed["windows"]), checkpoint is None)
    summary["filter"] = print_filter_step(filtered)
    click.echo("\nFiles: {}   Next: jist-edge run --model {} --map {} --video {}".format(
        out, bundle.path, place_map.path, data["queries"]))
    if json_path:
        write_json_atomic(json_path, summary)
        click.echo("summary JSON: {}".format(json_path))


STEPS = 6


def _synthesize(out: str, frames: int, img_size: Any, seed: int):
    from jist_edge.stream.sources import open_source
    from jist_edge.synth import make_route_dataset

    t = _step(1, STEPS, "synthesizing a street route: a database pass and a query pass (MJPG videos + positions)")
    data = make_route_dataset(os.path.join(out, "route"), frames=frames, size=tuple(img_size), seed=seed,
                              as_video=True)
    excursions = synthesize_excursions(out, frames, img_size, seed)
    with open_source(data["queries"]) as probe:
        query_frames = probe.frame_count
    _done(t, "{} database frames, {} query frames; a second query pass with a detour and kidnaps".format(
        frames, query_frames))
    return data, query_frames, excursions


def _build_map(bundle: Any, data: Dict[str, Any], out: str, seq_len: int) -> Any:
    from jist_edge.maps.build import build_map

    t = _step(3, STEPS, "building the map from the database pass")
    place_map = build_map(bundle, data["database"], os.path.join(out, "map"), seq_len=seq_len,
                          positions=data["database_positions"], force=True)
    _done(t, "{} sequences".format(place_map.count))
    return place_map


def _stream_queries(bundle: Any, place_map: Any, queries: str, query_frames: int, backend: str, view: Any = None):
    """The query pass through the live runtime: per full window its frames, ids and descriptor (and each
    result to the live view, with --serve)."""
    from jist_edge.pipeline.localizer import Localizer
    from jist_edge.pipeline.recording import record_stream

    t = _step(4, STEPS, "streaming the query pass through the live pipeline")
    loc = Localizer(bundle, place_map, backend=backend, top_k=max(RECALLS))  # build_map returned it verified
    if view is not None:
        view.set_map(place_map, dict(loc.describe(), source=queries, random_init=bundle.random_init))
    try:
        with click.progressbar(length=query_frames, label="      frames", show_pos=True) as bar:
            def shown(result: Any) -> None:
                if view is not None:
                    view(result, loc.last_image)
                bar.update(1)

            streamed, run = record_stream(loc, queries, shown)
        encoder = loc.encoder.describe()
        encoder_frames = loc.encoder.frames
    finally:
        loc.close()
    _done(t, "{} frames, {} FPS".format(run["frames"], run["fps"]))
    return streamed, run, encoder, encoder_frames


def _score(place_map: Any, streamed: Dict[str, List[Any]], positions_csv: str, threshold: float) -> Dict[str, Any]:
    from jist_edge.evaluation.recall import score_stream
    from jist_edge.positions import read_positions_csv

    t = _step(5, STEPS, "scoring recall like the paper (positive: any frame within {:g} m)".format(threshold))
    scores = score_stream(place_map, streamed["windows"], np.array(streamed["ids"]),
                          np.stack(streamed["descriptors"]), read_positions_csv(positions_csv), threshold, RECALLS)
    _done(t)
    return scores


def _print_report(summary: Dict[str, Any], windows: int, random_init: bool) -> None:
    run, encoder = summary["run"], summary["encoder"]
    click.echo("")
    click.secho("Recall on the query pass ({} full windows; L={})".format(windows, summary["seq_len"]), bold=True)
    echo_table(["search"] + ["R@{}".format(n) for n in RECALLS],
               [[name] + [r["recall"][str(n)] for n in RECALLS] for name, r in summary["recall"].items()])
    click.echo("hnswlib vs exact top-1 agreement: {:.1%}".format(summary["top1_agreement_hnsw_exact"]))
    click.echo("")
    click.secho("Speed ({} encoder, {}x{}): {} FPS end to end over {} frames, each encoded once ({} encoder frames)"
                .format(encoder["backend"], summary["img_size"][0], summary["img_size"][1], run["fps"],
                        run["frames"], summary["encoder_frames"]), bold=True)
    echo_table(["stage", "p50 ms", "p95 ms"], [(k, v["p50"], v["p95"]) for k, v in run["latency_ms"].items()])
    if random_init:
        click.echo("\nRandom weights: recall shows the pipeline works end to end, not what JIST achieves "
                   "(the paper reports R@1 90.6 on MSLS with the official checkpoint).")
