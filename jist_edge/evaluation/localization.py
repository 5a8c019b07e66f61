"""Raw retrieval vs the route filter on one query pass: the numbers `eval` and `demo` print.

The filter needs the windows in driving order, so it runs over the query pass window by
window, as the live pipeline would. Every summary number is computed from the per-query
rows (also in the report), so anyone can recompute it: filtered R@1 (the estimate is a
positive, the paper's rule), localization error in metres, precision-recall over the
filter's confidence and over the raw top-1 distance, how often the filter says "lost"
on and off the map, and how many windows it needs to be right again after the pass was
carried elsewhere (kidnap) or came back onto the map.
"""
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jist_edge.evaluation.ground_truth import is_positive, near_frames, query_positives, window_table
from jist_edge.evaluation.pr_curve import frames_to_relocalize, pr_curve, quantiles
from jist_edge.filter.route_filter import LOST, STATES, TRACKING
from jist_edge.filter.tracker import RouteTracker
from jist_edge.maps.store import window_rows
from jist_edge.search.matcher import Matcher

JUMP_STEPS = 5.0  # a step between consecutive query frames this many times the usual one is a jump


def run_filter(place_map: Any, matcher: Any, descriptors: np.ndarray, timestamps: Sequence[Optional[float]],
               threshold: float, params: Any = None) -> Tuple[List[Any], Dict[str, Any]]:
    """The filter's estimate for each window descriptor, in order; and how it was set up."""
    tracker = RouteTracker(place_map, matcher, params, radius_m=threshold)
    estimates = []
    start = time.perf_counter()
    for desc, stamp in zip(descriptors, timestamps):
        estimates.append(tracker.step(desc, stamp))
    info = tracker.describe()
    info["ms_per_query"] = round(1000.0 * (time.perf_counter() - start) / max(1, len(descriptors)), 4)
    return estimates, info


def relocalization_events(frame_positions: np.ndarray, on_map: np.ndarray, seq_len: int,
                          threshold: float) -> List[Dict[str, Any]]:
    """Where the pass lands on the map somewhere new: after a jump in position (kidnap) or after
    frames off the map (return). ``at`` is the first window made only of frames from there on
    (earlier windows still hold frames of the old place, which stays a positive for them)."""
    pos = np.asarray(frame_positions, dtype=np.float64)
    steps = np.sqrt(((pos[1:] - pos[:-1]) ** 2).sum(axis=1))
    finite = steps[np.isfinite(steps)]
    usual = float(np.median(finite)) if len(finite) else 0.0
    events = []
    for f in range(1, len(pos)):
        jump = bool(np.isfinite(steps[f - 1]) and steps[f - 1] > max(threshold, JUMP_STEPS * usual))
        if on_map[f] and (jump or not on_map[f - 1]):
            if f <= len(pos) - seq_len:
                events.append({"kind": "return" if not on_map[f - 1] else "kidnap", "frame": int(f), "at": int(f)})
    return events


def query_rows(place_map: Any, raw_ids: np.ndarray, raw_dists: np.ndarray, estimates: Sequence[Any],
               positives: Sequence[np.ndarray], valid: np.ndarray, centre_positions: np.ndarray,
               names: Sequence[str]) -> List[Dict[str, Any]]:
    """One row per query window: its true position, the raw top-1, the estimate, and whether each is right."""
    rows = []
    raw_positions = place_map.positions_of(raw_ids)
    for q, est in enumerate(estimates):
        raw_ok = bool(valid[q]) and bool(is_positive(raw_ids[q:q + 1], positives[q], place_map.sequence_frames)[0])
        ok = bool(valid[q]) and est.seq_id is not None and bool(
            is_positive(np.array([est.seq_id]), positives[q], place_map.sequence_frames)[0])
        raw_pos = _point(raw_positions[q])
        rows.append({
            "index": q,
            "name": names[q],
            "position": _point(centre_positions[q]),
            "valid": bool(valid[q]),
            "raw": {"seq_id": int(raw_ids[q]), "distance": float(raw_dists[q]), "position": raw_pos,
                    "correct": raw_ok, "error_m": _error(raw_pos, centre_positions[q])},
            "estimate": est.to_dict(),
            "correct": ok,
            "error_m": _error(est.position, centre_positions[q]),
        })
    return rows


def summarize(rows: Sequence[Dict[str, Any]], events: Sequence[Dict[str, Any]], seq_len: int) -> Dict[str, Any]:
    """Every summary number, from the rows alone (tests recompute them the same way)."""
    valid = np.array([r["valid"] for r in rows], dtype=bool)
    correct = np.array([r["correct"] for r in rows], dtype=bool)
    raw_ok = np.array([r["raw"]["correct"] for r in rows], dtype=bool)
    states = np.array([r["estimate"]["state"] for r in rows])
    confidence = np.array([r["estimate"]["confidence"] for r in rows], dtype=np.float64)
    raw_score = -np.array([r["raw"]["distance"] for r in rows], dtype=np.float64)
    n_valid = int(valid.sum())
    relocalize = frames_to_relocalize(events, correct, states == TRACKING, seq_len)
    done = [v for v in relocalize if v is not None]
    return {
        "evaluated": n_valid,
        "off_map": int((~valid).sum()),
        "recall_at_1": _percent(correct[valid].sum(), n_valid),
        "raw_recall_at_1": _percent(raw_ok[valid].sum(), n_valid),
        "error_m": quantiles([r["error_m"] for r, v in zip(rows, valid) if v and r["error_m"] is not None]),
        "raw_error_m": quantiles([r["raw"]["error_m"] for r, v in zip(rows, valid)
                                  if v and r["raw"]["error_m"] is not None]),
        "states": {s: int((states == s).sum()) for s in STATES},
        "lost_on_map": _percent(((states == LOST) & valid).sum(), n_valid),
        "lost_off_map": _percent(((states == LOST) & ~valid).sum(), int((~valid).sum())),
        "pr": {"filtered": pr_curve(confidence, correct, valid), "raw": pr_curve(raw_score, raw_ok, valid)},
        "relocalization": {
            "events": [dict(e, frames=v) for e, v in zip(events, relocalize)],
            "frames_p50": float(np.median(done)) if done else None,
            "never": int(len(relocalize) - len(done)),
        },
    }


