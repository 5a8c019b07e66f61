"""`jist-edge map build` and `jist-edge map info`."""
import os
import time
from typing import Any, Dict, Optional

import click

from jist_edge import workspace
from jist_edge.cli.common import (FrameProgress, check_route_path, echo_json, echo_table, keeps_previous, model_path,
                                  warn, workspace_option)
from jist_edge.maps.store import DEFAULT_EF_CONSTRUCTION, DEFAULT_M


@click.group("map")
def command() -> None:
    """Build and inspect maps: the place database a robot localizes against."""


@command.command("build")
@click.option("--model", type=click.Path(), default=None, help="Model bundle [default: <workspace>/model].")
@click.option("--images", type=click.Path(), default=None, help="Route as a folder of images (ordered by name).")
@click.option("--video", type=click.Path(), default=None, help="Route as a video file.")
@click.option("--from-map", "from_map", type=click.Path(), default=None,
              help="Reuse the frame descriptors of an existing map (another --seq-len; no re-encoding).")
@click.option("--positions", type=click.Path(dir_okay=False), default=None,
              help="CSV frame,easting,northing or frame,lat,lon [default: from @easting@northing@ file names].")
@click.option("--stride", default=1, show_default=True, type=click.IntRange(1), help="Use every N-th frame.")
@click.option("--seq-len", type=click.IntRange(1), default=None, help="Frames per sequence L [default: the bundle's].")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1), help="Frames per encoder call.")
@click.option("--fp16", is_flag=True, help="Store sequence descriptors as float16 (half the size).")
@click.option("--M", "M", default=DEFAULT_M, show_default=True, type=click.IntRange(2), help="hnswlib graph degree.")
@click.option("--ef-construction", default=DEFAULT_EF_CONSTRUCTION, show_default=True, type=click.IntRange(1), help="hnswlib build ef.")
@click.option("--backend", default="auto", show_default=True, type=click.Choice(["auto", "onnxruntime", "tensorrt"]),
              help="Encoder backend.")
