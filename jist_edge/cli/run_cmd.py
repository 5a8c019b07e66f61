"""`jist-edge run`: live localization from a camera, stream, video or image folder."""
import os
import sys
from typing import Any, Callable, Dict, Optional

import click

from jist_edge import workspace
from jist_edge.cli.common import check_route_path, echo_table, model_path, workspace_option
from jist_edge.cli.serve_option import RUN_HELP, open_view, serve_option
from jist_edge.errors import JistEdgeError
from jist_edge.output.fanout import OutputFailed, Sinks
from jist_edge.stream.events import SourceOutage


def resolve_model_and_map(model: Optional[str], map_dir: Optional[str], ws: Optional[str]):
    """Default to the workspace and say which command makes what is missing."""
    model = model_path(model, ws)
    map_dir = map_dir or workspace.map_dir(ws)
    if not os.path.isdir(map_dir):
        raise JistEdgeError(
            "no map at {}: run `jist-edge map build --video route.mp4 [--positions route.csv]` "
            "(or pass --map)".format(map_dir))
    return model, map_dir


def print_summary(summary: Dict[str, Any], info: Dict[str, Any], echo) -> None:
    echo("")
    echo("Run summary ({} on {} encoder, map {} sequences, L={})".format(
        info.get("matcher"), info.get("backend"), info.get("map_sequences"), info.get("seq_len")))
    echo("  frames {}  ({} partial windows)  in {:.1f} s  ->  {} FPS".format(
        summary["frames"], summary["partial"], summary["seconds"], summary["fps"]))
    echo("  dropped {}  skipped {}  distinct places matched {}".format(
        summary["dropped"], summary["skipped"], summary["distinct_places_matched"]))
    source = summary.get("source") or {}
    if source.get("outages") or source.get("reconnects") or source.get("repeated") or source.get("blind"):
        echo("  camera: {} outage{} ({:.1f} s without frames), {} reconnect{}, {} repeated image{}, "
             "{} blind frame{}".format(
                 source["outages"], "" if source["outages"] == 1 else "s", source["outage_s"], source["reconnects"],
                 "" if source["reconnects"] == 1 else "s", source["repeated"], "" if source["repeated"] == 1 else "s",
                 source["blind"], "" if source["blind"] == 1 else "s"))
    rows = [(stage, v["p50"], v["p95"]) for stage, v in summary["latency_ms"].items()]
    echo_table(["stage", "p50 ms", "p95 ms"], rows, out=echo)


@click.command("run")
@click.option("--model", type=click.Path(), default=None, help="Model bundle [default: <workspace>/model].")
@click.option("--map", "map_dir", type=click.Path(), default=None, help="Map folder [default: <workspace>/map].")
@click.option("--camera", default=None, metavar="URI",
              help="Camera or stream: 0, /dev/video0, csi://0, rtsp://host/path.")
@click.option("--video", type=click.Path(), default=None, help="A video file.")
@click.option("--images", type=click.Path(), default=None, help="A folder of images (ordered by name).")
@click.option("--bag", type=click.Path(), default=None,
              help="A ROS bag (.bag, .mcap, ROS 2 bag folder; pip install 'jist-edge[bags]'): replayed as fast as "
                   "it can, or at the recorded rate with --realtime.")
@click.option("--image-topic", default=None, help="--bag: the image topic [default: the bag's only one].")
@click.option("--output-bag", type=click.Path(dir_okay=False), default=None,
              help="Also write the poses with covariance, fixes and status as ROS 2 messages to this .mcap file.")
@click.option("--top-k", default=1, show_default=True, type=click.IntRange(1, 100), help="Matches per frame.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Write one JSON line per frame here [default: stdout when it is not a terminal].")
@click.option("--display", is_flag=True, help="Show frames with the match and latency drawn on them.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Stop after this many results.")
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", "onnxruntime", "tensorrt"]), help="Encoder backend.")
@click.option("--precision", default="auto", show_default=True,
              type=click.Choice(["auto", "fp32", "fp16", "int8", "best"]),
              help="Encoder precision. auto: FP16 engine on TensorRT, FP32 on ONNX Runtime. int8: a TensorRT "
                   "INT8 engine, or on ONNX Runtime the CPU INT8 model `jist-edge calibrate` makes. best: the "
                   "fastest that passed its checks (ONNX Runtime: INT8 if calibrated and its fidelity gate passed).")
@click.option("--no-build", is_flag=True, help="TensorRT: refuse a missing or stale engine instead of rebuilding it.")
@click.option("--ef", type=click.IntRange(1), default=None, help="hnswlib search ef [default: 64].")
@click.option("--exact", is_flag=True, help="Exact squared-L2 search instead of hnswlib.")
@click.option("--realtime", is_flag=True, help="Pace files at their frame rate and drop frames like a camera.")
@click.option("--max-retries", default=None, type=click.IntRange(0),
              help="Reopen attempts per outage of a live source [default: reopen for as long as the run lasts].")
@click.option("--max-outage", "max_outage", default=None, type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="End the run (exit 1, summary printed) when a live source is gone longer than this "
                   "[default: wait for it].")
@click.option("--width", type=int, default=None, help="Camera capture width (csi:// and V4L2).")
@click.option("--height", type=int, default=None, help="Camera capture height.")
@click.option("--fps", type=int, default=None, help="Camera frame rate.")
@click.option("--flip", type=int, default=None, help="CSI flip-method (0-7).")
@click.option("--full-frame", is_flag=True,
              help="csi://: hand over full-size frames (e.g. for --display) instead of letting nvvidconv "
                   "scale them to the model's input size in hardware.")
