"""Oxford RobotCar: one run's camera images (Bayer PNGs named by microsecond timestamps) and its INS.

Source layout (robotcar-dataset.robots.ox.ac.uk, the SDK's python/image.py): ``<run>/stereo/centre/
<timestamp>.png`` (or ``mono_left``, ``mono_rear``, ...) holding raw Bayer mosaics, GBRG for the
stereo camera and RGGB for the mono cameras, and ``<run>/gps/ins.csv`` with columns timestamp,
northing and easting (UTM metres, among others). Images are demosaiced with OpenCV and written
as lossless PNGs; positions are interpolated linearly from the INS to each image's timestamp,
and images outside the INS's span are skipped and counted.

Output: ``<out>/`` one image folder, named ``TTTTTTTTTTTTTTTT@easting@northing@...@timestamp@@.png``.
"""
import os
from typing import Any, Dict, Optional

import cv2
import numpy as np

from jist_edge.datasets.folder import Staging, number, read_csv_rows, vpr_name
from jist_edge.errors import JistEdgeError
from jist_edge.stream.sources.bag_messages import BAYER_TO_BGR

CAMERAS = ("stereo/centre", "stereo/left", "stereo/right", "mono_left", "mono_right", "mono_rear")


def bayer_pattern(camera: str) -> str:
    return "gbrg" if camera.startswith("stereo") else "rggb"


def import_robotcar(src: str, output: str, camera: str = "stereo/centre", pattern: Optional[str] = None,
                    every: int = 1) -> Dict[str, Any]:
    folder = os.path.join(src, camera)
    if not os.path.isdir(folder):
        raise JistEdgeError("RobotCar {}: no {}/ folder of images".format(src, camera))
    pattern = (pattern or bayer_pattern(camera)).lower()
    if pattern not in BAYER_TO_BGR:
        raise JistEdgeError("RobotCar: Bayer pattern must be one of {}, got {!r}".format(
            ", ".join(sorted(BAYER_TO_BGR)), pattern))
    ins = os.path.join(src, "gps", "ins.csv")
    rows = read_csv_rows(ins, ("timestamp", "northing", "easting"), "RobotCar {}".format(src))
    if not rows:
        raise JistEdgeError("RobotCar {}: {} holds no position".format(src, ins))
    table = np.array([[number(r["timestamp"], ins, "timestamp"), number(r["easting"], ins, "easting"),
                       number(r["northing"], ins, "northing")] for r in rows], dtype=np.float64)
    table = table[np.argsort(table[:, 0], kind="mergesort")]
    stamps = sorted(int(n[:-4]) for n in os.listdir(folder) if n.endswith(".png") and n[:-4].isdigit())
    if not stamps:
        raise JistEdgeError("RobotCar {}: no <timestamp>.png images".format(folder))
    written = outside = unreadable = 0
    with Staging(output) as staging:
        for stamp in stamps[::max(1, int(every))]:
            if not table[0, 0] <= stamp <= table[-1, 0]:
                outside += 1
                continue
            mosaic = cv2.imread(os.path.join(folder, "{}.png".format(stamp)), cv2.IMREAD_GRAYSCALE)
            if mosaic is None:
                unreadable += 1
                continue
            easting = float(np.interp(stamp, table[:, 0], table[:, 1]))
            northing = float(np.interp(stamp, table[:, 0], table[:, 2]))
            name = vpr_name("{:016d}".format(stamp), easting, northing, ".png", timestamp=stamp * 1e-6)
            if not cv2.imwrite(os.path.join(staging.path, name), cv2.cvtColor(mosaic, BAYER_TO_BGR[pattern])):
                raise JistEdgeError("cannot write {}".format(os.path.join(output, name)))
            written += 1
    if written == 0:
        raise JistEdgeError("RobotCar {}: no image lies within the INS's span ({} outside, {} unreadable)".format(
            folder, outside, unreadable))
    return {"dataset": "robotcar", "output": os.path.abspath(output), "camera": camera, "pattern": pattern,
            "images": written, "outside_positions": outside, "unreadable": unreadable}
