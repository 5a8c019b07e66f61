"""Recall@N as in the JIST paper, for hnswlib and exact search side by side.

Database and query passes become sliding windows of L frames (stride 1). A database
sequence is a positive for a query sequence when ANY of its frames lies within the
threshold (25 m) of ANY query frame. Queries without a positive are reported and
left out of the recall. Everything here is deterministic: same input, same numbers.
"""
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.encoder import create_encoder
from jist_edge.errors import JistEdgeError
from jist_edge.evaluation.ground_truth import DEFAULT_THRESHOLD, is_positive, query_positives, window_table
from jist_edge.evaluation.localization import evaluate_route_filter
from jist_edge.maps.store import DEFAULT_SEED, PlaceMap, is_map_dir, load_map, window_rows
from jist_edge.search.matcher import Matcher
from jist_edge.maps.build import EncodedRoute, encode_route, routes_from_map, write_drives_map, write_route_map

DEFAULT_RECALLS = (1, 5, 10)
METHODS = ("hnsw", "exact")


def recall_at(predictions: np.ndarray, positives: Sequence[np.ndarray], db_seq_frames: np.ndarray,
              valid: np.ndarray, recalls: Sequence[int]) -> Dict[str, float]:
    """Percent of valid queries with a positive among the first N predictions."""
    hits = np.zeros((len(positives), max(recalls)), dtype=bool)
    for q in np.nonzero(valid)[0]:
        row = is_positive(predictions[q], positives[q], db_seq_frames)
        hits[q, :row.shape[0]] = row
    first_hit = np.cumsum(hits, axis=1) > 0
    n_valid = int(valid.sum())
    out = {}
    for n in recalls:
        col = min(n, first_hit.shape[1]) - 1
        out[str(n)] = round(100.0 * float(first_hit[valid, col].sum()) / n_valid, 4) if n_valid else 0.0
    return out


def score_stream(place_map: PlaceMap, windows: Sequence[Sequence[int]], streamed_ids: np.ndarray,
                 descriptors: np.ndarray, query_positions: Dict[int, Sequence[float]], threshold: float,
                 recalls: Sequence[int] = DEFAULT_RECALLS) -> Dict[str, Any]:
    """Recall@N of a live run, as streamed (hnswlib) and by exact search over the same sequence descriptors.

    ``windows``: per full window, the frame indices it pooled; ``streamed_ids``: the ids the
    run returned per window (best first); ``query_positions``: frame index -> (e, n)."""
    _, q_pos, q_rows = window_table(windows, query_positions)
    positives, valid = query_positives(q_pos, q_rows, place_map.frames.positions, threshold)
    streamed_ids = np.asarray(streamed_ids, dtype=np.int64)
    exact_ids, _ = Matcher(place_map, exact=True).query(np.asarray(descriptors, dtype=np.float32),
                                                         k=streamed_ids.shape[1])
    out = {"evaluated": int(valid.sum()), "without_positive": int((~valid).sum()), "recall": {}}  # type: Dict[str, Any]
    for method, ids in (("hnsw", streamed_ids), ("exact", exact_ids)):
        out["recall"][method] = recall_at(ids, positives, place_map.sequence_frames, valid, recalls)
    out["top1_agreement_hnsw_exact"] = round(float((exact_ids[:, 0] == streamed_ids[:, 0]).mean()), 4)
    return out


def _check_positions(route: EncodedRoute, what: str) -> None:
    if not np.isfinite(route.frames.positions).all(axis=1).any():
        raise JistEdgeError(
            "{} {} has no frame positions: name images @easting@northing@ or give a positions CSV".format(
                what, route.source_info.get("path") or "(frames)"))


def _database_map(bundle: Any, database: Any, seq_len: int, workdir: str, **encode: Any) -> PlaceMap:
    """A verified map of the database pass: the given map folder, or one built in ``workdir``."""
    if isinstance(database, str) and is_map_dir(database):
        place_map = load_map(database, bundle)
        if place_map.seq_len == seq_len:
            return place_map
        routes = routes_from_map(place_map)  # each drive keeps its own windows
        for route in routes:
            _check_positions(route, "database drive")
        return write_drives_map(bundle, routes, os.path.join(workdir, "map"), seq_len)
    elif isinstance(database, EncodedRoute):
        route = database
    else:
        route = encode_route(bundle, database, **encode)
    _check_positions(route, "database")
    return write_route_map(bundle, route, os.path.join(workdir, "map"), seq_len, seed=DEFAULT_SEED)


