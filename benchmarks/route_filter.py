"""The route filter's cost per frame vs map size, and the map statistics' cost on load.

The filter's work per frame should not grow with the map: a sparse belief of at most
``window`` places plus the K observed ones. Each size is timed interleaved with a
1,000-place map fed the same kind of stream, so the ratio (time at N / time at 1,000)
says whether the cost grows with N, whatever the machine's load. The stream is a
vehicle moving 1.3 places per frame with top-K observations that hold its place (and
neighbours) among random confusers; the filter's answer is checked against it.

    python -m jist_edge.benchmarks.route_filter --sizes 1000 100000 1000000
"""
import argparse
import json
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.benchmarks.timing import compare
from jist_edge.filter.route_filter import FilterParams, RouteFilter
from jist_edge.positions import POSITIVE_RADIUS_M

Log = Callable[[str], None]
BASE_SIZE = 1000
SPEED = 1.3  # places per frame
SPACING_M = 2.0


def synthetic_stats(k: int) -> Dict[str, Any]:
    """Distance statistics matching ``observations``: confusers from 1.0 up, spread 0.5 over K."""
    return {"confuser_best": {"p50": 1.0, "p95": 1.3, "p99": 1.4}, "confuser_spread": {"p50": 0.5},
            "place_spacing_m": SPACING_M, "k": int(k)}


def observations(count: int, frames: int, k: int, seed: int = 0) -> List[Any]:
    """Per frame (true place, top-K ids, distances): the true place and 3 neighbours a little closer
    than K-4 random confusers, and one frame in ten where a confuser wins."""
    rng = np.random.RandomState(seed)
    out = []
    for t in range(frames):
        place = int(SPEED * t) % count
        near = np.unique(np.clip(place + np.array([0, -1, 1, 2]), 0, count - 1))
        others = rng.randint(0, count, size=3 * k)
        others = np.array([o for o in dict.fromkeys(others.tolist()) if o not in set(near.tolist())][:k - len(near)])
        ids = np.concatenate([near, others])
        dists = np.concatenate([rng.uniform(0.8, 1.0, len(near)), rng.uniform(0.95, 1.5, len(others))])
        if rng.rand() < 0.1:
            dists[len(near)] = 0.7
        order = np.argsort(dists)
        out.append((place, ids[order], dists[order]))
    return out


class _Feed(object):
    """A filter on a map of ``count`` places with its stream, one update per call."""

    def __init__(self, count: int, frames: int, params: FilterParams, seed: int) -> None:
        positions = np.stack([np.arange(count) * SPACING_M, np.zeros(count)], axis=1)
        self.filter = RouteFilter(count, [0, count], synthetic_stats(params.top_k), positions, POSITIVE_RADIUS_M, params)
        self.stream = observations(count, frames, params.top_k, seed)
        self.i = 0
        self.support = []  # type: List[int]
        self.hits = 0

    def __call__(self) -> None:
        place, ids, dists = self.stream[self.i % len(self.stream)]
        self.i += 1
        est = self.filter.update(ids, dists, timestamp=self.i * 0.1)
        self.support.append(len(self.filter.idx))
        self.hits += int(abs(est.seq_id - place) <= 12)


def run(sizes: Sequence[int], frames: int = 300, warmup: int = 30, params: Optional[FilterParams] = None,
        stats_size: int = 0, log: Log = print) -> Dict[str, Any]:
    """Per size: update latency, ratio to a 1,000-place map, support size, hit rate; stats cost."""
    params = params or FilterParams()
    rows = []
    for n in sizes:
        base, big = _Feed(BASE_SIZE, frames + warmup, params, 1), _Feed(int(n), frames + warmup, params, 1)
        result = compare({"map_{}".format(BASE_SIZE): base, "map_n": big}, "map_{}".format(BASE_SIZE), frames,
                         warmup=warmup)
        stats = result["stats"]["map_n"]
        row = {"n": int(n), "update": stats, "ratio_to_1000_places": result["ratio_to_baseline"]["map_n"],
               "support_p50": float(np.median(big.support)), "support_max": int(max(big.support)),
               "within_12_places": round(big.hits / float(max(1, big.i)), 4), "frames": result["rounds"]}
        rows.append(row)
        log("  route filter {:>9,} places: update p50 {:.3f} ms p95 {:.3f} ms p99 {:.3f} ms; x{:.2f} the 1,000-place "
            "time (median); support {:.0f} places".format(n, stats["p50_ms"], stats["p95_ms"], stats["p99_ms"],
                                                          row["ratio_to_1000_places"]["median"], row["support_p50"]))
    out = {"params": params.as_dict(), "speed_places_per_frame": SPEED, "sizes": rows,
           "stream": "synthetic top-K observations of a vehicle moving {} places/frame (see module doc)".format(SPEED)}
    if stats_size:
        out["stats_on_load"] = stats_cost(int(stats_size), log)
    return out


def stats_cost(n: int, log: Log = print) -> Dict[str, Any]:
    """compute_distance_stats on an n-place route-like map with its hnswlib index (what a map made
    before the statistics existed costs on load)."""
    from jist_edge.benchmarks import descriptors, search
    from jist_edge.filter.distance_stats import compute_distance_stats
    from jist_edge.search.index import HnswSearch

    data = descriptors.RouteDescriptors(n, dim=512, seed=3)
    index, build_s, _ = search.build_index(data.database)
    t0 = time.perf_counter()
    stats = compute_distance_stats(data.database, np.array([0, n]), 5, index=HnswSearch(index))
    seconds = time.perf_counter() - t0
    log("  map distance statistics on load, {:,} places: {:.2f} s ({} probes, hnswlib)".format(
        n, seconds, stats["probes"]))
    return {"n": n, "seconds": round(seconds, 4), "probes": stats["probes"], "index_build_s": round(build_s, 2)}


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="route filter cost per frame vs map size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--stats-size", type=int, default=0, help="also time the map statistics at this size")
    parser.add_argument("--out", default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = run(args.sizes, args.frames, stats_size=args.stats_size)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
