"""The live view against hostile visitors (issue 21): rebinding Host names, a bind beyond loopback
(token on every endpoint, a cookie after the first visit), trickling clients and viewers that never
read. Real servers on 127.0.0.1, real sockets; bounds on time are generous, never speed claims."""
import http.client
import json
import socket
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.cli import main
from jist_edge.output.web import access as web_access
from jist_edge.output.web.server import WebView, parse_serve_address

ENDPOINTS = ("/", "/index.html", "/app.js", "/app.css", "/status.json", "/map.json", "/frame.jpg",
             "/stream.mjpg", "/events", "/nothing-here")


def request(port, path, headers=None, host="127.0.0.1"):
    conn = http.client.HTTPConnection(host, port, timeout=20)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read(200) if path in ("/stream.mjpg", "/events") and resp.status == 200 else resp.read()
        return resp.status, dict(resp.getheaders()), body
    finally:
        conn.close()


def _result(i=0):
    from jist_edge.pipeline.localizer import Match, Result

    return Result(i, float(i), False, 5, [Match(3, 1.5, [1.0, 2.0], [1, 2, 3])], {"total": 1.0},
                  np.zeros(8, np.float32))


@pytest.fixture
def loopback_view():
    with WebView("127.0.0.1", 0).start() as view:
        yield view


@pytest.mark.parametrize("host", ["127.attacker.example:{}", "127.0.0.1.nip.io:{}", "localhost.evil:{}",
                                  "127.0.0.1:1{}", "[::1]:{}0", "127.0.0.1:{}:1", "[::1:{}", "127.1:{}",
                                  "attacker.example", "0.0.0.0:{}", "[::ffff:7f00:1]x:{}"])
def test_loopback_view_refuses_rebinding_host_names(loopback_view, host):
    status, _, body = request(loopback_view.port, "/status.json", {"Host": host.format(loopback_view.port)})
    assert status == 403, (host, body)


@pytest.mark.parametrize("host", ["127.0.0.1:{}", "localhost:{}", "LOCALHOST:{}", "[::1]:{}", "127.0.0.2:{}",
                                  "127.0.0.1"])
def test_loopback_view_answers_loopback_names_with_its_port(loopback_view, host):
    status, _, _ = request(loopback_view.port, "/status.json", {"Host": host.format(loopback_view.port)})
    assert status == 200
    assert loopback_view.token is None and "token" not in loopback_view.url


def test_ipv6_loopback_bind_checks_host_names_too():
    try:
        view = WebView("::1", 0).start()
    except Exception as exc:  # no IPv6 on this machine
        pytest.skip("no IPv6 loopback: {}".format(exc))
    with view:
        assert view.token is None
        assert request(view.port, "/status.json", {"Host": "[::1]:{}".format(view.port)}, host="::1")[0] == 200
        bad = {"Host": "127.attacker.example:{}".format(view.port)}
        assert request(view.port, "/status.json", bad, host="::1")[0] == 403


@pytest.mark.parametrize("bind", ["0", "0.0.0.0"])
def test_a_bind_beyond_loopback_needs_the_token_on_every_endpoint(bind):
    with WebView(bind, 0).start() as view:
        assert view.token and web_access.TOKEN_PATTERN.match(view.token)
        assert view.url.endswith("/?token=" + view.token) and not view.url.startswith("http://0:")
        assert "token" in view.exposure_warning() and "camera" in view.exposure_warning()
        for path in ENDPOINTS:
            assert request(view.port, path)[0] == 401, path
            assert request(view.port, path + "?token=wrong" + view.token[5:])[0] == 403, path
            cookie = {"Cookie": "{}={}x".format(web_access.cookie_name(view.port), view.token)}
            assert request(view.port, path, cookie)[0] == 403, path
            # the Host check does not stand in for the token, nor the token's prefix for the token
            assert request(view.port, path, {"Host": "127.0.0.1:{}".format(view.port)})[0] == 401, path
            assert request(view.port, path + "?token=" + view.token[:-1])[0] == 403, path
        status, _, body = request(view.port, "/status.json?token=" + view.token)
        assert status == 200 and json.loads(body.decode("utf-8"))["schema"] == "jist-edge-live/1"
        assert request(view.port, "/status.json", {"Authorization": "Bearer " + view.token})[0] == 200
        # the first visit: the page's address loses its token, a cookie keeps the visitor in
        status, headers, _ = request(view.port, "/?token=" + view.token)
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        jar = {"Cookie": "other=1; " + cookie.split(";")[0]}
        for path in ENDPOINTS[:6]:
            assert request(view.port, path, jar)[0] == 200, path


