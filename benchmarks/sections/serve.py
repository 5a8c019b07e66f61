"""The live web view's cost (run --serve, fresh process), and its claim row (the toolkit's goal)."""
from typing import Any, Dict, List

from jist_edge.benchmarks import serve
from jist_edge.benchmarks.claims import claim_row, lookup
from jist_edge.benchmarks.section import Context, Section


def run(ctx: Context) -> Dict[str, Any]:
    return serve.bench(ctx.bundle, ctx.map_dir, ctx.backends[0], ctx.cfg, ctx.log)


def claims(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Not the paper's: the toolkit's goal that `run --serve` with two viewers costs at most 3% FPS."""
    key = "serve.ratio_to_off.serve_2_viewers"
    goal = float(lookup(result, "serve.goal_ratio"))
    return [claim_row(
        result, "live_view_overhead", "The live web view (run --serve) with two viewers costs at most 3% of "
        "end-to-end FPS", "not a paper claim: the toolkit's goal for its live view", key + ".median",
        "x time per frame (2 viewers / no view, median)", lookup(result, key + ".median") <= goal,
        "{} interleaved rounds of {} frames (JPEG decode + runtime + hand-off to the view); holds if the median "
        "per-round time ratio <= {}".format(result["serve"]["rounds"], result["serve"]["frames_per_round"], goal),
        {"ratio_min": key + ".min", "ratio_max": key + ".max",
         "cpu_ratio_median": "serve.cpu_ratio_to_off.serve_2_viewers.median",
         "view_threads_cpu_share": "serve.view_threads_cpu_share.serve_2_viewers",
         "no_viewers_ratio_median": "serve.ratio_to_off.serve_no_viewers.median",
         "viewer_fps_median": "serve.viewer_fps_median"})]


SECTION = Section("serve", run, serve.markdown_lines, claims)
