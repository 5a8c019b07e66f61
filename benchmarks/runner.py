"""The whole bench: the model, then every registered section in order, one JSON-able result.

Sections (jist_edge.benchmarks.sections): encoder latency per backend and input size,
capture cost, encoder precision, streaming vs re-encoding, sequence length, matching vs
map size, the route filter's cost vs map size, the runtime's per-stage latency and memory
(in a fresh process), the cost of the live web view (run --serve, also in a fresh process),
a memory soak (fresh process); then the paper-claims table built from those measurements.
"""
import datetime
import json
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from jist_edge.benchmarks import bundles, encoders, machine, sections
from jist_edge.benchmarks.memory import gpu_memory, peak_rss_mb
from jist_edge.benchmarks.section import Context
from jist_edge.benchmarks.settings import MODES, SCHEMA, settings  # noqa: F401  (runner.settings, runner.SCHEMA)
from jist_edge.bundle import load_bundle
from jist_edge.errors import JistEdgeError

Log = Callable[[str], None]


def run_bench(cfg: Dict[str, Any], cache_dir: str, model: Optional[str] = None, map_dir: Optional[str] = None,
              backends: Optional[Sequence[str]] = None, log: Log = print) -> Dict[str, Any]:
    """Every section; returns the result dict (the JSON report's content)."""
    started = time.perf_counter()
    info = machine.machine_info()
    log("machine: " + machine.one_line(info))
    result = {"schema": SCHEMA, "created": _now(), "mode": cfg["mode"], "machine": info,
              "settings": _jsonable_settings(cfg), "notes": []}  # type: Dict[str, Any]

    t = time.perf_counter()
    main_bundle, export_s = _main_bundle(model, cfg, cache_dir, log)
    result["model"] = {"path": main_bundle.path, "bundle_id": main_bundle.bundle_id, "height": main_bundle.height,
                       "width": main_bundle.width, "seq_len": main_bundle.seq_len, "dim": main_bundle.dim,
                       "random_init": main_bundle.random_init, "export_s": export_s}
    durations = {"model": time.perf_counter() - t}
    ctx = Context(cfg, cache_dir, main_bundle, _backends(backends), map_dir=map_dir, log=log, notes=result["notes"])
    for section in sections.SECTIONS:
        t = time.perf_counter()
        out = section.run(ctx)
        if out is not None:
            result[section.name] = out
        durations[section.name] = time.perf_counter() - t

    result["memory"] = {"bench_process_peak_rss_mb": peak_rss_mb(), "gpu": gpu_memory()}
    durations["total"] = time.perf_counter() - started
    result["durations_s"] = durations
    result["claims"] = sections.claims(result)
    return result


def _main_bundle(model: Optional[str], cfg: Dict[str, Any], cache_dir: str, log: Log) -> Tuple[Any, float]:
    if model:
        return load_bundle(model), 0.0
    return bundles.random_bundle(cache_dir, cfg["img_size"], 5, log)


def _backends(requested: Optional[Sequence[str]]) -> List[str]:
    available = encoders.all_backends()
    if not requested or list(requested) == ["auto"]:
        if not available:
            raise JistEdgeError("no encoder backend is available: install onnxruntime")
        return available
    missing = [b for b in requested if b not in available]
    if missing:
        raise JistEdgeError("--backend {}: not available here (available: {})".format(
            ", ".join(missing), ", ".join(available) or "none"))
    return list(requested)


def _jsonable_settings(cfg: Dict[str, Any]) -> Dict[str, Any]:
    return json.loads(json.dumps(cfg))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
