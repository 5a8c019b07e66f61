"""Frame positions: from VPR-style file names or a CSV, and the order of an image folder.

Recall in the paper's protocol needs a position per frame (a database sequence is a
positive when one of its frames lies within 25 m of a query frame). Positions come
from file names ``...@utm_easting@utm_northing@...@.jpg`` (the VPR benchmark
convention) or from a CSV beside a video or image folder.
"""
import csv
import math
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import atomic_path

FrameKey = Union[int, str]
Position = Tuple[float, float]

# VPR convention (github.com/gmberton/VPR-datasets-downloader):
# @easting@northing@zone@letter@lat@lon@pano_id@tile@heading@pitch@roll@height@timestamp@note@ext
# The paper's ground truth radius, defined here once: a database frame within this many metres of a
# query frame is a positive (evaluation.ground_truth); the route filter's "near" uses the same.
POSITIVE_RADIUS_M = 25.0
EASTING_FIELD = 1
NORTHING_FIELD = 2
TIMESTAMP_FIELD = 13

# Local metres from lat/lon: radii of curvature of the WGS84 ellipsoid at the origin.
WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3

CSV_HEADERS = ("frame,easting,northing", "frame,lat,lon")
_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "lng", "longitude")


def _fields(name: str) -> List[str]:
    return os.path.basename(name).split("@")


def _finite_float(text: str) -> Optional[float]:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def position_from_name(name: str) -> Optional[Position]:
    """(easting, northing) from fields 1 and 2 of a name split on '@'; None when absent."""
    fields = _fields(name)
    if len(fields) <= NORTHING_FIELD:
        return None
    easting = _finite_float(fields[EASTING_FIELD])
    northing = _finite_float(fields[NORTHING_FIELD])
    if easting is None or northing is None:
        return None
    return easting, northing


def positions_from_names(names: Sequence[str]) -> Tuple[np.ndarray, int]:
    """Nx2 float64 positions, NaN rows where a name carries none, and how many are missing."""
    return positions_for_names(names, None)


def timestamp_from_name(name: str) -> Optional[float]:
    """The numeric timestamp field (field 13) of a full VPR-convention name, if any."""
    fields = _fields(name)
    if len(fields) <= TIMESTAMP_FIELD:
        return None
    return _finite_float(fields[TIMESTAMP_FIELD])


_DIGITS = re.compile(r"(\d+)")


def order_key(name: str) -> Tuple:
    """Natural order of a file name: digit runs compare as numbers (frame9 < frame10)."""
    parts = _DIGITS.split(os.path.basename(name))
    key = []  # type: List[Tuple[int, int, str]]
    for i, part in enumerate(parts):
        if i % 2:
            key.append((1, int(part), part))
        elif part:
            key.append((0, 0, part))
    return tuple(key)


def sort_frame_names(names: Iterable[str]) -> List[str]:
    """Order an image folder's names into frame order.

    The rule: when *every* name is a full VPR-convention name with a numeric timestamp
    field (field 13 after splitting on '@'), frames are ordered by that timestamp (ties
    by name). Otherwise they are ordered by file name in natural order, so
    ``img_9.jpg`` comes before ``img_10.jpg``, and names that are numeric timestamps
    (``1650000000123.jpg``) or zero-padded indices sort chronologically.
    """
    names = list(names)
    stamps = [timestamp_from_name(n) for n in names]
    if names and all(s is not None for s in stamps):
        order = sorted(range(len(names)), key=lambda i: (stamps[i], order_key(names[i]), names[i]))
        return [names[i] for i in order]
    return sorted(names, key=lambda n: (order_key(n), n))


def _frame_key(text: str) -> FrameKey:
    try:
        return int(text)
    except ValueError:
        return text


def _header_columns(header: List[str], path: str) -> Tuple[int, int, int, bool]:
    """Indices of frame, first and second coordinate, and whether they are lat/lon."""
    cols = [h.strip().lower() for h in header]

    def find(options: Sequence[str]) -> Optional[int]:
        for option in options:
            if option in cols:
                return cols.index(option)
        return None

    frame = find(("frame",))
    easting, northing = find(("easting",)), find(("northing",))
    lat, lon = find(_LAT_NAMES), find(_LON_NAMES)
    if frame is not None and easting is not None and northing is not None:
        return frame, easting, northing, False
    if frame is not None and lat is not None and lon is not None:
        return frame, lat, lon, True
    raise JistEdgeError(
        "positions CSV {}: header {!r} is not understood; accepted headers: {}".format(
            path, ",".join(header), " or ".join(CSV_HEADERS)
        )
    )


def read_positions_csv(path: str) -> Dict[FrameKey, Position]:
    """Frame key -> (easting, northing) in metres from a CSV (see read_positions_frame)."""
    return read_positions_frame(path)[0]


