"""Per-stage latency of the streaming runtime on a real MJPG video, in a fresh process.

Run as ``python -m jist_edge.benchmarks.pipeline ...`` by the bench so that the peak
resident memory is that of the runtime alone (no torch, no benchmark data in the
process). Each frame: OpenCV decode (timed here), then ``Localizer.process`` (the
runtime's own preprocess -> encode -> descriptor ring -> SeqGeM -> match, timed by the
runtime). End-to-end = decode + the runtime's total.
"""
import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.benchmarks.memory import current_rss_mb, gpu_memory, peak_rss_mb
from jist_edge.benchmarks.timing import per_round_ratios, ratio_summary, summarize

STAGES = ("decode", "preprocess", "encode", "seqgem", "match", "end_to_end")


def run_fresh(module: str, args: Sequence[str], what: str) -> Dict[str, Any]:
    """``python -m module ARGS --out FILE`` in a fresh process (the runtime's memory alone); its JSON result."""
    import subprocess
    import tempfile

    from jist_edge.errors import JistEdgeError

    with tempfile.TemporaryDirectory(prefix="jist-bench-out-") as work:
        out = os.path.join(work, "result.json")
        proc = subprocess.Popen([sys.executable, "-m", module] + list(args) + ["--out", out],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = proc.communicate()[0].decode("utf-8", "replace")
        if proc.returncode != 0:
            raise JistEdgeError("the {} process failed: {}".format(what, output.strip().splitlines()[-3:]))
        with open(out) as handle:
            return json.load(handle)


def make_video(path: str, frames: int, size: Sequence[int], seed: int = 0) -> str:
    """A query pass of a synthetic street route as MJPG .avi (what a camera file looks like)."""
    from jist_edge.synth.traversal import Route, make_traversal, write_video

    route = Route(seed=seed, length_m=max(40.0, frames * 2.6 + 10.0))
    traversal = make_traversal(route, "query", height=int(size[0]), width=int(size[1]), seed=seed, count=frames)
    write_video(traversal, path)
    return path


def make_map(bundle: Any, out_dir: str, frames: int, size: Sequence[int], seed: int = 0) -> str:
    """A real map folder from a synthetic database pass, built by the project's map builder."""
    from jist_edge.maps.build import build_map
    from jist_edge.synth.traversal import Route, make_traversal

    route = Route(seed=seed, length_m=max(40.0, frames * 2.0 + 10.0))
    traversal = make_traversal(route, "database", height=int(size[0]), width=int(size[1]), seed=seed, count=frames)
    images = [frame for frame, _, _ in traversal]
    build_map(bundle, images, out_dir, force=True)
    return out_dir


def run(bundle_dir: str, map_dir: str, video: str, backend: str, runs: int, warmup: int,
        ef: Optional[int] = None, exact: bool = False) -> Dict[str, Any]:
    import cv2

    from jist_edge.bundle import load_bundle
    from jist_edge.pipeline.localizer import Localizer
    from jist_edge.maps.store import load_map

    rss_start = current_rss_mb()
    bundle = load_bundle(bundle_dir)
    place_map = load_map(map_dir, bundle=bundle)
    loc = Localizer(bundle, place_map, backend=backend, ef=ef, exact=exact)
    warmup = max(int(warmup), loc.seq_len)  # time full windows only, not the partial start
    cap = cv2.VideoCapture(video)
    samples: Dict[str, List[float]] = {s: [] for s in STAGES}
    partial = 0
    try:
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            ok, frame = cap.read()
            decode_s = time.perf_counter() - t0
            if not ok:
                raise RuntimeError("video {} ended after {} frames; it needs {}".format(video, i, warmup + runs))
            result = loc.process(frame, i, capture_wait=decode_s)
            if i < warmup:
                continue
            partial += int(result.partial)
            lat = result.latency
            samples["decode"].append(lat["capture_wait"])
            for stage in ("preprocess", "encode", "seqgem", "match"):
                samples[stage].append(lat[stage])
            samples["end_to_end"].append(lat["capture_wait"] + lat["total"])
        describe = loc.describe()
    finally:
        cap.release()
        loc.close()
    overhead = [(e - c) / c for e, c in zip(samples["end_to_end"], samples["encode"]) if c > 0]
    return {
        "runs": int(runs),
        "warmup": int(warmup),
        "partial_results_timed": int(partial),
        "video": {"path": os.path.basename(video), "codec": "MJPG", "frame_height": int(frame.shape[0]),
                  "frame_width": int(frame.shape[1])},
        "model": {"height": bundle.height, "width": bundle.width, "seq_len": loc.seq_len,
                  "random_init": bundle.random_init},
        "map": {"sequences": int(place_map.count), "dim": int(place_map.dim),
                "matcher": describe.get("matcher"), "ef": None if exact else loc.matcher.ef},
        "runtime": describe,
        "stages": {stage: summarize(values) for stage, values in samples.items()},
        "overhead_over_encode": ratio_summary(overhead),
        "encode_share_of_end_to_end": ratio_summary(per_round_ratios(samples["encode"], samples["end_to_end"])),
        "memory": {
            "rss_at_start_mb": rss_start,
            "peak_rss_mb": peak_rss_mb(),
            "torch_imported": "torch" in sys.modules,
            "gpu": gpu_memory(),
        },
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="per-stage latency of the runtime (used by jist-edge bench)")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--map", required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--ef", type=int, default=None)
    parser.add_argument("--exact", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = run(args.bundle, args.map, args.video, args.backend, args.runs, args.warmup, args.ef, args.exact)
    with open(args.out, "w") as handle:
        json.dump(result, handle, default=_jsonable)
    return 0


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


if __name__ == "__main__":
    sys.exit(main())
