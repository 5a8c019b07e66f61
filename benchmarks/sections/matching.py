"""Matching vs map size (hnswlib at several ef vs exact, 512-D vs 4096-D, index kinds) and its claim rows."""
import os
from typing import Any, Dict, List

from jist_edge.benchmarks import index_kinds, matching
from jist_edge.benchmarks.claims import claim_row, index_of, lookup
from jist_edge.benchmarks.section import Context, Section, ms_text, ratio_text
from jist_edge.search.matcher import DEFAULT_EF


def run(ctx: Context) -> Dict[str, Any]:
    cfg = ctx.cfg
    return matching.run(cfg["map_sizes"], cfg["efs"], cfg["queries"], cfg["dim_sizes"], warmup=5, log=ctx.log,
                        kinds_sizes=cfg["kinds_sizes"], cache_dir=os.path.join(ctx.cache_dir, "matching"))


def markdown(mt: Dict[str, Any]) -> List[str]:
    lines = ["## Matching", "", "Descriptors: {}. Search: {}.".format(mt["descriptors_description"], mt["search"]),
             "", "| places | search | p50 / p95 / p99 ms | top-1 = exact | speed-up vs exact | build s | index MiB |",
             "|---|---|---|---|---|---|---|"]
    for row in mt["sizes"]:
        lines.append("| {:,} | exact | {} | 1 | 1 | - | - |".format(row["n"], ms_text(row["exact"]["query"])))
        for h in row["hnsw"]:
            lines.append("| {:,} | hnswlib ef={} | {} | {:.3f} | {} | {:.1f} | {:.1f} |".format(
                row["n"], h["ef"], ms_text(h["query"]), h["top1_agreement_with_exact"], ratio_text(h["speedup_vs_exact"]),
                row["build_s"], row["index_file_bytes"] / 2 ** 20))
    lines += ["", "| places | 512-D p50 ms | 4096-D p50 ms | 4096-D / 512-D time | bytes ratio |", "|---|---|---|---|---|"]
    for row in mt["dims"]:
        lines.append("| {:,} | {:.3f} | {:.3f} | {} | {:.1f} |".format(
            row["n"], row["query"]["512"]["p50_ms"], row["query"]["4096"]["p50_ms"],
            ratio_text(row["time_ratio_large_over_small"]), row["size_ratio"]))
    sto = mt["storage"]
    lines += ["", "Storage per place: float32 {:.0f} B, float16 {:.0f} B; float16 top-1 agreement with float32: "
              "{:.3f}.".format(sto["float32"]["bytes_per_place_in_memory"], sto["float16"]["bytes_per_place_in_memory"],
                               sto["float16_top1_agreement_with_float32"]), ""]
    if mt.get("index_kinds"):
        lines += index_kinds.markdown(mt["index_kinds"]) + [""]
    return lines


def claims(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Descriptor size, matching time vs 4096-D, ANN viability, and city scale where the run reached it."""
    return _dims_claims(result) + [_ann_claim(result)] + _city_scale(result)


def _dims_claims(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    dims = result["matching"]["dims"]
    d = len(dims) - 1
    ratio_key = "matching.dims[{}].time_ratio_large_over_small".format(d)
    return [claim_row(
        result, "descriptor_size", "512-D sequence descriptor, 8x smaller than SeqVLAD (4096-D after PCA)",
        "paper: 512-D vs 4096-D", "matching.dims[{}].size_ratio".format(d), "x bytes per place",
        lookup(result, "matching.dims[{}].size_ratio".format(d)) >= 7.99,
        "bytes per stored descriptor, 4096-D / 512-D float32, measured from the arrays; holds if >= 8x",
        {"bytes_512d": "matching.dims[{}].bytes_per_descriptor.512".format(d),
         "bytes_4096d": "matching.dims[{}].bytes_per_descriptor.4096".format(d)}), claim_row(
        result, "faster_matching", "Faster matching than SeqVLAD's 4096-D descriptors (about an order of magnitude)",
        "paper: matching time reduced roughly 10x", ratio_key + ".median", "x (median per-query ratio)",
        lookup(result, ratio_key + ".median") >= 5.0,
        "exact squared-L2 search, 4096-D / 512-D single-query time at {:,} places, interleaved; holds if the "
        "median ratio >= 5 (within 2x of an order of magnitude)".format(dims[d]["n"]),
        {"ratio_min": ratio_key + ".min", "ratio_max": ratio_key + ".max"})]


def _ann_claim(result: Dict[str, Any]) -> Dict[str, Any]:
    sizes = result["matching"]["sizes"]
    s = len(sizes) - 1
    e = index_of(sizes[s]["hnsw"], "ef", DEFAULT_EF)
    e = len(sizes[s]["hnsw"]) - 1 if e is None else e
    base = "matching.sizes[{}].hnsw[{}]".format(s, e)
    agree = lookup(result, base + ".top1_agreement_with_exact")
    speed = lookup(result, base + ".speedup_vs_exact.median")
    return claim_row(
        result, "ann_viable", "Approximate nearest-neighbour search is viable for the 512-D descriptors",
        "paper: leaves room for ANN search", base + ".top1_agreement_with_exact", "top-1 agreement with exact",
        agree >= 0.99 and speed > 1.0,
        "hnswlib ef={} on {:,} route-like places: holds if top-1 agreement with exact >= 0.99 and the median "
        "per-query speed-up over exact > 1".format(sizes[s]["hnsw"][e]["ef"], sizes[s]["n"]),
        {"speedup_median": base + ".speedup_vs_exact.median", "speedup_min": base + ".speedup_vs_exact.min",
         "speedup_max": base + ".speedup_vs_exact.max"})


def _city_scale(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Large-scale mapping: the largest hnsw-pca map measured, against 1.2 GB, 2 ms and 0.98 (issue 14)."""
    section = result["matching"].get("index_kinds")
    found = index_kinds.city_scale(section) if section else None
    if found is None:
        return []
    i, row = found
    base = "matching.index_kinds.rows[{}]".format(i)
    ok = (row["runtime"]["rss_mb"] <= index_kinds.RSS_BUDGET_MB and row["query"]["p50_ms"] < 2.0
          and row["top1_agreement_with_exact"] >= 0.98)
    return [claim_row(
        result, "city_scale", "Scalable to large-scale (city) maps on the device",
        "paper: scalable, real-time place recognition for large-scale mapping", base + ".runtime.rss_mb",
        "MiB runtime RSS", ok if row["n"] >= 1000000 else None,
        "{} at {:,} places (route-like descriptors): holds if runtime RSS <= 1.2 GB, single-query p50 < 2 ms on "
        "this machine and top-1 agreement with exact float32 search >= 0.98; decided only at >= 1,000,000 places "
        "(`jist-edge bench --max-places 1000000`)".format(row["name"], row["n"]),
        {"query_p50": base + ".query.p50_ms", "top1_agreement": base + ".top1_agreement_with_exact",
         "places": base + ".n"})]


SECTION = Section("matching", run, markdown, claims)
