"""`jist-edge map build` and `jist-edge map info`."""
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import click

from jist_edge import workspace
from jist_edge.cli.common import (FrameProgress, check_route_path, echo_json, echo_table, keeps_previous, model_path,
                                  warn, workspace_option)
from jist_edge.errors import JistEdgeError
from jist_edge.maps.cluster import DEFAULT_SHARD_FRAMES  # Ray itself is imported only when --ray is given
from jist_edge.maps.store import DEFAULT_EF_CONSTRUCTION, DEFAULT_M
from jist_edge.search.index import AUTO, AUTO_PCA_PLACES, DEFAULT_REDUCED_DIM, DEFAULT_RERANK, KINDS, IndexSpec


@click.group("map")
def command() -> None:
    """Build and inspect maps: the place database a robot localizes against."""


@command.command("build")
@click.option("--model", type=click.Path(), default=None, help="Model bundle [default: <workspace>/model].")
@click.option("--images", type=click.Path(), default=None, help="Route as a folder of images (ordered by name).")
@click.option("--video", type=click.Path(), default=None, help="Route as a video file.")
@click.option("--route", "routes", type=click.Path(), multiple=True,
              help="A drive: video file or image folder. Repeat for several drives in one map (in driving order).")
@click.option("--bag", "bags", type=click.Path(), multiple=True,
              help="A drive recorded as a ROS bag (.bag, .mcap, ROS 2 bag folder; pip install 'jist-edge[bags]'). "
                   "Repeatable: one drive per bag.")
@click.option("--image-topic", default=None, help="--bag: the image topic [default: the bag's only one].")
@click.option("--position-topic", default=None, help="--bag: the position topic [default: the bag's only one].")
@click.option("--from-map", "from_map", type=click.Path(), default=None,
              help="Reuse the frame descriptors of an existing map (another --seq-len; no re-encoding).")
@click.option("--positions", type=click.Path(dir_okay=False), multiple=True,
              help="CSV frame,easting,northing or frame,lat,lon [default: from @easting@northing@ file names]. "
                   "With several --route: one per route in the same order, '-' for file names.")
@click.option("--stride", default=1, show_default=True, type=click.IntRange(1), help="Use every N-th frame.")
@click.option("--seq-len", type=click.IntRange(1), default=None, help="Frames per sequence L [default: the bundle's].")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1), help="Frames per encoder call.")
@click.option("--fp16", is_flag=True, help="Store sequence descriptors as float16 (half the size).")
@click.option("--index", "index_kind", default=AUTO, show_default=True, type=click.Choice((AUTO,) + KINDS),
              help="Index kind: hnsw (full descriptors), hnsw-pca (reduced + exact re-rank; city-scale maps); "
                   "auto picks hnsw-pca above {:,} places.".format(AUTO_PCA_PLACES))
@click.option("--reduced-dim", default=DEFAULT_REDUCED_DIM, show_default=True, type=click.IntRange(1),
              help="hnsw-pca: PCA dimensions the graph searches.")
@click.option("--rerank", default=DEFAULT_RERANK, show_default=True, type=click.IntRange(1),
              help="hnsw-pca: candidates re-scored exactly.")
@click.option("--M", "M", default=DEFAULT_M, show_default=True, type=click.IntRange(2), help="hnswlib graph degree.")
@click.option("--ef-construction", default=DEFAULT_EF_CONSTRUCTION, show_default=True, type=click.IntRange(1), help="hnswlib build ef.")
@click.option("--backend", default="auto", show_default=True, type=click.Choice(["auto", "onnxruntime", "tensorrt"]),
              help="Encoder backend.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS]",
              help="Encode on Ray workers (pip install 'jist-edge[cluster]'): --ray alone joins the cluster of "
                   "RAY_ADDRESS or this machine's, else starts a local one; --ray HOST:PORT or ray://HOST:10001 "
                   "joins that cluster.")
@click.option("--shard-frames", default=DEFAULT_SHARD_FRAMES, show_default=True, type=click.IntRange(1),
              help="--ray: frames per task (rounded up to a multiple of --batch-size).")
