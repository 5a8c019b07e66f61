"""Several drives in one map: where each drive's frames and sequences are, and one position frame for all.

A map's frame table is the drives' frames one after the other. Sequences are windows of
L consecutive frames *of one drive* (a window never straddles two drives), numbered in
drive order, so drive d holds the sequence ids ``drive_bounds[d] .. drive_bounds[d+1]-1``.
The manifest lists per drive its frame count, what it was read from and the frame its
positions are in; everything else (rows, bounds) follows from the frame counts.

Positions of all drives must be in one metric frame for the 25 m ground truth to mean
anything. Easting/northing (file names, CSV) are taken as one metric frame (UTM); lat/lon
CSVs become local metres around an origin, and drives with different origins are put
around the first one. Lat/lon and easting/northing drives cannot be put in one frame
without knowing the UTM zone, so they are refused.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.errors import IntegrityError, JistEdgeError
from jist_edge.positions import latlon_origin

METRIC = "metric"
LATLON = "latlon"
NONE = "none"
FRAMES = (METRIC, LATLON, NONE)


class Drive(object):
    """One route to put in a map: a video file, an image folder or frames, and its positions
    (None: from @easting@northing@ file names; a CSV path; or a dict frame key -> (e, n))."""

    def __init__(self, source: Any, positions: Any = None) -> None:
        self.source = source
        self.positions = positions

    def __repr__(self) -> str:
        return "Drive({!r}, positions={!r})".format(self.source, self.positions)


def as_drives(source_or_frames: Any, positions: Any = None) -> List[Drive]:
    """build_map's route argument as drives: a Drive, a list of Drives, or one route (path or frames)."""
    if isinstance(source_or_frames, Drive):
        return [source_or_frames]
    if isinstance(source_or_frames, (list, tuple)) and source_or_frames and all(
            isinstance(d, Drive) for d in source_or_frames):
        if positions is not None:
            raise JistEdgeError("give each Drive its own positions, not one positions argument for several")
        return list(source_or_frames)
    return [Drive(source_or_frames, positions)]


def window_rows(frame_counts: Sequence[int], seq_len: int) -> np.ndarray:
    """(S, L) frame-table rows of every window of L consecutive frames inside each drive."""
    parts = []
    offset = 0
    steps = np.arange(seq_len, dtype=np.int64)[None, :]
    for count in frame_counts:
        starts = np.arange(offset, offset + max(0, int(count) - seq_len + 1), dtype=np.int64)
        parts.append(starts[:, None] + steps)
        offset += int(count)
    if not parts:
        return np.zeros((0, seq_len), dtype=np.int64)
    return np.concatenate(parts, axis=0)


def bounds(frame_counts: Sequence[int], seq_len: int) -> np.ndarray:
    """CSR sequence-id offsets of the drives: [0, S_0, S_0 + S_1, ...]."""
    per_drive = [max(0, int(c) - seq_len + 1) for c in frame_counts]
    return np.concatenate([[0], np.cumsum(per_drive)]).astype(np.int64)


def manifest_frame_counts(manifest: Dict[str, Any]) -> List[int]:
    """Frames per drive; a map written before drives existed is one drive."""
    drives = manifest.get("drives")
    if drives is None:
        return [int(manifest["counts"]["frames"])]
    return [int(d["frames"]) for d in drives]


