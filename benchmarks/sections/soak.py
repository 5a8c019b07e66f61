"""Resident memory over a long run through reconnects (fresh process)."""
from typing import Any, Dict

from jist_edge.benchmarks import soak
from jist_edge.benchmarks.section import Context, Section


def run(ctx: Context) -> Dict[str, Any]:
    return soak.bench(ctx.bundle, ctx.runtime_backend, ctx.cfg["soak_frames"], ctx.log)


SECTION = Section("soak", run, soak.markdown)
