"""RTSP cameras: GStreamer's rtspsrc where OpenCV has it (JetPack), else FFmpeg over TCP with timeouts.

GStreamer has no per-read timeout in OpenCV: measured with GStreamer 1.22's rtspsrc against a server
frozen by SIGSTOP, the appsink reached EOS after about 27 s (UDP or TCP). The source's consumer reports
the outage after the watchdog time meanwhile, and ``GSTREAMER_READ_S`` is how long a close waits for
such a read to come back (a thread left inside it at exit would abort the process).
"""
from typing import Any, Callable

import cv2

from jist_edge.stream.sources.ffmpeg import DEFAULT_READ_TIMEOUT_S, open_network_capture
from jist_edge.stream.uri import opencv_has_gstreamer, redact_url, rtsp_gstreamer_pipeline

RTSP_FFMPEG_OPTIONS = "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay"
GSTREAMER_READ_S = 30.0


def rtsp_opener(url: str, timeout_s: float, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> Callable[[], Any]:
    shown = redact_url(url)

    def open_rtsp() -> Any:
        if opencv_has_gstreamer():
            cap = cv2.VideoCapture(rtsp_gstreamer_pipeline(url), cv2.CAP_GSTREAMER)
            if cap.isOpened():
                return cap
            cap.release()
        return open_network_capture(url, RTSP_FFMPEG_OPTIONS, timeout_s, read_timeout_s,
                                    "{}: the stream cannot be opened (unreachable host, wrong path or "
                                    "credentials)".format(shown))

    return open_rtsp
