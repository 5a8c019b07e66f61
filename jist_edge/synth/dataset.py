"""A synthetic route folder: the database and query passes of one route, written whole.

    make_route_dataset("/tmp/route", frames=300)   # database/ and queries/ images, route.json

The passes are ``synth.traversal``'s; a query pass that leaves the map is ``synth.excursions``'.
"""
import os
from typing import Dict, Optional, Tuple

from jist_edge.claims import OutputKind, claim_folder
from jist_edge.errors import JistEdgeError
from jist_edge.fileio import staged_directory, write_json_atomic
from jist_edge.locks import output_lock
from jist_edge.synth.excursions import PlannedTraversal, plan_query_pass
from jist_edge.synth.route import Route
from jist_edge.synth.traversal import (DATABASE_SPACING_M, QUERY_OFFSET_M, QUERY_SPEED_RATIO, Progress, make_traversal,
                                       video_positions_path, write_images, write_video)

# route.json's generator: the module that wrote it before synth.dataset existed, so routes written then stay ours
GENERATOR = "jist_edge.synth.traversal"


# What `synth` and the demo may replace: a folder holding a route.json of ours and only what we write.
ROUTE_OUTPUT = OutputKind(
    "synthetic route", "route.json", lambda m: m.get("generator") == GENERATOR,
    lambda m: ["route.json", "database", "queries", "database.avi", "queries.avi", "database.csv", "queries.csv"])


def make_route_dataset(out_dir: str, frames: int = 300, size: Tuple[int, int] = (240, 320), seed: int = 0,
                       as_video: bool = False, spacing_m: float = DATABASE_SPACING_M,
                       query_spacing_m: Optional[float] = None, query_offset_m: float = QUERY_OFFSET_M,
                       fps: float = 10.0, progress: Progress = None, detour: bool = False,
                       kidnaps: int = 0) -> Dict[str, Optional[str]]:
    """Write a database pass of ``frames`` frames and a query pass of the same route.

    ``out_dir`` gets ``database/`` and ``queries/`` image folders (or ``database.avi``
    and ``queries.avi`` with ``.csv`` positions) and ``route.json`` describing both
    passes; the folder is built under a temporary name and swapped in at the end.
    ``detour``/``kidnaps``: the query pass leaves the map (jist_edge.synth.excursions).
    """
    if frames < 2:
        raise JistEdgeError("a synthetic route needs at least 2 database frames, got {}".format(frames))
    height, width = int(size[0]), int(size[1])
    route = Route(seed=seed, length_m=(frames - 1) * spacing_m)
    database = make_traversal(route, "database", spacing_m, height, width, seed, count=frames)
    queries = make_traversal(route, "query", query_spacing_m if query_spacing_m else spacing_m * QUERY_SPEED_RATIO,
                             height, width, seed, start_m=query_offset_m)
    if detour or kidnaps:
        plan = plan_query_pass(route, queries.spacing_m, queries.start_m, detour, kidnaps, seed, database.positions())
        queries = PlannedTraversal(route, plan, height, width, seed, queries.spacing_m)
    with output_lock(out_dir, "synth output"):
        # an earlier route of ours is replaced, never anything else
        out_dir = claim_folder(out_dir, ROUTE_OUTPUT, True, option="synthetic route folder")
        paths = {"root": out_dir, "manifest": os.path.join(out_dir, "route.json")}  # type: Dict[str, Optional[str]]
        with staged_directory(out_dir) as stage:
            for key, traversal in (("database", database), ("queries", queries)):
                if as_video:
                    write_video(traversal, os.path.join(stage, key + ".avi"), fps, progress)
                    paths[key] = os.path.join(out_dir, key + ".avi")
                    paths[key + "_positions"] = video_positions_path(paths[key])
                else:
                    write_images(traversal, os.path.join(stage, key), progress)
                    paths[key] = os.path.join(out_dir, key)
                    paths[key + "_positions"] = None
            write_json_atomic(os.path.join(stage, "route.json"), {
                "generator": GENERATOR,
                "route": route.describe(),
                "database": database.describe(),
                "queries": queries.describe(),
                "format": "video" if as_video else "images",
            })
    return paths
