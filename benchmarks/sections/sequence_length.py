"""Sequence length at test time (the map at L, queries pooled over L'), and the robustness row."""
from typing import Any, Dict, List

from jist_edge.benchmarks import encoders
from jist_edge.benchmarks.claims import claim_row, index_of
from jist_edge.benchmarks.section import Context, Section


def run(ctx: Context) -> Dict[str, Any]:
    cfg, b = ctx.cfg, ctx.bundle
    ctx.log("sequence length: map at L={}, queries at L' = {}".format(b.seq_len, cfg["test_seq_lens"]))
    return encoders.bench_seq_len(cfg["test_seq_lens"], b.seq_len, cfg["seq_map_size"], cfg["seq_queries"],
                                  cfg["seq_runs"], dim=b.dim, p=b.seqgem_p)


def markdown(sl: Dict[str, Any]) -> List[str]:
    lines = ["## Sequence length at test time", "",
             "Map at L={} ({} places, {} descriptors), {} queries with frame noise {}.".format(
                 sl["map_seq_len"], sl["map_size"], sl["descriptors"], sl["queries"], sl["query_noise"]), "",
             "| L' | SeqGeM p50 ms | cosine to L (mean / min) | top-1 = top-1 at L | top-1 within L of truth |",
             "|---|---|---|---|---|"]
    for row in sl["rows"]:
        lines.append("| {} | {:.4f} | {:.4f} / {:.4f} | {:.3f} | {:.3f} |".format(
            row["seq_len"], row["seqgem"]["p50_ms"], row["cosine_to_map_len"]["mean"], row["cosine_to_map_len"]["min"],
            row["top1_agreement_with_map_len"], row["top1_within_L_of_truth"]))
    return lines + [""]


def claims(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    seq = result["sequence_length"]["rows"]
    ref = index_of(seq, "seq_len", result["sequence_length"]["map_seq_len"])
    near = [i for i, r in enumerate(seq) if 3 <= r["seq_len"] <= 10]
    worst = min(near or range(len(seq)), key=lambda i: seq[i]["top1_within_L_of_truth"])
    ref_hits = seq[ref]["top1_within_L_of_truth"] if ref is not None else 1.0
    return [claim_row(
        result, "sequence_length_robust", "Robust to the sequence length changing at test time",
        "paper: robust to sequence length (trained at L=5)",
        "sequence_length.rows[{}].top1_within_L_of_truth".format(worst), "top-1 hit rate (worst L' in 3..10)",
        seq[worst]["top1_within_L_of_truth"] >= 0.9 * ref_hits,
        "map at L={}, queries pooled over L' frames; worst top-1-within-L hit rate over L' in 3..10 is at "
        "least 90% of the rate at L'=L; on synthetic route-walk descriptors, so it tests SeqGeM's length "
        "invariance, not the trained model".format(result["sequence_length"]["map_seq_len"]),
        {"hits_at_map_len": "sequence_length.rows[{}].top1_within_L_of_truth".format(ref if ref is not None else 0),
         "cosine_min_worst": "sequence_length.rows[{}].cosine_to_map_len.min".format(worst)})]


SECTION = Section("sequence_length", run, markdown, claims)
