"""A real million-place map folder, and what the runtime pays to open and query it.

``index_kinds.py`` measures the index alone. Here the whole map is measured: a map folder
of route-like drives (benchmarks/descriptors.py, 200 drives of 5,000 places at 1M) written
with the map store's own writers, the hnsw-pca index taken from the bench cache (built by
index_kinds.py over exactly these float16 descriptors, with the same projection), then a
fresh process runs ``load_map`` (every checksum verified), opens the matcher and answers
queries, and reports its resident memory (total, anonymous, file-backed) and times.

    python -m jist_edge.benchmarks.city_map --places 1000000 --out /tmp/city --json city.json
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List

import numpy as np

from jist_edge.benchmarks import descriptors, index_kinds
from jist_edge.search import index as kinds
from jist_edge.maps import store
from jist_edge.maps.store import FrameTable

_MEASURE = r"""
import json, sys, time
import numpy as np
from jist_edge.benchmarks.index_probe import status_mb
from jist_edge.maps.store import load_map
from jist_edge.search.matcher import Matcher
base = status_mb()
t0 = time.perf_counter(); m = load_map(sys.argv[1]); load_s = time.perf_counter() - t0
matcher = Matcher(m)
loaded = status_mb()
queries = np.load(sys.argv[2])
times = []
for q in queries:
    t = time.perf_counter(); matcher.query(q, k=1); times.append(time.perf_counter() - t)
out = status_mb()
out.update({"baseline_rss_mb": base["rss_mb"], "after_load_rss_mb": loaded["rss_mb"], "load_s": load_s,
            "query_p50_ms": 1000 * float(np.median(times)), "query_p95_ms": 1000 * float(np.percentile(times, 95)),
            "queries": len(times), "sequences": m.count, "drives": len(m.drives)})
print(json.dumps(out))
"""


def _drive_tables(data: descriptors.RouteDescriptors, frames_path: str) -> (FrameTable, List[Dict[str, Any]]):
    """Frame descriptors of every drive into a float32 memory map, and the frame table and drive records."""
    counts = [min(data.drive_len, data.n - first) + data.seq_len - 1 for first in data.firsts]
    out = np.lib.format.open_memmap(frames_path, mode="w+", dtype=np.float32, shape=(sum(counts), data.dim))
    names, positions, records, row = [], [], [], 0
    for d, count in enumerate(counts):
        out[row:row + count] = data._frames(d)
        names += ["d{:03d}f{:05d}".format(d, i) for i in range(count)]
        positions.append(np.c_[np.arange(count) * 1.0, np.full(count, 100.0 * d)])
        records.append({"frames": count, "source": {"kind": "synthetic", "path": "route-walk drive {}".format(d)},
                        "skipped_frames": 0, "positions": {"frame": "metric"}})
        row += count
    out.flush()
    table = FrameTable(list(range(row)), names, [None] * row, np.concatenate(positions))
    return table, records


def assemble(places: int, out_dir: str, cache_dir: str) -> str:
    """Write the map folder; the index and projection come from the bench cache (built if missing)."""
    data = descriptors.RouteDescriptors(places, dim=512, seed=0, cache_dir=cache_dir)
    paths = index_kinds.cached_index(data, kinds.HNSW_PCA, kinds.DEFAULT_REDUCED_DIM, cache_dir, 0, print)
    stored = np.load(data.float16_path(), mmap_mode="r")
    scratch = out_dir + ".frames.npy"
    table, drives = _drive_tables(data, scratch)
    frames = np.load(scratch, mmap_mode="r")
    meta = kinds.IndexSpec(kinds.HNSW_PCA).meta(places)
    manifest = store._manifest(_BenchBundle(), table, data.seq_len, stored, drives, meta)
    manifest["index"]["build_threads"] = paths["build"]["build_threads"]
    with store.staged_directory(out_dir) as stage:
        shutil.copyfile(paths["index"], os.path.join(stage, store.INDEX_FILE))
        shutil.copyfile(paths["projection"], os.path.join(stage, kinds.PROJECTION_FILE))
        seq_frames = store.drive_layout.window_rows([d["frames"] for d in drives], data.seq_len)
        store._write_tables(stage, stored, frames, table, seq_frames)
        manifest["files"] = {n: store.file_record(os.path.join(stage, n)) for n in store.data_files(manifest)}
        store.write_json_atomic(os.path.join(stage, store.MANIFEST_FILE), manifest)
    os.unlink(scratch)
    return out_dir


class _BenchBundle(object):
    """The model identity a synthetic map records (no model made these descriptors)."""
    bundle_id, path, random_init = "synthetic-route-walk", None, True
    height, width, seqgem_p, seqgem_eps = 480, 640, 3.0, 1e-6


def measure(map_dir: str, queries_path: str) -> Dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _MEASURE, map_dir, queries_path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--places", type=int, default=1000000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cache", default=os.path.expanduser("~/.jist-edge/bench-cache/matching"))
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    t0 = time.perf_counter()
    if not os.path.isdir(args.out):
        assemble(args.places, args.out, args.cache)
    data = descriptors.RouteDescriptors(args.places, dim=512, seed=0, cache_dir=args.cache)
    qpath = os.path.join(args.cache, "{}-q{}.npy".format(data.key, args.queries))
    if not os.path.exists(qpath):
        descriptors._save_atomic(qpath, data.queries(args.queries, seed=7)[0])
    result = measure(args.out, qpath)
    result.update({"places": args.places, "map_bytes": sum(os.path.getsize(os.path.join(args.out, n))
                                                          for n in os.listdir(args.out)),
                   "total_s": time.perf_counter() - t0, "load_average": os.getloadavg()})
    print(json.dumps(result, indent=1))
    if args.json:
        store.write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
