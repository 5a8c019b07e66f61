"""Frame sources: cameras, CSI, RTSP, video files and image folders behind one iterator.

``open_source(uri)`` gives a FrameSource that yields ``Frame`` objects. Bad input is
skipped and counted, never a crash: undecodable frames, truncated or unreadable image
files, empty or odd-sized frames (see jist_edge.frame for what is converted and what is
skipped). A live source (camera, CSI, RTSP) that stops delivering frames is reopened
with exponential backoff; a file that ends is a clean end.

Reconnect policy: ``max_retries`` reopen attempts per outage, waiting
``backoff_s * 2**k`` (capped at ``backoff_max_s``) before attempt k; an outage ends
when a good frame arrives, so a robot that loses its camera several times in a long
run keeps going, while one that never comes back ends with a JistEdgeError.
"""
import logging
import math
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Union

import cv2
import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.frame import Frame, apply_flip, to_bgr
from jist_edge.positions import sort_frame_names
from jist_edge.preprocess import BadFrame
from jist_edge.source_uri import (CSI_DEFAULTS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, SourceSpec, csi_pipeline,
                                  gstreamer_missing_message, opencv_has_gstreamer, parse_source_uri,
                                  rtsp_gstreamer_pipeline)

log = logging.getLogger(__name__)

# (index, file name or None, reason) for every skipped frame or file.
SkipCallback = Callable[[int, Optional[str], str], None]

DEFAULT_BACKOFF_S = 0.5
DEFAULT_BACKOFF_MAX_S = 8.0
DEFAULT_OPEN_TIMEOUT_S = 5.0
# A file read that fails this many times in a row is its end (a truncated file).
MAX_CONSECUTIVE_READ_FAILURES = 8
# A live source that delivers only bad frames this long is treated as disconnected.
MAX_BAD_LIVE_FRAMES = 50
_LOGGED_SKIPS = 10
_RTSP_FFMPEG_OPTIONS = "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay"


class FrameSource(object):
    """Iterable of Frame; a context manager; counts what it skipped and reconnected.

    ``len()`` is the number of frames iteration yields at most (the source's frames
    divided by ``stride``) and is known for files and folders only."""

    live = False

    def __init__(self, description: str, stride: int = 1, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None) -> None:
        self.description = description
        self.stride = stride
        self.flip = flip or 0
        self.frame_count = None  # type: Optional[int]
        self.fps = None  # type: Optional[float]
        self.realtime = False
        self.skipped = 0
        self.converted = 0
        self.reconnects = 0
        self.reconnect_failures = 0
        self.closed = False
        self._on_skip = on_skip

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        if self.frame_count is None:
            raise TypeError("{} has no known length".format(self.description))
        return int(math.ceil(self.frame_count / float(self.stride)))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<{} {}>".format(type(self).__name__, self.description)

    def _skip(self, index: int, name: Optional[str], reason: str, count: int = 1) -> None:
        before = self.skipped
        self.skipped += count
        if before < _LOGGED_SKIPS or self.skipped // 100 > before // 100:
            log.warning("%s: skipped %s: %s (%d skipped so far)", self.description,
                        name or "frame {}".format(index), reason, self.skipped)
        if self._on_skip is not None:
            self._on_skip(index, name, reason)

    def _make_frame(self, index: int, image: Optional[np.ndarray], timestamp: float,
                    name: Optional[str] = None) -> Optional[Frame]:
        """A Frame, or None after counting the skip when the image is unusable."""
        try:
            image, converted = to_bgr(image)
        except BadFrame as exc:
            self._skip(index, name, str(exc))
            return None
        if converted:
            self.converted += 1
        if self.flip:
            image = apply_flip(image, self.flip)
        return Frame(index, image, timestamp, name)


