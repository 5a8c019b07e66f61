"""A ROS bag drive as files the Nano's runtime reads: an image folder or MJPG video, and a positions CSV.

JetPack 4's Python 3.6 cannot install rosbags, so a bag is turned into files on the host.
Every frame is written as it was decoded (a lossless PNG per frame, or an MJPG video),
so a map built from the export on the Nano sees the pixels the host saw. Positions are interpolated to each frame as
for ``map build --bag``; NavSatFix drives are written as ``frame,lat,lon`` so the map keeps
its lat/lon frame, the others as ``frame,easting,northing``. The output folder is written
beside its final place and renamed into it, so a failed export leaves nothing half written.
"""
import csv
import math
import os
import shutil
import tempfile
from typing import Any, Dict, Optional

import cv2
import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import ensure_parent_dir

FORMATS = ("images", "video")


def export_bag(path: str, output: str, fmt: str = "images", image_topic: Optional[str] = None,
               position_topic: Optional[str] = None, fps: Optional[float] = None) -> Dict[str, Any]:
    """Write the drive to ``output`` (a new or empty folder); returns what was written."""
    from jist_edge.stream.sources.bag import BagSource

    if fmt not in FORMATS:
        raise JistEdgeError("--format must be one of {}, got {!r}".format(", ".join(FORMATS), fmt))
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
        raise JistEdgeError("--output {} exists and is not an empty folder: choose a new folder".format(output))
    source = BagSource(path, image_topic, position_topic)
    parent = ensure_parent_dir(os.path.abspath(output))
    staging = tempfile.mkdtemp(prefix=".jist-edge-export-", dir=parent)
    try:
        rows, frames = _write_frames(source, staging, fmt, fps)
        csv_name = None
        if source.bag_positions is not None:
            csv_name = "positions.csv"
            _write_positions(os.path.join(staging, csv_name), rows, source.position_frame)
        if os.path.isdir(output):
            os.rmdir(output)
        os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"output": os.path.abspath(output), "format": fmt, "frames": frames, "skipped": source.skipped,
            "outside_positions": source.outside_positions, "image_topic": source.image_topic,
            "position_topic": source.bag_positions.topic if source.bag_positions else None,
            "positions": os.path.join(os.path.abspath(output), csv_name) if csv_name else None}


def _write_frames(source: Any, folder: str, fmt: str, fps: Optional[float]):
    """(rows of frame key, x, y, count) written; the key is the file name (images) or video frame index."""
    rows = []
    writer = None
    count = 0
    video = os.path.join(folder, "route.avi")
    try:
        for frame in source:
            if fmt == "images":
                key = "{:06d}.png".format(frame.index)
                if not cv2.imwrite(os.path.join(folder, key), frame.image):
                    raise JistEdgeError("cannot write {}".format(os.path.join(folder, key)))
            else:
                if writer is None:
                    h, w = frame.image.shape[:2]
                    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), float(fps or source.fps or 10.0),
                                             (w, h))
                    if not writer.isOpened():
                        raise JistEdgeError("OpenCV cannot write an MJPG video at {}".format(video))
                if frame.image.shape[:2] != (h, w):
                    raise JistEdgeError("bag {}: frame {} is {}x{}, the video is {}x{}".format(
                        source.path, frame.index, frame.image.shape[1], frame.image.shape[0], w, h))
                writer.write(frame.image)
                key = count
            pos = source.positions.get(frame.index)
            if pos is not None:
                rows.append((key, pos[0], pos[1]))
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise JistEdgeError("bag {} topic {}: no usable image to export".format(source.path, source.image_topic))
    return rows, count


def _write_positions(path: str, rows: Any, frame: Dict[str, Any]) -> None:
    latlon = frame.get("frame") == "latlon"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["frame", "lat", "lon"] if latlon else ["frame", "easting", "northing"])
        for key, x, y in rows:
            if latlon:
                lat, lon = local_to_latlon(x, y, frame["origin"])
                out.writerow([key, "{:.9f}".format(lat), "{:.9f}".format(lon)])
            else:
                out.writerow([key, repr(float(x)), repr(float(y))])


def local_to_latlon(x: float, y: float, origin: Any) -> Any:
    """The inverse of positions.latlon_to_local around the same origin."""
    from jist_edge.positions import latlon_origin

    lat0, lon0, meridian, parallel = latlon_origin(float(origin[0]), float(origin[1]))
    lat = lat0 + math.degrees(y / meridian)
    lon = (lon0 + math.degrees(x / parallel) + 180.0) % 360.0 - 180.0
    return float(np.float64(lat)), float(np.float64(lon))
