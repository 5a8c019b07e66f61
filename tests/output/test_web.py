"""The live web view (`run --serve`): real pipeline results, a real HTTP server on loopback, real sockets.

No timed assertions: liveness is checked with generous deadlines (a stalled server or
pipeline would hit them), never speed.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.cli import main
from jist_edge.pipeline.localizer import Localizer, Result
from jist_edge.output.web import page as web_page
from jist_edge.output.web.server import WebView, parse_serve_address
from jist_edge.output.web.feed import estimate_of, finite
from optional_imports import import_or_skip

STAGES = {"capture_wait", "preprocess", "encode", "seqgem", "match", "total"}


@pytest.fixture(scope="module")
def route(synth_route):
    return synth_route


@pytest.fixture(scope="module")
def stream(tiny_bundle, route):
    """(result, image) for every frame of the query pass, from the real runtime."""
    data, place_map = route
    loc = Localizer(tiny_bundle, place_map, backend="onnxruntime", top_k=3)
    try:
        return [(r, loc.last_image) for r in loc.stream(data["queries"])]
    finally:
        loc.close()


@pytest.fixture
def view(route):
    threads_before = set(threading.enumerate())
    v = WebView("127.0.0.1", 0, max_viewers=2, max_connections=6, client_timeout=1.0).start()
    v.set_map(route[1], {"backend": "onnxruntime"})
    yield v
    v.close()
    assert set(threading.enumerate()) <= threads_before  # every server thread ended


def request(port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def get_json(port, path):
    status, _, body = request(port, "GET", path)
    assert status == 200, body
    return json.loads(body.decode("utf-8"))


def read_until(sock, end):
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(1)
        assert chunk, "stream closed"
        data += chunk
    return data


def open_stream(port, path="/stream.mjpg"):
    """A raw connection to a stream; returns (socket, status line, headers text)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall("GET {} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".format(path).encode("ascii"))
    text = read_until(sock, b"\r\n\r\n").decode("latin-1")
    return sock, text.split("\r\n", 1)[0], text


def read_part(sock):
    """One multipart JPEG: its decoded image."""
    head = read_until(sock, b"\r\n\r\n")
    lines = head.decode("ascii").strip().split("\r\n")
    assert lines[0] == "--jistframe" and "Content-Type: image/jpeg" in lines
    length = int([x for x in lines if x.startswith("Content-Length:")][0].split(":")[1])
    data = b""
    while len(data) < length + 2:
        chunk = sock.recv(length + 2 - len(data))
        assert chunk, "stream closed"
        data += chunk
    assert data.endswith(b"\r\n")
    return cv2.imdecode(np.frombuffer(data[:-2], np.uint8), cv2.IMREAD_COLOR)