def drive_records(manifest: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Per drive: frames, sequences, source, skipped frames, position frame (old maps: one drive)."""
    drives = manifest.get("drives")
    if drives is not None:
        return [dict(d) for d in drives]
    counts = manifest["counts"]
    return [{"frames": int(counts["frames"]), "sequences": int(counts["sequences"]),
             "source": dict(manifest.get("source") or {}), "skipped_frames": int(counts.get("skipped_frames", 0)),
             "positions": {"frame": METRIC}}]


def validate_drives(manifest: Dict[str, Any], where: str) -> None:
    """The drives list adds up to the counts, each drive holds at least L frames."""
    drives = manifest.get("drives")
    seq_len = manifest["seq_len"]
    if drives is None:
        if manifest["counts"]["sequences"] != manifest["counts"]["frames"] - seq_len + 1:
            raise IntegrityError("{}: {} sequences do not fit {} frames with L={}".format(
                where, manifest["counts"]["sequences"], manifest["counts"]["frames"], seq_len))
        return
    if not isinstance(drives, list) or not drives:
        raise IntegrityError("{}: field 'drives' must be a non-empty list".format(where))
    for n, drive in enumerate(drives):
        frames = drive.get("frames") if isinstance(drive, dict) else None
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < seq_len:
            raise IntegrityError("{}: drive {} must hold at least L={} frames".format(where, n, seq_len))
        frame = (drive.get("positions") or {}).get("frame", METRIC)
        if frame not in FRAMES:
            raise IntegrityError("{}: drive {} has an unknown position frame {!r}".format(where, n, frame))
    counts = [d["frames"] for d in drives]
    if sum(counts) != manifest["counts"]["frames"]:
        raise IntegrityError("{}: the drives hold {} frames, counts.frames says {}".format(
            where, sum(counts), manifest["counts"]["frames"]))
    if int(bounds(counts, seq_len)[-1]) != manifest["counts"]["sequences"]:
        raise IntegrityError("{}: {} sequences do not fit the drives' frames {} with L={}".format(
            where, manifest["counts"]["sequences"], counts, seq_len))


def drive_of(drive_bounds: np.ndarray, seq_ids: Any) -> np.ndarray:
    """The drive number of each sequence id (ids must be valid)."""
    return np.searchsorted(drive_bounds, np.asarray(seq_ids, dtype=np.int64), side="right") - 1


# --- one position frame for all drives ------------------------------------------------------

def describe_frame(frame: Dict[str, Any]) -> str:
    if frame.get("frame") == LATLON:
        return "lat/lon (local metres around {:.6f}, {:.6f})".format(*frame["origin"])
    if frame.get("frame") == NONE:
        return "no positions"
    return "easting/northing metres"


def common_frame(frames: Sequence[Dict[str, Any]], names: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The frame every positioned drive is put in (the first positioned drive's), or a one-line
    refusal naming both drives when lat/lon and easting/northing meet. None: no drive has positions."""
    target = None  # type: Optional[Dict[str, Any]]
    target_name = ""
    for frame, name in zip(frames, names):
        if frame.get("frame", METRIC) == NONE:
            continue
        if target is None:
            target, target_name = frame, name
        elif (frame.get("frame", METRIC) == LATLON) != (target.get("frame", METRIC) == LATLON):
            raise JistEdgeError(
                "drive {} has positions in {} but drive {} in {}: they cannot be put in one frame without "
                "the UTM zone; give every drive its positions as frame,lat,lon or every drive as "
                "frame,easting,northing".format(target_name, describe_frame(target), name, describe_frame(frame)))
    return target


def to_frame(positions: np.ndarray, frame: Dict[str, Any], target: Optional[Dict[str, Any]]) -> np.ndarray:
    """A drive's positions moved into ``target``: lat/lon local metres re-centred on the target's origin."""
    if target is None or frame.get("frame") != LATLON or list(frame["origin"]) == list(target["origin"]):
        return positions

    old = latlon_origin(*frame["origin"])
    lat0, lon0, meridian, parallel = latlon_origin(*target["origin"])
    out = np.array(positions, dtype=np.float64, copy=True)
    known = np.isfinite(out).all(axis=1)
    lat = old[0] + np.degrees(out[known, 1] / old[2])
    lon = old[1] + np.degrees(out[known, 0] / old[3])
    # the same local projection as positions.latlon_to_local, on arrays
    out[known, 0] = np.radians((lon - lon0 + 180.0) % 360.0 - 180.0) * parallel
    out[known, 1] = np.radians(lat - lat0) * meridian
    return out
