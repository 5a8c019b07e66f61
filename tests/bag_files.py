"""ROS bags for the tests, written with rosbags' own writers (ROS 1, ROS 2 sqlite3, ROS 2 mcap).

A drive is images (BGR arrays, or encoded bytes for CompressedImage) with capture stamps,
and positions on a second topic (PoseStamped metres, or NavSatFix degrees).
"""
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

T0 = 1700000000.0
DT = 0.1


def stamps(n: int, t0: float = T0, dt: float = DT) -> np.ndarray:
    return t0 + dt * np.arange(n)


def _store(ros1: bool):
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)


def _header(store, ros1: bool, t: float, seq: int, frame: str = "camera"):
    ns = int(round(t * 1e9))
    stamp = store.types["builtin_interfaces/msg/Time"](sec=ns // 10 ** 9, nanosec=ns % 10 ** 9)
    if ros1:
        return store.types["std_msgs/msg/Header"](seq=seq, stamp=stamp, frame_id=frame)
    return store.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)


def image_msg(store, ros1: bool, t: float, seq: int, image: np.ndarray, encoding: str = "rgb8"):
    """A sensor_msgs/Image of a BGR array in ``encoding`` (rgb8, bgr8, mono8 or bayer_rggb8)."""
    import cv2

    if encoding == "rgb8":
        data = image[:, :, ::-1]
    elif encoding == "mono8":
        data = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif encoding == "bayer_rggb8":
        data = bayer_rggb(image)
    else:
        data = image
    data = np.ascontiguousarray(data)
    h, w = data.shape[:2]
    step = data.shape[1] * (data.shape[2] if data.ndim == 3 else 1)
    return store.types["sensor_msgs/msg/Image"](
        header=_header(store, ros1, t, seq), height=h, width=w, encoding=encoding, is_bigendian=0, step=step,
        data=data.reshape(-1))


def bayer_rggb(image: np.ndarray) -> np.ndarray:
    """The RGGB mosaic a Bayer sensor would record of a BGR image."""
    out = np.zeros(image.shape[:2], dtype=np.uint8)
    out[0::2, 0::2] = image[0::2, 0::2, 2]
    out[0::2, 1::2] = image[0::2, 1::2, 1]
    out[1::2, 0::2] = image[1::2, 0::2, 1]
    out[1::2, 1::2] = image[1::2, 1::2, 0]
    return out


def compressed_msg(store, ros1: bool, t: float, seq: int, data: bytes, fmt: str = "jpeg"):
    return store.types["sensor_msgs/msg/CompressedImage"](header=_header(store, ros1, t, seq), format=fmt,
                                                           data=np.frombuffer(data, dtype=np.uint8))


def pose_msg(store, ros1: bool, t: float, seq: int, x: float, y: float):
    types = store.types
    pose = types["geometry_msgs/msg/Pose"](position=types["geometry_msgs/msg/Point"](x=float(x), y=float(y), z=0.0),
                                           orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0))
    return types["geometry_msgs/msg/PoseStamped"](header=_header(store, ros1, t, seq, "map"), pose=pose)


def fix_msg(store, ros1: bool, t: float, seq: int, lat: float, lon: float, status: int = 0):
    types = store.types
    return types["sensor_msgs/msg/NavSatFix"](
        header=_header(store, ros1, t, seq, "gps"),
        status=types["sensor_msgs/msg/NavSatStatus"](status=status, service=1),
        latitude=float(lat), longitude=float(lon), altitude=0.0, position_covariance=np.zeros(9),
        position_covariance_type=0)


def write_bag(path: str, kind: str, topics: Sequence[tuple]) -> str:
    """A bag of ``kind`` ros1 | sqlite3 | mcap (a ROS 2 folder) | bare-mcap (its .mcap file alone).

    ``topics``: (topic, msgtype, [(t, make(store, ros1, t, seq))...]) where make builds the message."""
    ros1 = kind == "ros1"
    store = _store(ros1)
    folder = path if kind != "bare-mcap" else path + ".folder"
    if ros1:
        from rosbags.rosbag1 import Writer

        writer = Writer(Path(path))
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = StoragePlugin.SQLITE3 if kind == "sqlite3" else StoragePlugin.MCAP
        writer = Writer(Path(folder), version=9 if plugin == StoragePlugin.MCAP else 8, storage_plugin=plugin)
    messages = []
    with writer:
        for topic, msgtype, items in topics:
            conn = writer.add_connection(topic, msgtype, typestore=store)
            for seq, (t, make) in enumerate(items):
                messages.append((t, seq, conn, msgtype, make))
        for t, seq, conn, msgtype, make in sorted(messages, key=lambda m: (m[0], m[1])):
            msg = make(store, ros1, t, seq)
            raw = store.serialize_ros1(msg, msgtype) if ros1 else store.serialize_cdr(msg, msgtype)
            writer.write(conn, int(round(t * 1e9)), raw)
    if kind == "bare-mcap":
        name = [f for f in os.listdir(folder) if f.endswith(".mcap")][0]
        os.rename(os.path.join(folder, name), path)
    return path


def route_topics(images: Sequence, times: np.ndarray, xy: Optional[np.ndarray], encoding: str = "rgb8",
                 image_topic: str = "/camera/image", position_topic: str = "/pose",
                 position_times: Optional[np.ndarray] = None) -> list:
    """Image topic (arrays -> Image, bytes -> CompressedImage jpeg) and a PoseStamped topic at ``position_times``
    (default: the image stamps), positions interpolated from ``xy`` at the image stamps."""
    topics = []
    if isinstance(images[0], (bytes, bytearray)):
        items = [(float(t), (lambda d: lambda s, r, t, q: compressed_msg(s, r, t, q, d))(bytes(img)))
                 for t, img in zip(times, images)]
        topics.append((image_topic, "sensor_msgs/msg/CompressedImage", items))
    else:
        items = [(float(t), (lambda im: lambda s, r, t, q: image_msg(s, r, t, q, im, encoding))(img))
                 for t, img in zip(times, images)]
        topics.append((image_topic, "sensor_msgs/msg/Image", items))
    if xy is not None:
        pt = times if position_times is None else position_times
        px = np.interp(pt, times, xy[:, 0])
        py = np.interp(pt, times, xy[:, 1])
        items = [(float(t), (lambda x, y: lambda s, r, t, q: pose_msg(s, r, t, q, x, y))(x, y))
                 for t, x, y in zip(pt, px, py)]
        topics.append((position_topic, "geometry_msgs/msg/PoseStamped", items))
    return topics
