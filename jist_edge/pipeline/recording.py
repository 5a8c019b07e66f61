"""A streamed pass kept for scoring: what recall and raw-vs-filtered need from each full window.

`jist-edge demo` streams its query pass through the live runtime and then scores it like
`eval` scores an offline pass; ``record_stream`` is that recording, usable on any source.
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from jist_edge.pipeline.localizer import Localizer, Result
from jist_edge.pipeline.stats import RunStats


def record_stream(loc: Localizer, source: Any, on_result: Optional[Callable[[Result], None]] = None,
                  **stream_options: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(streamed, run summary). ``streamed`` holds per full window: ``windows`` (the frame indices it
    pooled), ``ids`` (matched place ids, best first), ``descriptors``, ``raw_dists`` (best distance)
    and ``estimates`` (the route filter's, None without it); ``setup`` says how it was searched
    and filtered. ``on_result(result)``: each result as it comes (a live view, a progress bar)."""
    stats = RunStats()
    streamed = {"windows": [], "ids": [], "descriptors": [], "raw_dists": [], "estimates": []}  # type: Dict[str, Any]
    emitted = []  # type: List[int]
    filter_ms = []  # type: List[float]
    seq_len = loc.place_map.seq_len
    for result in loc.stream(source, **stream_options):
        stats(result)
        if on_result is not None:
            on_result(result)
        emitted.append(result.frame_index)
        if not result.partial:
            streamed["windows"].append(emitted[-seq_len:])
            streamed["ids"].append([m.seq_id for m in result.matches])
            streamed["descriptors"].append(result.descriptor)
            streamed["raw_dists"].append(result.best.distance)
            streamed["estimates"].append(result.estimate)
            filter_ms.append(result.latency.get("filter", 0.0))
    streamed["setup"] = dict(loc.tracker.describe() if loc.tracker is not None else {}, method=loc.matcher.method,
                             ms_per_query=round(float(np.mean(filter_ms or [0.0])), 4))
    return streamed, stats.summary()
