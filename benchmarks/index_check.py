"""What the hnswlib structure check (jist_edge.search.index_check) costs, next to the sha256
that load_map already computes over the same file, at 100k and 1M places.

Indexes are built once with small vectors (the build is what takes time; the check reads
the link structure and the labels) and then re-embedded at the map's real 512-D by writing
zero vectors into a copy of the file: same graph, real file size and page layout. Timings
are interleaved (check, sha256, check, ...) and reported as medians and as a ratio.

    python -m jist_edge.benchmarks.index_check --sizes 100000 1000000 --cache /tmp/idx [--ef-construction 40 --threads 2]
"""
import argparse
import json
import os
import statistics
import time
from typing import Any, Dict, Sequence

import numpy as np

from jist_edge.fileio import sha256_file
from jist_edge.search.index_check import HEADER, check_hnsw_index
from jist_edge.maps.store import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, DEFAULT_SEED

BUILD_DIM = 16


def built_index(cache: str, n: int, ef_construction: int, threads: int, dim: int = BUILD_DIM) -> str:
    """An hnswlib index of n random dim-D vectors at M=16 (built once, cached by size and ef_construction).

    ef_construction changes which neighbours are chosen, not how many or the level of any
    element, so a cheaper build has the same structure to check."""
    path = os.path.join(cache, "hnsw-{}x{}{}.bin".format(
        n, dim, "" if ef_construction == DEFAULT_EF_CONSTRUCTION else "-efc{}".format(ef_construction)))
    if not os.path.exists(path):
        import hnswlib

        data = np.random.RandomState(0).rand(n, dim).astype(np.float32)
        started = time.perf_counter()
        index = hnswlib.Index(space="l2", dim=dim)
        index.init_index(max_elements=n, ef_construction=ef_construction, M=DEFAULT_M, random_seed=DEFAULT_SEED)
        index.add_items(data, np.arange(n), num_threads=threads)
        index.save_index(path + ".tmp")
        os.replace(path + ".tmp", path)
        print("built {} in {:.0f} s".format(path, time.perf_counter() - started))
    return path


def reembed(src: str, dim: int, dst: str, chunk: int = 100000) -> str:
    """The same graph with ``dim``-D zero vectors: header offsets, level-0 rows and the tail rewritten."""
    if os.path.exists(dst):
        return dst
    raw = np.memmap(src, dtype=np.uint8, mode="r")
    head = np.frombuffer(raw[:HEADER.itemsize].tobytes(), dtype=HEADER).copy()
    n, size, links = int(head["count"][0]), int(head["size_data_per_element"][0]), int(head["offset_data"][0])
    label = int(head["label_offset"][0])
    new_size = links + 4 * dim + 8
    head["label_offset"], head["size_data_per_element"] = links + 4 * dim, new_size
    with open(dst + ".tmp", "wb") as out:
        out.write(head.tobytes())
        rows = np.ndarray((n, size), dtype=np.uint8, buffer=raw, offset=HEADER.itemsize)
        for start in range(0, n, chunk):
            part = rows[start:start + chunk]
            block = np.zeros((len(part), new_size), dtype=np.uint8)
            block[:, :links] = part[:, :links]
            block[:, -8:] = part[:, label:label + 8]
            out.write(block.tobytes())
        out.write(raw[HEADER.itemsize + n * size:].tobytes())
    os.replace(dst + ".tmp", dst)
    return dst


def time_check(path: str, dim: int, n: int, rounds: int, ef_construction: int) -> Dict[str, Any]:
    """Interleaved: structure check, then sha256 of the same file, ``rounds`` times."""
    check_s, sha_s = [], []  # type: List[float], List[float]
    sha256_file(path)  # warm the page cache once
    for _ in range(rounds):
        t = time.perf_counter()
        info = check_hnsw_index(path, dim, n, DEFAULT_M, ef_construction)
        check_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        sha256_file(path)
        sha_s.append(time.perf_counter() - t)
    return {
        "places": n, "dim": dim, "bytes": os.path.getsize(path), "levels": info["levels"], "rounds": rounds,
        "check_s_median": statistics.median(check_s), "check_s_max": max(check_s),
        "sha256_s_median": statistics.median(sha_s),
        "check_over_sha256": statistics.median([c / s for c, s in zip(check_s, sha_s)]),
    }


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100000, 1000000])
    parser.add_argument("--dims", type=int, nargs="+", default=[BUILD_DIM, 512])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ef-construction", type=int, default=DEFAULT_EF_CONSTRUCTION)
    parser.add_argument("--threads", type=int, default=1, help="build threads (the build need not be reproducible)")
    parser.add_argument("--cache", default="/tmp/jist-edge-index-check")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    os.makedirs(args.cache, exist_ok=True)
    rows = []
    for n in args.sizes:
        base = built_index(args.cache, n, args.ef_construction, args.threads)
        for dim in args.dims:
            path = base if dim == BUILD_DIM else reembed(base, dim, base.replace("x{}".format(BUILD_DIM), "x{}".format(dim)))
            row = time_check(path, dim, n, args.rounds, args.ef_construction)
            print("{places:>8} places {dim:>4}-D {mb:8.1f} MB: check {check_s_median:.3f} s (max {check_s_max:.3f}), "
                  "sha256 {sha256_s_median:.3f} s, check/sha256 {check_over_sha256:.2f}".format(mb=row["bytes"] / 1e6, **row))
            rows.append(row)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
