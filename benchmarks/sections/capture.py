"""The CPU cost of capture + preprocess from 720p vs from the model's input size."""
from typing import Any, Dict

from jist_edge.benchmarks import capture
from jist_edge.benchmarks.section import Context, Section


def run(ctx: Context) -> Dict[str, Any]:
    return capture.run(ctx.bundle, ctx.cfg["capture_frames"], ctx.log)


SECTION = Section("capture", run, capture.markdown)
