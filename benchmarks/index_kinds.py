"""Index kinds vs map size, up to a million places: runtime memory, build time, p50/p95, agreement.

The question is what a 4 GB Jetson Nano can hold. For each map size and index kind
(search/index.py) this measures

- runtime memory: a fresh process (benchmarks/index_probe.py) opens the index the way the
  runtime does (hnsw: index + float32 descriptors in memory; hnsw-pca: reduced index +
  projection, candidate rows read from the float16 descriptor file), answers every query, and reports its
  resident set (total, anonymous, file-backed) and peak;
- build time (all cores here; `map build` uses one thread to be byte-reproducible), cached on
  disk between runs because a million-place build takes many minutes on two cores;
- single-query p50/p95 at the matcher's default ef, interleaved between the kinds;
- top-1 agreement with exact float32 search over the float32 descriptors.
"""
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.benchmarks import descriptors
from jist_edge.benchmarks.timing import interleave, summarize
from jist_edge.search import index as index_kinds
from jist_edge.search.matcher import DEFAULT_EF, ExactSearch

Log = Callable[[str], None]
# (name, kind, reduced_dim, rerank); the full kind is measured up to ``full_max`` places
VARIANTS = (("hnsw", index_kinds.HNSW, None, None),
            ("hnsw-pca64", index_kinds.HNSW_PCA, index_kinds.DEFAULT_REDUCED_DIM, index_kinds.DEFAULT_RERANK))
FULL_MAX = 100000


def _index_key(data: descriptors.RouteDescriptors, kind: str, reduced_dim: Optional[int]) -> str:
    tag = "pca{}".format(reduced_dim) if kind == index_kinds.HNSW_PCA else "full"
    return "{}-{}-M{}-efc{}-s{}".format(data.key, tag, index_kinds.DEFAULT_M, index_kinds.DEFAULT_EF_CONSTRUCTION,
                                        index_kinds.DEFAULT_SEED)