class ImageFolderSource(FrameSource):
    """Images of one folder (not its subfolders) in file-name order.

    Files without an image extension (a positions CSV, notes) are not frames: they are
    counted in ``ignored``. Image files that are empty, truncated or undecodable are
    skipped with a warning and counted in ``skipped``; they keep their index."""

    def __init__(self, path: str, stride: int = 1, fps: Optional[float] = None, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None) -> None:
        if not os.path.exists(path):
            raise JistEdgeError("image folder {} not found".format(path))
        if not os.path.isdir(path):
            raise JistEdgeError("{} is not a folder".format(path))
        try:
            entries = os.listdir(path)
        except OSError as exc:
            raise JistEdgeError("image folder {} cannot be listed: {}".format(path, exc.strerror or exc))
        images, ignored = [], 0
        for entry in entries:
            if entry.startswith(".") or not os.path.isfile(os.path.join(path, entry)):
                continue
            if entry.lower().endswith(IMAGE_EXTENSIONS):
                images.append(entry)
            else:
                ignored += 1
        if not images:
            raise JistEdgeError("image folder {} has no images ({}){}".format(
                path, ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS[:5]),
                ": {} other file(s) ignored".format(ignored) if ignored else ""))
        self.path = path
        self.names = sort_frame_names(images)
        self.ignored = ignored
        super(ImageFolderSource, self).__init__("image folder {} ({} images{})".format(
            path, len(images), ", {} other files ignored".format(ignored) if ignored else ""), stride, flip, on_skip)
        self.frame_count = len(self.names)
        self.fps = float(fps) if fps else None

    def __iter__(self) -> Iterator[Frame]:
        for index, name in enumerate(self.names):
            if self.closed:
                return
            if index % self.stride:
                continue
            image = self._read(index, name)
            if image is None:
                continue
            stamp = index / self.fps if self.fps else float(index)
            frame = self._make_frame(index, image, stamp, name)
            if frame is not None:
                yield frame

    def _read(self, index: int, name: str) -> Optional[np.ndarray]:
        try:
            with open(os.path.join(self.path, name), "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            self._skip(index, name, "unreadable: {}".format(exc.strerror or exc))
            return None
        if not data:
            self._skip(index, name, "empty file")
            return None
        if name.lower().endswith((".jpg", ".jpeg")) and jpeg_is_truncated(data):
            # OpenCV decodes a truncated JPEG into a grey-filled image; PIL (the
            # official pipeline) refuses it. Refuse it too.
            self._skip(index, name, "truncated JPEG")
            return None
        flags = cv2.IMREAD_COLOR | getattr(cv2, "IMREAD_IGNORE_ORIENTATION", 0)
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
        if image is None:
            self._skip(index, name, "not a decodable image")
        return image


def jpeg_is_truncated(data: bytes) -> bool:
    """True when no end-of-image marker follows the last start-of-scan marker.

    Inside entropy-coded data 0xFF is always stuffed (FF00) or a restart marker, so
    FFDA/FFD9 there are real markers; trailing bytes after EOI do not matter."""
    return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda") or b"\xff\xda" not in data


class _CaptureSource(FrameSource):
    """Shared by sources read through cv2.VideoCapture: reads and close() never overlap."""

    def __init__(self, description: str, stride: int, flip: Optional[int], on_skip: Optional[SkipCallback]) -> None:
        super(_CaptureSource, self).__init__(description, stride, flip, on_skip)
        self._cap = None  # type: Any
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def close(self) -> None:
        """Safe from another thread: waits briefly for a read in progress, else the reader releases."""
        self.closed = True
        self._closing.set()
        if self._lock.acquire(timeout=2.0):
            try:
                self._release()
            finally:
                self._lock.release()

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class VideoFileSource(_CaptureSource):
    """A video file, frame by frame. Undecodable frames are skipped and counted; a file
    that ends before the frame count in its header says (truncated) counts the missing
    frames as skipped and ends cleanly."""

    def __init__(self, path: str, stride: int = 1, fps: Optional[float] = None, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None) -> None:
        if not os.path.exists(path):
            raise JistEdgeError("video file {} not found".format(path))
        if not os.path.isfile(path):
            raise JistEdgeError("video {} is not a file".format(path))
        if os.path.getsize(path) == 0:
            raise JistEdgeError("video file {} is empty (0 bytes)".format(path))
        self.path = path
        cap = _open_video_file(path)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        file_fps = cap.get(cv2.CAP_PROP_FPS)
        rate = file_fps if 0 < file_fps < 1000 else (float(fps) if fps else None)
        super(VideoFileSource, self).__init__("video file {} ({}{})".format(
            os.path.basename(path), "{} frames".format(count) if count > 0 else "frame count unknown",
            ", {:g} fps".format(rate) if rate else ""), stride, flip, on_skip)
        self._cap = cap
        self.frame_count = count if count > 0 else None
        self.fps = rate

    def __iter__(self) -> Iterator[Frame]:
        # One frame of lookahead: the last frame before a truncation is usually only
        # partly decoded (FFmpeg fills the rest), so it is skipped, not yielded.
        pending = None  # type: Optional[Frame]
        truncated = [False]
        for index, image in self._decode(truncated):
            if pending is not None:
                yield pending
            stamp = index / self.fps if self.fps else float(index)
            pending = self._make_frame(index, image, stamp)
        if pending is not None and not self.closed:
            if truncated[0]:
                self._skip(pending.index, None, "last frame before the file ends early (likely incomplete)")
            else:
                yield pending

    def _decode(self, truncated: List[bool]) -> Iterator[Any]:
        """(index, image or None) for the frames the stride selects; counts lost frames."""
        if self._cap is None and not self.closed:
            self._cap = _open_video_file(self.path)
        next_index = 0  # index of the next frame if none is lost
        failures = 0
        while not self.closed:
            with self._lock:
                cap = self._cap
                if cap is None:
                    return
                ok = cap.grab()
                est = self._index_from_time(cap) if ok else None
                index = next_index + failures if est is None or est < next_index else est
                image = None
                if ok and index % self.stride == 0:
                    got, image = cap.retrieve()
                    image = image if got else None
                if self.closed:  # close() gave up waiting for this read: release here
                    self._release()
                    return
            if not ok:
                failures += 1
                if failures >= MAX_CONSECUTIVE_READ_FAILURES or (
                        self.frame_count is not None and next_index + failures > self.frame_count):
                    break
                continue
            if index > next_index:
                lost = index - next_index
                self._skip(next_index, None, "undecodable frame" if lost == 1 else "{} undecodable frames "
                           "({}-{})".format(lost, next_index, index - 1), count=lost)
            next_index, failures = index + 1, 0
            if index % self.stride == 0:
                yield index, image
        if self.closed:
            return
        if self.frame_count is not None and next_index < self.frame_count:
            truncated[0] = True
            self._skip(next_index, None, "video ended after {} of {} frames (truncated or corrupt)".format(
                next_index, self.frame_count), count=self.frame_count - next_index)
        with self._lock:
            self._release()
        if next_index == 0:
            raise JistEdgeError("video file {}: no frame could be decoded".format(self.path))

    def _index_from_time(self, cap: Any) -> Optional[int]:
        """Frame index from the presentation time, which stays right when the decoder drops frames."""
        if not self.fps:
            return None
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)
        if msec is None or msec < 0:
            return None
        return int(round(msec * self.fps / 1000.0))


