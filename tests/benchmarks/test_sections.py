"""The bench's section registry: the runner, the report and the claims table are loops over it."""
import json

import pytest

from jist_edge.benchmarks import report, sections
from jist_edge.benchmarks.machine import machine_info
from jist_edge.benchmarks.section import Context, Section


def test_every_section_is_run_reported_and_asked_for_claims_exactly_once():
    names = [s.name for s in sections.SECTIONS]
    assert len(names) == len(set(names))
    with_markdown = {s.name for s in sections.SECTIONS if s.markdown is not None}
    with_claims = {s.name for s in sections.SECTIONS if s.claims is not None}
    assert sorted(sections.REPORT_ORDER) == sorted(with_markdown)
    assert sorted(sections.CLAIMS_ORDER) == sorted(with_claims)
    with pytest.raises(KeyError):
        sections.by_name(["no such section"])


def test_a_skipped_section_adds_neither_report_lines_nor_claims():
    """A section whose run returned None (e.g. precision without the quantizer) leaves no key behind."""
    soak = {"frames": 10, "height": 32, "width": 32, "backend": "onnxruntime", "reconnects": 1,
            "rss_after_warmup_mb": 100.0, "rss_end_mb": 101.0, "growth_after_warmup_mb": 1.0, "rss_min_mb": 99.0,
            "rss_max_mb": 102.0, "peak_rss_mb": 103.0, "fps": 5.0}
    lines = sections.markdown({"soak": soak})
    assert lines[0].startswith("## Soak") and not any(line.startswith("## Encoder precision") for line in lines)
    assert sections.claims({"soak": soak}) == []


def test_context_notes_land_in_the_result_list_and_torch_backends_run_the_runtime_on_auto():
    notes = []
    ctx = Context({}, "/nonexistent", None, ["torch-cpu-fp32", "onnxruntime"], notes=notes)
    ctx.note("precision skipped: why")
    assert notes == ["precision skipped: why"] and ctx.runtime_backend == "auto"
    skipped = Section("nothing", lambda c: None)
    assert skipped.run(ctx) is None and skipped.markdown is None


def test_report_markdown_keeps_the_section_order_of_the_registry(tmp_path):
    """Header, claims table, then the sections in REPORT_ORDER, then plots and durations."""
    result = {"mode": "quick", "created": "2026-12-02T00:00:00+00:00", "notes": [],
              "machine": json.loads(json.dumps(machine_info())),
              "model": {"height": 32, "width": 32, "seq_len": 5, "dim": 512, "random_init": True},
              "claims": [], "durations_s": {"total": 1.0},
              "route_filter": {"params": {"top_k": 32, "window": 256}, "stream": "a synthetic stream", "sizes": []},
              "soak": {"frames": 10, "height": 32, "width": 32, "backend": "onnxruntime", "reconnects": 1,
                       "rss_after_warmup_mb": 100.0, "rss_end_mb": 101.0, "growth_after_warmup_mb": 1.0,
                       "rss_min_mb": 99.0, "rss_max_mb": 102.0, "peak_rss_mb": 103.0, "fps": 5.0}}
    text = report.markdown(result, [], "no plots here")
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads == ["## Paper claims vs measured here", "## Soak: resident memory over a long run",
                     "## Route filter", "## Plots"]
