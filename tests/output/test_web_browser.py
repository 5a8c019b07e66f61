"""`jist-edge run --serve` seen by a real browser: headless Chromium loads the page while a real run streams.

The run is a subprocess (`--video ... --realtime`, as from a camera); Chromium is driven
over the DevTools protocol (tests/headless_browser.py). The screenshot must show the
camera frame and the route map with the estimate drawn; the page and /status.json must
advance; Ctrl-C must end the run with its summary and free the port.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest

from headless_browser import Chromium, find_chromium
from jist_edge.output.web import page as web_page

PAGE_READY = ("window.jistView && jistView.statusUpdates >= 3 && jistView.mapDrawn && jistView.lastFrame >= 0 "
              "&& document.getElementById('frame').naturalWidth > 0")


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        pytest.skip("Chromium is not installed: .ci/run installs Debian's chromium with apt-get "
                    "(apt-get update && apt-get install chromium)")
    return path


def long_video(source: str, path: str, frames: int = 1200, fps: float = 10.0) -> str:
    """The query pass played back and forth: minutes of 'camera' at ``fps`` under --realtime."""
    cap = cv2.VideoCapture(source)
    clip = []
    ok, image = cap.read()
    while ok:
        clip.append(image)
        ok, image = cap.read()
    cap.release()
    loop = clip + clip[-2:0:-1]
    height, width = clip[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for i in range(frames):
        writer.write(loop[i % len(loop)])
    writer.release()
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read().decode("utf-8"))


def wait_for_status(url: str, proc, timeout: float, log_path: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended early: " + open(log_path).read()[-2000:]
        try:
            status = fetch_json(url)
            if status["result"] is not None:
                return status
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("no result served within {} s: {}".format(timeout, open(log_path).read()[-2000:]))


def near(region: np.ndarray, hex_color: str, tol: int = 14) -> int:
    """Pixels of ``region`` (BGR) within ``tol`` of a CSS colour."""
    rgb = [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]
    return int((np.abs(region.astype(int) - np.array(rgb[::-1])).max(axis=2) <= tol).sum())


def crop(image: np.ndarray, rect) -> np.ndarray:
    x0, y0 = int(rect["left"]) + 2, int(rect["top"]) + 2
    x1, y1 = int(rect["right"]) - 2, int(rect["bottom"]) - 2
    return image[y0:y1, x0:x1]


def test_a_browser_shows_the_live_run(chromium, tiny_bundle, synth_route, tmp_path):
    data, place_map = synth_route
    video = long_video(data["queries"], str(tmp_path / "camera.avi"))
    port = free_port()
    base = "http://127.0.0.1:{}/".format(port)
    log_path = str(tmp_path / "run.log")
    cmd = [sys.executable, "-m", "jist_edge", "run", "--model", tiny_bundle.path, "--map", place_map.path,
           "--video", video, "--realtime", "--serve", "127.0.0.1:{}".format(port),
           "--output", str(tmp_path / "run.jsonl")]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    browser = None
    try:
        first = wait_for_status(base + "status.json", proc, 120, log_path)
        browser = Chromium(chromium)
        browser.call("Page.navigate", {"url": base})
        assert browser.wait_for(PAGE_READY, 60), "page not drawn: {} / {}".format(
            browser.evaluate("JSON.stringify(window.jistView || null)"), browser.log_tail())
        seen = browser.evaluate("jistView.lastFrame")
        assert browser.wait_for("jistView.lastFrame > {}".format(seen), 30)  # the page updates itself
        png = browser.screenshot()
        (tmp_path / "page.png").write_bytes(png)
        if os.environ.get("JIST_WEB_SCREENSHOT"):  # to look at it
            shutil.copy(str(tmp_path / "page.png"), os.environ["JIST_WEB_SCREENSHOT"])
        frame_rect, map_rect = json.loads(browser.evaluate(
            "JSON.stringify(['frame', 'map'].map(id => document.getElementById(id).getBoundingClientRect()))"))
        where = browser.evaluate("document.getElementById('where').textContent")
        assert where.startswith("frame ") and "sequence" in where

        shot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        camera = crop(shot, frame_rect)
        assert camera.size and camera.std() > 12, "the camera frame looks blank"
        assert near(camera, "#000000", 6) < camera.shape[0] * camera.shape[1] // 2
        route_map = crop(shot, map_rect)
        assert near(route_map, web_page.BACKGROUND, 4) > route_map.shape[0] * route_map.shape[1] // 2
        assert near(route_map, web_page.ROUTE_COLOR) > 200, "the route is not drawn"
        marker = sum(near(route_map, c) for c in set(web_page.STATE_COLORS.values()))
        assert marker > 100, "the estimate is not drawn"

        later = first  # /status.json advances for scripts too
        deadline = time.monotonic() + 30
        while later["result"]["frame"] <= first["result"]["frame"] and time.monotonic() < deadline:
            time.sleep(0.2)
            later = fetch_json(base + "status.json")
        assert later["result"]["frame"] > first["result"]["frame"] and later["frames"] > first["frames"]

        proc.send_signal(signal.SIGINT)  # Ctrl-C: the run ends with its summary, the server with it
        assert proc.wait(60) == 0
        output = open(log_path).read()
        assert "interrupted" in output and "Run summary" in output and "Traceback" not in output
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        assert browser.wait_for("document.getElementById('state').textContent.includes('disconnected')", 30)
    finally:
        if browser is not None:
            browser.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
