"""`jist-edge synth`: render a synthetic street route as a database and a query pass."""
import json
import os
import sys
from typing import Optional, Tuple

import click

from jist_edge import workspace
from jist_edge.cli.common import FiniteFloatRange, echo_json, echo_table, keeps_previous, workspace_option
from jist_edge.errors import JistEdgeError
from jist_edge.fileio import kept_note
from jist_edge.locks import output_lock
from jist_edge.claims import claim_folder
from jist_edge.synth.excursions import DETOUR_OFFSET_M
from jist_edge.synth.dataset import ROUTE_OUTPUT, make_route_dataset
from jist_edge.synth.traversal import DATABASE_SPACING_M, QUERY_OFFSET_M, QUERY_SPEED_RATIO, frames_that_fit
from jist_edge.fileio import write_failure


@click.command("synth", help="""Render a synthetic street route: a database pass and a query pass.

\b
The query pass drives the same street on another day: other light, sensor noise,
blur, a slightly different lane position and heading, and a different speed. Images
are named 000123@easting@northing@@.jpg (VPR convention); --video writes MJPG .avi
files with frame,easting,northing CSVs instead.

\b
  jist-edge synth                          # 300 frames into <workspace>/synth
  jist-edge synth --video --frames 1000 --output /tmp/route
""")
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder to write [default: <workspace>/synth].")
@click.option("--frames", type=click.IntRange(2, None), default=None, help="Database frames [default: 300].")
@click.option("--length", "length_m", type=FiniteFloatRange(1.0, None), default=None,
              help="Route length in metres (instead of --frames).")
@click.option("--spacing", "spacing_m", type=FiniteFloatRange(0.1, None), default=DATABASE_SPACING_M, show_default=True,
              help="Metres between database frames.")
@click.option("--query-spacing", "query_spacing_m", type=FiniteFloatRange(0.1, None), default=None,
              help="Metres between query frames [default: {} x --spacing].".format(QUERY_SPEED_RATIO))
@click.option("--query-offset", "query_offset_m", type=FiniteFloatRange(0.0, None), default=QUERY_OFFSET_M,
              show_default=True, help="Where the query pass starts along the route, in metres.")
@click.option("--img-size", nargs=2, type=click.IntRange(16, 4096), default=(240, 320), show_default=True,
              metavar="H W", help="Frame height and width in pixels.")
@click.option("--seed", type=int, default=0, show_default=True, help="Route and condition seed.")
@click.option("--video", is_flag=True, help="Write database.avi/queries.avi (MJPG) plus positions CSVs.")
@click.option("--fps", type=FiniteFloatRange(1.0, 240.0), default=10.0, show_default=True, help="Video frame rate.")
@click.option("--detour", is_flag=True,
              help="The query pass leaves the map: a stretch of other streets, {:g} m to the side, then back "
                   "onto the route.".format(DETOUR_OFFSET_M))
@click.option("--kidnap", "kidnaps", type=click.IntRange(0, 20), default=0, show_default=True, metavar="N",
              help="The query pass jumps N times to another part of the route.")
@click.option("--force", is_flag=True, hidden=True,
              help="Kept for old scripts: an earlier synthetic route is replaced anyway, anything else never.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@workspace_option
def command(output: Optional[str], frames: Optional[int], length_m: Optional[float], spacing_m: float,
            query_spacing_m: Optional[float], query_offset_m: float, img_size: Tuple[int, int], seed: int,
            video: bool, fps: float, detour: bool, kidnaps: int, force: bool, as_json: bool,
            workspace_path: Optional[str]) -> None:
    if frames is not None and length_m is not None:
        raise JistEdgeError("give --frames or --length, not both")
    if length_m is not None:
        frames = int(length_m // spacing_m) + 1
        if frames < 2:
            raise JistEdgeError("--length {} m holds fewer than 2 frames {} m apart".format(length_m, spacing_m))
    frames = frames or 300
    route_m = (frames - 1) * spacing_m
    query_spacing_m = query_spacing_m or spacing_m * QUERY_SPEED_RATIO
    if query_offset_m > route_m:
        raise JistEdgeError("--query-offset {} m is beyond the end of the {:.1f} m route".format(query_offset_m, route_m))
    query_frames = frames_that_fit(route_m, query_offset_m, query_spacing_m)
    out_dir = os.path.abspath(output or os.path.join(workspace.workspace_dir(workspace_path), "synth"))
    with keeps_previous("synth", out_dir, "route"), output_lock(out_dir, "synth output"):
        # an earlier synthetic route is replaced; a folder holding anything else never is
        out_dir = claim_folder(out_dir, ROUTE_OUTPUT, force, keep=lambda marker: None)
        with click.progressbar(length=frames + query_frames, label="rendering", file=sys.stderr,
                               show_pos=True, show_eta=True) as bar:
            kept = kept_note(out_dir, "route")
            try:
                paths = make_route_dataset(out_dir, frames=frames, size=tuple(img_size), seed=seed, as_video=video,
                                           spacing_m=spacing_m, query_spacing_m=query_spacing_m,
                                           query_offset_m=query_offset_m, fps=fps, progress=bar.update,
                                           detour=detour, kidnaps=kidnaps)
            except OSError as exc:  # disk full: name the folder and the cause, say what was kept
                raise write_failure(out_dir, exc, kept)
    with open(paths["manifest"], "r", encoding="utf-8") as handle:
        manifest = json.load(handle)
    summary = {
        "output": out_dir,
        "format": manifest["format"],
        "route_length_m": manifest["route"]["length_m"],
        "seed": seed,
        "image_size": list(img_size),
        "database": {"frames": manifest["database"]["frames"], "spacing_m": spacing_m, "path": paths["database"],
                     "positions": paths["database_positions"]},
        "queries": {"frames": manifest["queries"]["frames"], "spacing_m": query_spacing_m,
                    "start_m": query_offset_m, "path": paths["queries"], "positions": paths["queries_positions"],
                    "events": manifest["queries"].get("events", [])},
    }
    if as_json:
        echo_json(summary)
        return
    click.echo("synthetic route: {:.1f} m, seed {}, {}x{} frames, {}".format(
        summary["route_length_m"], seed, img_size[0], img_size[1], summary["format"]))
    rows = []
    for key in ("database", "queries"):
        part = summary[key]
        rows.append([key, part["frames"], part["spacing_m"], part["path"]] + ([part["positions"]] if video else []))
    echo_table(["pass", "frames", "spacing_m", "path"] + (["positions"] if video else []), rows)
    for event in summary["queries"]["events"]:
        click.echo("query pass: {} at frame {}".format(event["kind"], event["frame"]))

