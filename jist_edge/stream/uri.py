"""Source URIs in the style jetson-inference users know, parsed without opening anything.

    0, 1, /dev/video0, v4l2:///dev/video0   USB / V4L2 camera      kind "camera"
    csi://0[?width=..&height=..&fps=..&flip=..]  Jetson CSI camera  kind "csi"
    rtsp://host/path, rtsps://...           network stream         kind "rtsp"
    http://host/cam.mjpg, https://...       MJPEG IP camera        kind "http"
    route.mp4, file:///data/route.avi       video file             kind "video"
    images/, file:///data/images            folder of images       kind "images"

Parsing only looks at the file system to tell a folder from a video file, so it is
cheap to call from a CLI before anything is opened.
"""
import os
import re
from typing import Any, Dict, Optional, Tuple, Union

import cv2

from jist_edge.errors import JistEdgeError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".webm", ".wmv", ".flv",
                    ".h264", ".h265", ".264", ".ts", ".mts", ".mjpeg", ".mjpg", ".ogv", ".3gp")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
                    ".pnm", ".jp2", ".sr", ".ras")
SOURCE_KINDS = ("camera", "csi", "rtsp", "http", "video", "images")
LIVE_KINDS = ("camera", "csi", "rtsp", "http")

# Defaults of jetson-inference's CSI input: 1280x720 at 30 fps, no flip.
CSI_DEFAULTS = {"width": 1280, "height": 720, "fps": 30, "flip": 0}
_CSI_OPTION_NAMES = ("width", "height", "fps", "flip")


class SourceSpec(object):
    """What a URI names: ``kind`` (one of SOURCE_KINDS), camera ``device`` number or
    None, ``path`` (device node, file, folder or stream URL) and ``options`` (ints
    given in a csi:// query string)."""

    __slots__ = ("uri", "kind", "device", "path", "options")

    def __init__(self, uri: str, kind: str, device: Optional[int] = None, path: Optional[str] = None,
                 options: Optional[Dict[str, int]] = None) -> None:
        self.uri = uri
        self.kind = kind
        self.device = device
        self.path = path
        self.options = dict(options or {})

    @property
    def live(self) -> bool:
        """Cameras and streams deliver frames in real time and can disconnect."""
        return self.kind in LIVE_KINDS

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, SourceSpec) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return "SourceSpec(kind={!r}, device={!r}, path={!r}, options={!r})".format(
            self.kind, self.device, self.path, self.options)


def parse_source_uri(uri: Union[str, int]) -> SourceSpec:
    """URI -> SourceSpec; raises JistEdgeError for what is malformed, not for what is missing."""
    if isinstance(uri, bool) or not isinstance(uri, (str, int)):
        raise JistEdgeError("source must be a camera number, device, URL or path, not {!r}".format(uri))
    if isinstance(uri, int):
        return _camera_spec(str(uri), uri)
    text = uri.strip()
    if not text:
        raise JistEdgeError("source is empty: give a camera number, device, URL or path")
    if re.match(r"^\d+$", text):
        return _camera_spec(uri, int(text))
    scheme_match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", text)
    if scheme_match:
        scheme, rest = scheme_match.group(1).lower(), scheme_match.group(2)
        if scheme == "csi":
            return _csi_spec(uri, rest)
        if scheme in ("rtsp", "rtsps"):
            if not rest:
                raise JistEdgeError("source {!r}: the stream URL has no host".format(uri))
            return SourceSpec(uri, "rtsp", path=text)
        if scheme in ("http", "https"):
            if not rest or rest.startswith("/"):
                raise JistEdgeError("source {!r}: the camera URL has no host".format(redact_url(text)))
            return SourceSpec(uri, "http", path=text)
        if scheme == "v4l2":
            spec = _device_path_spec(uri, rest) if rest.startswith("/") else None
            if spec is None and re.match(r"^\d+$", rest):
                spec = _camera_spec(uri, int(rest))
            if spec is None:
                raise JistEdgeError("source {!r}: expected v4l2:///dev/videoN or v4l2://N".format(uri))
            return spec
        if scheme == "file":
            if not rest:
                raise JistEdgeError("source {!r}: the file URL has no path".format(uri))
            return _path_spec(uri, rest)
        raise JistEdgeError("source {!r}: unsupported scheme {}:// (use a camera number, /dev/videoN, "
                            "csi://N, rtsp://..., http://... (MJPEG), a video file or an image folder)".format(
                                redact_url(uri), scheme))
    if text.startswith("/dev/"):
        return _device_path_spec(uri, text)
    return _path_spec(uri, text)


