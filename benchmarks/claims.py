"""The paper's claims beside what this run measured, with an explicit test for each.

Every ``value`` is read from the run's own result at ``key`` (a path into the JSON);
nothing here is a constant standing in for a measurement. The paper's numbers appear
only as text in ``paper``. ``holds`` is true/false, or null when this machine cannot
test the claim (e.g. Jetson Nano speed on a desktop CPU); ``criterion`` says how it
was decided. Each bench section adds its own rows (jist_edge.benchmarks.sections); this
module holds what they share.
"""
import re
from typing import Any, Dict, List, Optional

from jist_edge.benchmarks.machine import one_line

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def lookup(obj: Any, path: str) -> Any:
    """``lookup(result, "matching.dims[0].size_ratio")``; KeyError/IndexError when absent."""
    for name, index in _TOKEN.findall(path):
        obj = obj[int(index)] if index else obj[name]
    return obj


def claim_row(result: Dict[str, Any], cid: str, claim: str, paper: str, key: str, unit: str,
              holds: Optional[bool], criterion: str, extra: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """One row of the table: the value and the related figures read from ``result`` at their keys."""
    value = float(lookup(result, key))
    row = {"id": cid, "claim": claim, "paper": paper, "key": key, "value": value, "unit": unit,
           "holds": holds, "criterion": criterion, "hardware": one_line(result["machine"])}
    row["related"] = {name: float(lookup(result, path)) for name, path in (extra or {}).items()}
    row["related_keys"] = dict(extra or {})
    return row


def index_of(rows: List[Dict[str, Any]], field: str, wanted: Any) -> Optional[int]:
    """The first row whose ``field`` is ``wanted``, or None."""
    for i, row in enumerate(rows):
        if row[field] == wanted:
            return i
    return None


def holds_text(value: Optional[bool]) -> str:
    """A claim's ``holds`` as the tables print it."""
    return "not testable here" if value is None else ("yes" if value else "no")
