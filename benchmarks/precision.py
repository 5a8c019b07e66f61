"""Encoder precision on the CPU: FP32 vs the INT8 model `calibrate` makes, interleaved.

Per input size: batch-1 encode time of the FP32 encoder and of the U8S8 INT8 encoder
(both ONNX Runtime, same tuned session options), timed in alternating rounds; the
speed-up is fp32/int8 per round (median and spread). At the main size also: ONNX
Runtime session tuning (intra-op threads and thread spinning, both precisions), and
end-to-end FPS of the runtime with each precision (decode -> Localizer.process), again
alternating frame by frame. The INT8 models are calibrated on a synthetic street route
rendered at the bundle's size and cached (keyed like calibrate's) under the bench cache.
Weights are random unless --model was given: the speed does not depend on them, and the
cosine reported beside the speed means only that INT8 computes the same function.
"""
import os
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.benchmarks.timing import interleave, per_round_ratios, ratio_summary, summarize

Log = Callable[[str], None]
CALIBRATION_FRAMES = 16
ROUTE_FRAMES = 12


def load_average() -> List[float]:
    """1/5/15-minute load average: the machine is shared, so every figure says under what load."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []


def synthetic_frames(bundle: Any, count: int, kind: str = "database", seed: int = 0) -> List[np.ndarray]:
    """BGR frames of a synthetic street route at the bundle's size (a stand-in for the user's route)."""
    from jist_edge.synth.traversal import Route, make_traversal

    route = Route(seed=seed, length_m=max(40.0, count * 2.6 + 10.0))
    traversal = make_traversal(route, kind, height=bundle.height, width=bundle.width, seed=seed, count=count)
    return [frame for frame, _, _ in traversal]


def int8_model(bundle: Any, cache_dir: str, log: Log) -> Dict[str, Any]:
    """The installed CPU INT8 model for this bundle (made once, then reused): its header, with "path"."""
    import onnxruntime

    from jist_edge.encoder.onnxruntime import int8_model as store
    from jist_edge.calibration import cpu_int8, fidelity
    from jist_edge.encoder.preprocess import Preprocessor

    engines = os.path.join(cache_dir, "int8", bundle.bundle_id)
    identity = {"source": "synthetic street route (jist_edge.synth, seed 0)", "frames": CALIBRATION_FRAMES,
                "input_hw": [bundle.height, bundle.width]}
    expected = store.expected_header(bundle, onnxruntime.__version__, identity)
    current = cpu_int8.existing_current(engines, expected)
    if current:
        return dict(store.read_header(current), path=current)
    log("precision: calibrating a CPU INT8 model at {}x{} on {} synthetic route frames".format(
        bundle.height, bundle.width, CALIBRATION_FRAMES))
    pre = Preprocessor.for_bundle(bundle)
    with tempfile.TemporaryDirectory(prefix="jist-bench-int8-") as work:
        path = os.path.join(work, "int8.onnx")
        info = cpu_int8.quantize_cpu_int8(bundle, pre.batch(synthetic_frames(bundle, CALIBRATION_FRAMES)), path)
        route = synthetic_frames(bundle, ROUTE_FRAMES, seed=1)
        numbers = fidelity.fidelity_report(bundle, pre.batch(route), pre.batch(fidelity.revisit(route)),
                                           {"int8-cpu": fidelity.ort_encoder(path)})["variants"]["int8-cpu"]
        record = cpu_int8.fidelity_record(numbers, cpu_int8.gate(numbers), True, bundle.random_init)
        return cpu_int8.install(path, engines, expected, record, info)


def open_pair(bundle: Any, engines: str, **options: Any) -> Dict[str, Any]:
    from jist_edge.encoder import create_encoder

    return {"fp32": create_encoder(bundle, "onnxruntime", precision="fp32", **options),
            "int8": create_encoder(bundle, "onnxruntime", precision="int8", cache_dir=engines, **options)}


def speedup(samples: Dict[str, List[float]], slow: str = "fp32", fast: str = "int8") -> Dict[str, float]:
    """Per-round slow/fast time ratio: > 1 means ``fast`` is faster."""
    return ratio_summary(per_round_ratios(samples[slow], samples[fast]))


def bench_size(bundle: Any, cache_dir: str, rounds: int, budget_s: float, log: Log) -> Dict[str, Any]:
    """FP32 vs INT8 batch-1 encode at one input size, interleaved."""
    header = int8_model(bundle, cache_dir, log)
    encoders = open_pair(bundle, os.path.dirname(header["path"]))
    frame = np.random.default_rng(0).standard_normal((1, 3, bundle.height, bundle.width), dtype=np.float32)
    try:
        samples = interleave({k: (lambda e=e: e.encode(frame)) for k, e in encoders.items()}, rounds,
                             warmup=2, budget_s=budget_s)
        describe = encoders["int8"].describe()
    finally:
        for enc in encoders.values():
            enc.close()
    fid = header["fidelity"]
    return {"height": bundle.height, "width": bundle.width, "rounds": len(samples["fp32"]),
            "stats": {k: summarize(v) for k, v in samples.items()}, "speedup": speedup(samples),
            "threads": describe["threads"], "int8_model": header["path"],
            "fidelity": {k: fid[k] for k in ("frame_cosine_mean", "frame_cosine_min", "top1_agreement", "passed")},
            "random_weights": bool(bundle.random_init)}


def bench_session_options(bundle: Any, engines: str, rounds: int, budget_s: float) -> Dict[str, Any]:
    """Threads (1 vs physical cores) x spinning (on/off), both precisions, all interleaved."""
    from jist_edge.encoder.cpu_features import physical_cores

    cores = physical_cores()
    configs = [(t, s) for t in sorted({1, cores}) for s in (False, True)]
    encoders = {}
    for threads, spin in configs:
        pair = open_pair(bundle, engines, threads=threads, spinning=spin)
        for precision, enc in pair.items():
            encoders["{} threads={} spinning={}".format(precision, threads, "on" if spin else "off")] = enc
    frame = np.random.default_rng(1).standard_normal((1, 3, bundle.height, bundle.width), dtype=np.float32)
    try:
        samples = interleave({k: (lambda e=e: e.encode(frame)) for k, e in encoders.items()}, rounds,
                             warmup=1, budget_s=budget_s)
    finally:
        for enc in encoders.values():
            enc.close()
    rows = []
    for name, values in samples.items():
        precision = name.split()[0]
        default = "{} threads={} spinning=off".format(precision, cores)
        rows.append({"config": name, "precision": precision, "stats": summarize(values),
                     "time_over_default": ratio_summary(per_round_ratios(values, samples[default]))})
    return {"physical_cores": cores, "default": "threads={} spinning=off".format(cores),
            "rounds": len(samples[default]), "rows": rows}


def bench_end_to_end(bundle: Any, engines: str, runs: int, map_frames: int, log: Log) -> Dict[str, Any]:
    """Decode + Localizer.process per frame with each precision, alternating frame by frame."""
    import cv2

    from jist_edge.benchmarks.pipeline import make_map, make_video
    from jist_edge.maps.store import load_map
    from jist_edge.pipeline.localizer import Localizer

    size = (bundle.height, bundle.width)
    warmup = bundle.seq_len
    with tempfile.TemporaryDirectory(prefix="jist-bench-precision-") as work:
        log("precision: end to end, {} frames per precision after {} warm-up, map of {} frames".format(
            runs, warmup, map_frames))
        video = make_video(os.path.join(work, "queries.avi"), runs + warmup + 1, size)
        place_map = load_map(make_map(bundle, os.path.join(work, "map"), map_frames, size), bundle=bundle)
        locs = {p: Localizer(bundle, place_map, backend="onnxruntime", precision=p, cache_dir=engines)
                for p in ("fp32", "int8")}
        caps = {p: cv2.VideoCapture(video) for p in locs}
        samples = {p: [] for p in locs}  # type: Dict[str, List[float]]
        try:
            for i in range(runs + warmup):
                for p in (("fp32", "int8") if i % 2 else ("int8", "fp32")):
                    start = cv2.getTickCount()
                    ok, frame = caps[p].read()
                    decode_ms = (cv2.getTickCount() - start) * 1e3 / cv2.getTickFrequency()
                    result = locs[p].process(frame, i)
                    if i >= warmup:
                        samples[p].append(decode_ms + result.latency["total"])
        finally:
            for p in locs:
                caps[p].release()
                locs[p].close()
    return {"runs": runs, "warmup": warmup, "map_frames": map_frames,
            "stats": {p: summarize(v) for p, v in samples.items()}, "speedup": speedup(samples),
            "fps": {p: summarize(v)["fps"] for p, v in samples.items()}}


def run(bundles: Sequence[Any], cache_dir: str, cfg: Dict[str, Any], log: Log) -> Dict[str, Any]:
    """The section: bundles[0] is the main size (tuning and end to end run there)."""
    from jist_edge.encoder.cpu_features import int8_support

    result = {"cpu_int8": int8_support(), "load_average_start": load_average(), "sizes": []}  # type: Dict[str, Any]
    for bundle in bundles:
        row = bench_size(bundle, cache_dir, cfg["precision_rounds"], cfg["precision_budget_s"], log)
        s = row["speedup"]
        log("  {}x{}  fp32 p50 {:8.2f} ms  int8 p50 {:8.2f} ms  speed-up median {:.2f}x [{:.2f}..{:.2f}]".format(
            row["height"], row["width"], row["stats"]["fp32"]["p50_ms"], row["stats"]["int8"]["p50_ms"],
            s["median"], s["min"], s["max"]))
        result["sizes"].append(row)
    main = bundles[0]
    engines = os.path.dirname(result["sizes"][0]["int8_model"])
    if cfg["tuning_rounds"]:
        log("precision: ONNX Runtime session options (threads x spinning), {}x{}".format(main.height, main.width))
        result["session_options"] = bench_session_options(main, engines, cfg["tuning_rounds"], cfg["tuning_budget_s"])
        for row in result["session_options"]["rows"]:
            log("  {:<34} p50 {:8.2f} ms  time / default median {:.2f}".format(
                row["config"], row["stats"]["p50_ms"], row["time_over_default"]["median"]))
    result["end_to_end"] = bench_end_to_end(main, engines, cfg["e2e_runs"], cfg["pipeline_map_frames"], log)
    e2e = result["end_to_end"]
    log("  end to end: fp32 {:.1f} FPS, int8 {:.1f} FPS, speed-up median {:.2f}x [{:.2f}..{:.2f}]".format(
        e2e["fps"]["fp32"], e2e["fps"]["int8"], e2e["speedup"]["median"], e2e["speedup"]["min"],
        e2e["speedup"]["max"]))
    result["load_average_end"] = load_average()
    return result


def markdown(section: Dict[str, Any]) -> List[str]:
    """The report's "Encoder precision" section."""
    cpu = section["cpu_int8"]
    lines = ["## Encoder precision (CPU: FP32 vs INT8)", "",
             "ONNX Runtime, batch 1, interleaved rounds; INT8 = U8S8 Q/DQ (uint8 activations, int8 per-channel "
             "weights, GeM/L2 head in FP32) calibrated on a synthetic route. CPU INT8 support: {} ({}). Load "
             "average at start {} and end {}.".format(cpu["verdict"], cpu["why"], section["load_average_start"],
                                                      section["load_average_end"]), "",
             "| input | FP32 p50 ms | INT8 p50 ms | speed-up fp32/int8 median [min..max] | rounds | cosine to FP32 "
             "(mean / min) | top-1 agreement | weights |", "|---|---|---|---|---|---|---|---|"]
    for row in section["sizes"]:
        s, f = row["speedup"], row["fidelity"]
        lines.append("| {}x{} | {:.2f} | {:.2f} | {:.2f} [{:.2f}..{:.2f}] | {} | {:.5f} / {:.5f} | {:.3f} | {} |".format(
            row["height"], row["width"], row["stats"]["fp32"]["p50_ms"], row["stats"]["int8"]["p50_ms"],
            s["median"], s["min"], s["max"], row["rounds"], f["frame_cosine_mean"], f["frame_cosine_min"],
            f["top1_agreement"], "random" if row["random_weights"] else "trained"))
    e2e = section["end_to_end"]
    lines += ["", "End to end (decode + preprocess + encode + SeqGeM + match, alternating frame by frame, {} frames "
              "each): FP32 {:.1f} FPS, INT8 {:.1f} FPS, speed-up median {:.2f}x [{:.2f}..{:.2f}].".format(
                  e2e["runs"], e2e["fps"]["fp32"], e2e["fps"]["int8"], e2e["speedup"]["median"],
                  e2e["speedup"]["min"], e2e["speedup"]["max"]), ""]
    tuning = section.get("session_options")
    if tuning:
        lines += ["Session options ({} rounds; default: {}):".format(tuning["rounds"], tuning["default"]), "",
                  "| config | p50 ms | time / default median [min..max] |", "|---|---|---|"]
        for row in tuning["rows"]:
            r = row["time_over_default"]
            lines.append("| {} | {:.2f} | {:.2f} [{:.2f}..{:.2f}] |".format(
                row["config"], row["stats"]["p50_ms"], r["median"], r["min"], r["max"]))
        lines.append("")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m jist_edge.benchmarks.precision --out precision.json``: this section (and the capture
    cost) alone, at the bench's input sizes, with random-weight bundles cached in --cache."""
    import argparse
    import json

    from jist_edge.benchmarks import bundles, capture
    from jist_edge.benchmarks.settings import settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "jist-edge-bench-cache"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    cfg = settings(quick=args.quick)
    sizes = [tuple(cfg["img_size"])] + [tuple(s) for s in cfg["extra_img_sizes"]]
    made = [bundles.random_bundle(args.cache, size, 5, print)[0] for size in sizes]
    result = {"precision": run(made, args.cache, cfg, print), "capture": capture.run(made[0], cfg["capture_frames"], print)}
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    print("\n".join(markdown(result["precision"]) + capture.markdown(result["capture"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
