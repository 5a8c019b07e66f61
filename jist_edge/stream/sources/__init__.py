"""Frame sources: cameras, CSI, RTSP, video files and image folders behind one iterator.

``open_source(uri)`` gives a FrameSource that yields ``Frame`` objects. Bad input is
skipped and counted, never a crash: undecodable frames, truncated or unreadable image
files, empty or odd-sized frames (see jist_edge.stream.frame for what is converted and
what is skipped). A live source (camera, CSI, RTSP) that stops delivering frames is
reopened with capped exponential backoff for as long as the run lasts, and reports its outages
(see .live and jist_edge.stream.events); a file that ends is a clean end.
"""
import numbers
import os
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.stream.sources.arrays import IterableSource
from jist_edge.stream.sources.base import FrameSource, SkipCallback
from jist_edge.stream.sources.images import ImageFolderSource, jpeg_is_truncated
from jist_edge.stream.sources.http import http_opener
from jist_edge.stream.sources.live import (DEFAULT_BACKOFF_MAX_S, DEFAULT_BACKOFF_S, DEFAULT_OPEN_TIMEOUT_S,
                                           LiveCaptureSource, call_with_timeout, camera_name, camera_opener,
                                           csi_opener)
from jist_edge.stream.sources.ffmpeg import DEFAULT_READ_TIMEOUT_S
from jist_edge.stream.sources.rtsp import GSTREAMER_READ_S, rtsp_opener
from jist_edge.stream.sources.video import VideoFileSource
from jist_edge.stream.uri import (VIDEO_EXTENSIONS, csi_capture, gstreamer_missing_message, opencv_has_gstreamer,
                                  parse_source_uri, redact_url)

__all__ = ["FrameSource", "ImageFolderSource", "VideoFileSource", "LiveCaptureSource", "IterableSource",
           "open_source", "as_frame_source", "call_with_timeout", "jpeg_is_truncated", "redact_url", "SkipCallback"]

SOURCE_KINDS_TEXT = ("a camera number, device, URL, video file or image folder (str, int or path), "
                     "a FrameSource, or an iterable of BGR numpy arrays (a list, generator, queue)")


def as_frame_source(source: Any, realtime: bool = False, uri_defaults: Optional[Dict[str, Any]] = None,
                    **options: Any) -> Tuple[FrameSource, bool]:
    """Whatever a caller may stream -> (FrameSource, True when opened here and to be closed by the caller).

    URIs and paths are opened with ``uri_defaults`` updated by ``options`` (see
    open_source); a FrameSource is used as it is; any other iterable is read item by item
    (see .arrays). Anything else, or options that only a URI can take, raise
    JistEdgeError naming the accepted kinds."""
    if hasattr(source, "__fspath__"):
        source = os.fspath(source)
    if isinstance(source, numbers.Integral) and not isinstance(source, (bool, np.bool_)):
        source = int(source)  # a camera number
    if isinstance(source, (str, int)) and not isinstance(source, bool):
        opened = dict(uri_defaults or {})
        opened.update(options)
        return open_source(source, realtime=realtime, **opened), True
    if isinstance(source, np.ndarray) and source.ndim != 4:
        raise JistEdgeError("stream() got one {}-D array; give a sequence of frames (a list, a generator or an "
                            "N x H x W x 3 array), or use process() for a single image".format(source.ndim))
    if not isinstance(source, (FrameSource, bytes, dict)) and hasattr(source, "__iter__"):
        source = IterableSource(source)
    if not isinstance(source, FrameSource):
        raise JistEdgeError("cannot stream a {}: give {}".format(type(source).__name__, SOURCE_KINDS_TEXT))
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise JistEdgeError("{} apply only to a source given as a URI or path, not to {}".format(
            ", ".join(given), source.description))
    return source, isinstance(source, IterableSource)


