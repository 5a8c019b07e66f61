"""PNG plots of an `eval` report with the route filter (host only: matplotlib, imported on use).

``pr_curves.png``: precision-recall over the filter's confidence and over the raw top-1
distance. ``route.png``: the map's places, the query pass's true positions, the raw top-1
and the filtered estimates, frames the filter called lost marked. Everything is drawn
from the report itself (its per-query rows), so a saved JSON can be plotted again.
"""
import os
from typing import Any, Dict, List

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import atomic_path


def write_plots(report: Dict[str, Any], out_dir: str) -> List[str]:
    """Both plots into ``out_dir`` (created); returns their paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise JistEdgeError("--plot needs matplotlib (pip install 'jist-edge[bench]'): {}".format(exc))
    if "filter" not in report or "per_query" not in report:
        raise JistEdgeError("--plot needs the route filter's results (do not combine it with --no-filter)")
    os.makedirs(out_dir, exist_ok=True)
    return [_pr_plot(plt, report, out_dir), _route_plot(plt, report, out_dir)]


def _title(report: Dict[str, Any], what: str) -> str:
    weights = "RANDOM weights" if report.get("random_init") else "bundle {}".format(report.get("bundle_id"))
    return "{} ({}, L={}, {:g} m)".format(what, weights, report.get("seq_len"), report.get("threshold_m", 0))


def _pr_plot(plt: Any, report: Dict[str, Any], out_dir: str) -> str:
    pr = report["filter"]["pr"]
    fig, ax = plt.subplots(figsize=(6, 5))
    for key, label, style in (("filtered", "route filter (confidence)", "-"), ("raw", "raw top-1 (distance)", "--")):
        curve = pr[key]
        ax.plot([0.0] + curve["recall"], [1.0] + curve["precision"], style, drawstyle="steps-post",
                label="{}: AUC {:.3f}, R@100P {:.1%}".format(label, curve["auc"], curve["recall_at_100_precision"]))
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(_title(report, "Precision-recall"), fontsize=9)
    return _save(plt, fig, out_dir, "pr_curves.png")


def _route_plot(plt: Any, report: Dict[str, Any], out_dir: str) -> str:
    rows = report["per_query"]
    fig, ax = plt.subplots(figsize=(7, 7))
    track = report["filter"].get("map_positions") or []
    if track:
        ax.plot([p[0] for p in track], [p[1] for p in track], ".", color="0.75", ms=3, label="map places")
    _points(ax, [r["position"] for r in rows], "-", "black", "query (truth)", lw=1)
    _points(ax, [r["raw"]["position"] for r in rows], "x", "tab:orange", "raw top-1", ms=4)
    _points(ax, [r["estimate"]["position"] for r in rows], "o", "tab:blue", "filtered estimate", ms=3, mfc="none")
    lost = [r["position"] for r in rows if r["estimate"]["state"] == "lost"]
    _points(ax, lost, "s", "tab:red", "query frames the filter called lost", ms=5, mfc="none")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(_title(report, "Route"), fontsize=9)
    return _save(plt, fig, out_dir, "route.png")


def _points(ax: Any, points: List[Any], style: str, colour: str, label: str, **kw: Any) -> None:
    known = [p for p in points if p is not None]
    if known:
        ax.plot([p[0] for p in known], [p[1] for p in known], style, color=colour, label=label, **kw)


def _save(plt: Any, fig: Any, out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