def read_positions_frame(path: str) -> Tuple[Dict[FrameKey, Position], Dict[str, Any]]:
    """Frame key -> (easting, northing) in metres from a CSV, and the frame they are in:
    ``{"frame": "metric"}`` or ``{"frame": "latlon", "origin": [lat0, lon0]}``.

    Header ``frame,easting,northing`` (UTM or any metric frame) or ``frame,lat,lon``
    (degrees, WGS84). Lat/lon become local metres around the first row: east and north
    offsets on the WGS84 ellipsoid's radii of curvature at that latitude (a local
    equirectangular projection; well under 1% error over a few km), so the first row
    is (0, 0). ``frame`` is an integer frame index (video) or an image file name.
    Column order is free and extra columns are ignored.
    """
    try:
        # utf-8-sig: Excel writes CSV with a byte-order mark, which would otherwise stick to "frame"
        handle = open(path, "r", newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise JistEdgeError("positions CSV {} cannot be read: {}".format(path, exc.strerror or exc))
    result = {}  # type: Dict[FrameKey, Position]
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            while header is not None and not any(c.strip() for c in header):
                header = next(reader, None)
            if header is None:
                raise JistEdgeError("positions CSV {} is empty; expected a header {}".format(path, " or ".join(CSV_HEADERS)))
            frame_col, a_col, b_col, is_latlon = _header_columns(header, path)
            origin = None  # type: Optional[Tuple[float, float, float, float]]
            width = len(header)
            for row in reader:
                line = reader.line_num
                if not any(c.strip() for c in row):
                    continue
                if len(row) != width:
                    raise JistEdgeError(
                        "positions CSV {} line {}: {} fields, the header has {}".format(path, line, len(row), width)
                    )
                key = _frame_key(row[frame_col].strip())
                if key == "":
                    raise JistEdgeError("positions CSV {} line {}: empty frame".format(path, line))
                a, b = _finite_float(row[a_col]), _finite_float(row[b_col])
                if a is None or b is None:
                    raise JistEdgeError(
                        "positions CSV {} line {}: {!r}, {!r} are not finite numbers".format(path, line, row[a_col], row[b_col])
                    )
                if is_latlon:
                    if not (-90.0 <= a <= 90.0 and -180.0 <= b <= 180.0):
                        raise JistEdgeError(
                            "positions CSV {} line {}: lat {} / lon {} out of range".format(path, line, a, b)
                        )
                    if origin is None:
                        origin = latlon_origin(a, b)
                    a, b = latlon_to_local(a, b, origin)
                if key in result:
                    raise JistEdgeError("positions CSV {} line {}: frame {!r} appears twice".format(path, line, key))
                result[key] = (a, b)
        except csv.Error as exc:
            raise JistEdgeError("positions CSV {} line {}: {}".format(path, reader.line_num, exc))
        except UnicodeDecodeError:
            raise JistEdgeError("positions CSV {} is not UTF-8 text".format(path))
    if not result:
        raise JistEdgeError("positions CSV {} holds a header but no positions".format(path))
    if origin is None:
        return result, {"frame": "metric"}
    return result, {"frame": "latlon", "origin": [origin[0], origin[1]]}


def latlon_origin(lat0: float, lon0: float) -> Tuple[float, float, float, float]:
    phi = math.radians(lat0)
    w = math.sqrt(1.0 - WGS84_E2 * math.sin(phi) ** 2)
    meridian = WGS84_A * (1.0 - WGS84_E2) / w ** 3  # north-south radius of curvature
    normal = WGS84_A / w  # east-west (prime vertical) radius of curvature
    return lat0, lon0, meridian, normal * math.cos(phi)


def latlon_to_local(lat: float, lon: float, origin: Tuple[float, float, float, float]) -> Position:
    lat0, lon0, meridian, parallel = origin
    dlon = (lon - lon0 + 180.0) % 360.0 - 180.0
    return math.radians(dlon) * parallel, math.radians(lat - lat0) * meridian


def write_positions_csv(path: str, rows: Iterable[Tuple[FrameKey, float, float]]) -> int:
    """Write ``frame,easting,northing`` atomically; returns the number of rows."""
    count = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["frame", "easting", "northing"])
            for frame, easting, northing in rows:
                writer.writerow([frame, repr(float(easting)), repr(float(northing))])
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
    return count


def frame_position(name: str, index: FrameKey, table: Optional[Dict[FrameKey, Position]] = None) -> Optional[Position]:
    """One frame's position, or None: from a CSV table when one is given (keyed by file name,
    path as given, or frame index, in that order), else from its VPR-style name.

    A frame that a given table lacks has no position, even when its name carries one."""
    if table is None:
        return position_from_name(name)
    for key in (os.path.basename(name), name, index):
        if key in table:
            return table[key]
    return None


def positions_for_names(names: Sequence[str],
                        table: Optional[Dict[FrameKey, Position]] = None) -> Tuple[np.ndarray, int]:
    """Nx2 float64 positions of frames in list order (see frame_position; the list index is the
    frame index), NaN rows where absent, and how many are missing."""
    positions = np.full((len(names), 2), np.nan, dtype=np.float64)
    missing = 0
    for i, name in enumerate(names):
        pos = frame_position(name, i, table)
        if pos is None:
            missing += 1
        else:
            positions[i] = pos
    return positions, missing
