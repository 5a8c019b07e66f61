"""Real cameras on 127.0.0.1 for the outage tests and bench: an RTSP server and an HTTP MJPEG server.

``RtspCamera`` runs GStreamer's RTSP server (rtsp_camera_server.py) in the system python3, which
has gi (a venv does not): stop(), freeze() (SIGSTOP), thaw() and start() again on the same port
reproduce a camera that drops out or stalls. ``MjpegCamera`` serves multipart/x-mixed-replace
JPEGs from the standard library, as cheap IP cameras do. ``rtsp_unavailable()`` says why the RTSP
camera cannot run here (None when it can).
"""
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rtsp_camera_server.py")
_PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
          "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
          "missing = [e for e in ('multifilesrc', 'jpegdec', 'x264enc', 'rtph264pay', 'videoconvert') "
          "if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))")


def rtsp_unavailable() -> Optional[str]:
    """None when the RTSP camera can run; else why not (what to install)."""
    if not os.path.exists(SYSTEM_PYTHON):
        return "no {} (the RTSP camera needs the system python3 with python3-gi)".format(SYSTEM_PYTHON)
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "the system python3 cannot probe GStreamer: {}".format(exc)
    if out.returncode != 0:
        return ("GStreamer's RTSP server is not installed (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav): "
                "{}".format((out.stderr.strip().splitlines() or ["?"])[-1]))
    if out.stdout.strip():
        return "GStreamer elements missing: {} (gstreamer1.0-plugins-good/-ugly)".format(out.stdout.strip())
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_frames(folder: str, images: List) -> str:
    """images (BGR arrays) -> folder/frame_00000.jpg ... (what the RTSP server loops over)."""
    import cv2

    os.makedirs(folder, exist_ok=True)
    for i, image in enumerate(images):
        cv2.imwrite(os.path.join(folder, "frame_{:05d}.jpg".format(i)), image)
    return folder


def frames_from_video(video: str, folder: str, size=(192, 128)) -> str:
    """A video's frames resized to ``size`` (W, H) as JPEGs in ``folder``: H.264 wants even sizes
    larger than the tests' tiny frames."""
    import cv2

    cap = cv2.VideoCapture(video)
    images = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        images.append(cv2.resize(img, tuple(size)))
    cap.release()
    return write_frames(folder, images)


class RtspCamera(object):
    """rtsp://127.0.0.1:PORT/cam streaming the JPEGs of ``frames_dir`` as H.264 at ``fps``."""

    def __init__(self, frames_dir: str, fps: int = 10, port: Optional[int] = None) -> None:
        self.frames_dir = frames_dir
        self.fps = int(fps)
        self.port = port or free_port()
        self.proc = None  # type: Optional[subprocess.Popen]

    @property
    def url(self) -> str:
        return "rtsp://127.0.0.1:{}/cam".format(self.port)

    def start(self, timeout_s: float = 30.0) -> "RtspCamera":
        """Start (or restart, on the same port) and wait until it listens."""
        self.proc = subprocess.Popen([SYSTEM_PYTHON, SERVER_SCRIPT, self.frames_dir, str(self.port), str(self.fps)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT"):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("the RTSP camera did not start: {} {}".format(line.strip(), err.strip()[-300:]))
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the RTSP camera does not listen on port {}".format(self.port))

    def freeze(self) -> None:
        """SIGSTOP: the connection stays open and nothing more comes (a stalled camera)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> "RtspCamera":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class MjpegCamera(object):
    """http://127.0.0.1:PORT/cam.mjpg: multipart/x-mixed-replace JPEGs looped at ``fps``."""

    def __init__(self, jpegs: List[bytes], fps: float = 10.0, port: Optional[int] = None) -> None:
        self.jpegs = list(jpegs)
        self.fps = float(fps)
        self.port = port or free_port()
        self.requests = []  # type: List[str]  # paths asked for (credentials and all)
        self._server = None  # type: Optional[ThreadingHTTPServer]
        self._thread = None  # type: Optional[threading.Thread]
        self._running = threading.Event()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:{}/cam.mjpg".format(self.port)

    def start(self) -> "MjpegCamera":
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                camera.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                i = 0
                try:
                    while camera._running.is_set():
                        jpeg = camera.jpegs[i % len(camera.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                         str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        self.wfile.flush()
                        i += 1
                        time.sleep(1.0 / camera.fps)
                except OSError:
                    pass

        self._running.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop streaming and listening (a camera that went off)."""
        self._running.clear()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(5)

    def __enter__(self) -> "MjpegCamera":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
