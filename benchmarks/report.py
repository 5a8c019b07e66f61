"""Bench output: terminal summary, JSON (every figure + the machine), Markdown with PNG plots."""
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from jist_edge.benchmarks import sections
from jist_edge.benchmarks.claims import holds_text
from jist_edge.benchmarks.machine import one_line
from jist_edge.fileio import write_bytes_atomic, write_json_atomic
from jist_edge.output.tables import print_table as echo_table

HARDWARE_NOTE = ("Absolute times hold only for the hardware stated above (and the load on it while the bench "
                 "ran); compare ratios, which were measured interleaved in the same process, with their spread.")
PLOTS = ("latency_vs_map_size.png", "agreement_vs_ef.png", "stage_breakdown.png")  # + index_kinds.PLOT


def terminal_summary(result: Dict[str, Any], out: Callable[[str], None] = print) -> None:
    """The few tables a person reads at the end of `jist-edge bench`."""
    pipe = result["pipeline"]
    rows = [[stage, s["p50_ms"], s["p95_ms"], s["p99_ms"], s["fps"]] for stage, s in pipe["stages"].items()]
    echo_table(["stage (ms, {} runs)".format(pipe["runs"]), "p50", "p95", "p99", "FPS"], rows, out)
    out("")
    enc_rows = []
    for size in result["encoders"]["sizes"]:
        for name, s in size["stats"].items():
            ratio = size["ratio_to_baseline"].get(name)
            enc_rows.append(["{}x{}".format(size["height"], size["width"]), name, s["p50_ms"], s["fps"],
                             "{:.2f} [{:.2f}..{:.2f}]".format(ratio["median"], ratio["min"], ratio["max"]) if ratio else "1 (base)"])
    echo_table(["input", "encoder", "p50 ms", "FPS", "time / {} med [min..max]".format(
        result["encoders"]["sizes"][0]["baseline"])], enc_rows, out)
    out("")
    m_rows = []
    for row in result["matching"]["sizes"]:
        m_rows.append([row["n"], "exact", row["exact"]["query"]["p50_ms"], "1.000", "-"])
        for h in row["hnsw"]:
            m_rows.append([row["n"], "hnswlib ef={}".format(h["ef"]), h["query"]["p50_ms"],
                           "{:.3f}".format(h["top1_agreement_with_exact"]),
                           "{:.1f}x".format(h["speedup_vs_exact"]["median"])])
    for row in result["matching"].get("index_kinds", {}).get("rows", []):
        m_rows.append([row["n"], "{} ({:.0f} MiB RSS)".format(row["name"], row["runtime"]["rss_mb"]),
                       row["query"]["p50_ms"], "{:.3f}".format(row["top1_agreement_with_exact"]), "-"])
    echo_table(["places", "search", "p50 ms", "top-1 = exact", "speed-up (median)"], m_rows, out)
    out("")
    c_rows = [[c["id"], "{:.4g} {}".format(c["value"], c["unit"]), holds_text(c["holds"])] for c in result["claims"]]
    echo_table(["paper claim", "measured here", "holds"], c_rows, out)
    out("")
    out(HARDWARE_NOTE)


def write_json(result: Dict[str, Any], path: str) -> None:
    write_json_atomic(path, result)


def write_report(result: Dict[str, Any], out_dir: str) -> Dict[str, Any]:
    """README.md + bench.json + PNG plots in ``out_dir``; returns what was written."""
    os.makedirs(out_dir, exist_ok=True)
    plots, plot_note = make_plots(result, out_dir)
    write_json_atomic(os.path.join(out_dir, "bench.json"), result)
    text = markdown(result, plots, plot_note)
    write_bytes_atomic(os.path.join(out_dir, "README.md"), text.encode("utf-8"))
    return {"markdown": os.path.join(out_dir, "README.md"), "json": os.path.join(out_dir, "bench.json"),
            "plots": [os.path.join(out_dir, p) for p in plots], "plot_note": plot_note}


