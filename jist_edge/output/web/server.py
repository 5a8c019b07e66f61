"""A live web view of the localizer for a device with no screen: `run --serve [HOST:]PORT`.

Standard library only (Python 3.6 has no ThreadingHTTPServer: ThreadingMixIn + HTTPServer
here). Read-only: it serves its own page, /status.json, /map.json, /frame.jpg, the MJPEG
/stream.mjpg and the page's status events /events, never a file named by a request;
anything but GET gets 405; every client socket has a timeout; at most ``max_viewers``
MJPEG streams, as many event streams, and ``max_connections`` connections at once (503
with a message beyond). The pipeline only ever touches the LiveFeed's latest-only slot,
so no client can slow it down.
"""
import json
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from jist_edge.errors import JistEdgeError
from jist_edge.output.web import access as web_access
from jist_edge.output.web import page as web_page
from jist_edge.output.web.feed import LiveFeed, finite, map_payload

DEFAULT_HOST = "127.0.0.1"
BOUNDARY = "jistframe"
EVENT_PERIOD = 0.2  # seconds between status events: the page's numbers and map update five times a second
STATUS_PATH = "/status.json"
STALL_S = 3.0  # seconds a viewer's socket may take no data before it is dropped
SEND_BUFFER = 64 * 1024
RESERVED_HEAD_S = 1.0  # the slot kept for /status.json: a script sends its request at once


