"""ROS bags as routes and query streams: ROS 1 ``.bag``, ROS 2 bag folders (sqlite3 or mcap) and bare ``.mcap``.

Host side: rosbags (pure Python, Python >= 3.10; the ``bags`` extra) reads every kind
without ROS, and it is imported only inside functions, so the Nano's runtime never needs
it (``jist-edge bag export`` turns a bag into files the Nano reads).

A bag route is one image topic, and optionally one position topic whose positions are
interpolated linearly to each image's capture time (its header stamp). Images outside
the span of the positions, and NavSatFix fixes without a fix, are skipped and counted.
Topics are picked automatically when the bag has exactly one of the kind.
"""
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from jist_edge.errors import BadFrame, JistEdgeError
from jist_edge.stream.frame import Frame
from jist_edge.stream.sources.bag_messages import (IMAGE_TYPES, NAVSATFIX, POSITION_TYPES, image_bgr, position_of,
                                                   short_type, stamp_seconds)
from jist_edge.stream.sources.base import FrameSource, SkipCallback

BAG_SUFFIXES = (".bag", ".mcap", ".db3")
MISSING_ROSBAGS = ("reading ROS bags needs the optional rosbags package (Python >= 3.10): "
                   "pip install 'jist-edge[bags]'")


def is_bag_path(path: str) -> bool:
    """A ROS 1 bag, a bare .mcap/.db3 file, or a ROS 2 bag folder (holding metadata.yaml)."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "metadata.yaml"))
    return str(path).lower().endswith(BAG_SUFFIXES)


def open_reader(path: str) -> Any:
    """An opened rosbags AnyReader; a one-line JistEdgeError naming the file when it cannot be read."""
    try:  # optional: rosbags (the bags extra)
        from pathlib import Path

        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError:
        raise JistEdgeError(MISSING_ROSBAGS)
    if not os.path.exists(path):
        raise JistEdgeError("bag {} not found".format(path))
    if not is_bag_path(path):
        raise JistEdgeError("{} is not a ROS bag: expected a .bag or .mcap file or a ROS 2 bag folder "
                            "(with metadata.yaml)".format(path))
    try:
        reader = AnyReader([Path(path)], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as exc:  # rosbags, sqlite3, struct and zstd errors alike: the file is damaged
        raise JistEdgeError("bag {} cannot be read (truncated or not a bag?): {}".format(path, _reason(exc)))
    return reader


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def list_topics(reader: Any) -> List[Dict[str, Any]]:
    """Per topic: name, type, message count (from the bag's index)."""
    out = []
    for name, info in sorted(reader.topics.items()):
        out.append({"topic": name, "type": info.msgtype or "?", "messages": int(info.msgcount)})
    return out


def pick_topic(path: str, reader: Any, kinds: Tuple[str, ...], given: Optional[str], what: str,
               option: str) -> Optional[str]:
    """The topic named by ``option``, or the only topic of ``kinds``; None when there is none (and none given)."""
    topics = {t["topic"]: t for t in list_topics(reader)}
    if given is not None:
        if given not in topics:
            raise JistEdgeError("bag {}: no topic {} (topics: {})".format(path, given, ", ".join(sorted(topics)) or "none"))
        if topics[given]["type"] not in kinds:
            raise JistEdgeError("bag {}: topic {} is {}, an unknown message type for {}; supported: {}".format(
                path, given, topics[given]["type"], what, ", ".join(short_type(k) for k in kinds)))
        return given
    found = sorted(name for name, t in topics.items() if t["type"] in kinds)
    if len(found) > 1:
        raise JistEdgeError("bag {} has {} {} topics ({}): choose one with {}".format(
            path, len(found), what, ", ".join(found), option))
    return found[0] if found else None


def _connections(reader: Any, topic: str) -> List[Any]:
    return [c for c in reader.connections if c.topic == topic]


def _messages(path: str, reader: Any, topic: str) -> Iterator[Tuple[int, Any, str]]:
    """(log time ns, decoded message, type) of one topic; a damaged bag or message is one line naming both."""
    try:
        for connection, log_ns, raw in reader.messages(connections=_connections(reader, topic)):
            try:
                msg = reader.deserialize(raw, connection.msgtype)
            except Exception as exc:
                raise JistEdgeError("bag {} topic {}: a {} message cannot be decoded (unknown or damaged message "
                                    "type): {}".format(path, topic, connection.msgtype, _reason(exc)))
            yield log_ns, msg, connection.msgtype
    except JistEdgeError:
        raise
    except Exception as exc:
        raise JistEdgeError("bag {} topic {}: reading stopped (truncated bag?): {}".format(path, topic, _reason(exc)))


class BagPositions(object):
    """A position topic's samples in time order: local metres, and the frame they are in (as CSVs give)."""

    def __init__(self, path: str, topic: str, stamps: np.ndarray, xy: np.ndarray, frame: Dict[str, Any],
                 no_fix: int, msgtype: str) -> None:
        self.path, self.topic, self.msgtype = path, topic, msgtype
        self.stamps, self.xy, self.frame, self.no_fix = stamps, xy, frame, no_fix

    def at(self, stamp: float) -> Optional[Tuple[float, float]]:
        """Linear interpolation at ``stamp`` (s); None outside the span of the samples."""
        if stamp < self.stamps[0] or stamp > self.stamps[-1]:
            return None
        return float(np.interp(stamp, self.stamps, self.xy[:, 0])), float(np.interp(stamp, self.stamps, self.xy[:, 1]))


def read_positions(path: str, reader: Any, topic: str) -> BagPositions:
    """Every usable position of ``topic``; NavSatFix lat/lon become local metres around the first fix."""
    from jist_edge.positions import latlon_origin, latlon_to_local

    samples = []  # type: List[Tuple[float, float, float]]
    no_fix = 0
    msgtype = ""
    for log_ns, msg, msgtype in _messages(path, reader, topic):
        pos = position_of(msg, msgtype)
        if pos is None:
            no_fix += 1
            continue
        samples.append((stamp_seconds(msg, log_ns), pos[0], pos[1]))
    if not samples:
        raise JistEdgeError("bag {} topic {}: no usable position ({} messages without a fix)".format(
            path, topic, no_fix))
    samples.sort(key=lambda s: s[0])
    stamps = np.array([s[0] for s in samples], dtype=np.float64)
    xy = np.array([[s[1], s[2]] for s in samples], dtype=np.float64)
    frame = {"frame": "metric"}  # type: Dict[str, Any]
    if msgtype == NAVSATFIX:
        origin = latlon_origin(xy[0, 0], xy[0, 1])
        xy = np.array([latlon_to_local(lat, lon, origin) for lat, lon in xy], dtype=np.float64)
        frame = {"frame": "latlon", "origin": [origin[0], origin[1]]}
    keep = np.concatenate([[True], np.diff(stamps) > 0])  # one sample per stamp: interpolation needs increasing times
    return BagPositions(path, topic, stamps[keep], xy[keep], frame, no_fix, msgtype)


class BagSource(FrameSource):
    """The frames of one image topic, in recording order, stamped with their capture times.

    With ``positions`` (a BagPositions), only frames inside their span are yielded (the others
    are skipped and counted in ``outside_positions``), and ``self.positions`` maps each
    yielded frame's index to its interpolated (x, y), filled before the frame is yielded:
    maps.build reads it as the route's position table."""

    def __init__(self, path: str, image_topic: Optional[str] = None, position_topic: Optional[str] = None,
                 use_positions: bool = True, stride: int = 1, on_skip: Optional[SkipCallback] = None) -> None:
        reader = open_reader(path)
        try:
            self.image_topic = pick_topic(path, reader, IMAGE_TYPES, image_topic, "image", "--image-topic")
            if self.image_topic is None:
                raise JistEdgeError("bag {} has no image topic (sensor_msgs/Image or CompressedImage); topics: {}".format(
                    path, ", ".join("{} ({})".format(t["topic"], short_type(t["type"])) for t in list_topics(reader))
                    or "none"))
            self.bag_positions = None  # type: Optional[BagPositions]
            if use_positions:
                topic = pick_topic(path, reader, POSITION_TYPES, position_topic, "position", "--position-topic")
                if topic is not None:
                    self.bag_positions = read_positions(path, reader, topic)
            count = sum(int(c.msgcount) for c in _connections(reader, self.image_topic))
            duration = max(reader.duration * 1e-9, 1e-9)
        finally:
            reader.close()
        super(BagSource, self).__init__("bag {} topic {} ({} images)".format(path, self.image_topic, count), stride,
                                        None, on_skip)
        self.path = path
        self.frame_count = count
        self.fps = (count - 1) / duration if count > 1 else None
        self.positions = {}  # type: Dict[int, Tuple[float, float]]
        self.outside_positions = 0
        self.position_frame = self.bag_positions.frame if self.bag_positions else {"frame": "metric"}
        self.route_info = {"kind": "bag", "path": os.path.abspath(path), "image_topic": self.image_topic}
        if self.bag_positions is not None:
            self.route_info.update({"position_topic": self.bag_positions.topic, "positions": "{} {}".format(
                os.path.abspath(path), self.bag_positions.topic), "no_fix": self.bag_positions.no_fix})

    def __iter__(self) -> Iterator[Frame]:
        reader = open_reader(self.path)
        try:
            index = -1
            for log_ns, msg, msgtype in _messages(self.path, reader, self.image_topic):
                index += 1
                if self.closed:
                    return
                if index % self.stride:
                    continue
                frame = self._frame(index, msg, msgtype, log_ns)
                if frame is not None:
                    yield frame
        finally:
            reader.close()
            self.route_info["outside_positions"] = self.outside_positions

    def _frame(self, index: int, msg: Any, msgtype: str, log_ns: int) -> Optional[Frame]:
        stamp = stamp_seconds(msg, log_ns)
        name = "{}@{:.9f}".format(self.image_topic, stamp)
        if self.bag_positions is not None:
            pos = self.bag_positions.at(stamp)
            if pos is None:
                self.outside_positions += 1
                self._skip(index, name, "captured outside the span of the positions on {}".format(
                    self.bag_positions.topic))
                return None
            self.positions[index] = pos
        try:
            image = image_bgr(msg, msgtype)
        except BadFrame as exc:
            self._skip(index, name, str(exc))
            return None
        return self._make_frame(index, image, stamp, name)


def bag_drive(path: str, image_topic: Optional[str] = None, position_topic: Optional[str] = None
              ) -> Tuple[BagSource, Tuple[Dict[int, Tuple[float, float]], Dict[str, Any]]]:
    """(frame source, (position table, position frame)) of a bag: what maps.build takes as a drive
    (maps.build applies the stride)."""
    source = BagSource(path, image_topic, position_topic)
    if source.bag_positions is not None:
        _check_overlap(source)
    return source, (source.positions, source.position_frame)


def _check_overlap(source: BagSource) -> None:
    """Refuse an image topic recorded wholly outside the positions' span, before any encoding."""
    reader = open_reader(source.path)
    stamps = []  # type: List[float]
    try:
        for log_ns, msg, _ in _messages(source.path, reader, source.image_topic):
            stamps.append(stamp_seconds(msg, log_ns))
            if source.bag_positions.at(stamps[-1]) is not None:
                return
    finally:
        reader.close()
    pos = source.bag_positions
    raise JistEdgeError("bag {}: no image on {} ({} images, {:.3f}..{:.3f} s) lies within the positions on {} "
                        "({:.3f}..{:.3f} s)".format(source.path, source.image_topic, len(stamps),
                                                    min(stamps) if stamps else 0, max(stamps) if stamps else 0,
                                                    pos.topic, pos.stamps[0], pos.stamps[-1]))


def bag_summary(path: str) -> Dict[str, Any]:
    """What ``jist-edge bag info`` shows: per topic its type, message count, span and rate (from log times)."""
    reader = open_reader(path)
    try:
        topics = list_topics(reader)
        times = {}  # type: Dict[str, List[int]]
        try:
            for connection, log_ns, _ in reader.messages():
                span = times.setdefault(connection.topic, [log_ns, log_ns, 0])
                span[0], span[1], span[2] = min(span[0], log_ns), max(span[1], log_ns), span[2] + 1
        except Exception as exc:
            raise JistEdgeError("bag {}: reading stopped (truncated bag?): {}".format(path, _reason(exc)))
        duration = reader.duration * 1e-9
    finally:
        reader.close()
    for topic in topics:
        first, last, read = times.get(topic["topic"], [0, 0, 0])
        topic["kind"] = "image" if topic["type"] in IMAGE_TYPES else "position" if topic["type"] in POSITION_TYPES else None
        topic["seconds"] = round((last - first) * 1e-9, 6)
        topic["rate_hz"] = round((read - 1) / topic["seconds"], 3) if read > 1 and last > first else None
    return {"path": os.path.abspath(path), "duration_s": round(duration, 6), "topics": topics,
            "messages": sum(t["messages"] for t in topics)}