def make_plots(result: Dict[str, Any], out_dir: str) -> Tuple[List[str], Optional[str]]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "plots skipped: matplotlib is not installed (pip install matplotlib)"
    sizes = result["matching"]["sizes"]
    ns = [r["n"] for r in sizes]

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [r["exact"]["query"]["p50_ms"] for r in sizes], "o-k", label="exact (numpy)")
    for i, h in enumerate(sizes[0]["hnsw"]):
        ax.plot(ns, [r["hnsw"][i]["query"]["p50_ms"] for r in sizes], "s--", label="hnswlib ef={}".format(h["ef"]))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("map size (sequences)")
    ax.set_ylabel("single-query latency p50 (ms)")
    ax.set_title("Matching latency vs map size (512-D)")
    ax.legend(fontsize=8)
    _save(fig, plt, out_dir, PLOTS[0])

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in sizes:
        ax.plot([h["ef"] for h in r["hnsw"]], [h["top1_agreement_with_exact"] for h in r["hnsw"]], "o-",
                label="{:,} places".format(r["n"]))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hnswlib ef")
    ax.set_ylabel("top-1 agreement with exact search")
    ax.set_title("ANN recall vs ef")
    ax.legend(fontsize=8)
    _save(fig, plt, out_dir, PLOTS[1])

    stages = result["pipeline"]["stages"]
    names = ["decode", "preprocess", "encode", "seqgem", "match"]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    left = 0.0
    for name in names:
        width = stages[name]["p50_ms"]
        ax.barh([0], [width], left=left, label="{} {:.2f} ms".format(name, width))
        left += width
    ax.set_yticks([])
    ax.set_xlabel("p50 ms per frame (end to end p50 {:.1f} ms)".format(stages["end_to_end"]["p50_ms"]))
    ax.set_title("Per-stage latency of the runtime")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=3)
    _save(fig, plt, out_dir, PLOTS[2])
    if result["matching"].get("index_kinds"):
        from jist_edge.benchmarks import index_kinds

        with _atomic_png(out_dir, index_kinds.PLOT) as tmp:
            index_kinds.plot(result["matching"]["index_kinds"], plt, lambda name: tmp)
        return list(PLOTS) + [index_kinds.PLOT], None
    return list(PLOTS), None


def _atomic_png(out_dir: str, name: str) -> Any:
    from jist_edge.fileio import atomic_path

    return atomic_path(os.path.join(out_dir, name))


def _save(fig: Any, plt: Any, out_dir: str, name: str) -> None:
    from jist_edge.fileio import atomic_path

    with atomic_path(os.path.join(out_dir, name)) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)


def markdown(result: Dict[str, Any], plots: List[str], plot_note: Optional[str]) -> str:
    """The report: the machine and model, the claims table, every section that ran, the plots."""
    lines = _header(result) + _claims_table(result) + sections.markdown(result) + ["## Plots", ""]
    if plots:
        lines += ["![{}]({})".format(p[:-4].replace("_", " "), p) for p in plots]
    else:
        lines.append(plot_note or "no plots")
    lines += ["", "Section durations (s): " + ", ".join("{} {:.0f}".format(k, v) for k, v in result["durations_s"].items()), ""]
    return "\n".join(lines)


def _header(result: Dict[str, Any]) -> List[str]:
    m = result["model"]
    return [
        "# jist-edge bench ({})".format(result["mode"]), "",
        "Run {} on **{}**.".format(result["created"], one_line(result["machine"])), "",
        "Libraries: " + ", ".join("{} {}".format(k, v) for k, v in sorted(result["machine"]["libraries"].items())) + ".",
        "", "> " + HARDWARE_NOTE, "",
        "Model: {}x{} input, L={}, {}-D{}.".format(
            m["height"], m["width"], m["seq_len"], m["dim"],
            ", random weights (speed does not depend on the weights)" if m["random_init"] else ""),
        "Ratios are reported as median (min..max) over interleaved rounds.", "",
    ]


def _claims_table(result: Dict[str, Any]) -> List[str]:
    lines = ["## Paper claims vs measured here", "",
             "| claim | paper | measured here | holds | how decided |", "|---|---|---|---|---|"]
    for c in result["claims"]:
        related = ", ".join("{} {:.4g}".format(k, v) for k, v in c["related"].items())
        lines.append("| {} | {} | **{:.4g}** {} ({}) | {} | {} |".format(
            c["claim"], c["paper"], c["value"], c["unit"], related, holds_text(c["holds"]), c["criterion"]))
    return lines + ["", "Hardware for every row: " + one_line(result["machine"]) + ".", ""]
