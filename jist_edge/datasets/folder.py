"""Writing an imported pass: VPR-convention names, a staging folder renamed into place at the end."""
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import ensure_parent_dir

# @easting@northing@zone@letter@lat@lon@pano_id@tile@heading@pitch@roll@height@timestamp@note@ext
_FIELDS = 15


def vpr_name(prefix: str, easting: float, northing: float, ext: str, lat: Optional[float] = None,
             lon: Optional[float] = None, key: str = "", timestamp: Optional[float] = None, note: str = "") -> str:
    """``prefix@easting@northing@@@lat@lon@key@@@@@@timestamp@note@.ext``: the prefix orders the frames
    (natural name order) when no timestamp is given."""
    fields = [""] * _FIELDS
    fields[0], fields[1], fields[2] = prefix, "{:.2f}".format(easting), "{:.2f}".format(northing)
    if lat is not None and lon is not None:
        fields[5], fields[6] = "{:.7f}".format(lat), "{:.7f}".format(lon)
    fields[7] = key
    if timestamp is not None:
        fields[13] = "{:.6f}".format(timestamp)
    fields[14] = note
    return "@".join(fields) + "@" + ext


class Staging(object):
    """The output folder, written beside its place and renamed into it; refused when it exists and is not empty."""

    def __init__(self, output: str) -> None:
        if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
            raise JistEdgeError("--output {} exists and is not an empty folder: choose a new folder".format(output))
        self.output = os.path.abspath(output)
        self.path = tempfile.mkdtemp(prefix=".jist-edge-import-", dir=ensure_parent_dir(self.output))

    def folder(self, *parts: str) -> str:
        path = os.path.join(self.path, *parts)
        if not os.path.isdir(path):
            os.makedirs(path)
        return path

    def commit(self) -> None:
        if os.path.isdir(self.output):
            os.rmdir(self.output)
        os.rename(self.path, self.output)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if kind is None:
            self.commit()
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def copy_file(src: str, dest: str) -> None:
    """A hard link where the file system allows it (a dataset is large), else a copy."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def read_csv_rows(path: str, required: Sequence[str], what: str) -> List[Dict[str, str]]:
    """Rows of a CSV as dicts by header name; a one-line error naming the file and the missing columns."""
    import csv

    if not os.path.isfile(path):
        raise JistEdgeError("{}: {} not found".format(what, path))
    with open(path, "r", newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise JistEdgeError("{}: {} lacks the column(s) {} (header: {})".format(
                what, path, ", ".join(missing), ",".join(header)))
        rows = []
        for n, row in enumerate(reader, 2):
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise JistEdgeError("{}: {} line {}: {} fields, the header has {}".format(
                    what, path, n, len(row), len(header)))
            rows.append(dict(zip(header, row)))
    return rows


def number(text: str, path: str, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise JistEdgeError("{}: column {} holds {!r}, not a number".format(path, column, text))
