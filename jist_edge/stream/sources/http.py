"""HTTP(S) MJPEG cameras (multipart/x-mixed-replace, what cheap IP cameras serve), read by FFmpeg.

The pip OpenCV's FFmpeg reads them; the same open/read timeouts as RTSP bound a dead camera.
"""
from typing import Any, Callable

from jist_edge.stream.sources.ffmpeg import DEFAULT_READ_TIMEOUT_S, open_network_capture
from jist_edge.stream.uri import redact_url

# a camera that is slow to send its first part must not be probed for seconds
HTTP_FFMPEG_OPTIONS = "fflags;nobuffer|flags;low_delay"


def http_opener(url: str, timeout_s: float, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> Callable[[], Any]:
    shown = redact_url(url)

    def open_http() -> Any:
        return open_network_capture(url, HTTP_FFMPEG_OPTIONS, timeout_s, read_timeout_s,
                                    "{}: the camera cannot be opened (unreachable host, wrong path or credentials, "
                                    "or not an MJPEG stream)".format(shown))

    return open_http
