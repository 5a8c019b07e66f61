"""Real network cameras on 127.0.0.1 that fail: GStreamer's RTSP server stopped for 12 s and frozen
(SIGSTOP) for 8 s under a default `jist-edge run`, and an HTTP MJPEG camera that goes away under
--max-outage. The run is a real process: exit codes and signals are its own."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from optional_imports import import_or_skip

from jist_edge.benchmarks.camera_servers import MjpegCamera, RtspCamera, rtsp_unavailable, frames_from_video

import_or_skip("torch")


@pytest.fixture(scope="module")
def camera_frames(synth_route, tmp_path_factory):
    """The query pass as 192x128 JPEGs (H.264 wants even sizes larger than the tiny frames)."""
    data, _ = synth_route
    return frames_from_video(data["queries"], str(tmp_path_factory.mktemp("camera") / "frames"))


def _start_run(tiny_bundle, place_map, url, out, *extra):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "jist_edge", "run", "--model", tiny_bundle.path, "--map",
                             place_map.path, "--camera", url, "--output", str(out)] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _lines(out):
    """Every line must be valid JSON (a half line would fail here)."""
    if not os.path.exists(str(out)):
        return []
    text = open(str(out)).read()
    return [json.loads(line) for line in text.splitlines() if line] if text.endswith("\n") or not text else \
        [json.loads(line) for line in text.splitlines()[:-1]]


def _wait(run, out, pred, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        lines = _lines(out)
        if pred(lines):
            return lines
        if run.poll() is not None:
            break
        time.sleep(0.2)
    output = run.stdout.read() if run.poll() is not None else ""
    run.kill()
    pytest.fail("{} did not happen within {} s (run exit {}): {}".format(what, timeout_s, run.poll(), output[-2000:]))


def _backs(lines):
    return [x for x in lines if x.get("event") == "source_back"]


def _full_window_after_back(count):
    return lambda lines: len(_backs(lines)) >= count and "frame" in lines[-1] and lines[-1]["window"] == 5 and \
        lines.index(_backs(lines)[count - 1]) < len(lines) - 5


@pytest.mark.slow
def test_default_run_survives_a_stopped_and_a_frozen_rtsp_camera(tiny_bundle, synth_route, camera_frames, tmp_path):
    why = rtsp_unavailable()
    if why:
        pytest.skip(why)
    _, place_map = synth_route
    out = tmp_path / "out.jsonl"
    with RtspCamera(camera_frames, fps=10) as camera:
        run = _start_run(tiny_bundle, place_map, camera.url, out)
        try:
            _wait(run, out, lambda lines: len(lines) >= 8, 90, "the first results")
            camera.stop()
            time.sleep(12)
            camera.start()
            _wait(run, out, _full_window_after_back(1), 60, "a full window after the camera came back")
            camera.freeze()
            time.sleep(8)
            camera.thaw()
            _wait(run, out, _full_window_after_back(2), 60, "a full window after the camera thawed")
            run.send_signal(signal.SIGINT)
            output = run.communicate(timeout=60)[0]
        finally:
            if run.poll() is None:
                run.kill()
    assert run.returncode in (0, 130), output
    assert "terminate called" not in output and "Traceback" not in output
    lines = _lines(out)
    events = [x for x in lines if "event" in x]
    assert [e["event"] for e in events][:4] == ["source_lost", "source_back"] * 2, events
    lost, back, lost2, back2 = events[:4]
    assert back["gap_s"] >= 10.0  # the 12 s stop (from the last frame before to the first after)
    assert 4.0 <= back2["gap_s"] < 60.0  # the 8 s freeze, less what the socket still held
    assert lost["reason"] and lost["timestamp"] <= back["timestamp"] <= lost2["timestamp"] <= back2["timestamp"]
    for event in (back, back2):  # the window starts again: no window pools frames from both sides
        after = [x for x in lines[lines.index(event) + 1:] if "frame" in x][:5]
        assert [x["window"] for x in after] == [1, 2, 3, 4, 5]
        assert [x["partial"] for x in after] == [True] * 4 + [False]
    results = [x for x in lines if "frame" in x]
    assert all(set(r) >= {"frame", "timestamp", "partial", "window", "match", "latency_ms"} for r in results)
    stamps = [r["timestamp"] for r in results]
    assert stamps == sorted(stamps)
    assert "camera: 2 outages" in output and "2 reconnects" in output, output


def test_http_mjpeg_camera_gives_results_and_max_outage_ends_the_run(tiny_bundle, synth_route, camera_frames,
                                                                    tmp_path):
    _, place_map = synth_route
    jpegs = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(camera_frames, "*.jpg")))]
    out = tmp_path / "out.jsonl"
    camera = MjpegCamera(jpegs, fps=10).start()
    url = camera.url.replace("http://", "http://viewer:s3cret@") + "?pwd=hunter2"
    try:
        run = _start_run(tiny_bundle, place_map, url, out, "--max-outage", "3")
        _wait(run, out, lambda lines: len(lines) >= 8, 90, "results from the MJPEG camera")
        camera.stop()
        output = run.communicate(timeout=60)[0]
    finally:
        camera.stop()
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, output
    assert "camera lost for" in output and "--max-outage" in output
    assert "Run summary" in output and "camera: 1 outage" in output
    lines = _lines(out)
    assert sum(1 for x in lines if "frame" in x) >= 8
    assert [x["event"] for x in lines if "event" in x] == ["source_lost"]
    everything = output + open(str(out)).read()
    assert "s3cret" not in everything and "hunter2" not in everything and "viewer:***@" in output