# query parameters that carry secrets in cheap IP cameras' URLs (?user=admin&pwd=...)
_SECRET_PARAMS = ("pwd", "pass", "passwd", "password", "token", "key", "apikey", "api_key", "auth", "secret",
                  "signature", "sig", "access_token")


def redact_url(url: str) -> str:
    """Credentials out of a URL for messages, logs, JSON lines and the live view:
    rtsp://user:secret@host/... -> rtsp://user:***@host/..., and ?pwd=secret -> ?pwd=***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        auth, _, host = authority.rpartition("@")
        user = auth.split(":", 1)[0]
        authority = "{}{}@{}".format(user, ":***" if ":" in auth else "", host)
    rest = authority + slash + tail
    if "?" in rest:
        head, _, query = rest.partition("?")
        query, hash_, fragment = query.partition("#")
        items = []
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            items.append("{}={}".format(key, "***") if eq and key.lower() in _SECRET_PARAMS and value else item)
        rest = head + "?" + "&".join(items) + hash_ + fragment
    return scheme + sep + rest


def _camera_spec(uri: str, index: int) -> SourceSpec:
    if index < 0:
        raise JistEdgeError("source {!r}: camera number must be 0 or more".format(uri))
    return SourceSpec(uri, "camera", device=index, path="/dev/video{}".format(index))


def _device_path_spec(uri: str, path: str) -> SourceSpec:
    m = re.match(r"^/dev/video(\d+)$", path)
    return SourceSpec(uri, "camera", device=int(m.group(1)) if m else None, path=path)


def _csi_spec(uri: str, rest: str) -> SourceSpec:
    sensor, _, query = rest.partition("?")
    if not re.match(r"^\d+$", sensor):
        raise JistEdgeError("source {!r}: expected csi://N with a sensor number, e.g. csi://0".format(uri))
    options = {}  # type: Dict[str, int]
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key not in _CSI_OPTION_NAMES:
            raise JistEdgeError("source {!r}: unknown option {!r} (known: {})".format(
                uri, key, ", ".join(_CSI_OPTION_NAMES)))
        if not re.match(r"^\d+$", value):
            raise JistEdgeError("source {!r}: option {} needs a whole number, got {!r}".format(uri, key, value))
        options[key] = int(value)
    return SourceSpec(uri, "csi", device=int(sensor), options=options)


def _path_spec(uri: str, path: str) -> SourceSpec:
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        return SourceSpec(uri, "images", path=path)
    if path.endswith(("/", os.sep)):
        return SourceSpec(uri, "images", path=path.rstrip("/" + os.sep) or path)
    return SourceSpec(uri, "video", path=path)


def opencv_has_gstreamer(build_information: Optional[str] = None) -> bool:
    """True when this cv2 was built with GStreamer (JetPack's is; pip wheels are not)."""
    value = opencv_build_value("GStreamer", build_information)
    return value is not None and value.upper().startswith("YES")


def opencv_build_value(name: str, build_information: Optional[str] = None) -> Optional[str]:
    """The value of the first ``name: value`` line of cv2.getBuildInformation() (or of the text
    given), None when absent: OpenCV reports its capture backends and GUI only there."""
    text = cv2.getBuildInformation() if build_information is None else build_information
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None


def gstreamer_missing_message(uri: str) -> str:
    """Why csi:// cannot work here, and what to install instead."""
    where = getattr(cv2, "__file__", None) or "unknown location"
    return ("{}: CSI cameras need OpenCV built with GStreamer, but this OpenCV {} ({}) has no GStreamer "
            "support. On a Jetson use JetPack's system OpenCV (sudo apt install python3-opencv, or "
            "nvidia-opencv) and remove pip's build that shadows it: pip3 uninstall opencv-python "
            "opencv-python-headless opencv-contrib-python").format(uri, cv2.__version__, where)


def csi_pipeline(sensor_id: int, width: int, height: int, fps: int, flip: int,
                 out_size: Optional[Tuple[int, int]] = None) -> str:
    """nvarguscamerasrc -> BGR appsink that keeps only the newest buffer (no seconds of lag).

    The sensor captures width x height; ``out_size`` (w, h), when given, is the size
    nvvidconv scales to on the hardware (VIC) before the CPU sees a pixel, so that
    videoconvert's BGRx->BGR and the runtime's resize work on a model-sized frame
    instead of a 720p one (see csi_output_size)."""
    if not 0 <= flip <= 7:
        raise JistEdgeError("csi://{}: flip must be an nvvidconv flip-method 0-7, got {}".format(sensor_id, flip))
    for name, value in (("width", width), ("height", height), ("fps", fps)) + (
            (("output width", out_size[0]), ("output height", out_size[1])) if out_size else ()):
        if value <= 0:
            raise JistEdgeError("csi://{}: {} must be positive, got {}".format(sensor_id, name, value))
    scaled = "width={},height={},".format(int(out_size[0]), int(out_size[1])) if out_size else ""
    return ("nvarguscamerasrc sensor-id={} ! "
            "video/x-raw(memory:NVMM),width={},height={},framerate={}/1 ! "
            "nvvidconv flip-method={} ! video/x-raw,{}format=BGRx ! videoconvert ! "
            "video/x-raw,format=BGR ! appsink drop=true max-buffers=1").format(
                sensor_id, width, height, fps, flip, scaled)


# nvvidconv flip-methods that turn the frame by 90 degrees (width and height swap)
_TRANSPOSING_FLIPS = (1, 3, 5, 7)


def csi_output_size(capture: Tuple[int, int], model: Optional[Tuple[int, int]], flip: int = 0) -> Optional[Tuple[int, int]]:
    """(w, h) for nvvidconv to scale to: the model's input size, never above the captured size
    (the hardware only shrinks here; enlarging stays the CPU's job), each side rounded up to an
    even number (4:2:0 surfaces have even sides). None (no scaling) without a model size or when
    it equals the captured size."""
    if model is None:
        return None
    cap_w, cap_h = (capture[1], capture[0]) if flip in _TRANSPOSING_FLIPS else (capture[0], capture[1])
    out = tuple(min(int(m) + int(m) % 2, c) for m, c in zip(model, (cap_w, cap_h)))
    return None if out == (cap_w, cap_h) else (out[0], out[1])


def csi_capture(spec: SourceSpec, overrides: Dict[str, Optional[int]],
                scale_to: Optional[Tuple[int, int]] = None) -> Tuple[str, str]:
    """(pipeline, description) of a csi:// source: CSI_DEFAULTS < URI options < ``overrides``
    (width/height/fps/flip given by the caller, None = not given); ``scale_to`` as in csi_output_size."""
    opts = dict(CSI_DEFAULTS)
    opts.update(spec.options)
    opts.update({k: int(v) for k, v in overrides.items() if v is not None})
    out = csi_output_size((opts["width"], opts["height"]), scale_to, opts["flip"])
    pipeline = csi_pipeline(spec.device, opts["width"], opts["height"], opts["fps"], opts["flip"], out)
    description = "CSI camera {} ({}x{} at {} fps{})".format(
        spec.device, opts["width"], opts["height"], opts["fps"],
        ", scaled to {}x{} by nvvidconv".format(out[0], out[1]) if out else "")
    return pipeline, description


def rtsp_gstreamer_pipeline(url: str) -> str:
    """Low-latency RTSP: no jitter buffer delay, appsink keeps only the newest frame."""
    return ("rtspsrc location={} latency=0 ! decodebin ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=true max-buffers=1 sync=false").format(url)
