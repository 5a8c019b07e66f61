"""What `run --serve` costs the pipeline: end-to-end FPS with the live view serving two viewers, interleaved.

Run as ``python -m jist_edge.benchmarks.serve ...`` in a fresh process (like the pipeline
section). Each frame: JPEG decode (a camera's MJPEG) + ``Localizer.process`` + the view's
hand-off. Three ways, one block of frames each per round, the order rotating every round:

- ``off``: no view (``run`` without --serve);
- ``serve_no_viewers``: every result handed to the view, nobody watching;
- ``serve_2_viewers``: the same, with two viewer processes reading /stream.mjpg and the
  /events status stream (five a second), as the page does.

Viewers are separate processes (a browser would be another machine); between rounds they
disconnect or reconnect and acknowledge before the clock starts. Ratios are per round.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

WAYS = ("off", "serve_no_viewers", "serve_2_viewers")
VIEWERS = 2
GOAL = 1.03  # at most 3% slower with two viewers


def bench(bundle: Any, map_dir: Optional[str], backend: str, cfg: Dict[str, Any], log: Any) -> Dict[str, Any]:
    """The bench section: a synthetic clip and map (unless given), then ``run`` in a fresh process."""
    from jist_edge.benchmarks import pipeline

    runtime_backend = backend if not backend.startswith("torch-") else "auto"
    with tempfile.TemporaryDirectory(prefix="jist-bench-serve-") as work:
        size = (bundle.height, bundle.width)
        video = pipeline.make_video(os.path.join(work, "clip.avi"), cfg["serve_clip_frames"], size)
        if not map_dir:
            map_dir = pipeline.make_map(bundle, os.path.join(work, "map"), cfg["pipeline_map_frames"], size)
        log("live view: {} rounds x {} frames per way ({}), {} viewer processes".format(
            cfg["serve_rounds"], cfg["serve_frames"], ", ".join(WAYS), VIEWERS))
        result = pipeline.run_fresh("jist_edge.benchmarks.serve", [
            "--bundle", bundle.path, "--map", map_dir, "--video", video, "--backend", runtime_backend,
            "--rounds", str(cfg["serve_rounds"]), "--frames", str(cfg["serve_frames"])], "live-view benchmark")
    log("  end-to-end FPS median: off {:.2f}, serving nobody {:.2f}, serving {} viewers {:.2f}; with viewers / off: "
        "time {}, process CPU {}; the view's threads {:.1%} of the CPU per frame; viewers got {:.1f} frames/s".format(
            result["fps_median"]["off"], result["fps_median"]["serve_no_viewers"], VIEWERS,
            result["fps_median"]["serve_2_viewers"], _ratio_text(result["ratio_to_off"]["serve_2_viewers"]),
            _ratio_text(result["cpu_ratio_to_off"]["serve_2_viewers"]),
            result["view_threads_cpu_share"]["serve_2_viewers"], result["viewer_fps_median"]))
    return result


def run(bundle_dir: str, map_dir: str, video: str, backend: str, rounds: int, frames: int,
        warmup: int = 3) -> Dict[str, Any]:
    """Interleaved rounds of the three ways in this process; viewers in two child processes."""
    from jist_edge.bundle import load_bundle
    from jist_edge.maps.store import load_map
    from jist_edge.pipeline.localizer import Localizer
    from jist_edge.output.web.server import WebView

    bundle = load_bundle(bundle_dir)
    place_map = load_map(map_dir, bundle=bundle)
    loc = Localizer(bundle, place_map, backend=backend)
    before_view = _thread_ids()  # this thread and the encoder's thread pool
    view = WebView("127.0.0.1", 0).start()
    view.set_map(place_map, loc.describe())
    viewers = [_Viewer("http://127.0.0.1:{}/".format(view.port)) for _ in range(VIEWERS)]
    measure = _Rounds(loc, view, _jpeg_clip(video), viewers, frames, before_view)
    try:
        measure.frames(max(warmup, loc.seq_len), True)  # warm-up, and a frame to serve
        for r in range(rounds):
            k = r % len(WAYS)
            for way in WAYS[k:] + WAYS[:k]:
                measure.round(way)
        describe = loc.describe()
    finally:
        for viewer in viewers:
            viewer.close()
        view.close()
        loc.close()
    result = measure.result()
    result.update({"rounds": int(rounds), "frames_per_round": int(frames), "viewers": VIEWERS, "ways": list(WAYS),
                   "model": {"height": bundle.height, "width": bundle.width, "random_init": bundle.random_init},
                   "runtime": describe, "view": {"max_fps": view.feed.max_fps, "max_width": view.feed.max_width},
                   "goal_ratio": GOAL})
    return result


class _Rounds(object):
    """Times blocks of frames one way at a time; wall, process CPU and the view's own threads' CPU."""

    def __init__(self, loc: Any, view: Any, clip: List[bytes], viewers: List[Any], frames_per_round: int,
                 not_view_threads: Sequence[str]) -> None:
        self.loc, self.view, self.clip, self.viewers = loc, view, clip, viewers
        self.n = frames_per_round
        self.not_view = set(not_view_threads)
        self.count = 0
        self.wall = {way: [] for way in WAYS}  # type: Dict[str, List[float]]
        self.cpu = {way: [] for way in WAYS}  # type: Dict[str, List[float]]
        self.view_cpu = {way: [] for way in WAYS[1:]}  # type: Dict[str, List[float]]
        self.viewer_fps = []  # type: List[float]
        self.sessions = 0  # viewer connections that received a frame before their round started

    def round(self, way: str) -> None:
        watching = way == "serve_2_viewers"
        for viewer in self.viewers:
            viewer.command("run" if watching else "pause")
        self.sessions += VIEWERS if watching else 0
        view_cpu = _thread_cpu(self.not_view)
        seconds, cpu_seconds = self.frames(self.n, way != "off")
        view_cpu = _cpu_since(view_cpu, _thread_cpu(self.not_view))  # read before the viewers' threads end
        self.wall[way].append(seconds * 1000.0 / self.n)
        self.cpu[way].append(cpu_seconds * 1000.0 / self.n)
        if way in self.view_cpu:
            self.view_cpu[way].append(view_cpu * 1000.0 / self.n)
        if watching:
            got = [viewer.command("pause") for viewer in self.viewers]
            self.viewer_fps.extend(g / seconds for g in got)

    def frames(self, n: int, serve: bool) -> Tuple[float, float]:
        """Wall and process-CPU seconds for ``n`` frames: decode, the runtime, and (when serving) the view's
        hand-off. CPU time counts every thread of this process and is less disturbed than wall time by other
        processes on a shared machine."""
        import cv2
        import numpy as np

        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            image = cv2.imdecode(np.frombuffer(self.clip[self.count % len(self.clip)], np.uint8), cv2.IMREAD_COLOR)
            result = self.loc.process(image, self.count)
            self.count += 1
            if serve:
                self.view(result, image)
        return time.perf_counter() - start, time.process_time() - cpu

    def result(self) -> Dict[str, Any]:
        import numpy as np

        from jist_edge.benchmarks.timing import per_round_ratios, ratio_summary, summarize

        return {
            "ms_per_frame": {way: summarize(s) for way, s in self.wall.items()},
            "fps_median": {way: 1000.0 / float(np.median(s)) for way, s in self.wall.items()},
            "ratio_to_off": {way: ratio_summary(per_round_ratios(self.wall[way], self.wall["off"]))
                             for way in WAYS[1:]},
            "cpu_ms_per_frame": {way: summarize(s) for way, s in self.cpu.items()},
            "cpu_ratio_to_off": {way: ratio_summary(per_round_ratios(self.cpu[way], self.cpu["off"]))
                                 for way in WAYS[1:]},
            # CPU of the view's threads (JPEG, HTTP) per frame, and as a share of the "off" process CPU per frame
            "view_threads_cpu_ms_per_frame": {way: summarize(s) for way, s in self.view_cpu.items()},
            "view_threads_cpu_share": {way: float(np.median(s)) / float(np.median(self.cpu["off"]))
                                       for way, s in self.view_cpu.items()},
            "viewer_fps_median": float(np.median(self.viewer_fps)) if self.viewer_fps else 0.0,
            "viewer_sessions": self.sessions,
        }


def _thread_ids() -> List[str]:
    try:
        return os.listdir("/proc/self/task")
    except OSError:
        return []


def _thread_cpu(exclude: Any) -> Dict[str, float]:
    """Thread id -> CPU seconds used so far, for this process's live threads not in ``exclude`` (Linux /proc:
    nanoseconds from schedstat where the kernel has it, else clock ticks from stat; empty elsewhere)."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    cpu = {}  # type: Dict[str, float]
    for tid in _thread_ids():
        if tid in exclude:
            continue
        task = "/proc/self/task/{}/".format(tid)
        try:
            try:
                with open(task + "schedstat") as handle:
                    cpu[tid] = int(handle.read().split()[0]) / 1e9
            except FileNotFoundError:
                with open(task + "stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                cpu[tid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass  # the thread ended meanwhile
    return cpu


def _cpu_since(before: Dict[str, float], after: Dict[str, float]) -> float:
    """CPU seconds between two readings, over the threads alive at the second (new ones from zero)."""
    return sum(value - before.get(tid, 0.0) for tid, value in after.items())


def markdown_lines(s: Dict[str, Any]) -> List[str]:
    """The report's section for this benchmark."""
    lines = ["## Live web view (run --serve)", "",
             "{} interleaved rounds of {} frames per way (JPEG decode + runtime + hand-off to the view), backend {}; "
             "{} viewer processes read /stream.mjpg (capped at {:g} fps, {} px wide) and the /events status stream "
             "(five a second), as the page does. Goal: at most {:.0%} slower with the viewers.".format(
                 s["rounds"], s["frames_per_round"], s["runtime"].get("backend"), s["viewers"], s["view"]["max_fps"],
                 s["view"]["max_width"], s["goal_ratio"] - 1), "",
             "| way | ms per frame p50 | FPS (median round) | time / off, median (min..max) | process CPU ms per "
             "frame p50 | CPU / off, median (min..max) |", "|---|---|---|---|---|---|"]
    for way in s["ways"]:
        lines.append("| {} | {:.2f} | {:.2f} | {} | {:.2f} | {} |".format(
            way, s["ms_per_frame"][way]["p50_ms"], s["fps_median"][way], _ratio_text(s["ratio_to_off"].get(way)),
            s["cpu_ms_per_frame"][way]["p50_ms"], _ratio_text(s["cpu_ratio_to_off"].get(way))))
    view_ms, share = s["view_threads_cpu_ms_per_frame"], s["view_threads_cpu_share"]
    lines += ["", "The view's own threads (JPEG encoding, HTTP) used {:.2f} ms of CPU per frame with the viewers, "
              "{:.1%} of the process CPU per frame without the view ({:.2f} ms, {:.1%}, serving nobody): on a machine "
              "whose cores the pipeline keeps busy, about what serving costs in FPS, and far less disturbed by other "
              "load than the wall-time ratio. The viewers received {:.1f} frames/s each (median over rounds).".format(
                  view_ms["serve_2_viewers"]["p50_ms"], share["serve_2_viewers"], view_ms["serve_no_viewers"]["p50_ms"],
                  share["serve_no_viewers"], s["viewer_fps_median"]), ""]
    return lines


def _ratio_text(r: Optional[Dict[str, float]]) -> str:
    return "{:.3f} ({:.3f}..{:.3f})".format(r["median"], r["min"], r["max"]) if r else "1 (baseline)"


def _jpeg_clip(video: str) -> List[bytes]:
    """The clip's frames as JPEG bytes: each timed frame is decoded like a camera's MJPEG."""
    import cv2

    cap = cv2.VideoCapture(video)
    clip = []
    ok, image = cap.read()
    while ok:
        clip.append(cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), 90])[1].tobytes())
        ok, image = cap.read()
    cap.release()
    if not clip:
        raise RuntimeError("no frame decoded from {}".format(video))
    return clip


