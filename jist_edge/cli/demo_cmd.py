"""`jist-edge demo`: the whole product on a synthetic route, on any machine, in one command."""
import os
import time
from typing import Any, Dict, List

import click
import numpy as np

from jist_edge import workspace
from jist_edge.cli.common import FiniteFloatRange, echo_table, warn, workspace_option
from jist_edge.errors import JistEdgeError

RECALLS = (1, 5, 10)


def _step(n: int, total: int, text: str) -> float:
    click.secho("[{}/{}] {}".format(n, total, text), bold=True)
    return time.perf_counter()


def _done(t0: float, text: str = "") -> None:
    click.echo("      done in {:.1f} s{}".format(time.perf_counter() - t0, ("  " + text) if text else ""))


def live_recall(results_ids: np.ndarray, positives: List[np.ndarray], valid: np.ndarray,
                place_map: Any) -> Dict[str, Any]:
    """Recall@N of the streamed windows against evaluate.query_positives' ground truth."""
    from jist_edge.maps.evaluate import recall_at

    recall = recall_at(results_ids, positives, place_map.sequence_frames, valid, RECALLS)
    return {"recall": recall, "evaluated": int(valid.sum()), "without_positive": int((~valid).sum())}


DEMO_MARKER = ".jist-edge-demo"


def claim_demo_folder(out: str, force: bool) -> None:
    """The demo replaces model/, map/ and route/ in its folder: never in a folder it did not make
    (e.g. --output pointing at the workspace, whose model and map are the user's real ones)."""
    from jist_edge.fileio import write_bytes_atomic

    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(os.path.join(out, DEMO_MARKER)) and not force:
        raise JistEdgeError("--output {} is not empty and was not made by `jist-edge demo`; its model/, map/ and "
                            "route/ would be replaced: choose another folder or pass --force".format(out))
    write_bytes_atomic(os.path.join(out, DEMO_MARKER), b"made by jist-edge demo\n")


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
@click.option("--threshold", default=25.0, show_default=True, type=FiniteFloatRange(min=0, min_open=True),
              help="Positive distance in metres.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the summary as JSON.")
@click.option("--force", is_flag=True, help="Use an --output folder that a demo did not make (its model/, map/, "
              "route/ are replaced).")
