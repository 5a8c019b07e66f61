"""Nordland: four seasons of one 728 km train ride, frame i of every season showing the same place.

Source layout: ``<src>/<season>/`` (summer, winter, spring, fall), each holding the frames of
that season as images whose file name carries the frame index (``00123.png``, ``image123.png``,
in section subfolders or not). The frame index is the place: there are no GPS positions, so, as
VPR-datasets-downloader does for this dataset, every frame gets a pseudo position on a straight
line, ``spacing_m`` (2.4 m) per frame, so that frames up to 10 apart (the usual Nordland
tolerance) lie within the 25 m of the paper's ground truth.

Output: ``<out>/database/`` (default: summer) and ``<out>/queries/`` (default: winter), the files
hard-linked or copied byte for byte, named ``IIIIII@0.00@northing@...@.ext``.
"""
import os
import re
from typing import Any, Dict, List, Tuple

from jist_edge.datasets.folder import Staging, copy_file, vpr_name
from jist_edge.errors import JistEdgeError
from jist_edge.stream.uri import IMAGE_EXTENSIONS

SEASONS = ("summer", "winter", "spring", "fall")
SPACING_M = 2.4
_NUMBER = re.compile(r"(\d+)")


def import_nordland(src: str, output: str, database: str = "summer", queries: str = "winter",
                    spacing_m: float = SPACING_M) -> Dict[str, Any]:
    if not spacing_m > 0:
        raise JistEdgeError("Nordland: the spacing must be positive, got {}".format(spacing_m))
    passes = (("database", database), ("queries", queries))
    frames = {season: _frames(src, season) for _, season in passes}
    report = {"dataset": "nordland", "spacing_m": spacing_m}  # type: Dict[str, Any]
    with Staging(output) as staging:
        for out, season in passes:
            folder = staging.folder(out)
            for index, path in frames[season]:
                ext = os.path.splitext(path)[1].lower()
                copy_file(path, os.path.join(folder, vpr_name("{:06d}".format(index), 0.0, index * spacing_m, ext,
                                                              note=season)))
            report[out] = {"season": season, "images": len(frames[season])}
    report["output"] = os.path.abspath(output)
    return report


def _frames(src: str, season: str) -> List[Tuple[int, str]]:
    """(frame index, path) of one season in index order; an index twice is refused naming both files."""
    folder = os.path.join(src, season)
    if not os.path.isdir(folder):
        found = [d for d in sorted(os.listdir(src)) if os.path.isdir(os.path.join(src, d))] if os.path.isdir(src) else []
        raise JistEdgeError("Nordland {}: no {}/ folder (found: {})".format(src, season, ", ".join(found) or "nothing"))
    seen = {}  # type: Dict[int, str]
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            digits = _NUMBER.findall(os.path.splitext(name)[0])
            if not digits:
                raise JistEdgeError("Nordland {}: {} carries no frame index in its name".format(
                    folder, os.path.join(root, name)))
            index = int(digits[-1])
            path = os.path.join(root, name)
            if index in seen:
                raise JistEdgeError("Nordland {}: frame {} twice ({} and {})".format(folder, index, seen[index], path))
            seen[index] = path
    if not seen:
        raise JistEdgeError("Nordland {}: no images".format(folder))
    return sorted(seen.items())
