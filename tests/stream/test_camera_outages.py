"""Live sources through outages, as plain parts with real frames and real files: the capped backoff,
the frozen-stream watchdog, outage events, max_outage, blind frames, http:// and redaction."""
import os
import time

import cv2
import numpy as np
import pytest

from jist_edge.errors import JistEdgeError
from jist_edge.stream.blind import blind_frame
from jist_edge.stream.capture import iter_frames
from jist_edge.stream.events import SOURCE_BACK, SOURCE_LOST, WAITING, OutageLog, SourceOutage
from jist_edge.stream.sources import LiveCaptureSource, open_source
from jist_edge.stream.sources.live import backoff_delay, same_image, watchdog_seconds
from jist_edge.stream.uri import parse_source_uri, redact_url
from video_files import frame_image, write_mjpg_avi


def test_backoff_doubles_from_half_a_second_to_five():
    assert [backoff_delay(k) for k in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert backoff_delay(10 ** 6) == 5.0  # no overflow in a week-long outage


def test_watchdog_is_a_few_frame_intervals_and_never_under_two_seconds():
    assert watchdog_seconds(None) == 2.0
    assert watchdog_seconds(30.0) == 2.0
    assert watchdog_seconds(1.0) == 5.0


def test_same_image_is_the_very_picture_not_a_similar_one():
    a = frame_image(3)
    assert same_image(a, a.copy())
    b = a.copy()
    b[10, 10, 0] ^= 1  # one grey level at one pixel (the sparse sample misses it, the full check does not)
    assert not same_image(a, b)
    assert not same_image(a, frame_image(4)) and not same_image(None, a)


def test_outage_log_reports_lost_once_and_back_with_the_gap():
    log = OutageLog()
    log.frame(100.0)
    assert log.lose("cable", 101.0).kind == SOURCE_LOST
    assert log.lose("still gone", 102.0) is None  # one outage, one event
    assert log.lost and abs(log.lost_for(104.0) - 4.0) < 1e-9
    back = log.frame(112.5)
    assert back.kind == SOURCE_BACK and back.gap_s == pytest.approx(12.5)
    assert [e.to_dict()["event"] for e in log.drain()] == ["source_lost", "source_back"]
    assert log.summary() == {"outages": 1, "outage_s": 12.5, "reconnects": 0}
    assert back.to_dict() == {"event": "source_back", "timestamp": 112.5, "gap_s": 12.5}
    log.lose("again", 120.0)
    assert log.drain(until=119.0) == [] and len(log.drain()) == 1  # later events wait for later frames


def _frozen_video(path, frames=40):
    """A real video whose frames are all one picture: what a stalled decoder hands out."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for _ in range(frames):
        writer.write(frame_image(7))
    writer.release()
    return path


def test_a_frozen_stream_is_counted_reported_and_reopened(tmp_path):
    """Repeated images are counted, not yielded; after the watchdog the source reports source_lost,
    reopens, and its first image after that is source_back."""
    path = _frozen_video(str(tmp_path / "frozen.avi"))
    paced = []

    def slow_open():
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        paced.append(time.time())
        return cap

    src = LiveCaptureSource("frozen camera", slow_open, watchdog_s=0.05, backoff_s=0.01, backoff_max_s=0.02)
    frames, events = [], []
    it = iter(src)
    deadline = time.time() + 20
    while len(frames) < 3 and time.time() < deadline:
        frames.append(next(it))
        events += src.outages.drain()
        time.sleep(0.01)
    src.close()
    assert len(frames) == 3
    assert src.repeated > 0  # the same picture came again and again, and was not handed out
    kinds = [e.kind for e in events]
    assert SOURCE_LOST in kinds and SOURCE_BACK in kinds
    lost = [e for e in events if e.kind == SOURCE_LOST][0]
    assert "frozen" in lost.reason or "stopped" in lost.reason
    assert src.reconnects >= 2 and src.outages.outages >= 2


def test_live_source_reconnects_by_default_and_max_outage_ends_the_stream(tmp_path):
    """Default: no retry limit. A camera that cannot be reopened is waited for; max_outage_s ends it."""
    path = write_mjpg_avi(str(tmp_path / "cam.avi"), 6)
    src = LiveCaptureSource("test camera", lambda: cv2.VideoCapture(path, cv2.CAP_FFMPEG), backoff_s=0.05,
                            backoff_max_s=0.1)
    assert src.max_retries is None
    os.remove(path)  # every reopen fails from now on
    got, events = [], []
    started = time.time()
    with pytest.raises(SourceOutage) as err:
        for frame, _, _ in iter_frames(src, on_event=events.append, max_outage_s=1.5):
            got.append(frame.index)
    assert got == list(range(6))
    assert src.reconnect_failures >= 2  # kept trying, never gave up by itself (a loaded machine opens slowly)
    assert "camera lost for" in str(err.value) and isinstance(err.value, JistEdgeError)
    assert time.time() - started < 15
    kinds = [e.kind for e in events]
    assert kinds[0] == SOURCE_LOST and WAITING in kinds and SOURCE_BACK not in kinds
    assert not src._openers or not any(t.is_alive() for t in src._openers)


def test_http_urls_are_live_cameras_and_credentials_never_show():
    spec = parse_source_uri("https://admin:pa55@cam.local:8443/video.mjpg")
    assert spec.kind == "http" and spec.live
    assert redact_url("rtsp://u:p@h/x") == "rtsp://u:***@h/x"
    assert redact_url("http://admin:p@ss@10.0.0.9/cgi?user=admin&pwd=hunter2&res=1") == \
        "http://admin:***@10.0.0.9/cgi?user=admin&pwd=***&res=1"
    assert redact_url("http://cam/x?token=abc#top") == "http://cam/x?token=***#top"
    assert redact_url("rtsp://h/x@y") == "rtsp://h/x@y" and redact_url("route.mp4") == "route.mp4"
    with pytest.raises(JistEdgeError) as err:
        open_source("http://viewer:s3cret@127.0.0.1:9/cam.mjpg?pwd=hunter2", open_timeout_s=2.0)
    assert "s3cret" not in str(err.value) and "hunter2" not in str(err.value) and "127.0.0.1:9" in str(err.value)
    with pytest.raises(JistEdgeError) as err:
        parse_source_uri("ftp://u:s3cret@h/x")
    assert "s3cret" not in str(err.value)


def test_blind_frames_are_uniform_ones_with_noise_or_not():
    rng = np.random.RandomState(0)
    black = np.zeros((480, 640, 3), np.uint8)
    capped = np.clip(rng.normal(8, 4, black.shape), 0, 255).astype(np.uint8)  # a lens cap: dark sensor noise
    assert blind_frame(black) and blind_frame(capped) and blind_frame(np.full((48, 64), 200, np.uint8))
    assert not blind_frame(frame_image(3)) and not blind_frame(rng.randint(0, 255, (48, 64, 3)).astype(np.uint8))
