"""Plain aligned text tables: the CLI and the bench print their summaries with them."""
from typing import Any, Callable, List, Sequence


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: Callable[[str], None] = print) -> None:
    """Print a plain aligned table; the JSON output carries the same numbers."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]  # type: List[List[str]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        out("  ".join(c.rjust(w) if n and _numeric(c) else c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            out("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return "{:.3g}".format(value)
        return "{:.3f}".format(value)
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("%x"))
        return True
    except ValueError:
        return False
