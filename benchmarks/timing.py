"""Latency statistics and interleaved A/B timing.

Absolute times depend on the machine and on whatever else runs on it; ratios between
two ways of doing the same job are only fair when both are measured in the same
process, alternating, so that frequency scaling, cache state and neighbours' load hit
both alike. Every comparison here is therefore interleaved and reports the spread of
the per-pair ratio, not a ratio of two separately measured means.
"""
import math
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from jist_edge.pipeline.stats import percentiles

Stats = Dict[str, float]


def summarize(samples_ms: Sequence[float]) -> Stats:
    """n, mean, min, p50 (= median), p95, p99, max and FPS (1000 / mean) of millisecond samples."""
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    p50, p95, p99 = percentiles(x, [50, 95, 99])
    mean = float(x.mean())
    return {
        "n": int(x.size),
        "mean_ms": mean,
        "min_ms": float(x.min()),
        "p50_ms": float(p50),
        "median_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(x.max()),
        "fps": 1000.0 / max(mean, 1e-9),
    }


def ratio_summary(ratios: Sequence[float]) -> Stats:
    """min / median / max (and mean, n) of per-pair ratios."""
    r = np.asarray(ratios, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no ratios to summarize")
    return {
        "n": int(r.size),
        "min": float(r.min()),
        "median": float(np.median(r)),
        "max": float(r.max()),
        "mean": float(r.mean()),
    }


def time_call(fn: Callable[[], Any]) -> float:
    """One call, in milliseconds."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def time_runs(
    fn: Callable[[], Any],
    runs: int,
    warmup: int = 1,
    budget_s: Optional[float] = None,
    min_runs: int = 3,
) -> List[float]:
    """Warm up, then time ``runs`` calls (fewer, but at least ``min_runs``, if ``budget_s`` runs out)."""
    for _ in range(warmup):
        fn()
    samples: List[float] = []
    start = time.perf_counter()
    for i in range(runs):
        samples.append(time_call(fn))
        if budget_s is not None and i + 1 >= min_runs and time.perf_counter() - start > budget_s:
            break
    return samples


def interleave(
    fns: Mapping[str, Callable[[], Any]],
    rounds: int,
    warmup: int = 1,
    budget_s: Optional[float] = None,
    min_rounds: int = 3,
) -> Dict[str, List[float]]:
    """Time several ways in rounds, one call of each per round, rotating who goes first.

    Returns name -> samples (ms), all of the same length, sample i of every way taken in
    round i, so per-round ratios compare calls made moments apart.
    """
    names = list(fns)
    if not names:
        raise ValueError("nothing to time")
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: Dict[str, List[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(time_call(fns[name]))
        if budget_s is not None and r + 1 >= min_rounds and time.perf_counter() - start > budget_s:
            break
    return samples


def per_round_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> List[float]:
    if len(numerator) != len(denominator):
        raise ValueError("ratio needs paired samples of equal length")
    return [float(a) / float(b) for a, b in zip(numerator, denominator) if b > 0]


def compare(
    fns: Mapping[str, Callable[[], Any]],
    baseline: str,
    rounds: int,
    warmup: int = 1,
    budget_s: Optional[float] = None,
    min_rounds: int = 3,
) -> Dict[str, Any]:
    """Interleaved timing of several ways plus each one's ratio to ``baseline`` per round.

    ``{"stats": {name: summarize}, "ratio_to_<baseline>": {name: ratio_summary}, "rounds": n}``;
    a ratio above 1 means that way took longer than the baseline.
    """
    if baseline not in fns:
        raise ValueError("baseline {!r} is not one of {}".format(baseline, list(fns)))
    samples = interleave(fns, rounds, warmup=warmup, budget_s=budget_s, min_rounds=min_rounds)
    out: Dict[str, Any] = {
        "rounds": len(samples[baseline]),
        "warmup": int(warmup),
        "stats": {name: summarize(s) for name, s in samples.items()},
        "ratio_to_baseline": {},
        "baseline": baseline,
    }
    for name, s in samples.items():
        if name != baseline:
            out["ratio_to_baseline"][name] = ratio_summary(per_round_ratios(s, samples[baseline]))
    return out


def finite_numbers(obj: Any, path: str = "") -> List[str]:
    """Paths of every non-finite float in a nested dict/list (for checking reports)."""
    bad: List[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            bad.extend(finite_numbers(value, "{}.{}".format(path, key) if path else str(key)))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            bad.extend(finite_numbers(value, "{}[{}]".format(path, i)))
    elif isinstance(obj, float) and not math.isfinite(obj):
        bad.append(path)
    return bad
