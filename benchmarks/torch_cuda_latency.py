"""PyTorch CUDA latency of the JIST frame encoder, FP32 vs FP16, at several resolutions.

For the GPU machines that have PyTorch with CUDA but no TensorRT: it gives the
GPU-side reference numbers for the benchmark report. Needs only torch and this
repository (run from its root: ``python3 benchmarks/torch_cuda_latency.py --out DIR``).
Random weights: they do not change speed.
"""
import argparse
import importlib.util
import json
import os
import platform
import sys
import time


def _load_repo_module(package: str, name: str):
    """jist_edge.<package>.<name> when installed, else <repo>/<package>/<name>.py by path (a bare GPU machine)."""
    try:
        return importlib.import_module("jist_edge.{}.{}".format(package, name))
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, os.pardir, package, name + ".py")
        spec = importlib.util.spec_from_file_location("jist_{}_{}".format(package, name), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def time_cuda(fn, warmup, runs, torch):
    """Per-call GPU time with CUDA events (ms), after warm-up (wall clock on a CPU dry run)."""
    cuda = torch.cuda.is_available()
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        if not cuda:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
            continue
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    stats = dict(_load_repo_module("benchmarks", "timing").summarize(times))
    stats.update({"runs": runs, "warmup": warmup, "fps": 1000.0 / stats["p50_ms"]})
    return stats


def _graphed(fn, torch):
    """Replay ``fn`` as a CUDA graph: GPU time without Python's per-kernel launch cost."""
    if not torch.cuda.is_available():
        return fn
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def _machine(torch) -> dict:
    """The GPU, torch, CUDA and host the figures came from."""
    cuda = torch.cuda.is_available()
    return {"gpu": torch.cuda.get_device_name(0) if cuda else "none (CPU dry run)",
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d")}


def _write(out: str, machine: dict, results: list, runs: int, warmup: int) -> None:
    """torch_cuda_latency.json (every row) and torch_cuda_latency.md (the table) in ``out``."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "torch_cuda_latency.json"), "w") as handle:
        json.dump({"machine": machine, "results": results, "note": "random weights; CUDA-event GPU time per call"},
                  handle, indent=2)
    lines = ["# PyTorch CUDA encoder latency ({gpu}, torch {torch}, CUDA {cuda})".format(**machine), "",
             "Measured {} with CUDA events: {} timed calls after {} warm-up calls per row; random weights "
             "(weights do not change speed). No TensorRT on this machine.".format(machine["date"], runs, warmup),
             "", "| input | batch | precision | p50 ms | p95 ms | frames/s | 1 - min cosine vs FP32 |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append("| {}x{} | {} | {} | {:.3f} | {:.3f} | {:.0f} | {} |".format(
            r["height"], r["width"], r["batch"], r["precision"], r["p50_ms"], r["p95_ms"], 1000.0 * r["batch"] / r["p50_ms"],
            "-" if r["min_cosine_vs_fp32"] is None else "{:.2e}".format(1.0 - r["min_cosine_vs_fp32"])))
    with open(os.path.join(out, "torch_cuda_latency.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for torch_cuda_latency.json and .md")
    parser.add_argument("--sizes", default="480x640,360x480,240x320,224x224")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--dry-run-cpu", action="store_true", help="check the script on a CPU (numbers meaningless)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.dry_run_cpu:
        print("no CUDA device: this benchmark needs PyTorch with CUDA", file=sys.stderr)
        return 2
    jm = _load_repo_module("export", "model")
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pin = torch.cuda.is_available()
    model32 = jm.build_model(random_init=True, seed=0).to(dev).eval().to(memory_format=torch.channels_last)
    model16 = jm.build_model(random_init=True, seed=0).to(dev).eval().half().to(memory_format=torch.channels_last)
    # FP16 trunk, GeM/L2/Linear in FP32: what the TensorRT build asks for
    mixed = jm.build_model(random_init=True, seed=0).to(dev).eval()
    mixed.model.backbone.half().to(memory_format=torch.channels_last)

    def mixed_encode(x):
        return mixed.model.aggregation(mixed.model.backbone(x.half()).float())

    results = []
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        for batch in (1, 5):
            x32 = torch.randn(batch, 3, h, w, device=dev).contiguous(memory_format=torch.channels_last)
            x16 = x32.half()
            host = torch.randn(batch, 3, h, w)
            host = host.pin_memory() if pin else host
            with torch.inference_mode():
                ref = model32.encode_frames(x32).float()
                d16 = model16.encode_frames(x16).float()
                dmix = mixed_encode(x32).float()
                cos16 = torch.nn.functional.cosine_similarity(ref, d16).min().item()
                cosmix = torch.nn.functional.cosine_similarity(ref, dmix).min().item()
                nan16 = bool(torch.isnan(d16).any().item())
                cases = [
                    ("fp32", lambda: model32.encode_frames(x32), None),
                    ("fp32_cudagraph", _graphed(lambda: model32.encode_frames(x32), torch), None),
                    ("fp16_cudagraph", _graphed(lambda: model16.encode_frames(x16), torch), cos16),
                    ("fp16", lambda: model16.encode_frames(x16), cos16),
                    ("fp16_gem_fp32", lambda: mixed_encode(x32), cosmix),
                    ("fp16+h2d", lambda: model16.encode_frames(host.to(dev, non_blocking=True).half()), cos16),
                ]
                for name, fn, cos in cases:
                    stats = time_cuda(fn, args.warmup, args.runs, torch)
                    stats.update({"height": h, "width": w, "batch": batch, "precision": name,
                                  "min_cosine_vs_fp32": cos, "fp16_nan": nan16 if name == "fp16" else None,
                                  "per_frame_ms": stats["p50_ms"] / batch})
                    results.append(stats)
                    print("{:>4}x{:<4} b{} {:<14} p50 {:7.3f} ms  p95 {:7.3f} ms  {:8.1f} FPS/frame  1-cos {}".format(
                        h, w, batch, name, stats["p50_ms"], stats["p95_ms"], 1000.0 * batch / stats["p50_ms"],
                        "-" if cos is None else "{:.2e}".format(1.0 - cos)), flush=True)
    _write(args.out, _machine(torch), results, args.runs, args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
