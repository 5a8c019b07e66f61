"""The bench's sections, in one registry: the runner and the report are loops over it.

``SECTIONS`` is the order they run in (cheap and in-process first, fresh-process runs last);
the report shows them in ``REPORT_ORDER`` (what a reader asks first: the runtime end to end)
and the claims table takes their rows in ``CLAIMS_ORDER`` (the paper's claims first, the
toolkit's own goals after).
"""
from typing import Any, Dict, List, Sequence, Tuple

from jist_edge.benchmarks.section import Section
from jist_edge.benchmarks.sections import (capture, encoders, matching, pipeline, precision, route_filter,
                                           sequence_length, serve, soak, streaming)

SECTIONS = tuple(m.SECTION for m in (encoders, capture, precision, streaming, sequence_length, matching,
                                     route_filter, pipeline, serve, soak))  # type: Tuple[Section, ...]
REPORT_ORDER = ("pipeline", "soak", "serve", "encoders", "precision", "capture", "streaming", "sequence_length",
                "matching", "route_filter")
CLAIMS_ORDER = ("matching", "streaming", "pipeline", "precision", "sequence_length", "route_filter", "serve")


def by_name(names: Sequence[str]) -> List[Section]:
    """The sections called ``names``, in that order (KeyError names an unknown one)."""
    table = {s.name: s for s in SECTIONS}
    return [table[n] for n in names]


def markdown(result: Dict[str, Any]) -> List[str]:
    """Every section that ran, as the report shows them."""
    lines = []  # type: List[str]
    for section in by_name(REPORT_ORDER):
        if section.markdown is not None and section.name in result:
            lines += section.markdown(result[section.name])
    return lines


def claims(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The claims table: each section that ran adds its rows."""
    rows = []  # type: List[Dict[str, Any]]
    for section in by_name(CLAIMS_ORDER):
        if section.claims is not None and section.name in result:
            rows += section.claims(result)
    return rows
