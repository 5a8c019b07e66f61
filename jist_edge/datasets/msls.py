"""Mapillary Street-Level Sequences (MSLS): per city ``query/`` and ``database/`` -> one image folder per pass.

Source layout (github.com/mapillary/mapillary_sls): ``train_val/<city>/{query,database}/`` with
``images/<key>.jpg``, ``seq_info.csv`` (key, sequence_key or sequence_id, frame_number),
``raw.csv`` (key, lon, lat, ca, captured_at, pano) and ``postprocessed.csv`` (key, easting,
northing, ...; UTM metres). The test split has no positions and is refused by name.

Output: ``<out>/<city>/database/`` and ``<out>/<city>/queries/``, the JPEGs hard-linked or copied
byte for byte, named ``SSSSS_FFFFF@easting@northing@@@lat@lon@key@...@.jpg``: SSSSS numbers the
sequences in order of their first capture, FFFFF is the frame number, so name order is
sequence order then frame order. ``sequences.csv`` lists name, sequence and frame number of each.
An image folder is one drive for map build and eval, so windows of L frames that cross from one
sequence into the next exist there; JIST's own loader drops them (docs/datasets.md).
"""
import os
from typing import Any, Dict, List

from jist_edge.datasets.folder import Staging, copy_file, number, read_csv_rows, vpr_name
from jist_edge.errors import JistEdgeError

PASSES = (("database", "database"), ("query", "queries"))


def import_msls(src: str, output: str, cities: Any = None) -> Dict[str, Any]:
    """Import every city of ``src`` (the MSLS root, its train_val/ folder, or one city); returns counts."""
    city_dirs = _cities(src)
    if cities:
        wanted = set(cities)
        city_dirs = {c: p for c, p in city_dirs.items() if c in wanted}
        missing = sorted(wanted - set(city_dirs))
        if missing:
            raise JistEdgeError("MSLS {}: no city {}".format(src, ", ".join(missing)))
    report = {"dataset": "msls", "cities": {}}  # type: Dict[str, Any]
    with Staging(output) as staging:
        for city, path in sorted(city_dirs.items()):
            report["cities"][city] = {out: _import_pass(os.path.join(path, name), staging.folder(city, out))
                                      for name, out in PASSES}
    report["output"] = os.path.abspath(output)
    return report


def _cities(src: str) -> Dict[str, str]:
    if not os.path.isdir(src):
        raise JistEdgeError("MSLS {} is not a folder".format(src))
    for root in (src, os.path.join(src, "train_val")):
        if not os.path.isdir(root):
            continue
        if os.path.isdir(os.path.join(root, "query")) and os.path.isdir(os.path.join(root, "database")):
            return {os.path.basename(os.path.abspath(root)): root}
        found = {c: os.path.join(root, c) for c in sorted(os.listdir(root)) if
                 os.path.isdir(os.path.join(root, c, "query")) and os.path.isdir(os.path.join(root, c, "database"))}
        if found:
            return found
    raise JistEdgeError("MSLS {}: no city with query/ and database/ (expected train_val/<city>/query, "
                        "train_val/<city>/database)".format(src))


def _import_pass(folder: str, out: str) -> Dict[str, int]:
    where = "MSLS {}".format(folder)
    post = os.path.join(folder, "postprocessed.csv")
    if not os.path.isfile(post):
        raise JistEdgeError("{}: no postprocessed.csv, so no positions (the MSLS test split has none; import "
                            "train_val)".format(where))
    seq_csv = os.path.join(folder, "seq_info.csv")
    seq_rows = read_csv_rows(seq_csv, ("key", "frame_number"), where)
    if not seq_rows:
        raise JistEdgeError("{}: {} lists no image".format(where, seq_csv))
    seq_col = next((c for c in ("sequence_key", "sequence_id") if c in seq_rows[0]), None)
    if seq_col is None:
        raise JistEdgeError("{}: {} lacks a sequence_key (or sequence_id) column".format(where, seq_csv))
    utm = {r["key"]: (number(r["easting"], post, "easting"), number(r["northing"], post, "northing"))
           for r in read_csv_rows(post, ("key", "easting", "northing"), where)}
    raw_csv = os.path.join(folder, "raw.csv")
    raw = {r["key"]: r for r in read_csv_rows(raw_csv, ("key", "lon", "lat", "captured_at"), where)} \
        if os.path.isfile(raw_csv) else {}
    frames = _ordered(seq_rows, seq_col, raw, seq_csv)
    written, missing = [], 0
    for seq_no, seq_key, frame_no, key in frames:
        image = os.path.join(folder, "images", key + ".jpg")
        if key not in utm or not os.path.isfile(image):
            missing += 1
            continue
        r = raw.get(key, {})
        lat = number(r["lat"], raw_csv, "lat") if r else None
        lon = number(r["lon"], raw_csv, "lon") if r else None
        name = vpr_name("{:05d}_{:05d}".format(seq_no, frame_no), utm[key][0], utm[key][1], ".jpg", lat, lon, key)
        copy_file(image, os.path.join(out, name))
        written.append((name, seq_key, frame_no))
    if not written:
        raise JistEdgeError("{}: no image has both a file in images/ and a position in postprocessed.csv".format(where))
    with open(os.path.join(out, "sequences.csv"), "w", encoding="utf-8") as handle:
        handle.write("name,sequence_key,frame_number\n")
        for name, seq_key, frame_no in written:
            handle.write("{},{},{}\n".format(name, seq_key, frame_no))
    return {"images": len(written), "sequences": len(set(s for _, s, _ in written)), "skipped": missing}


def _ordered(rows: List[Dict[str, str]], seq_col: str, raw: Dict[str, Dict[str, str]], path: str):
    """(sequence ordinal, sequence key, frame number, image key) in sequence then frame order; sequences are
    numbered by their first capture time (raw.csv), else by their order in seq_info.csv."""
    by_seq = {}  # type: Dict[str, List[Any]]
    first_seen = {}  # type: Dict[str, int]
    for n, row in enumerate(rows):
        seq = row[seq_col]
        first_seen.setdefault(seq, n)
        by_seq.setdefault(seq, []).append((int(number(row["frame_number"], path, "frame_number")), row["key"]))

    def start(seq: str) -> Any:
        times = [number(raw[k]["captured_at"], path, "captured_at") for _, k in by_seq[seq] if k in raw]
        return (min(times) if times else float("inf"), first_seen[seq])

    out = []
    for ordinal, seq in enumerate(sorted(by_seq, key=start)):
        for frame_no, key in sorted(by_seq[seq]):
            out.append((ordinal, seq, frame_no, key))
    return out
