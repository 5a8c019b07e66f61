"""Held-out drives scored before and after training, with jist_edge's own evaluation (evaluation.recall).

Each held-out pair (a database drive and a query drive of the same streets) is cached like
the training drives; scoring puts the current weights' frame descriptors into the
EncodedRoutes that ``evaluation.recall.evaluate`` takes, so R@N raw and the route filter's
filtered R@1 are exactly what ``jist-edge eval`` would report for an exported model.
"""
import hashlib
import types
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import torch

from jist_edge.export.model import GEM_EPS, SEQGEM_EPS, JistModel
from jist_edge.training import trainable
from jist_edge.training.data import CachedDrive

RECALLS = (1, 5, 10)
NOT_USED = object()  # evaluate opens an encoder unless given one; both passes come encoded


def eval_bundle(model: JistModel, height: int, width: int, seq_len: int, random_init: bool) -> Any:
    """The fields evaluation reads from a bundle, for weights that are not exported yet."""
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return types.SimpleNamespace(bundle_id="training-" + digest.hexdigest()[:12], path="(training weights)",
                                 random_init=bool(random_init), height=int(height), width=int(width),
                                 seqgem_p=float(model.seqgem_p), seqgem_eps=SEQGEM_EPS, dim=512, seq_len=int(seq_len),
                                 gem_eps=GEM_EPS)


def _with_descriptors(drive: CachedDrive, desc: np.ndarray) -> Any:
    from jist_edge.maps.build import EncodedRoute

    route = drive.route
    return EncodedRoute(desc, route.frames, route.skipped, route.missing_positions, route.source_info, route.seconds,
                        route.position_frame)


def drive_descriptors(model: JistModel, kind: str, drive: CachedDrive, device: torch.device,
                      batch: int = 128) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(drive), batch):
            feats = drive.features[start:start + batch].to(device).float()
            out.append(trainable.frame_descriptors(model, kind, feats).float().cpu().numpy())
    return np.concatenate(out, axis=0).astype(np.float32)


def score(model: JistModel, kind: str, pairs: Sequence[Sequence[CachedDrive]], bundle: Any, device: torch.device,
          threshold: float = 25.0) -> Dict[str, Any]:
    """Per held-out pair R@1/5/10 raw (exact search) and the route filter's R@1; and their means."""
    from jist_edge.evaluation.recall import evaluate

    per_route = []  # type: List[Dict[str, Any]]
    for database, queries in pairs:
        report = evaluate(bundle, _with_descriptors(database, drive_descriptors(model, kind, database, device)),
                          _with_descriptors(queries, drive_descriptors(model, kind, queries, device)),
                          seq_len=bundle.seq_len, threshold=threshold, recalls=RECALLS, methods=("exact",),
                          encoder=NOT_USED)
        recall = report["results"]["exact"]["recall"]
        flt = report["filter"]
        per_route.append({"database": database.spec.source, "queries": queries.spec.source,
                          "recall": {str(n): float(recall[str(n)]) for n in RECALLS},
                          "filtered_r1": flt.get("recall_at_1"), "filter_raw_r1": flt.get("raw_recall_at_1"),
                          "lost_off_map": flt.get("lost_off_map"),
                          "relocalization_frames_p50": flt.get("relocalization", {}).get("frames_p50")})
    return {"routes": per_route, "mean_r1": _mean([r["recall"]["1"] for r in per_route]),
            "mean_filtered_r1": _mean([r["filtered_r1"] for r in per_route])}


def _mean(values: Sequence[Any]) -> Any:
    vals = [float(v) for v in values if v is not None]
    return round(float(np.mean(vals)), 3) if vals else None


def write_plot(path: str, history: List[Dict[str, float]], before: Any, after: Any, title: str,
               warn: Callable[[str], None]) -> bool:
    """Losses over time and held-out R@1 before/after per route, one PNG (matplotlib is optional)."""
    try:
        import matplotlib  # optional: the plot is skipped without it

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warn("matplotlib is not installed: no plot (pip install 'jist-edge[bench]')")
        return False
    from jist_edge.fileio import atomic_path

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if history:
        t = [h["elapsed_s"] / 60.0 for h in history]
        for key, style in (("triplet", "-"), ("cosface", "--")):
            ax1.plot(t, [h[key] for h in history], style, label=key)
        ax1.set_yscale("log")
        ax1.set_xlabel("minutes")
        ax1.set_ylabel("loss (running mean)")
        ax1.legend()
    if before and after:
        n = np.arange(len(before["routes"]))
        bars = [(label + " " + kind, rep, key) for label, rep in (("before", before), ("after", after))
                for kind, key in (("raw", "raw"), ("filtered", "filtered"))]
        for k, (label, rep, key) in enumerate(bars):
            values = [(r["recall"]["1"] if key == "raw" else r["filtered_r1"]) or 0.0 for r in rep["routes"]]
            ax2.bar(n + (k - 1.5) * 0.2, values, 0.2, label=label)
        ax2.set_xticks(n)
        ax2.set_xticklabels(["held-out {}".format(i + 1) for i in n])
        ax2.set_ylabel("R@1 %")
        ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return True