def open_source(uri: Union[str, int], realtime: bool = False, max_retries: Optional[int] = None, width: Optional[int] = None,
                height: Optional[int] = None, fps: Optional[float] = None, flip: Optional[int] = None,
                stride: int = 1, backoff_s: float = DEFAULT_BACKOFF_S, backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
                open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
                on_skip: Optional[SkipCallback] = None, scale_to: Optional[Tuple[int, int]] = None) -> FrameSource:
    """Open what a URI names (see jist_edge.stream.uri); raises JistEdgeError naming it when it cannot.

    width/height/fps set a camera's capture mode; ``fps`` also gives an image folder
    its frame rate (timestamps, --realtime pacing). ``flip`` is nvvidconv's
    flip-method 0-7: in the pipeline for csi://, in software elsewhere. ``realtime``
    is recorded on the source for jist_edge.stream.capture.iter_frames. ``max_retries``: reopen
    attempts per outage of a live source; None (the default) reopens for as long as the run lasts. ``scale_to`` (w, h):
    csi:// frames are scaled to about this size by nvvidconv in hardware (the Localizer
    passes the model's input size); other sources ignore it."""
    if int(stride) < 1:
        raise JistEdgeError("stride must be 1 or more, got {}".format(stride))
    if flip is not None and not 0 <= int(flip) <= 7:
        raise JistEdgeError("flip must be a flip-method 0-7, got {}".format(flip))
    if max_retries is not None and int(max_retries) < 0:
        raise JistEdgeError("max retries must be 0 or more, got {}".format(max_retries))
    spec = parse_source_uri(uri)
    live_opts = dict(max_retries=None if max_retries is None else int(max_retries), backoff_s=backoff_s, backoff_max_s=backoff_max_s,
                     open_timeout_s=open_timeout_s, stride=int(stride), on_skip=on_skip)
    if spec.kind == "images":
        source = ImageFolderSource(spec.path, int(stride), fps, flip, on_skip)  # type: FrameSource
    elif spec.kind == "video":
        if not os.path.exists(spec.path) and not spec.path.lower().endswith(VIDEO_EXTENSIONS):
            raise JistEdgeError("source {} not found: not a camera number, device, URL, file or folder".format(
                spec.uri))
        source = VideoFileSource(spec.path, int(stride), fps, flip, on_skip)
    elif spec.kind == "camera":
        name = camera_name(spec)
        source = LiveCaptureSource(name, camera_opener(spec, width, height, fps), flip=flip,
                                   description=name + _mode_text(width, height, fps), **live_opts)
    elif spec.kind == "csi":
        if not opencv_has_gstreamer():
            raise JistEdgeError(gstreamer_missing_message(spec.uri))
        pipeline, description = csi_capture(spec, dict(width=width, height=height, fps=fps, flip=flip), scale_to)
        source = LiveCaptureSource("csi://{}".format(spec.device), csi_opener(spec, pipeline),
                                   description=description, **live_opts)
    elif spec.kind == "http":
        shown = redact_url(spec.path)
        source = LiveCaptureSource(shown, http_opener(spec.path, open_timeout_s), flip=flip,
                                   description="MJPEG camera " + shown, **live_opts)
    else:
        shown = redact_url(spec.path)
        # GStreamer's rtspsrc (JetPack) ends a frozen read only after ~27 s: a close waits that long for it
        read_s = GSTREAMER_READ_S if opencv_has_gstreamer() else DEFAULT_READ_TIMEOUT_S
        source = LiveCaptureSource(shown, rtsp_opener(spec.path, open_timeout_s), flip=flip,
                                   description="stream " + shown, read_timeout_s=read_s, **live_opts)
    source.realtime = bool(realtime)
    return source


def _mode_text(width: Optional[int], height: Optional[int], fps: Optional[float]) -> str:
    parts = []
    if width and height:
        parts.append("{}x{}".format(width, height))
    if fps:
        parts.append("{:g} fps".format(fps))
    return " ({})".format(", ".join(parts)) if parts else ""
