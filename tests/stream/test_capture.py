"""iter_frames and the capture thread on real video files and image folders."""
import gc
import itertools
import os
import threading
import time

import cv2
import numpy as np
import pytest

from jist_edge.stream.capture import CaptureThread, iter_frames
from jist_edge.errors import JistEdgeError
from jist_edge.stream.frame_ring import FrameRing
from jist_edge.stream.sources import LiveCaptureSource, open_source
from video_files import frame_image, read_all_with_opencv, write_mjpg_avi

N = 24


@pytest.fixture(scope="module")
def avi(tmp_path_factory):
    return write_mjpg_avi(str(tmp_path_factory.mktemp("capture") / "route.avi"), N, fps=200.0)


def _capture_threads():
    return [t for t in threading.enumerate() if t.name == "jist-edge-capture" and t.is_alive()]


def _live(path, **kwargs):
    return LiveCaptureSource("test camera", lambda: cv2.VideoCapture(path, cv2.CAP_FFMPEG), **kwargs)


def _wait_until_no_capture_thread():
    for _ in range(300):
        if not _capture_threads():
            return True
        time.sleep(0.01)
    return False


def test_file_without_realtime_is_every_frame_in_order_in_this_thread(avi):
    reference = read_all_with_opencv(avi)
    seen_threads = []
    with open_source(avi) as src:
        items = []
        for frame, wait, dropped in iter_frames(src, realtime=False):
            seen_threads.append(len(_capture_threads()))
            items.append((frame, wait, dropped))
    assert [f.index for f, _, _ in items] == list(range(N))
    assert all(np.array_equal(f.image, reference[f.index]) for f, _, _ in items)
    assert all(w >= 0 and d == 0 for _, w, d in items)
    assert seen_threads == [0] * N


def test_realtime_file_drops_like_a_camera_under_a_slow_consumer(avi):
    with open_source(avi, realtime=True) as src:
        got = []
        for frame, wait, dropped in iter_frames(src):
            got.append((frame.index, dropped))
            time.sleep(0.03)  # 6 frame periods at 200 fps
    indices = [i for i, _ in got]
    drops = [d for _, d in got]
    assert indices == sorted(set(indices))
    assert indices[-1] == N - 1  # the last frame is never the one dropped
    assert drops == sorted(drops) and drops[-1] > 0
    assert len(got) + drops[-1] == N
    assert _wait_until_no_capture_thread()


def test_realtime_needs_a_frame_rate(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / "{}.png".format(i)), frame_image(i))
    with open_source(str(tmp_path), realtime=True) as src:
        with pytest.raises(JistEdgeError, match="frame rate"):
            list(iter_frames(src))
    with open_source(str(tmp_path), realtime=True, fps=500) as src:
        got = [(f.index, dropped) for f, _, dropped in iter_frames(src)]
    assert [i for i, _ in got] == sorted(set(i for i, _ in got)) and got[-1][0] == 2
    assert len(got) + got[-1][1] == 3


def test_live_source_runs_through_a_thread_and_stops_when_the_consumer_stops(avi):
    src = _live(avi, max_retries=2, backoff_s=0.001)
    frames = iter_frames(src)
    got = [f.index for f, _, _ in itertools.islice(frames, 2 * N + 3)]
    assert len(_capture_threads()) == 1
    frames.close()  # what a `break` in the consumer leads to
    assert _wait_until_no_capture_thread()
    src.close()
    assert len(got) == 2 * N + 3 and got == sorted(set(got))
    assert src.reconnects >= 1


def test_ctrl_c_in_the_consumer_stops_the_capture_thread(avi):
    src = _live(avi, max_retries=2, backoff_s=0.001)
    interrupted = False

    def run():
        for _ in iter_frames(src):
            raise KeyboardInterrupt

    try:
        run()
    except KeyboardInterrupt:
        interrupted = True
    gc.collect()
    assert interrupted
    assert _wait_until_no_capture_thread()
    src.close()


def test_fatal_source_error_reaches_the_consumer(tmp_path):
    path = write_mjpg_avi(str(tmp_path / "cam.avi"), 8, fps=200.0)
    src = _live(path, max_retries=2, backoff_s=0.001)
    os.remove(path)  # after the first 8 frames the camera is gone for good
    got = []
    with pytest.raises(JistEdgeError, match="could not be reopened after 2 attempt"):
        for frame, _, _ in iter_frames(src):
            got.append(frame.index)
    assert got and got == sorted(set(got)) and got[-1] <= 7
    assert src.reconnect_failures == 2
    assert _wait_until_no_capture_thread()
    src.close()


def test_capture_thread_stop_and_end_of_stream(avi):
    ring = FrameRing(2)
    src = _live(avi, max_retries=2, backoff_s=0.001)
    thread = CaptureThread(src, ring)
    thread.start()
    assert ring.get(10.0) is not None
    thread.stop()
    assert not thread.is_alive() and ring.closed and thread.error is None
    src.close()

    ring = FrameRing(1)
    with open_source(avi) as src:  # a file: the thread ends by itself at the end
        thread = CaptureThread(src, ring)
        thread.start()
        thread.join(30.0)
        assert not thread.is_alive() and thread.error is None and ring.closed
        assert thread.frames == N and ring.puts == N
        assert ring.get(0).index == N - 1
