"""The whole bench: settings per mode, the sections in order, one JSON-able result.

Sections: encoder latency per backend and input size, streaming vs re-encoding,
sequence length, matching vs map size, the route filter's cost vs map size, the
runtime's per-stage latency and memory (in a fresh process), the cost of the live web
view (run --serve, also in a fresh process), a memory soak (fresh process), then the
paper-claims table built from those measurements.
"""
import datetime
import json
import os
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from jist_edge.benchmarks import bundles, claims, encoders, machine, matching, route_filter, serve, soak
from jist_edge.benchmarks.memory import gpu_memory, peak_rss_mb
from jist_edge.benchmarks.settings import MODES, SCHEMA, settings  # noqa: F401  (runner.settings, runner.SCHEMA)
from jist_edge.bundle import load_bundle
from jist_edge.errors import JistEdgeError

Log = Callable[[str], None]


def run_bench(cfg: Dict[str, Any], cache_dir: str, model: Optional[str] = None, map_dir: Optional[str] = None,
              backends: Optional[Sequence[str]] = None, log: Log = print) -> Dict[str, Any]:
    """Every section; returns the result dict (the JSON report's content)."""
    started = time.perf_counter()
    durations: Dict[str, float] = {}
    info = machine.machine_info()
    log("machine: " + machine.one_line(info))
    result: Dict[str, Any] = {"schema": SCHEMA, "created": _now(), "mode": cfg["mode"], "machine": info,
                              "settings": _jsonable_settings(cfg), "notes": []}

    t = time.perf_counter()
    main_bundle, export_s = _main_bundle(model, cfg, cache_dir, log)
    result["model"] = {"path": main_bundle.path, "bundle_id": main_bundle.bundle_id, "height": main_bundle.height,
                       "width": main_bundle.width, "seq_len": main_bundle.seq_len, "dim": main_bundle.dim,
                       "random_init": main_bundle.random_init, "export_s": export_s}
    durations["model"] = time.perf_counter() - t

    names = _backends(backends)
    log("encoders: backends {}".format(", ".join(names)))
    t = time.perf_counter()
    result["encoders"] = {"backends": names, "sizes": []}
    for bundle in _size_bundles(main_bundle, cfg, cache_dir, log):
        log("encoders: {}x{}, batch 1, {} interleaved rounds".format(bundle.height, bundle.width, cfg["encoder_rounds"]))
        row = encoders.bench_backends(bundle, names, cfg["encoder_rounds"], warmup=2, budget_s=cfg["encoder_budget_s"])
        for name in names:
            log("  {:<16} p50 {:8.2f} ms  p95 {:8.2f} ms  {:6.1f} FPS".format(
                name, row["stats"][name]["p50_ms"], row["stats"][name]["p95_ms"], row["stats"][name]["fps"]))
        result["encoders"]["sizes"].append(row)
    durations["encoders"] = time.perf_counter() - t

    t = time.perf_counter()
    _precision(result, main_bundle, names, cfg, cache_dir, log)
    durations["precision"] = time.perf_counter() - t

    t = time.perf_counter()
    log("streaming vs re-encoding windows ({}, L = {})".format(names[0], ", ".join(map(str, cfg["seq_lens"]))))
    encoder = encoders.open_encoder(main_bundle, names[0])
    try:
        result["streaming"] = {"backend": names[0], "height": main_bundle.height, "width": main_bundle.width,
                               "rows": encoders.bench_streaming(main_bundle, encoder, cfg["seq_lens"],
                                                                cfg["streaming_rounds"], warmup=1,
                                                                budget_s=cfg["streaming_budget_s"])}
    finally:
        encoder.close()
    for row in result["streaming"]["rows"]:
        r = row["reencoding_over_streaming"]
        log("  L={:<3} streaming p50 {:8.2f} ms  re-encoding p50 {:8.2f} ms  ratio median {:.2f}x (min {:.2f}, max {:.2f})"
            .format(row["seq_len"], row["streaming"]["p50_ms"], row["reencoding"]["p50_ms"], r["median"], r["min"], r["max"]))
    durations["streaming"] = time.perf_counter() - t

    t = time.perf_counter()
    log("sequence length: map at L={}, queries at L' = {}".format(main_bundle.seq_len, cfg["test_seq_lens"]))
    result["sequence_length"] = encoders.bench_seq_len(cfg["test_seq_lens"], main_bundle.seq_len, cfg["seq_map_size"],
                                                       cfg["seq_queries"], cfg["seq_runs"], dim=main_bundle.dim,
                                                       p=main_bundle.seqgem_p)
    durations["sequence_length"] = time.perf_counter() - t

    t = time.perf_counter()
    result["matching"] = matching.run(cfg["map_sizes"], cfg["efs"], cfg["queries"], cfg["dim_sizes"], warmup=5, log=log,
                                      kinds_sizes=cfg["kinds_sizes"], cache_dir=os.path.join(cache_dir, "matching"))
    durations["matching"] = time.perf_counter() - t

    t = time.perf_counter()
    log("route filter: cost per frame vs map size (interleaved with a 1,000-place map)")
    result["route_filter"] = route_filter.run(cfg["filter_sizes"], cfg["filter_frames"],
                                              stats_size=cfg["filter_stats_size"], log=log)
    durations["route_filter"] = time.perf_counter() - t

    t = time.perf_counter()
    result["pipeline"] = _pipeline(main_bundle, map_dir, names[0], cfg, log)
    durations["pipeline"] = time.perf_counter() - t

    t = time.perf_counter()
    result["serve"] = serve.bench(main_bundle, map_dir, names[0], cfg, log)
    durations["serve"] = time.perf_counter() - t

    t = time.perf_counter()
    result["soak"] = soak.bench(main_bundle, names[0] if not names[0].startswith("torch-") else "auto",
                                cfg["soak_frames"], log)
    durations["soak"] = time.perf_counter() - t

    result["memory"] = {"bench_process_peak_rss_mb": peak_rss_mb(), "gpu": gpu_memory()}
    durations["total"] = time.perf_counter() - started
    result["durations_s"] = durations
    result["claims"] = claims.evaluate(result)
    return result


