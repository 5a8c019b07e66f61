"""What a bench section is, and what it is given: the runner and the report loop over sections.

A section measures one thing (``run``), writes its part of the Markdown report (``markdown``) and
may add rows to the paper-claims table (``claims``). ``run`` returns the JSON-able dict stored
under ``result[name]``, or None when it cannot run here (it then says why with ``ctx.note``).
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

Log = Callable[[str], None]


@dataclass
class Context:
    """Everything a section's run needs; built once by the runner."""
    cfg: Dict[str, Any]
    cache_dir: str
    bundle: Any                      # the main model bundle
    backends: List[str]              # the encoder backends timed; the first runs the streaming sections
    map_dir: Optional[str] = None    # a given map for the per-stage run, else one is synthesized
    log: Log = print
    notes: List[str] = field(default_factory=list)
    _size_bundles: Optional[List[Any]] = None

    def note(self, text: str) -> None:
        """A line for the result's ``notes``: why a section was skipped."""
        self.notes.append(text)

    @property
    def runtime_backend(self) -> str:
        """The first backend as the runtime names it (torch backends are bench-only: the runtime picks)."""
        return self.backends[0] if not self.backends[0].startswith("torch-") else "auto"

    def size_bundles(self) -> List[Any]:
        """The main bundle, then a random-init one per extra input size (exported once, cached)."""
        if self._size_bundles is None:
            from jist_edge.benchmarks import bundles

            b = self.bundle
            self._size_bundles = [b] + [bundles.random_bundle(self.cache_dir, size, b.seq_len, self.log)[0]
                                        for size in self.cfg["extra_img_sizes"] if tuple(size) != (b.height, b.width)]
        return self._size_bundles


@dataclass(frozen=True)
class Section:
    """One bench section: ``result[name] = run(ctx)``, ``markdown(result[name])``, ``claims(result)``."""
    name: str
    run: Callable[[Context], Optional[Dict[str, Any]]]
    markdown: Optional[Callable[[Dict[str, Any]], List[str]]] = None
    claims: Optional[Callable[[Dict[str, Any]], List[Dict[str, Any]]]] = None


def ms_text(s: Dict[str, Any]) -> str:
    """p50 / p95 / p99 of a timing summary."""
    return "{:.3f} / {:.3f} / {:.3f}".format(s["p50_ms"], s["p95_ms"], s["p99_ms"])


def ratio_text(r: Dict[str, Any]) -> str:
    """median (min..max) of a ratio summary."""
    return "{:.2f} ({:.2f}..{:.2f})".format(r["median"], r["min"], r["max"])
