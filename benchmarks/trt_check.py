"""One command for a Jetson or any NVIDIA GPU with TensorRT: build, check, time.

    python -m jist_edge.benchmarks.trt_check [BUNDLE] [--calibration DIR|VIDEO] [--json OUT]

Builds the FP16 engine (and INT8 where the GPU has fast INT8 and --calibration is
given) from the bundle (default: the workspace model), compares its descriptors with
ONNX Runtime's FP32 on the CPU (max abs difference and cosine), then times batch-1
encoding (p50/p95 ms, FPS). Prints a table and JSON.
"""
import argparse
import json
import os
import sys
import time
from typing import Any, Dict

import numpy as np

from jist_edge.benchmarks.timing import summarize


def _measure(encoder: Any, bundle, runs: int) -> Dict[str, Any]:
    """Descriptors of 8 random frames against ONNX Runtime FP32 on the CPU, then batch-1 timing."""
    from jist_edge.encoder.onnxruntime.backend import OrtEncoder

    rng = np.random.RandomState(0)
    frames = rng.standard_normal((8, 3, bundle.height, bundle.width)).astype(np.float32)
    got = encoder.encode(frames)
    want = OrtEncoder(bundle.encoder_path, providers=["CPUExecutionProvider"]).encode(frames)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    one = frames[:1]
    for _ in range(10):
        encoder.encode(one)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        encoder.encode(one)
        times.append((time.perf_counter() - t) * 1000.0)
    stats = summarize(times)
    return {"max_abs_diff": float(np.abs(got - want).max()), "cosine_min": float(cos.min()),
            "p50_ms": stats["p50_ms"], "p95_ms": stats["p95_ms"], "fps": 1000.0 / stats["p50_ms"]}


def check_precision(bundle, precision: str, cache_dir: str, calibration: Any, runs: int) -> Dict[str, Any]:
    from jist_edge.encoder.tensorrt.backend import open_engine
    from jist_edge.encoder.tensorrt import build as engine_build
    from jist_edge.encoder.tensorrt import cache as engine_cache
    from jist_edge.encoder.tensorrt.cuda_device import CudaDevice
    from jist_edge.calibration.int8_source import int8_source

    source = int8_source(bundle, calibration, 256, cache_dir) if precision == "int8" else None
    started = time.perf_counter()
    path, header = engine_build.build(bundle, "encoder", precision, cache_dir=cache_dir, int8_source=source,
                                      log=lambda m: print(m, file=sys.stderr))
    build_s = time.perf_counter() - started
    data = engine_cache.load_engine(path, {k: header[k] for k in engine_cache.IDENTITY_FIELDS})[0]
    encoder = open_engine(data, header, CudaDevice())  # closes the device if it fails
    try:
        result = _measure(encoder, bundle, runs)
        memory = encoder.describe()
    finally:
        encoder.close()
    result.update({
        "precision": header["precision"], "typing": header["typing"], "engine": path, "build_s": round(build_s, 1),
        "fp32_layers": len(header.get("fp32_layers", [])),
        "engine_device_memory_bytes": memory.get("engine_device_memory_bytes"),
        "api": memory.get("api"), "tensorrt": header["tensorrt"], "gpu": header["gpu"],
    })
    return result


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="?", default=None)
    parser.add_argument("--calibration", default=None, help="image folder or video for INT8")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--engines", default=None, help="engine folder [default: a temporary one]")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args(argv)

    import tempfile

    from jist_edge import workspace

    from jist_edge.bundle import load_bundle
    from jist_edge.encoder.tensorrt import probe
    from jist_edge.errors import JistEdgeError

    try:
        bundle = load_bundle(args.bundle or workspace.model_dir())
        info = probe.platform_info()
        precisions = ["fp16"]
        if info["fast_int8"] and args.calibration:
            precisions.append("int8")
        cache_dir = args.engines or tempfile.mkdtemp(prefix="jist-edge-trt-check-")
        results = [check_precision(bundle, p, cache_dir, args.calibration, args.runs) for p in precisions]
    except JistEdgeError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    print("{} (sm {}), TensorRT {} ({}ly typed), fast FP16 {}, fast INT8 {}; bundle {} at {}x{}{}".format(
        info["gpu"], info["compute_capability"], info["tensorrt"], info["typing"], info["fast_fp16"], info["fast_int8"],
        bundle.bundle_id, bundle.height, bundle.width, " (random weights)" if bundle.random_init else ""))
    print("{:<9} {:>9} {:>12} {:>10} {:>8} {:>8} {:>7}".format(
        "precision", "build s", "max |diff|", "cos min", "p50 ms", "p95 ms", "FPS"))
    for r in results:
        print("{:<9} {:>9.1f} {:>12.3g} {:>10.6f} {:>8.2f} {:>8.2f} {:>7.1f}".format(
            r["precision"], r["build_s"], r["max_abs_diff"], r["cosine_min"], r["p50_ms"], r["p95_ms"], r["fps"]))
    report = {"platform": info, "bundle_id": bundle.bundle_id, "input_hw": [bundle.height, bundle.width],
              "results": results}
    print(json.dumps(report, indent=2, sort_keys=True))
    if args.json_out:
        from jist_edge.fileio import write_json_atomic
        write_json_atomic(os.path.abspath(args.json_out), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