def _open_video_file(path: str) -> Any:
    for api in (cv2.CAP_FFMPEG, cv2.CAP_ANY):
        cap = cv2.VideoCapture(path, api)
        if cap.isOpened():
            return cap
        cap.release()
    raise JistEdgeError("cannot open video file {}: not a video this OpenCV can decode "
                        "(corrupt, or a codec its FFmpeg lacks)".format(path))


class LiveCaptureSource(_CaptureSource):
    """A camera or stream read through cv2.VideoCapture, reopened with backoff when it drops.

    ``opener`` returns an opened VideoCapture (or raises JistEdgeError saying why); it
    is called once here, so a source that cannot be opened fails at once, and again
    for every reconnect. Opening is given ``open_timeout_s`` at most."""

    live = True

    def __init__(self, name: str, opener: Callable[[], Any], max_retries: int = 3,
                 backoff_s: float = DEFAULT_BACKOFF_S, backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
                 open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S, stride: int = 1, flip: Optional[int] = None,
                 on_skip: Optional[SkipCallback] = None, description: Optional[str] = None) -> None:
        super(LiveCaptureSource, self).__init__(description or name, stride, flip, on_skip)
        self.name = name
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._opener = opener
        self._attempts = 0  # reopen attempts in the current outage
        self._cap = self._open_once()
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else None

    def _open_once(self) -> Any:
        cap = call_with_timeout(self._opener, self.open_timeout_s, self.name)
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            raise JistEdgeError("{} cannot be opened".format(self.name))
        return cap

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        bad_run = 0
        while not self.closed:
            with self._lock:
                cap = self._cap
                ok = cap is not None and cap.grab()
                stamp = time.time()
                image = None
                if ok and index % self.stride == 0:
                    got, image = cap.retrieve()
                    image = image if got else None
                if not ok or self.closed:  # closed: close() may have given up waiting for this read
                    self._release()
            if self.closed:
                return
            if not ok:
                log.warning("%s stopped delivering frames; reconnecting", self.name)
                if not self._reconnect():
                    return
                continue
            this, index = index, index + 1
            if this % self.stride:
                continue
            frame = self._make_frame(this, image, stamp)
            if frame is None:
                bad_run += 1
                if bad_run >= MAX_BAD_LIVE_FRAMES:
                    bad_run = 0
                    log.warning("%s delivered %d bad frames in a row; reconnecting", self.name, MAX_BAD_LIVE_FRAMES)
                    with self._lock:
                        self._release()
                continue
            bad_run = 0
            self._attempts = 0
            yield frame

    def _reconnect(self) -> bool:
        """Reopen with exponential backoff; False when closed meanwhile; JistEdgeError when out of retries."""
        while not self.closed:
            if self._attempts >= self.max_retries:
                if self.max_retries == 0:
                    raise JistEdgeError("{} stopped delivering frames (reconnecting is off: max retries 0)".format(
                        self.name))
                raise JistEdgeError("{} stopped delivering frames and could not be reopened after {} "
                                    "attempt(s)".format(self.name, self._attempts))
            delay = min(self.backoff_max_s, self.backoff_s * (2 ** self._attempts))
            if self._closing.wait(delay):
                return False
            self._attempts += 1
            try:
                cap = self._open_once()
            except JistEdgeError as exc:
                self.reconnect_failures += 1
                log.warning("reconnect %d/%d failed: %s", self._attempts, self.max_retries, exc)
                continue
            with self._lock:
                if self.closed:
                    cap.release()
                    return False
                self._cap = cap
            self.reconnects += 1
            log.warning("%s reopened (attempt %d)", self.name, self._attempts)
            return True
        return False


