"""The end-of-run numbers: frames, drops, skips and per-stage latency percentiles."""
import time
from typing import Any, Dict, List, Sequence

import numpy as np

from jist_edge.pipeline.localizer import STAGES, Result


def percentiles(values: Sequence[float], qs: Sequence[float]) -> List[float]:
    """Linear-interpolation percentiles (numpy's default); nan for no values."""
    if len(values) == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), list(qs))]


def percentile(values: Sequence[float], q: float) -> float:
    return percentiles(values, [q])[0]


class RunStats(object):
    """Collects per-frame numbers for the end-of-run summary (bounded: keeps the last 100k)."""

    LIMIT = 100000

    def __init__(self) -> None:
        self.frames = 0
        self.partial = 0
        self.dropped = 0
        self.skipped = 0
        self.latency = {name: [] for name in STAGES + ("total",)}  # type: Dict[str, List[float]]
        self.places = set()  # type: set
        self._t0 = time.perf_counter()
        self.elapsed = 0.0

    def __call__(self, result: Result) -> None:
        self.frames += 1
        self.partial += int(result.partial)
        self.dropped = result.dropped
        self.skipped = result.skipped
        for name, value in result.latency.items():
            series = self.latency.setdefault(name, [])
            if len(series) >= self.LIMIT:
                del series[: self.LIMIT // 2]
            series.append(value)
        if result.best is not None and len(self.places) < self.LIMIT:
            self.places.add(result.best.seq_id)
        self.elapsed = time.perf_counter() - self._t0

    def summary(self) -> Dict[str, Any]:
        return {
            "frames": self.frames,
            "partial": self.partial,
            "seconds": round(self.elapsed, 3),
            "fps": round(self.frames / self.elapsed, 2) if self.elapsed > 0 else None,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "distinct_places_matched": len(self.places),
            "latency_ms": {
                name: {"p50": round(percentile(v, 50), 3), "p95": round(percentile(v, 95), 3)}
                for name, v in self.latency.items() if v
            },
        }