@workspace_option
def command(output, checkpoint, frames, img_size, seq_len, backend, seed, threshold, json_path, force, workspace_path):
    """Synthesize a route, export a model, build a map, run the live pipeline, report.

    With no arguments this runs anywhere: random weights demonstrate the pipeline
    (every stage, real files, real speed), not recognition quality; pass
    --checkpoint for the official weights. The query pass is streamed through the
    same runtime as `jist-edge run --video`, as if it came from a camera.
    """
    from jist_edge.fileio import write_json_atomic
    from jist_edge.maps.evaluate import query_positives
    from jist_edge.pipeline.localizer import Localizer
    from jist_edge.maps.build import build_map
    from jist_edge.pipeline.matcher import Matcher
    from jist_edge.maps.positions import read_positions_csv
    from jist_edge.pipeline.stats import RunStats
    from jist_edge.stream.sources import open_source
    from jist_edge.synth.traversal import make_route_dataset

    try:
        from jist_edge.export.exporter import export_bundle
    except ImportError as exc:
        raise JistEdgeError("the demo exports a model and needs torch: pip install torch==2.13.0 "
                            "'jist-edge[export]' ({})".format(exc))
    out = os.path.abspath(output or os.path.join(workspace.workspace_dir(workspace_path), "demo"))
    claim_demo_folder(out, force)
    total = 5
    summary = {"output": out, "random_init": checkpoint is None}  # type: Dict[str, Any]

    t = _step(1, total, "synthesizing a street route: a database pass and a query pass (MJPG videos + positions)")
    data = make_route_dataset(os.path.join(out, "route"), frames=frames, size=tuple(img_size), seed=seed,
                              as_video=True)
    with open_source(data["queries"]) as probe:
        query_frames = probe.frame_count
    _done(t, "{} database frames, {} query frames".format(frames, query_frames))

    t = _step(2, total, "exporting the model ({})".format(
        "checkpoint " + checkpoint if checkpoint else "RANDOM weights, seed {}".format(seed)))
    if checkpoint is None:
        warn("random weights demonstrate the pipeline and its speed, not recognition quality; "
             "pass --checkpoint JIST_r18_512_seqgem.pth for real recall")
    bundle = export_bundle(os.path.join(out, "model"), checkpoint=checkpoint, random_init=checkpoint is None,
                           seed=seed, img_size=img_size, seq_len=seq_len, force=True)
    _done(t, "bundle {}".format(bundle.bundle_id))

    t = _step(3, total, "building the map from the database pass")
    place_map = build_map(bundle, data["database"], os.path.join(out, "map"), seq_len=seq_len,
                          positions=data["database_positions"], force=True)
    _done(t, "{} sequences".format(place_map.count))

    t = _step(4, total, "streaming the query pass through the live pipeline")
    loc = Localizer(bundle, place_map, backend=backend, top_k=max(RECALLS))  # build_map returned it verified
    stats = RunStats()
    ids, rows, emitted = [], [], []  # type: List[Any], List[List[int]], List[int]
    descs = []
    with click.progressbar(length=query_frames, label="      frames", show_pos=True) as bar:
        for result in loc.stream(data["queries"]):
            stats(result)
            emitted.append(result.frame_index)
            if not result.partial:
                ids.append([m.seq_id for m in result.matches])
                rows.append(emitted[-seq_len:])
                descs.append(result.descriptor)
            bar.update(1)
    run = stats.summary()
    _done(t, "{} frames, {} FPS".format(run["frames"], run["fps"]))

    t = _step(5, total, "scoring recall like the paper (positive: any frame within {:g} m)".format(threshold))
    table = read_positions_csv(data["queries_positions"])
    index_of = {idx: row for row, idx in enumerate(sorted(set(emitted)))}
    q_pos = np.full((len(index_of), 2), np.nan)
    for idx, row in index_of.items():
        if idx in table:
            q_pos[row] = table[idx]
    q_rows = np.array([[index_of[i] for i in r] for r in rows], dtype=np.int64)
    positives, valid = query_positives(q_pos, q_rows, place_map.frames.positions, threshold)
    results = {"hnsw": live_recall(np.array(ids), positives, valid, place_map)}
    exact = Matcher(place_map, exact=True)
    exact_ids, _ = exact.query(np.stack(descs), k=len(ids[0]))
    results["exact"] = live_recall(exact_ids, positives, valid, place_map)
    agreement = float((exact_ids[:, 0] == np.array(ids)[:, 0]).mean())
    _done(t)
    loc.close()

    summary.update({"bundle_id": bundle.bundle_id, "img_size": list(img_size), "seq_len": seq_len,
                    "map_sequences": place_map.count, "encoder": loc.encoder.describe(), "run": run,
                    "recall": results, "top1_agreement_hnsw_exact": round(agreement, 4),
                    "encoder_frames": loc.encoder.frames})
    click.echo("")
    click.secho("Recall on the query pass ({} full windows; L={})".format(len(ids), seq_len), bold=True)
    echo_table(["search"] + ["R@{}".format(n) for n in RECALLS],
               [[name] + [r["recall"][str(n)] for n in RECALLS] for name, r in results.items()])
    click.echo("hnswlib vs exact top-1 agreement: {:.1%}".format(agreement))
    click.echo("")
    click.secho("Speed ({} encoder, {}x{}): {} FPS end to end over {} frames, each encoded once ({} encoder frames)"
                .format(summary["encoder"]["backend"], img_size[0], img_size[1], run["fps"], run["frames"],
                        loc.encoder.frames), bold=True)
    echo_table(["stage", "p50 ms", "p95 ms"], [(k, v["p50"], v["p95"]) for k, v in run["latency_ms"].items()])
    if checkpoint is None:
        click.echo("\nRandom weights: recall shows the pipeline works end to end, not what JIST achieves "
                   "(the paper reports R@1 90.6 on MSLS with the official checkpoint).")
    click.echo("\nFiles: {}   Next: jist-edge run --model {} --map {} --video {}".format(
        out, bundle.path, place_map.path, data["queries"]))
    if json_path:
        write_json_atomic(json_path, summary)
        click.echo("summary JSON: {}".format(json_path))