@click.option("--no-filter", "no_filter", is_flag=True,
              help="Raw matches only: no route filter and no \"estimate\" in the JSON lines.")
@click.option("--quiet", is_flag=True, help="No status line and no summary.")
@serve_option(RUN_HELP)
@workspace_option
def command(model, map_dir, camera, video, images, bag, image_topic, output_bag, top_k, output, display, max_frames,
            backend, precision, no_build, ef, exact, realtime, max_retries, max_outage, width, height, fps, flip,
            full_frame, no_filter, quiet, serve, workspace_path):
    """Localize every frame of a camera, stream, video or image folder against a map.

    One JSON line per frame (match, position, per-stage latency, drops) goes to
    --output, or to stdout when stdout is not a terminal; on a terminal a live status
    line shows FPS, latency and the current match. Ctrl-C stops cleanly with a summary.
    """
    from jist_edge.pipeline.localizer import Localizer
    from jist_edge.pipeline.stats import RunStats

    from jist_edge.cli.bag_cmd import check_bag_options, open_output_bag
    from jist_edge.stream.uri import redact_url

    source, uri = check_bag_options(bag, image_topic, output_bag, no_filter, camera, video, images)
    if source is None:
        uri = source = source_uri(camera, video, images)
    if sys.stdout is None and output is None and output_bag is None:  # `run >&-`
        raise JistEdgeError("stdout is closed and no --output was given: the results would go nowhere")
    shown = redact_url(uri)  # credentials never in a message, a JSON line or the live view
    model, map_dir = resolve_model_and_map(model, map_dir, workspace_path)
    loc = Localizer.open(model, map_dir, backend=backend, top_k=top_k, ef=ef, exact=exact, precision=precision,
                         no_build=no_build, cache_dir=workspace.engine_dir(workspace_path), route_filter=not no_filter)
    info = loc.describe()
    json_to_stdout = output is None and not sys.stdout.isatty()
    log = (lambda msg: click.echo(msg, err=True)) if json_to_stdout or sys.stdout is None else click.echo
    if not quiet:
        print_banner(loc, info, shown, map_dir, log)
    stats = RunStats()
    sinks = view = None
    failed = None  # type: Optional[OutputFailed]
    bag_out, completed = None, False  # type: Any, bool
    try:
        bag_out = open_output_bag(output_bag, loc) if output_bag else None
        view = open_view(serve, log, loc.place_map, dict(info, source=shown, random_init=loc.bundle.random_init))
        sinks = Sinks(output, json_to_stdout, display, quiet, log, view)
        source_opts = dict(max_retries=max_retries, width=width, height=height, fps=fps, flip=flip)
        if full_frame:
            source_opts["scale_to"] = None
        if bag:
            source_opts = {}  # a FrameSource takes no URI options
        try:
            for result in loc.stream(source, realtime=realtime, max_frames=max_frames, on_event=sinks.event,
                                     max_outage_s=max_outage, **source_opts):
                stats(result)
                if bag_out is not None:
                    bag_out(result)
                if not sinks(result, loc.last_image):
                    break
        except KeyboardInterrupt:
            log("\ninterrupted: stopping")
        except (OutputFailed, SourceOutage) as exc:  # disk full, camera gone too long: stop, keep the summary
            failed = exc
        completed = True
    finally:
        if bag_out is not None and completed and failed is None and stats.frames:
            bag_out.close()  # written only by a run that produced results
        elif bag_out is not None:
            bag_out.abort()  # an existing OUT stays as it was
        if sinks is not None:
            failed = sinks.close() or failed
        if view is not None:
            view.close()
        loc.close()
    stats.skipped = loc.frames_skipped  # includes frames skipped after the last result
    if stats.frames == 0:
        raise JistEdgeError("no usable frame came from {} ({} skipped as unreadable){}".format(
            shown, stats.skipped, "; {} was left as it was".format(output) if output else ""))
    summary = stats.summary()
    summary["source"] = loc.source_counts()
    if not quiet:
        print_summary(summary, info, log)
    if failed is not None:
        raise JistEdgeError("{}; the run stopped after {} frame{}".format(
            failed, stats.frames, "" if stats.frames == 1 else "s"))


def print_banner(loc: Any, info: Dict[str, Any], shown: str, map_dir: str, log: Callable[[str], None]) -> None:
    """What runs on what, and what the user must know before trusting the numbers."""
    log("jist-edge run: {} encoder{} on {}, map {} ({} sequences){}".format(
        info["backend"], " ({})".format(info["precision"]) if info.get("precision") else "", shown, map_dir,
        info["map_sequences"], "  [RANDOM WEIGHTS: pipeline demo only]" if loc.bundle.random_init else ""))
    if info.get("precision_note"):
        log("  " + info["precision_note"])
    if loc.tracker is not None and not loc.tracker.filter.has_positions:
        log("route filter: the map has no positions; estimates are place indices without a position")


def source_uri(camera: Optional[str], video: Optional[str], images: Optional[str]) -> str:
    """The one source given as --camera, --video or --images; files and folders must exist as such."""
    given = [(name, v) for name, v in (("--camera", camera), ("--video", video), ("--images", images)) if v is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --camera, --video, --images")
    option, uri = given[0][0], str(given[0][1])
    if option != "--camera":
        check_route_path(option, uri)
    return uri