def parse_serve_address(text: str, default_host: str = DEFAULT_HOST) -> Tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); ValueError naming what is wrong."""
    text = str(text).strip()
    if text.startswith("[") and text.endswith("]"):
        raise ValueError("{!r}: the port is missing, e.g. {}:8080".format(text, text))
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("{!r}: write an IPv6 address in brackets, e.g. [::1]:8080".format(text))
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("{!r}: expected [HOST:]PORT with PORT 0-65535 (0 picks a free port)".format(text))
    return host or default_host, int(port)


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    """One thread per connection, tracked so that ``close_clients`` can end and join them all."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(self, address: Tuple[str, int], view: "WebView", max_connections: int,
                 client_timeout: float) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.view = view
        self.max_connections = max_connections
        self.client_timeout = client_timeout  # seconds a client may take to send its request or to take data
        self._clients = {}  # type: Dict[threading.Thread, Any]
        self._reserved = None  # type: Optional[threading.Thread]  # the last slot, kept for /status.json
        self._clients_lock = threading.Lock()
        self.closing = False
        HTTPServer.__init__(self, address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (socket.getfqdn), which can hang without DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._clients_lock:
            # the last slot only while free: a trickling client there has RESERVED_HEAD_S, and only /status.json
            general = len(self._clients) - (self._reserved is not None)
            reserve = general >= self.max_connections - 1
            full = self.closing or (reserve and (self._reserved is not None or self.max_connections < 2))
            if not full:
                thread = threading.Thread(target=self._client, args=(request, client_address),
                                          name="jist-web-client", daemon=True)
                self._clients[thread] = request
                if reserve:
                    self._reserved = thread
        if full:
            self._refuse(request)
            return
        thread.start()

    def _client(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._clients_lock:
                self._clients.pop(threading.current_thread(), None)
                if self._reserved is threading.current_thread():
                    self._reserved = None

    def in_reserved_slot(self) -> bool:
        return self._reserved is threading.current_thread()

    def _refuse(self, request: Any) -> None:
        """Too many connections: a short 503 written from the accept thread, which must not wait."""
        body = "too many connections to the jist-edge live view (at most {}); try again shortly\n".format(
            self.max_connections).encode("ascii")
        try:
            request.settimeout(0.2)
            request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                            b"Retry-After: 2\r\nConnection: close\r\n\r\n" + body)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Broken, reset and timed-out clients are normal here; anything else is one line on stderr."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            sys.stderr.write("jist-edge live view: a request failed: {!r}\n".format(exc))

    def close_clients(self, timeout: float = 3.0) -> None:
        """End every connection (a viewer blocked on a slow socket included) and join its thread."""
        with self._clients_lock:
            self.closing = True
            clients = list(self._clients.items())
        for _, request in clients:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread, _ in clients:
            thread.join(timeout)


class _Handler(BaseHTTPRequestHandler):
    """GET only; routes are fixed names, the request path never reaches the file system."""

    server_version = "jist-edge"
    protocol_version = "HTTP/1.0"
    ASSETS = {
        "/": ("text/html; charset=utf-8", web_page.INDEX_HTML.encode("utf-8")),
        "/index.html": ("text/html; charset=utf-8", web_page.INDEX_HTML.encode("utf-8")),
        "/app.js": ("text/javascript; charset=utf-8", web_page.APP_JS.encode("utf-8")),
        "/app.css": ("text/css; charset=utf-8", web_page.APP_CSS.encode("utf-8")),
    }

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def setup(self) -> None:
        self.timeout = self.server.client_timeout
        BaseHTTPRequestHandler.setup(self)
        # the whole request head has one deadline: a client trickling a byte a second is cut off
        deadline = RESERVED_HEAD_S if self.server.in_reserved_slot() else self.server.client_timeout
        self._head_timer = threading.Timer(deadline, self._cut_off)
        self._head_timer.daemon = True
        self._head_timer.start()

    def _cut_off(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def finish(self) -> None:
        self._head_timer.cancel()
        self._head_timer.join(1.0)  # a cancelled timer's thread ends at once; close() then leaves none behind
        BaseHTTPRequestHandler.finish(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the run's terminal carries its own output."""

    def parse_request(self) -> bool:
        if not BaseHTTPRequestHandler.parse_request(self):
            return False
        self._head_timer.cancel()
        if self.command != "GET":
            self._discard_body()
            self._reply(405, "text/plain; charset=utf-8", b"the jist-edge live view is read-only: only GET\n",
                        {"Allow": "GET"})
            return False
        return True

    def _discard_body(self, limit: int = 65536) -> None:
        """Read a small request body, so that closing the socket does not reset it before the 405 arrives."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if 0 < length <= limit:
                self.rfile.read(length)
        except (ValueError, OSError):
            pass

    def do_GET(self) -> None:
        view = self.server.view
        parts = urlsplit(self.path)
        path = parts.path
        if self.server.in_reserved_slot() and path != STATUS_PATH:
            self._reply(503, "text/plain; charset=utf-8", b"the live view is busy: its last connection is kept for "
                        b"/status.json; try again shortly\n", {"Retry-After": "2"})
            return
        if not self._access_allowed(parts.query, path):
            return
        if path in self.ASSETS:
            self._reply(200, *self.ASSETS[path])
        elif path == "/status.json":
            self._reply(200, "application/json", view.feed.status_json())
        elif path == "/map.json":
            self._reply(200, "application/json", view.map_json())
        elif path == "/frame.jpg":
            jpeg = view.feed.latest_jpeg(timeout=2.0)
            if jpeg is None:
                self._reply(503, "text/plain; charset=utf-8", b"no frame yet\n", {"Retry-After": "1"})
            else:
                self._reply(200, "image/jpeg", jpeg)
        elif path == "/stream.mjpg":
            self._long_response("viewers", "multipart/x-mixed-replace; boundary=" + BOUNDARY, self._jpegs)
        elif path == "/events":
            self._long_response("pages", "text/event-stream", self._events)
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found: this server only has its live view\n")

    def _access_allowed(self, query: str, path: str) -> bool:
        """Loopback: only loopback Host names (a page cannot rebind DNS onto the camera). Beyond: the token,
        from the URL on the first visit (then a cookie; the page's address loses the token), on every path."""
        token = self.server.view.token
        if token is None:
            if web_access.host_header_allowed(self.headers.get("Host"), self.server.server_port):
                return True
            self._reply(403, "text/plain; charset=utf-8", b"this live view only answers to its loopback address\n")
            return False
        given, in_url = web_access.request_token(query, self.headers, self.server.server_port)
        if not web_access.token_matches(given, token):
            code = 401 if given is None else 403
            self._reply(code, "text/plain; charset=utf-8", b"this live view needs its token: open the URL with "
                        b"?token=... that `jist-edge run --serve` printed\n",
                        {"WWW-Authenticate": 'Bearer realm="jist-edge live view"'} if code == 401 else None)
            return False
        if in_url and path in ("/", "/index.html"):
            headers = dict(web_access.cookie_header(token, self.server.server_port), Location=path)
            self._reply(303, "text/plain; charset=utf-8", b"token accepted\n", headers)
            return False
        return True

    def _reply(self, code: int, ctype: str, body: bytes, headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(code)
        self._common_headers(ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _common_headers(self, ctype: str) -> None:
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "img-src 'self'; connect-src 'self'; frame-ancestors 'none'")

    def _long_response(self, kind: str, ctype: str, body: Callable[[LiveFeed], None]) -> None:
        """A response that lasts as long as the run (an MJPEG or event stream), counted against its limit."""
        feed = self.server.view.feed
        if not feed.admit(kind):
            self._reply(503, "text/plain; charset=utf-8", "the live view already has its maximum of {} {} open; "
                        "close one and reload\n".format(feed.max_viewers, kind).encode("utf-8"), {"Retry-After": "5"})
            return
        try:
            # a viewer that takes no data for STALL_S is dropped: small kernel buffers, so a viewer that never
            # reads fills them in a frame or two instead of hiding for half a minute behind megabytes
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            self.connection.settimeout(min(STALL_S, self.server.client_timeout))
            self.send_response(200)
            self._common_headers(ctype)
            self.end_headers()
            body(feed)
        except OSError:
            pass  # the client went away or was too slow (socket timeout)
        finally:
            feed.release(kind)

    def _jpegs(self, feed: LiveFeed) -> None:
        """multipart/x-mixed-replace JPEGs: the newest one, at most feed.max_fps a second."""
        sent = 0
        while not feed.stopped and not self.server.closing:
            # a repeat of the same frame every 2 s finds clients that went away while nothing new came
            jpeg, version = feed.next_jpeg(sent, timeout=2.0)
            if jpeg is None or feed.stopped:
                continue
            head = "--{}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n".format(BOUNDARY, len(jpeg))
            self.wfile.write(head.encode("ascii") + jpeg + b"\r\n")
            sent = version

    def _events(self, feed: LiveFeed) -> None:
        """Server-sent events: the status JSON five times a second on one connection (one build per tick for
        all pages, instead of an HTTP request per page per update)."""
        self.wfile.write(b"retry: 2000\n\n")
        while not feed.stopped and not self.server.closing:
            self.wfile.write(b"data: " + feed.shared_status_json(EVENT_PERIOD / 2) + b"\n\n")
            if feed.wait_stop(EVENT_PERIOD):
                break


class WebView(object):
    """The live view: ``start()``, call it with each (result, image), ``close()`` at the end."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = 8080, max_viewers: int = 4, max_fps: float = 10.0,
                 max_width: int = 640, max_connections: int = 16, client_timeout: float = 5.0,
                 token: Optional[str] = None) -> None:
        self.host = host
        self.port = int(port)
        self.token = token  # None: chosen at start(), a random one for any bind beyond loopback
        self.feed = LiveFeed(max_fps=max_fps, max_width=max_width, max_viewers=max_viewers)
        self.max_connections = max_connections
        self.client_timeout = client_timeout
        self._map_json = json.dumps({"sequences": 0, "extent": None, "drives": []}).encode("utf-8")
        self._server = None  # type: Optional[_Server]
        self._thread = None  # type: Optional[threading.Thread]

    def start(self) -> "WebView":
        """Listen (JistEdgeError naming the address when that fails), then serve from background threads."""
        try:
            self._server = _Server((self.host, self.port), self, self.max_connections, self.client_timeout)
        except (OSError, OverflowError) as exc:
            raise JistEdgeError("--serve {}: cannot listen there ({})".format(
                self.address_text(self.port), getattr(exc, "strerror", None) or exc))
        self.port = int(self._server.server_address[1])
        if self.token is None and not self.loopback_only:
            self.token = web_access.new_token()
        self.feed.start()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="jist-web-server", daemon=True)
        self._thread.start()
        return self

    def address_text(self, port: int) -> str:
        return "{}:{}".format("[{}]".format(self.host) if ":" in self.host else self.host, port)

    @property
    def loopback_only(self) -> bool:
        """Whether only this machine can connect (judged on the address bound: ``0`` is every interface)."""
        bound = self._server.server_address[0] if self._server is not None else self.host
        return web_access.bound_is_loopback(str(bound))

    @property
    def url(self) -> str:
        """Where to point a browser (every interface: the device's own address on the network), token included."""
        bound = str(self._server.server_address[0]) if self._server is not None else self.host
        if bound in ("0.0.0.0", "::", ""):
            lan = web_access.lan_address()
            where = "{}:{}".format(lan, self.port) if lan else "<this device's address>:{}".format(self.port)
        else:
            where = "{}:{}".format("[{}]".format(bound) if ":" in bound else bound, self.port)
        query = "?token={}".format(self.token) if self.token else ""
        return "http://{}/{}".format(where, query)

    def exposure_warning(self) -> Optional[str]:
        """One line saying who can see the camera, for a bind beyond loopback; None on loopback."""
        if self.loopback_only:
            return None
        bound = str(self._server.server_address[0]) if self._server is not None else self.host
        where = "{}:{}".format("[{}]".format(bound) if ":" in bound else bound, self.port)
        return ("the live view on {} is reachable from the network: anyone who has the URL with its token can see "
                "the camera (the token is required on every request)".format(where))

    def set_map(self, place_map: Any, info: Optional[Dict[str, Any]] = None) -> None:
        """The route to draw (a PlaceMap) and a few words about the run (backend, matcher, source)."""
        self._map_json = json.dumps(finite(map_payload(place_map)), separators=(",", ":")).encode("utf-8")
        self.feed.set_info(info or {}, new_map=True)

    def map_json(self) -> bytes:
        return self._map_json

    def __call__(self, result: Any, image: Any) -> None:
        """From the pipeline thread: O(1), never blocks on a viewer."""
        self.feed.offer(result, image)

    def source_event(self, event: Any) -> None:
        """A camera outage (jist_edge.stream.events): the view says "camera lost for N s" while it lasts."""
        self.feed.source_event(event)

    def finish(self, message: str) -> None:
        self.feed.finish(message)

    def close(self) -> None:
        """Stop serving: no thread left, the port free again. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self.feed.stop()
        server.closing = True
        server.shutdown()  # returns once serve_forever has
        self._thread.join()
        server.server_close()
        server.close_clients()

    def __enter__(self) -> "WebView":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