def on_map_frames(query_positions: np.ndarray, db_positions: np.ndarray, threshold: float) -> np.ndarray:
    """Whether each query frame has a database frame within the threshold."""
    return np.array([len(n) > 0 for n in near_frames(query_positions, db_positions, threshold)], dtype=bool)


def _point(pos: np.ndarray) -> Optional[List[float]]:
    return [round(float(pos[0]), 3), round(float(pos[1]), 3)] if np.isfinite(pos).all() else None


def _error(estimate: Optional[Sequence[float]], truth: Any) -> Optional[float]:
    if estimate is None or truth is None or not np.isfinite(truth).all():
        return None
    return round(float(np.hypot(estimate[0] - truth[0], estimate[1] - truth[1])), 3)


def _percent(count: Any, total: int) -> Optional[float]:
    return round(100.0 * float(count) / total, 4) if total else None


def evaluate_route_filter(bundle: Any, place_map: Any, q_route: Any, seq_len: int, threshold: float, method: str,
                          ef: Optional[int], params: Any = None) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """`eval`'s filter section and per-query rows for an encoded query pass against a map."""
    q_desc = q_route.sequences(seq_len, bundle.seqgem_p, bundle.seqgem_eps)
    q_rows = window_rows(len(q_route.frames), seq_len)
    matcher = Matcher(place_map, ef=ef, exact=(method == "exact"))
    raw_ids, raw_dists = matcher.query(q_desc, k=1)
    stamps = [q_route.frames.timestamps[int(r[-1])] for r in q_rows]
    estimates, info = run_filter(place_map, matcher, q_desc, stamps, threshold, params)
    info["method"] = matcher.method
    return filter_report(place_map, q_route.frames.positions, q_route.frames.names, q_rows, raw_ids[:, 0],
                         raw_dists[:, 0], estimates, threshold, info)


def filter_report(place_map: Any, frame_positions: np.ndarray, frame_names: Sequence[str], q_rows: np.ndarray,
                  raw_ids: np.ndarray, raw_dists: np.ndarray, estimates: Sequence[Any], threshold: float,
                  setup: Dict[str, Any]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """Summary and per-query rows of one pass: ``q_rows`` (windows x L) index its frame table."""
    seq_len = q_rows.shape[1]
    positives, valid = query_positives(frame_positions, q_rows, place_map.frames.positions, threshold)
    centre = np.asarray(frame_positions)[q_rows[:, seq_len // 2]]
    names = [frame_names[int(r[seq_len // 2])] for r in q_rows]
    rows = query_rows(place_map, raw_ids, raw_dists, estimates, positives, valid, centre, names)
    on_map = on_map_frames(frame_positions, place_map.frames.positions, threshold)
    summary = summarize(rows, relocalization_events(frame_positions, on_map, seq_len, threshold), seq_len)
    summary.update({"method": setup.pop("method", None), "setup": setup, "map_positions": map_track(place_map)})
    return summary, rows


def score_live(place_map: Any, windows: Sequence[Sequence[int]], raw_ids: Sequence[int], raw_dists: Sequence[float],
               estimates: Sequence[Any], query_positions: Dict[int, Sequence[float]], threshold: float,
               setup: Dict[str, Any]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The same report for a streamed pass: per full window its frame indices, raw top-1 and estimate."""
    frames, positions, q_rows = window_table(windows, query_positions)
    return filter_report(place_map, positions, ["frame{:06d}".format(i) for i in frames], q_rows,
                         np.asarray(raw_ids, dtype=np.int64), np.asarray(raw_dists, dtype=np.float64), estimates,
                         threshold, dict(setup))


def map_track(place_map: Any, limit: int = 2000) -> List[List[float]]:
    """The map's place positions for plots (every n-th place, at most ``limit``; known ones only)."""
    pos = place_map.sequence_positions
    step = max(1, int(np.ceil(len(pos) / float(limit))))
    return [p for p in (_point(row) for row in pos[::step]) if p is not None]


def comparison_rows(summary: Dict[str, Any]) -> List[List[Any]]:
    """The raw-vs-filtered table of `eval` and `demo` (same numbers as the JSON)."""
    def pct(v: Any) -> Any:
        return "-" if v is None else round(float(v), 2)

    pr, reloc = summary["pr"], summary["relocalization"]
    raw = ["raw top-1", pct(summary["raw_recall_at_1"]), pct(summary["raw_error_m"]["p50"]),
           pct(summary["raw_error_m"]["p90"]), round(pr["raw"]["auc"], 3),
           pct(100.0 * pr["raw"]["recall_at_100_precision"]), "-", "-", "-"]
    filtered = ["route filter", pct(summary["recall_at_1"]), pct(summary["error_m"]["p50"]),
                pct(summary["error_m"]["p90"]), round(pr["filtered"]["auc"], 3),
                pct(100.0 * pr["filtered"]["recall_at_100_precision"]), pct(summary["lost_on_map"]),
                pct(summary["lost_off_map"]), pct(reloc["frames_p50"])]
    return [raw, filtered]


COMPARISON_HEADERS = ["", "R@1 %", "err p50 m", "err p90 m", "PR AUC", "R@100P %", "lost on-map %",
                      "lost off-map %", "relocalize p50"]

