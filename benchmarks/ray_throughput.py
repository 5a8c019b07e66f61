"""Frames per second of `map build --ray` with one worker, beside a local build, interleaved.

    python -m jist_edge.benchmarks.ray_throughput --frames 64 --rounds 3 [--model BUNDLE]

Starts a local Ray instance with one CPU (one worker: an ONNX Runtime session with one
intra-op thread), encodes the same MJPG route (synthetic, the bundle's input size) with the
local encoder (ONNX Runtime, default threads) and through the worker in alternating rounds,
and prints frames/s of each and their per-round ratio as JSON. Random weights unless
--model is given (speed does not depend on the weights).
"""
import argparse
import json
import os
import tempfile
import time
from typing import Any, Dict

from jist_edge.encoder import create_encoder
from jist_edge.maps.build import encode_route


def measure(bundle: Any, video: str, rounds: int, batch_size: int = 8) -> Dict[str, Any]:
    import ray

    from jist_edge.maps.cluster import RayEncoderPool, start_local

    start_local(num_cpus=1, attempts=5)
    pool = RayEncoderPool(bundle, batch_size=batch_size, shard_frames=2 * batch_size)
    local = create_encoder(bundle, "onnxruntime")
    try:
        encode_route(bundle, video, batch_size=batch_size, encoder=pool)  # the worker loads + verifies the bundle
        out = {"local": [], "ray_1_worker": []}  # type: Dict[str, Any]
        for _ in range(rounds):
            for name, encoder in (("local", local), ("ray_1_worker", pool)):
                start = time.perf_counter()
                route = encode_route(bundle, video, batch_size=batch_size, encoder=encoder)
                out[name].append(len(route.frames) / (time.perf_counter() - start))
    finally:
        pool.close()
        local.close()
        ray.shutdown()
    out["ray_over_local_per_round"] = [a / b for a, b in zip(out["ray_1_worker"], out["local"])]
    out["load_average"] = list(os.getloadavg())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--img-size", type=int, nargs=2, default=(480, 640))
    args = parser.parse_args()
    from jist_edge.benchmarks import bundles

    work = tempfile.mkdtemp(prefix="jist-ray-throughput-")
    if args.model:
        from jist_edge.bundle import load_bundle

        bundle = load_bundle(args.model)
    else:
        bundle = bundles.random_bundle(work, tuple(args.img_size), 5, print)[0]
    from jist_edge.benchmarks.pipeline import make_video

    video = make_video(os.path.join(work, "route.avi"), args.frames, (bundle.height, bundle.width))
    result = measure(bundle, video, args.rounds)
    result.update({"frames": args.frames, "height": bundle.height, "width": bundle.width,
                   "random_init": bool(bundle.random_init)})
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
