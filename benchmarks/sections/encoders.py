"""Encoder latency per backend and input size, batch 1, interleaved."""
from typing import Any, Dict, List

from jist_edge.benchmarks import encoders
from jist_edge.benchmarks.section import Context, Section, ms_text, ratio_text


def run(ctx: Context) -> Dict[str, Any]:
    names = ctx.backends
    ctx.log("encoders: backends {}".format(", ".join(names)))
    out = {"backends": names, "sizes": []}  # type: Dict[str, Any]
    for bundle in ctx.size_bundles():
        ctx.log("encoders: {}x{}, batch 1, {} interleaved rounds".format(bundle.height, bundle.width,
                                                                        ctx.cfg["encoder_rounds"]))
        row = encoders.bench_backends(bundle, names, ctx.cfg["encoder_rounds"], warmup=2,
                                      budget_s=ctx.cfg["encoder_budget_s"])
        for name in names:
            ctx.log("  {:<16} p50 {:8.2f} ms  p95 {:8.2f} ms  {:6.1f} FPS".format(
                name, row["stats"][name]["p50_ms"], row["stats"][name]["p95_ms"], row["stats"][name]["fps"]))
        out["sizes"].append(row)
    return out


def markdown(section: Dict[str, Any]) -> List[str]:
    lines = ["## Encoder latency (batch 1)", "", "| input | encoder | p50 / p95 / p99 ms | FPS | time / {} |".format(
        section["sizes"][0]["baseline"]), "|---|---|---|---|---|"]
    for size in section["sizes"]:
        for name, s in size["stats"].items():
            r = size["ratio_to_baseline"].get(name)
            lines.append("| {}x{} | {} | {} | {:.1f} | {} |".format(size["height"], size["width"], name, ms_text(s),
                                                                  s["fps"], ratio_text(r) if r else "1 (baseline)"))
    return lines + ["", "{} interleaved rounds per input size.".format(section["sizes"][0]["rounds"]), ""]


SECTION = Section("encoders", run, markdown)
