"""Per-stage latency, FPS and memory of the runtime in a fresh process, and the Jetson Nano row."""
import os
import tempfile
from typing import Any, Dict, List

from jist_edge.benchmarks import pipeline
from jist_edge.benchmarks.claims import claim_row, lookup
from jist_edge.benchmarks.section import Context, Section, ms_text, ratio_text

STAGES = ("decode", "preprocess", "encode", "seqgem", "match", "end_to_end")


def run(ctx: Context) -> Dict[str, Any]:
    cfg, bundle, map_dir = ctx.cfg, ctx.bundle, ctx.map_dir
    with tempfile.TemporaryDirectory(prefix="jist-bench-pipeline-") as work:
        frames = cfg["pipeline_runs"] + max(cfg["pipeline_warmup"], bundle.seq_len) + 1
        size = (bundle.height, bundle.width)
        ctx.log("pipeline: writing a {}-frame MJPG query video at {}x{}".format(frames, size[0], size[1]))
        video = pipeline.make_video(os.path.join(work, "queries.avi"), frames, size)
        map_source = "given"
        if not map_dir:
            map_source = "synthetic route database pass ({} frames), built with jist_edge.maps.build".format(
                cfg["pipeline_map_frames"])
            ctx.log("pipeline: building a map from a {}-frame synthetic database pass".format(cfg["pipeline_map_frames"]))
            map_dir = pipeline.make_map(bundle, os.path.join(work, "map"), cfg["pipeline_map_frames"], size)
        ctx.log("pipeline: {} frames through the runtime in a fresh process ({} warm-up)".format(
            cfg["pipeline_runs"], cfg["pipeline_warmup"]))
        result = pipeline.run_fresh("jist_edge.benchmarks.pipeline", [
            "--bundle", bundle.path, "--map", map_dir, "--video", video, "--backend", ctx.runtime_backend,
            "--runs", str(cfg["pipeline_runs"]), "--warmup", str(cfg["pipeline_warmup"])], "pipeline benchmark")
    result["map"]["source"] = map_source
    st = result["stages"]
    for stage in STAGES:
        ctx.log("  {:<11} p50 {:8.3f} ms  p95 {:8.3f} ms  p99 {:8.3f} ms".format(
            stage, st[stage]["p50_ms"], st[stage]["p95_ms"], st[stage]["p99_ms"]))
    ctx.log("  end-to-end {:.1f} FPS; overhead over encode median {:.1%}; peak RSS {:.0f} MiB".format(
        st["end_to_end"]["fps"], result["overhead_over_encode"]["median"], result["memory"]["peak_rss_mb"]))
    return result


def markdown(pipe: Dict[str, Any]) -> List[str]:
    lines = ["## Per-stage latency of the runtime", "",
             "{} frames of an MJPG video ({}x{}) after {} warm-up frames, backend {}, map of {} sequences ({}), "
             "matcher {}.".format(pipe["runs"], pipe["video"]["frame_height"], pipe["video"]["frame_width"],
                                  pipe["warmup"], pipe["runtime"].get("backend"), pipe["map"]["sequences"],
                                  pipe["map"].get("source", "given"), pipe["map"]["matcher"]), "",
             "| stage | p50 / p95 / p99 ms | FPS |", "|---|---|---|"]
    for stage, s in pipe["stages"].items():
        lines.append("| {} | {} | {:.1f} |".format(stage, ms_text(s), s["fps"]))
    return lines + ["", "Runtime overhead (end to end - encode) / encode per frame: {}. Peak resident memory of the "
                    "runtime process: {:.0f} MiB (torch imported: {}). GPU memory: {}.".format(
                        ratio_text(pipe["overhead_over_encode"]), pipe["memory"]["peak_rss_mb"],
                        pipe["memory"]["torch_imported"], _gpu_text(pipe["memory"]["gpu"])), ""]


def _gpu_text(gpu: Dict[str, Any]) -> str:
    if not gpu.get("available"):
        return "n/a ({})".format(gpu.get("reason", "unknown"))
    return ", ".join("{} {}".format(k, v) for k, v in gpu.items() if k != "available")


def claims(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Real time on a Jetson Nano: decided only on one (null elsewhere)."""
    gpu = result["machine"]["gpu"]
    on_nano = bool(gpu.get("present")) and "nano" in str(gpu.get("name", "")).lower()
    fps = lookup(result, "pipeline.stages.end_to_end.fps")
    return [claim_row(
        result, "real_time_nano", "Real-time localization on a Jetson Nano",
        "paper: deployable on a Jetson Nano", "pipeline.stages.end_to_end.fps", "frames/s end to end",
        (fps >= 10.0) if on_nano else None,
        "end-to-end FPS of the runtime at {}x{}; tested only on a Jetson Nano (holds if >= 10 FPS); "
        "null here because this machine is not one".format(result["model"]["height"], result["model"]["width"])
        if not on_nano else "end-to-end FPS on this Jetson Nano; holds if >= 10 FPS",
        {"encode_p50_ms": "pipeline.stages.encode.p50_ms", "end_to_end_p50_ms": "pipeline.stages.end_to_end.p50_ms"})]


SECTION = Section("pipeline", run, markdown, claims)