def _size_bundles(main_bundle: Any, cfg: Dict[str, Any], cache_dir: str, log: Log) -> List[Any]:
    """The main bundle, then a random-init one per extra input size (exported once, cached)."""
    return [main_bundle] + [bundles.random_bundle(cache_dir, size, main_bundle.seq_len, log)[0]
                            for size in cfg["extra_img_sizes"] if tuple(size) != (main_bundle.height, main_bundle.width)]


def _precision(result: Dict[str, Any], main_bundle: Any, names: Sequence[str], cfg: Dict[str, Any], cache_dir: str,
               log: Log) -> None:
    """FP32 vs CPU INT8 (ONNX Runtime) and the capture path's CPU cost; skipped with a note when impossible."""
    from jist_edge.benchmarks import capture, precision

    result["capture"] = capture.run(main_bundle, cfg["capture_frames"], log)
    try:
        import onnx  # noqa: F401  (the quantizer needs it)
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        result["notes"].append("encoder precision skipped: the INT8 quantizer cannot run here ({})".format(exc))
        return
    if "onnxruntime" not in names:
        result["notes"].append("encoder precision skipped: the onnxruntime backend was not benchmarked")
        return
    log("encoder precision: FP32 vs CPU INT8 (ONNX Runtime), interleaved")
    result["precision"] = precision.run(_size_bundles(main_bundle, cfg, cache_dir, log), cache_dir, cfg, log)


def _main_bundle(model: Optional[str], cfg: Dict[str, Any], cache_dir: str, log: Log) -> Tuple[Any, float]:
    if model:
        return load_bundle(model), 0.0
    return bundles.random_bundle(cache_dir, cfg["img_size"], 5, log)


def _backends(requested: Optional[Sequence[str]]) -> List[str]:
    available = encoders.all_backends()
    if not requested or list(requested) == ["auto"]:
        if not available:
            raise JistEdgeError("no encoder backend is available: install onnxruntime")
        return available
    missing = [b for b in requested if b not in available]
    if missing:
        raise JistEdgeError("--backend {}: not available here (available: {})".format(
            ", ".join(missing), ", ".join(available) or "none"))
    return list(requested)


def _pipeline(bundle: Any, map_dir: Optional[str], backend: str, cfg: Dict[str, Any], log: Log) -> Dict[str, Any]:
    from jist_edge.benchmarks import pipeline

    runtime_backend = backend if not backend.startswith("torch-") else "auto"
    with tempfile.TemporaryDirectory(prefix="jist-bench-pipeline-") as work:
        frames = cfg["pipeline_runs"] + max(cfg["pipeline_warmup"], bundle.seq_len) + 1
        size = (bundle.height, bundle.width)
        log("pipeline: writing a {}-frame MJPG query video at {}x{}".format(frames, size[0], size[1]))
        video = pipeline.make_video(os.path.join(work, "queries.avi"), frames, size)
        map_source = "given"
        if not map_dir:
            map_source = "synthetic route database pass ({} frames), built with jist_edge.maps.build".format(
                cfg["pipeline_map_frames"])
            log("pipeline: building a map from a {}-frame synthetic database pass".format(cfg["pipeline_map_frames"]))
            map_dir = pipeline.make_map(bundle, os.path.join(work, "map"), cfg["pipeline_map_frames"], size)
        log("pipeline: {} frames through the runtime in a fresh process ({} warm-up)".format(
            cfg["pipeline_runs"], cfg["pipeline_warmup"]))
        result = pipeline.run_fresh("jist_edge.benchmarks.pipeline", [
            "--bundle", bundle.path, "--map", map_dir, "--video", video, "--backend", runtime_backend,
            "--runs", str(cfg["pipeline_runs"]), "--warmup", str(cfg["pipeline_warmup"])], "pipeline benchmark")
    result["map"]["source"] = map_source
    st = result["stages"]
    for stage in ("decode", "preprocess", "encode", "seqgem", "match", "end_to_end"):
        log("  {:<11} p50 {:8.3f} ms  p95 {:8.3f} ms  p99 {:8.3f} ms".format(
            stage, st[stage]["p50_ms"], st[stage]["p95_ms"], st[stage]["p99_ms"]))
    log("  end-to-end {:.1f} FPS; overhead over encode median {:.1%}; peak RSS {:.0f} MiB".format(
        st["end_to_end"]["fps"], result["overhead_over_encode"]["median"], result["memory"]["peak_rss_mb"]))
    return result


def _jsonable_settings(cfg: Dict[str, Any]) -> Dict[str, Any]:
    return json.loads(json.dumps(cfg))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