def wait_until(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_serve_address_parsing():
    assert parse_serve_address("8080") == ("127.0.0.1", 8080)
    assert parse_serve_address("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_serve_address("localhost:0") == ("localhost", 0)
    assert parse_serve_address("[::1]:9000") == ("::1", 9000)
    assert parse_serve_address(":8081") == ("127.0.0.1", 8081)
    for bad in ("", "abc", "host:", "1:2:3", "65536", "-1", "8080x"):
        with pytest.raises(ValueError):
            parse_serve_address(bad)


def test_page_status_map_and_frame_reflect_the_latest_result(view, stream, route):
    place_map = route[1]
    status, headers, body = request(view.port, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'src="stream.mjpg"' in body and b'src="app.js"' in body and b"<canvas" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-store"
    status, _, script = request(view.port, "GET", "/app.js")
    assert status == 200 and web_page.ROUTE_COLOR.encode() in script and b"status.json" in script

    empty = get_json(view.port, "/status.json")
    assert empty["frames"] == 0 and empty["result"] is None and empty["estimate"] is None
    assert request(view.port, "GET", "/frame.jpg")[0] == 503  # nothing to show yet

    for result, image in stream:
        view(result, image)
    last, image = stream[-1]
    s = get_json(view.port, "/status.json")
    assert s["frames"] == len(stream) and s["result"]["frame"] == last.frame_index
    # the runtime runs the route filter: the view shows its estimate, and the trail follows it
    assert last.estimate is not None
    assert s["estimate"] == dict(last.estimate.to_dict(), source="filter")
    assert s["result"]["match"]["seq_id"] == last.best.seq_id and len(s["result"]["top_k"]) == 3
    # partial windows carry an estimate without a position (initializing): only full ones are placed
    where = [(r.estimate.position if r.estimate is not None else r.best.position if r.best is not None else None)
             for r, _ in stream]
    assert s["trail"] == [list(p) for p in where if p is not None] and s["trail"][-1] == last.estimate.position
    assert STAGES <= set(s["latency_ms"]) and s["fps"] > 0 and s["info"] == {"backend": "onnxruntime"}
    assert (s["viewers"], s["max_viewers"], s["ended"]) == (0, 2, False)

    m = get_json(view.port, "/map.json")
    assert m["sequences"] == place_map.count and len(m["drives"]) == 1
    assert np.allclose(np.array(m["drives"][0]["points"]), place_map.sequence_positions)
    known = place_map.sequence_positions
    assert np.allclose(m["extent"], [known[:, 0].min(), known[:, 1].min(), known[:, 0].max(), known[:, 1].max()])

    status, headers, jpeg = request(view.port, "GET", "/frame.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == image.shape  # narrower than the cap: not resized
    assert np.abs(frame.astype(int) - image.astype(int)).mean() < 8  # the last frame (JPEG loss aside)
    assert np.abs(frame.astype(int) - stream[0][1].astype(int)).mean() > 8  # not the first one

    view.finish("the run has ended")
    s = get_json(view.port, "/status.json")
    assert s["ended"] is True and s["message"] == "the run has ended" and s["result"]["frame"] == last.frame_index


def test_mjpeg_stream_sends_each_new_frame_shrunk_to_the_cap(route, stream):
    with WebView("127.0.0.1", 0, max_width=48).start() as view:
        view(*stream[0])
        sock, status_line, head = open_stream(view.port)
        with sock:
            assert status_line == "HTTP/1.0 200 OK"
            assert "multipart/x-mixed-replace; boundary=jistframe" in head
            first = read_part(sock)
            assert first.shape == (32, 48, 3)  # 96 px wide frames capped at 48
            target = cv2.resize(stream[0][1], (48, 32), interpolation=cv2.INTER_AREA)
            assert np.abs(first.astype(int) - target.astype(int)).mean() < 8
            view(*stream[-1])
            newest = read_part(sock)
            target = cv2.resize(stream[-1][1], (48, 32), interpolation=cv2.INTER_AREA)
            assert np.abs(newest.astype(int) - target.astype(int)).mean() < 8


def read_event(sock):
    """The next server-sent event's data, as JSON."""
    lines = [line for line in read_until(sock, b"\n\n").decode("utf-8").split("\n") if line.startswith("data: ")]
    return json.loads(lines[0][len("data: "):]) if lines else read_event(sock)


def event_with_frames(sock, frames, limit=200):
    for _ in range(limit):
        s = read_event(sock)
        if s["frames"] == frames:
            return s
    raise AssertionError("no event with frames == {} in {} events".format(frames, limit))


def test_the_event_stream_pushes_the_status_and_is_limited_like_viewers(view, stream):
    first, line, head = open_stream(view.port, "/events")
    second, _, _ = open_stream(view.port, "/events")
    with first, second:
        assert line.endswith("200 OK") and "Content-Type: text/event-stream" in head
        assert read_event(first)["frames"] == 0
        for result, image in stream[:5]:
            view(result, image)
        s = event_with_frames(first, 5)  # events keep coming, five a second
        assert s["result"]["frame"] == stream[4][0].frame_index and s["schema"] == "jist-edge-live/1"
        third, line, _ = open_stream(view.port, "/events")  # max_viewers = 2 pages
        with third:
            assert line.endswith("503 Service Unavailable") and b"maximum of 2 pages open" in third.recv(4096)
        assert event_with_frames(second, 5)["frames"] == 5  # the other page gets the same status


def test_only_get_is_served(view):
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW"):
        status, headers, _ = request(view.port, method, "/status.json", body=b"x=1" if method == "POST" else None)
        assert status == 405 and headers["Allow"] == "GET", method
    assert request(view.port, "GET", "/status.json")[0] == 200


def test_no_path_reaches_the_file_system(view):
    for path in ("/../setup.cfg", "/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                 "/app.js/../../README.md", "/static/app.js", "/status.json/..", "/favicon.ico"):
        status, _, body = request(view.port, "GET", path)
        assert status == 404, path
        assert b"root:" not in body and b"[metadata]" not in body
    status, _, body = request(view.port, "GET", "/index.html?file=/etc/passwd")
    assert status == 200 and b"root:" not in body


def test_loopback_server_answers_only_to_loopback_host_names(view):
    assert request(view.port, "GET", "/status.json", {"Host": "attacker.example:{}".format(view.port)})[0] == 403
    for host in ("localhost:{}", "127.0.0.1:{}", "[::1]:{}"):
        assert request(view.port, "GET", "/status.json", {"Host": host.format(view.port)})[0] == 200
    with socket.create_connection(("127.0.0.1", view.port), timeout=20) as bare:  # no Host: not a browser
        bare.sendall(b"GET /status.json HTTP/1.0\r\n\r\n")
        assert bare.recv(100).startswith(b"HTTP/1.0 200")


def test_viewer_limit_says_so_and_frees_a_slot_when_a_viewer_leaves(view, stream):
    view(*stream[0])
    first, line1, _ = open_stream(view.port)
    second, line2, _ = open_stream(view.port)
    assert line1.endswith("200 OK") and line2.endswith("200 OK")
    assert wait_until(lambda: get_json(view.port, "/status.json")["viewers"] == 2)
    third, line3, _ = open_stream(view.port)
    with third:
        assert line3.endswith("503 Service Unavailable")
        assert b"maximum of 2 viewers" in third.recv(4096)
    assert request(view.port, "GET", "/status.json")[0] == 200  # pages and status still served
    first.close()  # the server notices at its next write (a new frame, or the 2 s repeat)

    def slot_free():
        view(*stream[1])
        return get_json(view.port, "/status.json")["viewers"] == 1

    assert wait_until(slot_free)
    again, line, _ = open_stream(view.port)
    again.close()
    second.close()
    assert line.endswith("200 OK")


def test_idle_and_broken_clients_are_dropped_and_the_server_keeps_serving(route):
    with WebView("127.0.0.1", 0, max_connections=6, client_timeout=3.0).start() as view:
        _idle_and_broken_clients(view)


def _idle_and_broken_clients(view):
    idle = [socket.create_connection(("127.0.0.1", view.port), timeout=20) for _ in range(6)]
    try:
        # 6 connections allowed: the 7th is refused at once with a 503
        extra = socket.create_connection(("127.0.0.1", view.port), timeout=20)
        with extra:
            assert extra.recv(4096).startswith(b"HTTP/1.0 503")
        for sock in idle:  # after client_timeout (3 s) without a request each is closed by the server
            assert sock.recv(4096) == b""
    finally:
        for sock in idle:
            sock.close()
    with socket.create_connection(("127.0.0.1", view.port), timeout=20) as tls:
        tls.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n")
        reply = tls.recv(4096)  # junk reads as an HTTP/0.9 line: a bare 400 page, no status line
        assert b"400" in reply
    with socket.create_connection(("127.0.0.1", view.port), timeout=20) as half:
        half.sendall(b"GET /status.js")
    assert request(view.port, "GET", "/status.json")[0] == 200


def test_a_stalled_viewer_neither_stalls_the_pipeline_nor_other_viewers(stream):
    rng = np.random.default_rng(0)
    noisy = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]  # ~250 kB JPEGs
    result = stream[-1][0]

    with WebView("127.0.0.1", 0, client_timeout=1.0, max_fps=50).start() as view:
        view(result, noisy[0])
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", view.port))
        stalled.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
        good, line, _ = open_stream(view.port)
        assert line.endswith("200 OK")
        received = []
        done = threading.Event()

        def watch():  # the other viewer keeps reading all along
            while not done.is_set():
                received.append(read_part(good))

        reader = threading.Thread(target=watch)
        reader.start()
        offered = []

        def pipeline():
            for i in range(400):
                view(result, noisy[i % len(noisy)])
                offered.append(i)
                time.sleep(0.005)

        worker = threading.Thread(target=pipeline)
        worker.start()
        worker.join(120)
        assert not worker.is_alive() and len(offered) == 400  # every frame handed over
        # the stalled viewer times out (1 s without taking data) and is dropped; the other one stays
        assert wait_until(lambda: get_json(view.port, "/status.json")["viewers"] == 1)
        done.set()
        view(result, noisy[0])  # one more frame, so that the reader wakes up
        reader.join(120)
        assert not reader.is_alive() and len(received) >= 2  # the other viewer got frames meanwhile
        good.close()
        stalled.close()


def test_close_ends_every_thread_and_frees_the_port(route, stream):
    before = set(threading.enumerate())
    view = WebView("127.0.0.1", 0, client_timeout=30.0).start()
    port = view.port
    view(*stream[0])
    viewer, line, _ = open_stream(view.port)
    listener, _, _ = open_stream(view.port, "/events")
    idle = socket.create_connection(("127.0.0.1", port), timeout=20)  # sends nothing, 30 s timeout
    assert line.endswith("200 OK") and wait_until(lambda: get_json(port, "/status.json")["viewers"] == 1)
    view.close()
    view.close()  # twice is fine
    assert set(threading.enumerate()) <= before
    for sock in (viewer, listener):  # every connection was closed by the server
        while sock.recv(1 << 16):
            pass
    assert idle.recv(10) == b""
    listener.close()
    viewer.close()
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    WebView("127.0.0.1", port).start().close()  # the same port can be served again at once


def test_the_route_filters_estimate_is_shown_when_the_result_has_one(stream):
    from jist_edge.filter.route_filter import Estimate

    last = stream[-1][0]
    result = Result(last.frame_index, last.timestamp, last.partial, last.window_size, last.matches, last.latency,
                    last.descriptor)
    assert estimate_of(result)["source"] == "raw match"  # no filter (run --no-filter): the raw match
    result.estimate = Estimate(7, [1.5, float("nan")], 0.25, "tracking")
    assert estimate_of(result) == {"seq_id": 7, "position": None, "confidence": 0.25, "state": "tracking",
                                   "source": "filter"}
    result.estimate = Estimate(7, [1.5, 2.5], 0.25, "tracking")
    with WebView("127.0.0.1", 0).start() as view:
        view(result, stream[-1][1])
        s = get_json(view.port, "/status.json")
    assert s["estimate"]["position"] == [1.5, 2.5] and s["estimate"]["state"] == "tracking"
    assert s["trail"] == [[1.5, 2.5]]  # the trail follows the filter, not the raw match


def test_finite_makes_json_browsers_accept():
    out = finite({"a": [float("nan"), 1.0, np.float32(2.5)], "b": float("inf"), "c": np.int64(3)})
    assert out == {"a": [None, 1.0, 2.5], "b": None, "c": 3}
    json.loads(json.dumps(out, allow_nan=False))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_serves_while_it_runs_and_stops_with_it(tiny_bundle, route, tmp_path):
    data, place_map = route
    port = _free_port()
    before = set(threading.enumerate())
    seen = []

    def watch():  # a client that reads the status while the run goes on
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not seen:
            try:
                seen.append(get_json(port, "/status.json"))
            except OSError:
                time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--video",
                                    data["queries"], "--output", str(tmp_path / "r.jsonl"), "--realtime",
                                    "--serve", "127.0.0.1:{}".format(port)])
    watcher.join()
    assert res.exit_code == 0, res.output
    assert "live view: http://127.0.0.1:{}/".format(port) in res.output
    assert seen and seen[0]["schema"] == "jist-edge-live/1"
    assert set(threading.enumerate()) <= before | {watcher}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_run_refuses_a_bad_or_busy_serve_address_before_writing_output(tiny_bundle, route, tmp_path):
    data, place_map = route
    args = ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--video", data["queries"],
            "--output", str(tmp_path / "r.jsonl")]
    for bad in ("abc", "127.0.0.1:70000", "::1:80"):
        res = CliRunner().invoke(main, args + ["--serve", bad])
        assert res.exit_code == 2 and "--serve" in res.output, res.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        res = CliRunner().invoke(main, args + ["--serve", "127.0.0.1:{}".format(busy.getsockname()[1])])
    assert res.exit_code == 1 and "--serve 127.0.0.1:" in res.output and "cannot listen there" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "r.jsonl").exists()


