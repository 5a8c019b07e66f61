"""How `eval` and `demo` print the raw-vs-filtered comparison (the JSON holds the same numbers)."""
from typing import Any, Dict

from jist_edge.cli.common import echo_table
from jist_edge.evaluation.localization import COMPARISON_HEADERS, comparison_rows


def print_comparison(summary: Dict[str, Any], echo: Any) -> None:
    """The raw-vs-filtered table and a line on the filter's setup (eval and demo)."""
    echo("")
    echo("Raw retrieval vs the route filter ({}, {} windows on the map, {} off it):".format(
        summary["method"], summary["evaluated"], summary["off_map"]))
    echo_table(COMPARISON_HEADERS, comparison_rows(summary), out=echo)
    reloc = summary["relocalization"]
    if reloc["events"]:
        echo("relocalization after {} event(s) ({}): windows {}".format(
            len(reloc["events"]), ", ".join(sorted(set(e["kind"] for e in reloc["events"]))),
            [e["frames"] for e in reloc["events"]]))
    setup = summary["setup"]
    if not setup["positions"]:
        echo("route filter: the map has no positions; estimates are place indices only")
    echo("route filter: {:.3f} ms per window (with its top-{} search), temperature {:.3g}, off-map distance "
         "{:.3g}{}".format(setup["ms_per_query"], setup["params"]["top_k"], setup["temperature"],
                           setup["off_distance"],
                           " (map statistics computed on load)" if setup["stats_computed_on_load"] else ""))