def evaluate(
    bundle: Any,
    database: Any,
    queries: Any,
    seq_len: Optional[int] = None,
    threshold: float = DEFAULT_THRESHOLD,
    recalls: Sequence[int] = DEFAULT_RECALLS,
    methods: Sequence[str] = METHODS,
    ef: Optional[int] = None,
    batch_size: int = 8,
    database_positions: Any = None,
    query_positions: Any = None,
    encoder: Any = None,
    progress: Any = None,
    route_filter: bool = True,
    filter_params: Any = None,
) -> Dict[str, Any]:
    """Run the paper's protocol; returns a JSON-ready report.

    ``database``: a route (image folder / video), a map folder, or an EncodedRoute;
    ``queries``: a route or an EncodedRoute. ``progress(n)`` is called per encoded batch.
    """
    recalls = sorted(set(int(n) for n in recalls))
    if not recalls or recalls[0] < 1:
        raise JistEdgeError("recalls must be positive integers, got {}".format(recalls))
    if threshold <= 0:
        raise JistEdgeError("threshold must be positive (metres), got {}".format(threshold))
    for method in methods:
        if method not in METHODS:
            raise JistEdgeError("unknown search method {!r}; choose from {}".format(method, ", ".join(METHODS)))
    seq_len = int(seq_len or bundle.seq_len)
    own = encoder is None
    if own:
        encoder = create_encoder(bundle)
    workdir = tempfile.mkdtemp(prefix="jist-edge-eval-")
    try:
        common = {"batch_size": batch_size, "encoder": encoder, "progress": progress}
        place_map = _database_map(bundle, database, seq_len, workdir, positions=database_positions, **common)
        q_route = queries if isinstance(queries, EncodedRoute) else encode_route(
            bundle, queries, positions=query_positions, **common)
        _check_positions(q_route, "queries")
        report = _score(bundle, place_map, q_route, seq_len, float(threshold), recalls, methods, ef)
        if route_filter:
            report["filter"], report["per_query"] = evaluate_route_filter(
                bundle, place_map, q_route, seq_len, float(threshold), "hnsw" if "hnsw" in methods else "exact", ef,
                filter_params)
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if own:
            encoder.close()


def _score(bundle: Any, place_map: PlaceMap, q_route: EncodedRoute, seq_len: int, threshold: float,
           recalls: List[int], methods: Sequence[str], ef: Optional[int]) -> Dict[str, Any]:
    q_desc = q_route.sequences(seq_len, bundle.seqgem_p, bundle.seqgem_eps)
    q_seq_frames = window_rows(len(q_route.frames), seq_len)
    positives, valid = query_positives(q_route.frames.positions, q_seq_frames, place_map.frames.positions, threshold)
    k = min(max(recalls), place_map.count)
    report = {
        "bundle_id": bundle.bundle_id,
        "random_init": bool(getattr(bundle, "random_init", False)),
        "seq_len": seq_len,
        "threshold_m": threshold,
        "recall_at": recalls,
        "database": _route_report(place_map.manifest.get("source") or {}, len(place_map.frames), place_map.count,
                                  place_map.manifest["counts"].get("skipped_frames", 0)),
        "queries": _route_report(q_route.source_info, len(q_route.frames), len(q_desc), q_route.skipped),
        "results": {},
        "timing": {},
    }  # type: Dict[str, Any]
    report["database"]["drives"] = place_map.summary()["drives"]  # several drives: each with its own sequence ids
    missing = np.nonzero(~valid)[0]
    report["queries"].update({
        "evaluated": int(valid.sum()),
        "without_positive": int(len(missing)),
        "without_positive_first": [_centre_name(q_route, q_seq_frames, int(q)) for q in missing[:20]],
    })
    top1 = {}
    for method in methods:
        matcher = Matcher(place_map, ef=ef, exact=(method == "exact"))
        start = time.time()
        ids, _ = matcher.query(q_desc, k=k)
        elapsed = time.time() - start
        top1[method] = ids[:, 0]
        report["results"][method] = {"method": matcher.method, "recall": recall_at(ids, positives,
                                                                                    place_map.sequence_frames, valid,
                                                                                    recalls)}
        report["timing"][method] = {"query_ms_mean": round(1000.0 * elapsed / max(1, len(q_desc)), 4)}
    if len(top1) == 2:
        report["top1_agreement_hnsw_exact"] = round(float((top1["hnsw"] == top1["exact"]).mean()), 6)
    return report


def _route_report(source: Dict[str, Any], frames: int, sequences: int, skipped: int) -> Dict[str, Any]:
    return {"path": source.get("path"), "kind": source.get("kind"), "frames": int(frames),
            "sequences": int(sequences), "skipped_frames": int(skipped)}


def _centre_name(route: EncodedRoute, seq_frames: np.ndarray, q: int) -> str:
    return route.frames.names[int(seq_frames[q, seq_frames.shape[1] // 2])]


def recall_rows(report: Dict[str, Any]) -> List[List[Any]]:
    """Table rows: method, then recall@N in percent (same numbers as the JSON)."""
    rows = []
    for method, result in report["results"].items():
        rows.append([result["method"]] + ["{:.2f}".format(result["recall"][str(n)]) for n in report["recall_at"]])
    return rows