def test_a_given_token_is_used_and_loopback_then_needs_it_too():
    with WebView("127.0.0.1", 0, token="a-given-token-of-20ch").start() as view:
        assert view.url.endswith("?token=a-given-token-of-20ch")
        assert request(view.port, "/status.json")[0] == 401
        assert request(view.port, "/status.json?token=a-given-token-of-20ch")[0] == 200


def test_serve_token_and_address_options_are_checked():
    assert web_access.check_token_text("A" * 16)
    for bad in ("short", "has space in it 123", "é" * 20, "x" * 129):
        with pytest.raises(ValueError):
            web_access.check_token_text(bad)
    with pytest.raises(ValueError, match="port is missing"):
        parse_serve_address("[::1]")
    res = CliRunner().invoke(main, ["run", "--serve", "0:0", "--serve-token", "short", "--images", "."])
    assert res.exit_code == 2 and "--serve-token" in res.output and "Traceback" not in res.output


def test_run_beyond_loopback_warns_and_prints_the_token_url(tiny_bundle, synth_route, tmp_path):
    data, place_map = synth_route
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--video",
                                    data["queries"], "--output", str(tmp_path / "r.jsonl"), "--serve", "0:0",
                                    "--serve-token", "reviewer-token-0123456"])
    assert res.exit_code == 0, res.output
    assert "warning: the live view on 0.0.0.0:" in res.output and "see the camera" in res.output
    assert "/?token=reviewer-token-0123456" in res.output


def _trickle(sock, stop):
    data = b"GET /status.json HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 1000
    for byte in data:
        if stop.is_set():
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return
        time.sleep(0.3)


def test_trickling_clients_are_cut_off_and_status_json_still_answers():
    with WebView("127.0.0.1", 0, max_connections=6, client_timeout=6.0).start() as view:
        stop = threading.Event()
        socks = [socket.create_connection(("127.0.0.1", view.port), timeout=30) for _ in range(8)]
        threads = [threading.Thread(target=_trickle, args=(s, stop)) for s in socks]
        for t in threads:
            t.start()
        try:
            started = time.monotonic()
            answered = None
            while answered is None and time.monotonic() - started < 5.0:
                try:
                    status, _, _ = request(view.port, "/status.json")
                    answered = status if status == 200 else None
                except OSError:
                    pass
                time.sleep(0.2)
            # the slot kept for /status.json answered while the tricklers still held every other one
            assert answered == 200 and time.monotonic() - started < 5.5
            assert request(view.port, "/map.json")[0] == 503  # the kept slot is for /status.json only
            for sock in socks:  # the whole head has a deadline (6 s), although a byte comes every 0.3 s
                sock.settimeout(30)
                reply = b""
                try:
                    while True:
                        chunk = sock.recv(4096)
                        if not chunk:
                            break
                        reply += chunk
                except OSError:
                    pass
                assert reply == b"" or reply.startswith(b"HTTP/1.0 503")
            assert time.monotonic() - started < 25
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            for sock in socks:
                sock.close()


def test_viewers_that_never_read_are_dropped_within_seconds():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(3)]
    with WebView("127.0.0.1", 0, max_viewers=4).start() as view:
        view(_result(), frames[0])
        stalled = []
        for _ in range(4):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", view.port))
            sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
            stalled.append(sock)
        stop = threading.Event()

        def pipeline():
            i = 0
            while not stop.is_set():
                view(_result(i), frames[i % 3])
                i += 1
                time.sleep(0.05)

        worker = threading.Thread(target=pipeline)
        worker.start()
        try:
            deadline = time.monotonic() + 20  # ~30 s before the fix; a few seconds now
            viewers = None
            while time.monotonic() < deadline:
                viewers = json.loads(request(view.port, "/status.json")[2].decode("utf-8"))["viewers"]
                if viewers == 0:
                    break
                time.sleep(0.2)
            assert viewers == 0
            status, _, _ = request(view.port, "/stream.mjpg")
            assert status == 200  # a real viewer gets in again
        finally:
            stop.set()
            worker.join(30)
            for sock in stalled:
                sock.close()