def test_demo_keeps_serving_the_finished_query_run_until_ctrl_c(tmp_path):
    import_or_skip("torch")  # the demo exports a model
    port = _free_port()
    cmd = [sys.executable, "-m", "jist_edge", "demo", "--output", str(tmp_path / "demo"), "--frames", "30",
           "--img-size", "64", "96", "--json", str(tmp_path / "demo.json"), "--serve", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "press Ctrl-C to stop" in line:
                break
        text = "".join(lines)
        assert "live view: http://127.0.0.1:{}/".format(port) in text and "open it now" in text, text
        assert "still serving its last state at http://127.0.0.1:{}/".format(port) in text, text
        summary = json.loads((tmp_path / "demo.json").read_text())
        s = get_json(port, "/status.json")  # the query run has ended: its last state is still served
        assert s["ended"] is True and "ended" in s["message"]
        assert s["frames"] == summary["run"]["frames"] and s["info"]["random_init"] is True
        assert get_json(port, "/map.json")["sequences"] == summary["map_sequences"]
        status, _, jpeg = request(port, "GET", "/frame.jpg")  # encoded on demand after the end
        assert status == 200 and cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (64, 96)
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0 and "stopped serving" in rest and "Traceback" not in rest
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_map_of_several_drives_is_drawn_as_one_line_per_drive(tiny_bundle, route, tmp_path):
    from jist_edge.maps.build import build_map
    from jist_edge.maps.merge import merge_maps
    from jist_edge.output.web.feed import map_payload

    data, place_map = route
    second = build_map(tiny_bundle, data["queries"], str(tmp_path / "second"), positions=data["queries_positions"])
    merged = merge_maps([place_map.path, second.path], str(tmp_path / "merged"))
    bounds = [int(b) for b in merged.drive_bounds]
    payload = map_payload(merged, max_points=20)  # thinned: every few places, and each drive's last one
    assert [d["first"] for d in payload["drives"]] == bounds[:-1] and len(payload["drives"]) == 2
    for drive, first, end in zip(payload["drives"], bounds[:-1], bounds[1:]):
        assert drive["count"] == end - first
        assert drive["points"][0] == list(merged.sequence_positions[first])
        assert drive["points"][-1] == list(merged.sequence_positions[end - 1])
        assert len(drive["points"]) < drive["count"]