def call_with_timeout(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """fn() in a helper thread, given up after timeout_s (a hung open cannot hang the run).

    A late result of an abandoned call is released if it has ``release()``."""
    state = {"abandoned": False, "value": None, "error": None}
    lock = threading.Lock()
    done = threading.Event()

    def target() -> None:
        value, error = None, None
        try:
            value = fn()
        except BaseException as exc:  # handed to the caller below
            error = exc
        with lock:
            if state["abandoned"]:
                if value is not None and hasattr(value, "release"):
                    value.release()
                return
            state["value"], state["error"] = value, error
            done.set()

    thread = threading.Thread(target=target, name="jist-edge-open", daemon=True)
    thread.start()
    if not done.wait(timeout_s):
        with lock:
            if not done.is_set():
                state["abandoned"] = True
                raise JistEdgeError("{} did not open within {:g} s".format(what, timeout_s))
    if state["error"] is not None:
        raise state["error"]
    return state["value"]


def _capture_with_timeouts(target: Union[int, str], api: int, timeout_s: float) -> Any:
    """FFmpeg VideoCapture with open/read timeouts where this OpenCV has them (4.5.2+; JetPack's 4.1
    does not), so a dead stream ends a read instead of hanging it."""
    props = []  # type: List[int]
    ms = int(timeout_s * 1000)
    for name in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
        if hasattr(cv2, name):
            props += [getattr(cv2, name), ms]
    if props:
        try:
            return cv2.VideoCapture(target, api, props)
        except (TypeError, cv2.error):
            pass
    return cv2.VideoCapture(target, api)


def _camera_opener(spec: SourceSpec, width: Optional[int], height: Optional[int],
                   fps: Optional[float]) -> Callable[[], Any]:
    linux = sys.platform.startswith("linux")
    name = _camera_name(spec)

    def open_camera() -> Any:
        if linux and spec.path and not os.path.exists(spec.path):
            raise JistEdgeError("{}: {} does not exist (no camera there; `ls /dev/video*` lists "
                                "the cameras)".format(name, spec.path))
        target = spec.device if spec.device is not None else spec.path
        cap = None
        for api in ((cv2.CAP_V4L2, cv2.CAP_ANY) if linux else (cv2.CAP_ANY,)):
            # No timeout parameters here: a backend that does not know one refuses to open
            # ("unsupported parameters ... Bailout"); call_with_timeout bounds the open.
            cap = cv2.VideoCapture(target, api)
            if cap.isOpened():
                break
            cap.release()
            cap = None
        if cap is None:
            raise JistEdgeError("{} cannot be opened (busy, no permission, or not a capture device)".format(name))
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one from seconds ago
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                cap.set(prop, value)
        return cap

    return open_camera


def _camera_name(spec: SourceSpec) -> str:
    if spec.device is not None:
        return "camera {} ({})".format(spec.device, spec.path)
    return "camera {}".format(spec.path)


def _csi_opener(spec: SourceSpec, pipeline: str) -> Callable[[], Any]:
    def open_csi() -> Any:
        cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        if not cap.isOpened():
            cap.release()
            raise JistEdgeError("csi://{}: the camera did not open (is sensor {} connected? after a crash, "
                                "`sudo systemctl restart nvargus-daemon` helps)".format(spec.device, spec.device))
        return cap

    return open_csi


def _rtsp_opener(url: str, timeout_s: float) -> Callable[[], Any]:
    shown = redact_url(url)

    def open_rtsp() -> Any:
        if opencv_has_gstreamer():
            cap = cv2.VideoCapture(rtsp_gstreamer_pipeline(url), cv2.CAP_GSTREAMER)
            if cap.isOpened():
                return cap
            cap.release()
        cap = _with_ffmpeg_options(_RTSP_FFMPEG_OPTIONS, lambda: _capture_with_timeouts(url, cv2.CAP_FFMPEG, timeout_s))
        if not cap.isOpened():
            cap.release()
            raise JistEdgeError("{}: the stream cannot be opened (unreachable host, wrong path or "
                                "credentials)".format(shown))
        return cap

    return open_rtsp


_ENV_LOCK = threading.Lock()


def _with_ffmpeg_options(options: str, fn: Callable[[], Any]) -> Any:
    """Low-latency FFmpeg options for this open only: OpenCV reads them from the environment
    when a capture opens, and left set they would also apply to video files (and lose frames).
    A user's own OPENCV_FFMPEG_CAPTURE_OPTIONS wins."""
    with _ENV_LOCK:
        if "OPENCV_FFMPEG_CAPTURE_OPTIONS" in os.environ:
            return fn()
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = options
        try:
            return fn()
        finally:
            del os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"]


def redact_url(url: str) -> str:
    """rtsp://user:secret@host/... -> rtsp://user:***@host/... for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    auth, _, host = rest.partition("@")
    user = auth.split(":", 1)[0]
    return "{}://{}{}@{}".format(scheme, user, ":***" if ":" in auth else "", host)


def open_source(uri: Union[str, int], realtime: bool = False, max_retries: int = 3, width: Optional[int] = None,
                height: Optional[int] = None, fps: Optional[float] = None, flip: Optional[int] = None,
                stride: int = 1, backoff_s: float = DEFAULT_BACKOFF_S, backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
                open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
                on_skip: Optional[SkipCallback] = None) -> FrameSource:
    """Open what a URI names (see jist_edge.source_uri); raises JistEdgeError naming it when it cannot.

    width/height/fps set a camera's capture mode; ``fps`` also gives an image folder
    its frame rate (timestamps, --realtime pacing). ``flip`` is nvvidconv's
    flip-method 0-7: in the pipeline for csi://, in software elsewhere. ``realtime``
    is recorded on the source for jist_edge.capture.iter_frames."""
    if int(stride) < 1:
        raise JistEdgeError("stride must be 1 or more, got {}".format(stride))
    if flip is not None and not 0 <= int(flip) <= 7:
        raise JistEdgeError("flip must be a flip-method 0-7, got {}".format(flip))
    if int(max_retries) < 0:
        raise JistEdgeError("max retries must be 0 or more, got {}".format(max_retries))
    spec = parse_source_uri(uri)
    live_opts = dict(max_retries=int(max_retries), backoff_s=backoff_s, backoff_max_s=backoff_max_s,
                     open_timeout_s=open_timeout_s, stride=int(stride), on_skip=on_skip)
    if spec.kind == "images":
        source = ImageFolderSource(spec.path, int(stride), fps, flip, on_skip)  # type: FrameSource
    elif spec.kind == "video":
        if not os.path.exists(spec.path) and not spec.path.lower().endswith(VIDEO_EXTENSIONS):
            raise JistEdgeError("source {} not found: not a camera number, device, URL, file or folder".format(
                spec.uri))
        source = VideoFileSource(spec.path, int(stride), fps, flip, on_skip)
    elif spec.kind == "camera":
        name = _camera_name(spec)
        source = LiveCaptureSource(name, _camera_opener(spec, width, height, fps), flip=flip,
                                   description=name + _mode_text(width, height, fps), **live_opts)
    elif spec.kind == "csi":
        if not opencv_has_gstreamer():
            raise JistEdgeError(gstreamer_missing_message(spec.uri))
        opts = dict(CSI_DEFAULTS)
        opts.update(spec.options)
        opts.update({k: int(v) for k, v in (("width", width), ("height", height), ("fps", fps), ("flip", flip))
                     if v is not None})
        pipeline = csi_pipeline(spec.device, opts["width"], opts["height"], opts["fps"], opts["flip"])
        name = "csi://{}".format(spec.device)
        source = LiveCaptureSource(name, _csi_opener(spec, pipeline),
                                   description="CSI camera {} ({}x{} at {} fps)".format(
                                       spec.device, opts["width"], opts["height"], opts["fps"]), **live_opts)
    else:
        shown = redact_url(spec.path)
        source = LiveCaptureSource(shown, _rtsp_opener(spec.path, open_timeout_s), flip=flip,
                                   description="stream " + shown, **live_opts)
    source.realtime = bool(realtime)
    return source


def _mode_text(width: Optional[int], height: Optional[int], fps: Optional[float]) -> str:
    parts = []
    if width and height:
        parts.append("{}x{}".format(width, height))
    if fps:
        parts.append("{:g} fps".format(fps))
    return " ({})".format(", ".join(parts)) if parts else ""