@click.option("--output", type=click.Path(file_okay=False), default=None, help="Map folder [default: <workspace>/map].")
@click.option("--force", is_flag=True, help="Replace an existing map folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@workspace_option
def build(model, images, video, from_map, positions, stride, seq_len, batch_size, fp16, M, ef_construction, backend,
          output, force, quiet, workspace_path):
    """Encode a route once, pool windows of L frames with SeqGeM, and index them.

    \b
    Examples:
      jist-edge map build --video route.avi --positions route.csv
      jist-edge map build --images db_images/ --output maps/city
      jist-edge map build --from-map maps/city --seq-len 10 --output maps/city-L10
    """
    from jist_edge.locks import output_lock

    given = [(n, v) for n, v in (("--images", images), ("--video", video), ("--from-map", from_map)) if v is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --images, --video, --from-map")
    option, route_path = given[0]
    check_route_path(option, route_path)
    if option == "--from-map" and (positions or stride != 1):
        raise click.UsageError("--positions and --stride do not apply to --from-map (its frames are fixed)")
    output = output or workspace.map_dir(workspace_path)
    # one writer per map folder, from the first check to the swap; Ctrl-C says what was kept
    with output_lock(output, "map output"), keeps_previous("map build", output, "map"):
        _build(model, option, route_path, positions, stride, seq_len, batch_size, fp16, M, ef_construction, backend,
               output, force, quiet, workspace_path)


def _build(model, option, route_path, positions, stride, seq_len, batch_size, fp16, M, ef_construction, backend,
           output, force, quiet, workspace_path) -> None:
    from jist_edge.backends import create_encoder
    from jist_edge.bundle import load_bundle
    from jist_edge.maps.store import refuse_overwrite
    from jist_edge.maps.build import encode_route, rebuild_map, write_route_map

    bundle = load_bundle(model_path(model, workspace_path))
    start = time.time()
    if option == "--from-map":
        place_map = rebuild_map(bundle, route_path, output, seq_len=seq_len, fp16=fp16, M=M,
                                ef_construction=ef_construction, force=force)
        encoded, rate = 0, 0.0
    else:
        output = refuse_overwrite(output, force)
        progress = FrameProgress("encoding", enabled=not quiet)
        encoder = create_encoder(bundle, backend)
        try:
            route = encode_route(bundle, route_path, stride=stride, positions=positions, batch_size=batch_size,
                                 encoder=encoder, progress=progress)
        finally:
            progress.close()
            encoder.close()
        _warn_route(route, positions)
        place_map = write_route_map(bundle, route, output, int(seq_len or bundle.seq_len), fp16, M,
                                    ef_construction, force=force)
        encoded, rate = encoder.frames, encoder.frames / max(route.seconds, 1e-9)
    info = place_map.summary()
    click.echo("map written: {}".format(place_map.path))
    echo_table(["", "value"], [
        ["frames encoded", encoded],
        ["frames/s", "{:.1f}".format(rate)],
        ["frames skipped", info["skipped_frames"]],
        ["frames with position", "{}/{}".format(info["positioned_frames"], info["frames"])],
        ["sequences (L={})".format(place_map.seq_len), place_map.count],
        ["index size", _size(os.path.getsize(place_map.index_path))],
        ["map size", _size(info["bytes"])],
        ["time", "{:.1f} s".format(time.time() - start)],
    ])


def _warn_route(route: Any, positions: Optional[str]) -> None:
    if route.skipped:
        warn("{} frames of {} could not be read or used and were skipped".format(
            route.skipped, route.source_info.get("path")))
    if route.source_info.get("ignored_files"):
        warn("{} files in {} are not images and were ignored".format(
            route.source_info["ignored_files"], route.source_info.get("path")))
    if route.missing_positions == len(route.frames):
        warn("no frame has a position ({}); matches will carry frame indices only".format(
            "not in " + positions if positions else "names carry no @easting@northing@"))
    elif route.missing_positions:
        warn("{} of {} frames have no position{}".format(
            route.missing_positions, len(route.frames), " in " + positions if positions else ""))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return "{:.1f} {}".format(n, unit) if unit != "B" else "{} B".format(n)
        n /= 1024.0
    return str(n)


@command.command("info")
@click.argument("map_dir", required=False, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the summary and manifest as JSON.")
@workspace_option
def info(map_dir, as_json, workspace_path):
    """What a map holds (verifies every file's checksum first). MAP_DIR defaults to <workspace>/map."""
    from jist_edge.maps.store import load_map

    place_map = load_map(map_dir or workspace.map_dir(workspace_path))
    summary = place_map.summary()  # type: Dict[str, Any]
    if as_json:
        echo_json({"summary": summary, "manifest": place_map.manifest})
        return
    idx = summary["index"]
    src = summary.get("source") or {}
    echo_table(["", "value"], [
        ["map", summary["path"]],
        ["bundle", "{}{}".format(summary["bundle_id"], " (random weights)" if summary["random_init"] else "")],
        ["bundle path", summary["bundle_path"]],
        ["source", "{} {}".format(src.get("kind", "?"), src.get("path") or "")],
        ["frames", summary["frames"]],
        ["frames skipped", summary["skipped_frames"]],
        ["frames with position", summary["positioned_frames"]],
        ["route extent (m)", "x".join("{:.0f}".format(v) for v in summary["extent_m"]) if summary["extent_m"] else "-"],
        ["sequences", summary["sequences"]],
        ["sequence length L", summary["seq_len"]],
        ["descriptor", "{}-D {}".format(summary["dim"], summary["sequence_dtype"])],
        ["index", "hnswlib {} M={} ef_construction={} seed={}".format(
            summary["space"], idx["M"], idx["ef_construction"], idx["random_seed"])],
        ["size", _size(summary["bytes"])],
        ["created", summary["created"]],
        ["checksums", "verified"],
    ])
