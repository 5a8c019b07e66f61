"""The demo's route-filter step: raw vs filtered on the streamed pass and on a pass that leaves the map.

The streamed query pass already carries the filter's estimates (the live pipeline runs it);
a second query pass of the same route, with a detour through streets the map does not
hold and ``KIDNAPS`` jumps to other parts of the route, is evaluated like `eval` does.
Both get the raw-vs-filtered table and PNGs (when matplotlib is installed).
"""
import os
from typing import Any, Dict, List

import click

from jist_edge.cli.common import warn
from jist_edge.cli.filter_report import print_comparison

KIDNAPS = 2


def synthesize_excursions(out: str, frames: int, img_size: Any, seed: int) -> Dict[str, Any]:
    """The same route with a query pass that leaves the map (a detour, then KIDNAPS jumps)."""
    from jist_edge.synth import make_route_dataset

    return make_route_dataset(os.path.join(out, "route-excursions"), frames=frames, size=tuple(img_size), seed=seed,
                              as_video=True, detour=True, kidnaps=kidnaps_for(frames))


def kidnaps_for(frames: int) -> int:
    """KIDNAPS on the default route; one on short ones (each stretch between jumps needs room)."""
    return KIDNAPS if frames >= 120 else 1


def filter_step(bundle: Any, place_map: Any, streamed: Dict[str, List[Any]], setup: Dict[str, Any],
                data: Dict[str, Any], excursions: Dict[str, Any], threshold: float, out: str) -> Dict[str, Any]:
    """Both passes' summaries (raw vs filtered) and the PNGs written for them."""
    from jist_edge.evaluation.recall import evaluate
    from jist_edge.evaluation.localization import score_live
    from jist_edge.positions import read_positions_csv

    live, live_rows = score_live(place_map, streamed["windows"], [ids[0] for ids in streamed["ids"]],
                                 streamed["raw_dists"], streamed["estimates"],
                                 read_positions_csv(data["queries_positions"]), threshold, setup)
    report = evaluate(bundle, place_map.path, excursions["queries"], seq_len=place_map.seq_len, threshold=threshold,
                      methods=("hnsw",), query_positions=excursions["queries_positions"])
    plots = _plots(out, bundle, place_map.seq_len, threshold, {"query": (live, live_rows),
                                                               "excursions": (report["filter"], report["per_query"])})
    return {"query": live, "excursions": report["filter"], "plots": plots}


def print_filter_step(result: Dict[str, Any]) -> Dict[str, Any]:
    """Print both tables and where the plots are; return the JSON-sized summary."""
    click.secho("\nRoute filter on the streamed query pass:", bold=True)
    print_comparison(result["query"], click.echo)
    click.secho("\nRoute filter on a query pass that leaves the map (a detour and kidnaps; evaluated as "
                "`eval` does):", bold=True)
    print_comparison(result["excursions"], click.echo)
    if result["plots"]:
        click.echo("\nPlots (precision-recall, route): {}".format(os.path.dirname(os.path.dirname(result["plots"][0]))))
    return {"query": _brief(result["query"]), "excursions": _brief(result["excursions"]), "plots": result["plots"]}


def _plots(out: str, bundle: Any, seq_len: int, threshold: float, passes: Dict[str, Any]) -> List[str]:
    from jist_edge.errors import JistEdgeError
    from jist_edge.evaluation.plots import write_plots

    written = []  # type: List[str]
    for name, (summary, rows) in passes.items():
        report = {"filter": summary, "per_query": rows, "random_init": bool(bundle.random_init),
                  "bundle_id": bundle.bundle_id, "seq_len": seq_len, "threshold_m": threshold}
        try:
            written += write_plots(report, os.path.join(out, "plots", name))
        except JistEdgeError as exc:
            warn("plots skipped: {}".format(exc))
            return written
    return written


def _brief(summary: Dict[str, Any]) -> Dict[str, Any]:
    """The summary without its curves and map track (the JSON stays small)."""
    out = {k: v for k, v in summary.items() if k not in ("pr", "map_positions")}
    out["pr"] = {k: {"auc": v["auc"], "recall_at_100_precision": v["recall_at_100_precision"]}
                 for k, v in summary["pr"].items()}
    return out
