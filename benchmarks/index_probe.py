"""Resident memory of a process holding one map index the way the runtime does, after answering queries.

Run by benchmarks/index_kinds.py in a fresh process so that nothing else the bench holds
counts: ``python -m jist_edge.benchmarks.index_probe --kind hnsw-pca --index F ...``; prints
one JSON line. Memory figures come from /proc/self/status: VmRSS (total resident), RssAnon
(private memory the kernel cannot drop), RssFile (pages of memory-mapped files, which the
kernel drops under pressure and reads back), VmHWM (peak).
"""
import argparse
import json
import time
from typing import Dict

import numpy as np


def status_mb() -> Dict[str, float]:
    out = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(line.split()[1]) / 1024.0
    return {"rss_mb": out.get("VmRSS", float("nan")), "rss_anon_mb": out.get("RssAnon", float("nan")),
            "rss_file_mb": out.get("RssFile", float("nan")), "peak_rss_mb": out.get("VmHWM", float("nan"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--kind", "--index", "--descriptors", "--queries", "--projection"):
        parser.add_argument(name, default=None)
    for name in ("--count", "--dim", "--ef", "--rerank"):
        parser.add_argument(name, type=int, default=0)
    args = parser.parse_args()
    import hnswlib

    from jist_edge.search import index as index_kinds

    queries = np.load(args.queries)
    baseline = status_mb()
    t0 = time.perf_counter()
    if args.kind == index_kinds.HNSW_PCA:
        projection = np.load(args.projection)
        index = hnswlib.Index(space=index_kinds.SPACE, dim=int(projection.shape[0] - 1))
        index.load_index(args.index, max_elements=args.count)
        search = index_kinds.ReducedSearch(index, projection, index_kinds.RowReader(args.descriptors), args.rerank)
    else:  # the runtime holds the float32 descriptors in memory beside the index
        held = np.load(args.descriptors).astype(np.float32)
        index = hnswlib.Index(space=index_kinds.SPACE, dim=args.dim)
        index.load_index(args.index, max_elements=args.count)
        search = index_kinds.HnswSearch(index)
    load_s = time.perf_counter() - t0
    loaded = status_mb()
    for q in queries:
        search.knn(q[None, :], 1, args.ef)
    after = status_mb()
    after.update({"baseline_rss_mb": baseline["rss_mb"], "after_load_rss_mb": loaded["rss_mb"],
                  "load_s": load_s, "queries": int(len(queries))})
    if args.kind != index_kinds.HNSW_PCA:
        after["descriptors_in_memory_mb"] = held.nbytes / 2 ** 20
    print(json.dumps(after))


if __name__ == "__main__":
    main()
