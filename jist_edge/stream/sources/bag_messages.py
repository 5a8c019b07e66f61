"""ROS messages -> what the pipeline uses: BGR images, capture times and positions.

Decoded messages come from rosbags (jist_edge.stream.sources.bag); this module only reads
their fields, so it needs neither ROS nor rosbags. Type names are rosbags' normalised
ones (``sensor_msgs/msg/Image`` for ROS 1 and ROS 2 bags alike).

Images: ``sensor_msgs/Image`` in rgb8, bgr8, rgba8, bgra8, mono8 (and the 8UC1/8UC3
aliases) or bayer_rggb8/bggr8/gbrg8/grbg8, demosaiced with OpenCV as cv_bridge does;
``sensor_msgs/CompressedImage`` (jpeg, png) decoded like an image folder's files.
Positions: ``sensor_msgs/NavSatFix`` (lat/lon; NO_FIX skipped), ``nav_msgs/Odometry``,
``geometry_msgs/PoseStamped`` and ``PoseWithCovarianceStamped`` (x, y in metres).
"""
import math
from typing import Any, Optional, Tuple

import cv2
import numpy as np

from jist_edge.errors import BadFrame
from jist_edge.stream.frame import opencv_reason
from jist_edge.stream.sources.images import MAX_FRAME_PIXELS, declared_size, jpeg_is_truncated

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED)
NAVSATFIX = "sensor_msgs/msg/NavSatFix"
ODOMETRY = "nav_msgs/msg/Odometry"
POSE = "geometry_msgs/msg/PoseStamped"
POSE_COV = "geometry_msgs/msg/PoseWithCovarianceStamped"
POSITION_TYPES = (NAVSATFIX, ODOMETRY, POSE, POSE_COV)
NO_FIX = -1  # sensor_msgs/NavSatStatus.STATUS_NO_FIX

# Bayer pattern (first row's two colours, then the second row's) -> OpenCV code, as cv_bridge maps them
BAYER_TO_BGR = {"rggb": cv2.COLOR_BayerBG2BGR, "bggr": cv2.COLOR_BayerRG2BGR, "gbrg": cv2.COLOR_BayerGR2BGR,
                "grbg": cv2.COLOR_BayerGB2BGR}
# ROS encoding -> (channels, OpenCV conversion to BGR or None)
_RAW = {
    "bgr8": (3, None), "8uc3": (3, None), "rgb8": (3, cv2.COLOR_RGB2BGR),
    "bgra8": (4, cv2.COLOR_BGRA2BGR), "rgba8": (4, cv2.COLOR_RGBA2BGR),
    "mono8": (1, cv2.COLOR_GRAY2BGR), "8uc1": (1, cv2.COLOR_GRAY2BGR),
}
_RAW.update({"bayer_{}8".format(p): (1, code) for p, code in BAYER_TO_BGR.items()})
RAW_ENCODINGS = tuple(sorted(_RAW))


def short_type(msgtype: str) -> str:
    """``sensor_msgs/msg/Image`` -> ``sensor_msgs/Image`` (how people name them)."""
    return msgtype.replace("/msg/", "/")


def stamp_seconds(msg: Any, log_ns: int) -> float:
    """The header's stamp (capture time) in seconds; the bag's log time when the header has none."""
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is not None:
        sec, nsec = int(getattr(stamp, "sec", 0)), int(getattr(stamp, "nanosec", 0))
        if sec or nsec:
            return sec + nsec * 1e-9
    return int(log_ns) * 1e-9


def image_bgr(msg: Any, msgtype: str) -> np.ndarray:
    """A BGR uint8 HxWx3 image from an Image or CompressedImage; BadFrame says why not."""
    if msgtype == COMPRESSED:
        return _decode_compressed(msg)
    encoding = str(msg.encoding).strip().lower()
    if encoding not in _RAW:
        raise BadFrame("image encoding {!r} is not supported (supported: {})".format(
            msg.encoding, ", ".join(RAW_ENCODINGS)))
    channels, code = _RAW[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 2 or width < 2:
        raise BadFrame("image is {}x{} pixels".format(width, height))
    if height * width > MAX_FRAME_PIXELS:
        raise BadFrame("image declares {}x{} pixels, more than {:.0f} megapixels".format(
            width, height, MAX_FRAME_PIXELS / 1e6))
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data, dtype=np.uint8)
    if step < width * channels or data.size < height * step:
        raise BadFrame("image data holds {} bytes, {}x{} {} needs {} (step {})".format(
            data.size, width, height, encoding, height * max(step, width * channels), step))
    rows = data[:height * step].reshape(height, step)[:, :width * channels]
    image = np.ascontiguousarray(rows.reshape(height, width, channels))
    if code is None:
        return image
    try:
        return cv2.cvtColor(image if channels > 1 else image[:, :, 0], code)
    except cv2.error as exc:
        raise BadFrame("OpenCV cannot convert the {} image: {}".format(encoding, opencv_reason(exc)))


def _decode_compressed(msg: Any) -> np.ndarray:
    data = bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes()
    fmt = str(msg.format).lower()
    if not data:
        raise BadFrame("empty compressed image")
    if data[:2] == b"\xff\xd8" and jpeg_is_truncated(data):
        raise BadFrame("truncated JPEG")
    size = declared_size(data)
    if size and size[0] * size[1] > MAX_FRAME_PIXELS:
        raise BadFrame("image declares {}x{} pixels, more than {:.0f} megapixels".format(
            size[1], size[0], MAX_FRAME_PIXELS / 1e6))
    flags = cv2.IMREAD_COLOR | getattr(cv2, "IMREAD_IGNORE_ORIENTATION", 0)  # as the image folder reads files
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise BadFrame("OpenCV cannot decode the {} image: {}".format(fmt or "compressed", opencv_reason(exc)))
    if image is None:
        raise BadFrame("compressed image (format {!r}) is not decodable".format(msg.format))
    return image


def position_of(msg: Any, msgtype: str) -> Optional[Tuple[float, float]]:
    """(x, y) metres, or (lat, lon) degrees for NavSatFix; None for a fix without a position (NO_FIX, NaN)."""
    if msgtype == NAVSATFIX:
        status = getattr(getattr(msg, "status", None), "status", 0)
        lat, lon = float(msg.latitude), float(msg.longitude)
        if int(status) == NO_FIX or not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
            return None
        return lat, lon
    if msgtype == ODOMETRY or msgtype == POSE_COV:
        point = msg.pose.pose.position
    else:
        point = msg.pose.position
    x, y = float(point.x), float(point.y)
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return x, y
