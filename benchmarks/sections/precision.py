"""Encoder precision on the CPU: FP32 vs the U8S8 INT8 model, and the INT8 claim row."""
from typing import Any, Dict, List, Optional

from jist_edge.benchmarks import precision
from jist_edge.benchmarks.claims import claim_row, index_of, lookup
from jist_edge.benchmarks.section import Context, Section


def run(ctx: Context) -> Optional[Dict[str, Any]]:
    """Skipped, with a note, where the quantizer cannot run or ONNX Runtime was not benchmarked."""
    try:
        import onnx  # noqa: F401  (optional: the quantizer needs it)
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        ctx.note("encoder precision skipped: the INT8 quantizer cannot run here ({})".format(exc))
        return None
    if "onnxruntime" not in ctx.backends:
        ctx.note("encoder precision skipped: the onnxruntime backend was not benchmarked")
        return None
    ctx.log("encoder precision: FP32 vs CPU INT8 (ONNX Runtime), interleaved")
    return precision.run(ctx.size_bundles(), ctx.cache_dir, ctx.cfg, ctx.log)


def claims(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The INT8 row: the toolkit's goal for the CPU encoder (the paper has no INT8 figure)."""
    sizes = result["precision"]["sizes"]
    i = index_of([{"hw": (r["height"], r["width"])} for r in sizes], "hw", (480, 640))
    i = 0 if i is None else i
    base = "precision.sizes[{}]".format(i)
    speed = lookup(result, base + ".speedup.median")
    cosine = lookup(result, base + ".fidelity.frame_cosine_mean")
    return [claim_row(
        result, "int8_cpu_encoder", "Edge deployment on a CPU: INT8 encoder at least 2.5x faster than FP32",
        "paper: deployable on a Jetson Nano (INT8 on the CPU is this toolkit's goal, not a paper figure)",
        base + ".speedup.median", "x (FP32 / INT8 time, median)", speed >= 2.5 and cosine >= 0.99,
        "ONNX Runtime U8S8 vs FP32 at {}x{}, batch 1, interleaved; holds if the median speed-up >= 2.5 and the "
        "frame cosine to FP32 >= 0.99 ({} weights; CPU INT8 support: {})".format(
            sizes[i]["height"], sizes[i]["width"], "random" if sizes[i]["random_weights"] else "trained",
            result["precision"]["cpu_int8"]["verdict"]),
        {"speedup_min": base + ".speedup.min", "speedup_max": base + ".speedup.max",
         "frame_cosine_mean": base + ".fidelity.frame_cosine_mean",
         "end_to_end_speedup_median": "precision.end_to_end.speedup.median"})]


SECTION = Section("precision", run, precision.markdown, claims)