@click.option("--output", type=click.Path(file_okay=False), default=None, help="Map folder [default: <workspace>/map].")
@click.option("--force", is_flag=True, help="Replace an existing map folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@workspace_option
def build(model, images, video, routes, bags, image_topic, position_topic, from_map, positions, stride, seq_len, batch_size, fp16, index_kind,
          reduced_dim, rerank, M, ef_construction, backend, ray_address, shard_frames, output, force, quiet,
          workspace_path):
    """Encode one or several routes once, pool windows of L frames with SeqGeM, and index them.

    \b
    Examples:
      jist-edge map build --video route.avi --positions route.csv
      jist-edge map build --images db_images/ --output maps/city
      jist-edge map build --route day.avi --positions day.csv --route night/ --positions - --output maps/both
      jist-edge map build --bag day.bag --bag night.mcap --image-topic /camera/image_raw
      jist-edge map build --route long.avi --positions long.csv --ray head-node:6379
      jist-edge map build --from-map maps/city --seq-len 10 --output maps/city-L10
    """
    from jist_edge.locks import output_lock

    if bags:
        from jist_edge.cli.bag_cmd import bag_drives

        if images or video or routes or from_map or positions:
            raise click.UsageError("--bag takes its frames and positions from the bag: drop --images, --video, "
                                   "--route, --from-map and --positions")
        drives = bag_drives(bags, image_topic, position_topic)  # type: Optional[List[Any]]
    else:
        drives = _drives(images, video, routes, from_map, positions)
    if drives is None and (stride != 1 or ray_address):
        raise click.UsageError("--stride and --ray do not apply to --from-map (its frames are fixed)")
    output = output or workspace.map_dir(workspace_path)
    index = IndexSpec(index_kind, M, ef_construction, reduced_dim=reduced_dim, rerank=rerank)
    # one writer per map folder, from the first check to the swap; Ctrl-C says what was kept
    with output_lock(output, "map output"), keeps_previous("map build", output, "map"):
        _build(model_path(model, workspace_path), drives, from_map, output, index, seq_len, stride, batch_size, fp16,
               backend, ray_address, shard_frames, force, quiet)


def _build(model: str, drives: Optional[List[Any]], from_map: Optional[str], output: str, index: IndexSpec,
           seq_len: Optional[int], stride: int, batch_size: int, fp16: bool, backend: str,
           ray_address: Optional[str], shard_frames: int, force: bool, quiet: bool) -> None:
    from jist_edge.bundle import load_bundle
    from jist_edge.maps.build import build_map, rebuild_map
    from jist_edge.maps.write import refuse_overwrite

    bundle = load_bundle(model)
    try:
        index.check_dim(bundle.dim, "--reduced-dim")
    except JistEdgeError as exc:
        raise click.BadParameter(str(exc), param_hint="'--reduced-dim'")
    start = time.time()
    if drives is None:
        place_map = rebuild_map(bundle, from_map, output, seq_len=seq_len, fp16=fp16, index=index, force=force)
        encoded, rate = 0, 0.0
    else:
        output = refuse_overwrite(output, force)  # before a cluster is joined or a model loaded
        progress = FrameProgress("encoding", enabled=not quiet)
        encoder = _open_encoder(bundle, backend, ray_address, batch_size, shard_frames)
        try:
            place_map = build_map(bundle, drives, output, seq_len=seq_len, stride=stride, batch_size=batch_size,
                                  fp16=fp16, index=index, encoder=encoder, progress=progress, force=force)
        finally:
            progress.close()
            encoder.close()
        for stats in place_map.build_stats:
            _warn_route(stats, len(place_map.build_stats) > 1)
        seconds = sum(s["encode_seconds"] for s in place_map.build_stats)
        encoded, rate = encoder.frames, encoder.frames / max(seconds, 1e-9)
    _print_built(place_map, encoded, rate, time.time() - start)


def _drives(images: Optional[str], video: Optional[str], routes: Sequence[str], from_map: Optional[str],
            positions: Sequence[str]) -> Optional[List[Any]]:
    """The drives the options name (None for --from-map); every path checked before any work."""
    from jist_edge.maps.drives import Drive

    given = [(n, v) for n, v in (("--images", images), ("--video", video), ("--from-map", from_map)) if v is not None]
    if len(given) + (1 if routes else 0) != 1:
        raise click.UsageError("give exactly one of --images, --video, --route (repeatable), --from-map")
    if from_map is not None:
        if positions:
            raise click.UsageError("--positions does not apply to --from-map (its frames are fixed)")
        check_route_path("--from-map", from_map)
        return None
    if not routes:
        option, path = given[0]
        check_route_path(option, path)
        if len(positions) > 1:
            raise click.UsageError("one route takes one --positions; use --route for several drives")
        return [Drive(path, positions[0] if positions else None)]
    if positions and len(positions) != len(routes):
        raise click.UsageError("{} --route but {} --positions: give one per route (or '-'), or none".format(
            len(routes), len(positions)))
    for path in routes:
        check_route_path("--route", path)
    return [Drive(path, None if not positions or positions[i] == "-" else positions[i]) for i, path in enumerate(routes)]


def _open_encoder(bundle: Any, backend: str, ray_address: Optional[str], batch_size: int, shard_frames: int) -> Any:
    """A local encoder backend, or a pool of Ray workers running ONNX Runtime."""
    if ray_address is None:
        from jist_edge.encoder import create_encoder

        return create_encoder(bundle, backend)
    if backend not in ("auto", "onnxruntime"):
        raise click.UsageError("--ray workers encode with ONNX Runtime; --backend {} does not apply".format(backend))
    from jist_edge.maps.cluster import RayEncoderPool

    return RayEncoderPool(bundle, ray_address, batch_size=batch_size, shard_frames=shard_frames)


def _print_built(place_map: Any, encoded: int, rate: float, seconds: float) -> None:
    info = place_map.summary()
    click.echo("map written: {}".format(place_map.path))
    echo_table(["", "value"], [
        ["drives", len(info["drives"])],
        ["frames encoded", encoded],
        ["frames/s", "{:.1f}".format(rate)],
        ["frames skipped", info["skipped_frames"]],
        ["frames with position", "{}/{}".format(info["positioned_frames"], info["frames"])],
        ["sequences (L={})".format(place_map.seq_len), place_map.count],
        ["index", _index_text(info)],
        ["index size", _size(os.path.getsize(place_map.index_path))],
        ["map size", _size(info["bytes"])],
        ["time", "{:.1f} s".format(seconds)],
    ])


def _index_text(summary: Dict[str, Any]) -> str:
    idx = summary["index"]
    text = "hnswlib {} M={} ef_construction={} seed={}".format(summary["space"], idx["M"], idx["ef_construction"],
                                                               idx["random_seed"])
    if summary["index_kind"] == "hnsw-pca":
        return "hnsw-pca: PCA {}-D graph, exact re-rank of {} ({})".format(idx["reduced_dim"], idx["rerank"], text)
    return text


def _warn_route(stats: Dict[str, Any], name_it: bool) -> None:
    """Warnings from one drive's build statistics (maps.build.EncodedRoute.stats)."""
    where = " of {}".format(stats["path"]) if name_it else ""
    positions = stats.get("positions")
    if stats["skipped"]:
        warn("{} frames of {} could not be read or used and were skipped".format(stats["skipped"], stats["path"]))
    if stats["ignored_files"]:
        warn("{} files in {} are not images and were ignored".format(stats["ignored_files"], stats["path"]))
    if stats["missing_positions"] == stats["frames"]:
        warn("no frame{} has a position ({}); matches will carry frame indices only".format(
            where, "not in " + positions if positions else "names carry no @easting@northing@"))
    elif stats["missing_positions"]:
        warn("{} of {} frames{} have no position{}".format(
            stats["missing_positions"], stats["frames"], where, " in " + positions if positions else ""))


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
    src = summary.get("source") or {}
    echo_table(["", "value"], [
        ["map", summary["path"]],
        ["bundle", "{}{}".format(summary["bundle_id"], " (random weights)" if summary["random_init"] else "")],
        ["bundle path", summary["bundle_path"]],
        ["source", "{} {}".format(src.get("kind", "?"), src.get("path") or src.get("drives") or "")],
        ["frames", summary["frames"]],
        ["frames skipped", summary["skipped_frames"]],
        ["frames with position", summary["positioned_frames"]],
        ["route extent (m)", "x".join("{:.0f}".format(v) for v in summary["extent_m"]) if summary["extent_m"] else "-"],
        ["sequences", summary["sequences"]],
        ["sequence length L", summary["seq_len"]],
        ["descriptor", "{}-D {}".format(summary["dim"], summary["sequence_dtype"])],
        ["index", _index_text(summary)],
        ["drives", len(summary["drives"])],
        ["size", _size(summary["bytes"])],
        ["created", summary["created"]],
        ["checksums", "verified"],
    ])
    click.echo("")
    bounds = place_map.drive_bounds
    echo_table(["drive", "source", "frames", "skipped", "sequence ids", "positions"], [
        [n, "{} {}".format(d["kind"] or "?", d["path"] or ""), d["frames"], d["skipped_frames"],
         "{}..{}".format(int(bounds[n]), int(bounds[n + 1]) - 1), d["positions"]]
        for n, d in enumerate(summary["drives"])])


@command.command("merge")
@click.argument("maps", nargs=-1, required=True, type=click.Path())
@click.option("--output", type=click.Path(file_okay=False), required=True, help="The merged map folder.")
@click.option("--index", "index_kind", default=AUTO, show_default=True, type=click.Choice((AUTO,) + KINDS),
              help="Index kind of the merged map (auto: hnsw-pca above {:,} places).".format(AUTO_PCA_PLACES))
@click.option("--fp16/--no-fp16", default=None, help="Store float16 sequence descriptors [default: when every input does].")
@click.option("--force", is_flag=True, help="Replace an existing map folder.")
def merge(maps, output, index_kind, fp16, force):
    """Merge maps of the same model into one map of all their drives (no re-encoding).

    \b
    The drives keep their order (MAPS in the order given); sequences never straddle two
    drives; the index is rebuilt over every place with the first map's hnswlib settings.
      jist-edge map merge maps/day maps/night --output maps/day+night
    """
    from jist_edge.locks import output_lock
    from jist_edge.maps.merge import merge_maps

    start = time.time()
    with output_lock(output, "map output"), keeps_previous("map merge", output, "map"):
        place_map = merge_maps(list(maps), output, fp16=fp16, index_kind=index_kind, force=force)
    _print_built(place_map, 0, 0.0, time.time() - start)
