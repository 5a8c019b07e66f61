"""Precision-recall of a localizer that answers every query with a place and a score.

As in the JIST paper's Fig. 4 and VPR-Bench: the queries are ranked by the score (higher
= more sure); keeping the top ones, precision is the share of kept answers that are
correct and recall the share of answerable queries (those with a positive on the map)
answered correctly. Queries without a positive can only be wrong answers: they lower
precision when kept. AUC is the area under that curve (average precision: precision at
each correct answer, summed, over the answerable queries); R@100P the largest recall
reached without a single wrong answer kept.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


def pr_curve(scores: Sequence[float], correct: Sequence[bool], answerable: Sequence[bool]) -> Dict[str, Any]:
    """Curve points (one per distinct score), AUC and R@100P; ties are kept or dropped together."""
    s = np.asarray(scores, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool) & np.asarray(answerable, dtype=bool)
    total = int(np.asarray(answerable, dtype=bool).sum())
    out = {"queries": int(len(s)), "answerable": total, "precision": [], "recall": [], "thresholds": [],
           "auc": 0.0, "recall_at_100_precision": 0.0}  # type: Dict[str, Any]
    if len(s) == 0 or total == 0:
        return out
    order = np.argsort(-s, kind="mergesort")
    s, ok = s[order], ok[order]
    tp = np.cumsum(ok)
    kept = np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # the last query of each group of equal scores
    precision = tp[last] / kept[last].astype(np.float64)
    recall = tp[last] / float(total)
    out["precision"] = [round(float(v), 6) for v in precision]
    out["recall"] = [round(float(v), 6) for v in recall]
    out["thresholds"] = [float(v) for v in s[last]]
    out["auc"] = round(average_precision(precision, recall), 6)
    perfect = recall[precision >= 1.0]
    out["recall_at_100_precision"] = round(float(perfect.max()) if len(perfect) else 0.0, 6)
    return out


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Sum of precision times the recall gained at each curve point (step interpolation)."""
    gained = np.diff(np.r_[0.0, np.asarray(recall, dtype=np.float64)])
    return float((np.asarray(precision, dtype=np.float64) * gained).sum())


def quantiles(values: Sequence[float], qs: Sequence[float] = (50, 90)) -> Dict[str, Optional[float]]:
    """{"p50": ..., "p90": ...} of the finite values; None when there are none."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return {"p{:g}".format(q): (round(float(np.percentile(arr, q)), 4) if len(arr) else None) for q in qs}


def frames_to_relocalize(events: Sequence[Dict[str, Any]], correct: Sequence[bool], tracking: Sequence[bool],
                         seq_len: int) -> List[Optional[int]]:
    """Per event (in order; ``at``: the first window made only of frames after it): frames from the
    event until the end of the first window that is correct while tracking, so at least ``seq_len``
    (the window must fill with new frames first); None when the next event or the end comes first."""
    good = np.asarray(correct, dtype=bool) & np.asarray(tracking, dtype=bool)
    starts = [int(e["at"]) for e in events]
    out = []  # type: List[Optional[int]]
    for i, at in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(good)
        hits = np.nonzero(good[at:end])[0]
        out.append(int(hits[0]) + int(seq_len) if len(hits) else None)
    return out