class _Viewer(object):
    """A viewer process driven over its stdin: ``run`` (connect, wait for a frame) or ``pause`` (disconnect)."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "jist_edge.benchmarks.serve", "--viewer", url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)

    def command(self, word: str) -> int:
        """Send ``run`` or ``pause``; returns the frames it received while running (0 for ``run``)."""
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if not reply or reply[0] != word:
            raise RuntimeError("viewer process answered {!r} to {!r}".format(reply, word))
        return int(reply[1])

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def viewer_main(url: str) -> int:
    """The viewer process: reads the MJPEG stream and the status events (discarding both), like the page."""
    from urllib.parse import urlsplit

    host, port = urlsplit(url).hostname, urlsplit(url).port
    session = None  # type: Optional[_Session]
    for line in sys.stdin:
        word = line.strip()
        if word == "run" and session is None:
            session = _Session(host, port)
            if not session.ready.wait(60) or not session.frames:
                print("no-frame 0", flush=True)
                continue
            session.frames = 0  # count what arrives while the clock runs
            print("run 0", flush=True)
        elif word == "pause":
            frames = session.stop() if session is not None else 0
            session = None
            print("pause {}".format(frames), flush=True)
    if session is not None:
        session.stop()
    return 0


class _Session(object):
    """One connected viewer: a thread reading the MJPEG stream, one reading the status events."""

    def __init__(self, host: str, port: int) -> None:
        self.frames = 0
        self.events = 0
        self.ready = threading.Event()
        self._socks = [socket.create_connection((host, port), timeout=30) for _ in range(2)]
        self._socks[0].sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        self._socks[1].sendall(b"GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        self._threads = [threading.Thread(target=self._read), threading.Thread(target=self._listen)]
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        stream = self._socks[0].makefile("rb")
        length = None
        try:
            for line in iter(stream.readline, b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                elif line == b"\r\n" and length is not None:
                    stream.read(length)
                    length = None
                    self.frames += 1
                    self.ready.set()
        except OSError:
            pass
        self.ready.set()

    def _listen(self) -> None:
        try:
            for line in iter(self._socks[1].makefile("rb").readline, b""):
                self.events += int(line.startswith(b"data: "))
        except OSError:
            pass

    def stop(self) -> int:
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join()
        for sock in self._socks:
            sock.close()
        return self.frames


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="end-to-end FPS with and without live-view viewers "
                                                 "(used by jist-edge bench)")
    parser.add_argument("--viewer", metavar="URL", help="be a viewer process of the view at URL")
    parser.add_argument("--bundle")
    parser.add_argument("--map")
    parser.add_argument("--video")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.viewer:
        return viewer_main(args.viewer)
    if not (args.bundle and args.map and args.video and args.out):
        parser.error("--bundle, --map, --video and --out are required")
    result = run(args.bundle, args.map, args.video, args.backend, args.rounds, args.frames)
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
