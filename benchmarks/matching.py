"""Matching: query time vs map size, hnswlib ef vs exact, 512-D vs 4096-D, storage per place, and
the index kinds up to a million places (runtime memory, build time, p50/p95, agreement: index_kinds.py).

One live query is one vector, so every time here is a single-query time, interleaved
between the ways compared (exact, hnswlib at each ef) on the same query in the same
round.
"""
import os
import tempfile
import time
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from jist_edge.benchmarks import descriptors, index_kinds, search
from jist_edge.benchmarks.memory import PeakRss, current_rss_mb
from jist_edge.benchmarks.timing import interleave, per_round_ratios, ratio_summary, summarize

Log = Callable[[str], None]


def _cycler(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> Callable[[], Any]:
    """A no-argument call that answers the next query each time (so round i uses query i)."""
    state = {"i": 0}

    def call() -> Any:
        q = queries[state["i"] % len(queries)]
        state["i"] += 1
        return fn(q)

    return call


def bench_map_size(n: int, efs: Sequence[int], n_queries: int, warmup: int, workdir: str, seed: int = 0,
                   threads: int = 0) -> Dict[str, Any]:
    """One map size: build, file size, memory, agreement and interleaved single-query times."""
    data = descriptors.RouteDescriptors(n, dim=512, seed=seed)
    queries, _ = data.queries(n_queries, seed=seed + 7)
    with PeakRss() as mem:
        index, build_s, params = search.build_index(data.database, threads=threads)
        place_map = search.ArrayMap(data.database, index)
        exact = search.Searcher(place_map, exact=True)
        approx = {ef: search.Searcher(place_map, ef=ef) for ef in efs}
        exact_top1 = exact.top1_batch(queries)
        agreement = {ef: float(np.mean(s.top1_batch(queries) == exact_top1)) for ef, s in approx.items()}
    path = os.path.join(workdir, "index_{}.bin".format(n))
    t0 = time.perf_counter()
    index.save_index(path)
    save_s = time.perf_counter() - t0
    file_bytes = os.path.getsize(path)
    load_mb = _index_load_mb(path, 512, n)
    os.unlink(path)

    fns = {"exact": _cycler(exact.top1, queries)}
    for ef in efs:
        fns["hnsw_ef{}".format(ef)] = _cycler(approx[ef].top1, queries)
    samples = interleave(fns, rounds=n_queries, warmup=warmup)
    hnsw_rows = []
    for ef in efs:
        key = "hnsw_ef{}".format(ef)
        hnsw_rows.append({
            "ef": int(ef),
            "top1_agreement_with_exact": agreement[ef],
            "query": summarize(samples[key]),
            "speedup_vs_exact": ratio_summary(per_round_ratios(samples["exact"], samples[key])),
        })
    return {
        "n": int(n),
        "dim": 512,
        "queries": int(len(queries)),
        "build_s": float(build_s),
        "hnsw_params": params,
        "index_save_s": float(save_s),
        "index_file_bytes": int(file_bytes),
        "index_bytes_per_place": file_bytes / float(n),
        "descriptors_bytes_float32": int(data.database.nbytes),
        "index_load_rss_mb": load_mb,
        "build_and_query_peak_rss_mb": mem.result["peak_rss_mb"],
        "build_and_query_peak_growth_mb": mem.result["peak_growth_mb"],
        "peak_section_isolated": mem.result["section_isolated"],
        "exact": {"query": summarize(samples["exact"])},
        "hnsw": hnsw_rows,
    }


def _index_load_mb(path: str, dim: int, n: int) -> float:
    """Resident memory that loading the saved index adds: what a runtime holding the map pays."""
    import hnswlib

    before = current_rss_mb()
    index = hnswlib.Index(space="l2", dim=dim)
    index.load_index(path, max_elements=n)
    grown = current_rss_mb() - before
    del index
    return max(0.0, grown)


def bench_dims(n: int, dims: Sequence[int], n_queries: int, warmup: int, seed: int = 0) -> Dict[str, Any]:
    """Exact search at the same map size with 512-D (JIST) and 4096-D (SeqVLAD after PCA) descriptors.

    Exact search reads every stored number whatever the data, so both sizes use cheap
    i.i.d. non-negative vectors here (a 4096-D route walk of 100k places takes minutes).
    """
    fns = {}
    sizes = {}
    rng = np.random.default_rng(seed)
    for dim in dims:
        database = rng.random((n, dim), dtype=np.float32)
        queries = rng.random((n_queries, dim), dtype=np.float32)
        exact = search.Searcher(search.ArrayMap(database), exact=True)
        fns["exact_{}d".format(dim)] = _cycler(exact.top1, queries)
        sizes[dim] = database.nbytes / float(n)
        del database
    samples = interleave(fns, rounds=n_queries, warmup=warmup)
    small, large = min(dims), max(dims)
    return {
        "n": int(n),
        "queries": int(n_queries),
        "dims": [int(d) for d in dims],
        "descriptors": "iid-uniform (exact search cost does not depend on the data)",
        "bytes_per_descriptor": {str(d): float(b) for d, b in sizes.items()},
        "size_ratio": sizes[large] / sizes[small],
        "query": {str(d): summarize(samples["exact_{}d".format(d)]) for d in dims},
        "time_ratio_large_over_small": ratio_summary(
            per_round_ratios(samples["exact_{}d".format(large)], samples["exact_{}d".format(small)])),
    }


def bench_storage(n: int, n_queries: int, workdir: str, seed: int = 0) -> Dict[str, Any]:
    """Descriptor storage per place as float32 vs float16, and whether float16 changes the top-1."""
    data = descriptors.RouteDescriptors(n, dim=512, seed=seed)
    queries, _ = data.queries(n_queries, seed=seed + 11)
    out: Dict[str, Any] = {"n": int(n), "dim": 512}
    for dtype in ("float32", "float16"):
        arr = data.database.astype(dtype)
        path = os.path.join(workdir, "desc_{}.npy".format(dtype))
        np.save(path, arr)
        out[dtype] = {"bytes_per_place_in_memory": arr.nbytes / float(n),
                      "bytes_per_place_on_disk": os.path.getsize(path) / float(n)}
        os.unlink(path)
    exact32 = search.Searcher(search.ArrayMap(data.database), exact=True).top1_batch(queries)
    as16 = data.database.astype(np.float16).astype(np.float32)
    exact16 = search.Searcher(search.ArrayMap(as16), exact=True).top1_batch(queries)
    out["float16_top1_agreement_with_float32"] = float(np.mean(exact16 == exact32))
    out["float32_over_float16"] = out["float32"]["bytes_per_place_in_memory"] / out["float16"]["bytes_per_place_in_memory"]
    return out


def run(map_sizes: Sequence[int], efs: Sequence[int], n_queries: int, dim_sizes: Sequence[int],
        warmup: int, log: Log, seed: int = 0, threads: int = 0, kinds_sizes: Sequence[int] = (),
        cache_dir: Optional[str] = None) -> Dict[str, Any]:
    """The whole matching section; ``kinds_sizes``: the index-kinds table (benchmarks/index_kinds.py)."""
    result: Dict[str, Any] = {
        "descriptors": descriptors.KIND,
        "descriptors_description": descriptors.DESCRIPTION,
        "search": search.implementation(),
        "sizes": [],
        "dims": [],
    }
    with tempfile.TemporaryDirectory(prefix="jist-bench-") as workdir:
        for n in map_sizes:
            log("matching: map of {:,} sequences (build hnswlib, {} queries, ef {})".format(
                n, n_queries, ", ".join(str(e) for e in efs)))
            row = bench_map_size(n, efs, n_queries, warmup, workdir, seed=seed, threads=threads)
            best = row["hnsw"][-1]
            log("  build {:.1f} s, exact p50 {:.3f} ms, hnswlib ef={} p50 {:.3f} ms, agreement {:.3f}".format(
                row["build_s"], row["exact"]["query"]["p50_ms"], best["ef"], best["query"]["p50_ms"],
                best["top1_agreement_with_exact"]))
            result["sizes"].append(row)
        for n in dim_sizes:
            log("matching: exact search 512-D vs 4096-D at {:,} sequences".format(n))
            row = bench_dims(n, (512, 4096), n_queries, warmup, seed=seed)
            log("  4096-D / 512-D time: median {:.2f}x (min {:.2f}, max {:.2f})".format(
                row["time_ratio_large_over_small"]["median"], row["time_ratio_large_over_small"]["min"],
                row["time_ratio_large_over_small"]["max"]))
            result["dims"].append(row)
        storage_n = max(map_sizes)
        log("matching: descriptor storage float32 vs float16 ({:,} sequences)".format(storage_n))
        result["storage"] = bench_storage(storage_n, n_queries, workdir, seed=seed)
        if kinds_sizes:
            result["index_kinds"] = index_kinds.run(kinds_sizes, n_queries, cache_dir or os.path.join(workdir, "kinds"),
                                                    log, threads=threads)
    return result