def cached_index(data: descriptors.RouteDescriptors, kind: str, reduced_dim: Optional[int], cache_dir: str,
                 threads: int, log: Log) -> Dict[str, Any]:
    """Paths of the index (and projection) for this data, built once and kept in ``cache_dir``."""
    base = os.path.join(cache_dir, _index_key(data, kind, reduced_dim))
    paths = {"index": base + ".hnsw", "info": base + ".json",
             "projection": base + ".projection.npy" if kind == index_kinds.HNSW_PCA else None}
    if os.path.exists(paths["info"]):
        with open(paths["info"]) as handle:
            paths["build"] = dict(json.load(handle), cached=True)
        return paths
    log("  building {} index over {:,} places on {} threads (kept in {})".format(
        kind, data.n, threads, cache_dir))
    t0 = time.perf_counter()
    vectors = np.asarray(data.database, dtype=np.float32)
    if kind == index_kinds.HNSW_PCA:  # as map build: over the float16 values the map stores
        stored = np.load(data.float16_path(), mmap_mode="r")
        projection = index_kinds.fit_projection(stored, int(reduced_dim))
        descriptors._save_atomic(paths["projection"], projection)
        vectors = index_kinds.project(stored, projection)
    index = index_kinds.build_hnsw(vectors, index_kinds.DEFAULT_M, index_kinds.DEFAULT_EF_CONSTRUCTION,
                                   index_kinds.DEFAULT_SEED, threads=threads)
    build_s = time.perf_counter() - t0
    from jist_edge.fileio import atomic_path, write_json_atomic

    with atomic_path(paths["index"]) as tmp:
        index.save_index(tmp)
    paths["build"] = {"build_s": build_s, "build_threads": threads, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json_atomic(paths["info"], paths["build"])
    paths["build"]["cached"] = False
    return paths


def open_search(paths: Dict[str, Any], data: descriptors.RouteDescriptors, kind: str, rerank: Optional[int]) -> Any:
    """The runtime's search object over the cached files (search.index)."""
    import hnswlib

    if kind == index_kinds.HNSW_PCA:
        projection = np.load(paths["projection"])
        index = hnswlib.Index(space=index_kinds.SPACE, dim=int(projection.shape[0] - 1))
        index.load_index(paths["index"], max_elements=data.n)
        return index_kinds.ReducedSearch(index, projection, index_kinds.RowReader(data.float16_path()), int(rerank))
    index = hnswlib.Index(space=index_kinds.SPACE, dim=data.dim)
    index.load_index(paths["index"], max_elements=data.n)
    return index_kinds.HnswSearch(index)


def probe(paths: Dict[str, Any], data: descriptors.RouteDescriptors, kind: str, rerank: Optional[int],
          queries_path: str) -> Dict[str, Any]:
    """Runtime memory of one index kind, measured in a fresh process (see index_probe.py)."""
    f16 = data.float16_path() if kind == index_kinds.HNSW_PCA else data.path
    cmd = [sys.executable, "-m", "jist_edge.benchmarks.index_probe", "--kind", kind, "--index", paths["index"],
           "--descriptors", f16, "--queries", queries_path, "--count", str(data.n), "--dim", str(data.dim),
           "--ef", str(DEFAULT_EF)]
    if kind == index_kinds.HNSW_PCA:
        cmd += ["--projection", paths["projection"], "--rerank", str(rerank)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError("index probe failed: {}".format(out.stderr.strip().splitlines()[-1:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_size(n: int, variants: Sequence[tuple], n_queries: int, cache_dir: str, threads: int, log: Log,
               seed: int = 0) -> List[Dict[str, Any]]:
    """Every variant at one map size; single-query times interleaved between them."""
    data = descriptors.RouteDescriptors(n, dim=512, seed=seed, cache_dir=cache_dir)
    queries, _ = data.queries(n_queries, seed=seed + 7)
    queries_path = os.path.join(cache_dir, "{}-q{}.npy".format(data.key, n_queries))
    descriptors._save_atomic(queries_path, queries)
    exact_top1 = ExactSearch(data.database).query(queries, 1)[0][:, 0]
    rows, searches = [], {}
    for name, kind, reduced_dim, rerank in variants:
        paths = cached_index(data, kind, reduced_dim, cache_dir, threads, log)
        search = searches[name] = open_search(paths, data, kind, rerank)
        top1 = search.knn(queries, 1, DEFAULT_EF)[0][:, 0]
        files = [paths["index"]] + ([paths["projection"], data.float16_path()] if kind == index_kinds.HNSW_PCA else [data.path])
        rows.append({"n": int(n), "name": name, "kind": kind, "reduced_dim": reduced_dim, "rerank": rerank,
                     "ef": DEFAULT_EF, "build": paths["build"], "index_file_bytes": os.path.getsize(paths["index"]),
                     "map_files_bytes": int(sum(os.path.getsize(f) for f in files)),
                     "top1_agreement_with_exact": float(np.mean(top1 == exact_top1)),
                     "runtime": probe(paths, data, kind, rerank, queries_path)})
    fns = {name: _one_query(search, queries) for name, search in searches.items()}
    samples = interleave(fns, rounds=n_queries, warmup=5)
    for row in rows:
        row["query"] = summarize(samples[row["name"]])
        log("  {:>9,} {:<11} rss {:7.0f} MiB (anon {:6.0f})  p50 {:.3f} ms  p95 {:.3f} ms  agreement {:.3f}  "
            "build {:.0f} s{}".format(n, row["name"], row["runtime"]["rss_mb"], row["runtime"]["rss_anon_mb"],
                                      row["query"]["p50_ms"], row["query"]["p95_ms"], row["top1_agreement_with_exact"],
                                      row["build"]["build_s"], " (cached)" if row["build"]["cached"] else ""))
    return rows


def _one_query(search: Any, queries: np.ndarray) -> Callable[[], Any]:
    state = {"i": 0}

    def call() -> Any:
        q = queries[state["i"] % len(queries)][None, :]
        state["i"] += 1
        return search.knn(q, 1, DEFAULT_EF)

    return call


def run(sizes: Sequence[int], n_queries: int, cache_dir: str, log: Log, threads: int = 0,
        full_max: int = FULL_MAX) -> Dict[str, Any]:
    """The index-kinds table: every size, the full kind only up to ``full_max`` places."""
    threads = threads or os.cpu_count() or 1
    os.makedirs(cache_dir, exist_ok=True)
    rows = []  # type: List[Dict[str, Any]]
    for n in sizes:
        variants = [v for v in VARIANTS if v[1] != index_kinds.HNSW or n <= full_max]
        log("index kinds: {:,} places ({})".format(n, ", ".join(v[0] for v in variants)))
        rows.extend(bench_size(n, variants, n_queries, cache_dir, threads, log))
    return {"rows": rows, "ef": DEFAULT_EF, "full_max": int(full_max), "build_threads": threads,
            "variants": [{"name": v[0], "kind": v[1], "reduced_dim": v[2], "rerank": v[3]} for v in VARIANTS],
            "note": "runtime memory from a fresh process per kind (index_probe.py); builds cached in {}".format(
                cache_dir)}


# --- report: a Markdown table and a plot (called by report.py) --------------------------------

RSS_BUDGET_MB = 1200.0 * 1000 ** 2 / 2 ** 20  # the 1.2 GB for a 4 GB Nano, in MiB
PLOT = "index_kinds.png"


def markdown(section: Dict[str, Any]) -> List[str]:
    lines = ["", "### Index kinds up to {:,} places".format(max(r["n"] for r in section["rows"])), "",
             "Runtime memory of a fresh process holding the index as the runtime does (hnsw: index + float32 "
             "descriptors in memory; hnsw-pca: {}-D PCA index, the best {} candidates re-ranked with rows read "
             "from the float16 descriptor file), after {} queries; single-query times at ef={} interleaved between the kinds; "
             "agreement = top-1 equal to exact float32 search. Builds on {} threads, cached between runs."
             .format(index_kinds.DEFAULT_REDUCED_DIM, index_kinds.DEFAULT_RERANK, section["rows"][0]["runtime"]["queries"],
                     section["ef"], section["build_threads"]), "",
             "| places | kind | RSS MiB (anon / file) | p50 / p95 ms | top-1 = exact | build s | files MiB |",
             "|---|---|---|---|---|---|---|"]
    for r in section["rows"]:
        rt = r["runtime"]
        lines.append("| {:,} | {} | {:.0f} ({:.0f} / {:.0f}) | {:.3f} / {:.3f} | {:.4f} | {:.0f}{} | {:.0f} |".format(
            r["n"], r["name"], rt["rss_mb"], rt["rss_anon_mb"], rt["rss_file_mb"], r["query"]["p50_ms"],
            r["query"]["p95_ms"], r["top1_agreement_with_exact"], r["build"]["build_s"],
            " (cached)" if r["build"]["cached"] else "", r["map_files_bytes"] / 2 ** 20))
    return lines


def plot(section: Dict[str, Any], plt: Any, path_for: Callable[[str], str]) -> str:
    """RSS and p50 vs map size per kind, with the 1.2 GB budget; returns the file name."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in sorted({r["name"] for r in section["rows"]}):
        rows = [r for r in section["rows"] if r["name"] == name]
        ns = [r["n"] for r in rows]
        left.plot(ns, [r["runtime"]["rss_mb"] for r in rows], "o-", label=name)
        right.plot(ns, [r["query"]["p50_ms"] for r in rows], "o-", label=name)
    left.axhline(RSS_BUDGET_MB, color="k", linestyle=":", label="1.2 GB budget")
    right.axhline(2.0, color="k", linestyle=":", label="2 ms")
    for ax, label in ((left, "runtime RSS (MiB)"), (right, "single-query p50 (ms)")):
        ax.set_xscale("log")
        ax.set_xlabel("map size (places)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    left.set_title("Memory per index kind")
    right.set_title("Query latency per index kind")
    fig.savefig(path_for(PLOT), dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return PLOT


def city_scale(section: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The largest hnsw-pca row, the one the city-scale claim is decided on (None when none ran)."""
    rows = [(i, r) for i, r in enumerate(section["rows"]) if r["kind"] == index_kinds.HNSW_PCA]
    return max(rows, key=lambda ir: ir[1]["n"]) if rows else None


def write_report(section: Dict[str, Any], machine: Dict[str, Any], out_dir: str) -> List[str]:
    """index_kinds.json, README.md (the table) and the plot in ``out_dir``."""
    from jist_edge.benchmarks.machine import one_line
    from jist_edge.fileio import atomic_path, write_bytes_atomic, write_json_atomic

    os.makedirs(out_dir, exist_ok=True)
    write_json_atomic(os.path.join(out_dir, "index_kinds.json"), {"machine": machine, "index_kinds": section})
    text = ["# Index kinds vs map size", "", "Run on **{}**; load average at the end {}.".format(
        one_line(machine), section.get("load_average", "?"))] + markdown(section) + ["", "![index kinds]({})".format(PLOT), ""]
    write_bytes_atomic(os.path.join(out_dir, "README.md"), "\n".join(text).encode("utf-8"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_path(os.path.join(out_dir, PLOT)) as tmp:
        plot(section, plt, lambda name: tmp)
    return [os.path.join(out_dir, n) for n in ("README.md", "index_kinds.json", PLOT)]


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Only the index-kinds table (the bench's matching section runs it too):
    ``python -m jist_edge.benchmarks.index_kinds --sizes 10000,100000,1000000 --cache DIR --report DIR``."""
    import argparse

    from jist_edge.benchmarks.machine import machine_info

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--cache", default=os.path.expanduser("~/.jist-edge/bench-cache/matching"))
    parser.add_argument("--report", required=True)
    args = parser.parse_args(argv)
    section = run([int(s) for s in args.sizes.split(",")], args.queries, args.cache, print, threads=args.threads)
    section["load_average"] = [round(v, 2) for v in os.getloadavg()]
    for path in write_report(section, machine_info(), args.report):
        print("written: " + path)


if __name__ == "__main__":
    main()
