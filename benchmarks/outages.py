"""Bench: a real RTSP camera (GStreamer on 127.0.0.1) stopped and frozen under the streaming pipeline.

Records what a robot feels: the time from the camera's return (server listening again / thawed) to
its first source_back event and to the first full window (L frames after the gap), the FPS of
results through each outage (camera gone to first full window) beside the steady FPS before it
(their ratio), and the FPS in the 3 s after the first full window (back to steady?). Random weights: these are
timings of the runtime, not recognition figures.

    python -m jist_edge.benchmarks.outages [--stop 12] [--freeze 8] [--out benchmarks/results/outages.json]

Needs torch (to export a tiny random bundle) and GStreamer's RTSP server (see camera_servers.py).
"""
import argparse
import json
import os
import platform
import tempfile
import threading
import time
from typing import Any, Dict, List


def _setup(root: str) -> Any:
    from jist_edge.export.exporter import export_bundle
    from jist_edge.maps.build import build_map
    from jist_edge.synth.dataset import make_route_dataset
    from jist_edge.benchmarks.camera_servers import frames_from_video

    bundle = export_bundle(os.path.join(root, "model"), random_init=True, seed=0, img_size=(64, 96), seq_len=5)
    data = make_route_dataset(os.path.join(root, "route"), frames=40, size=(64, 96), seed=3, as_video=True)
    place_map = build_map(bundle, data["database"], os.path.join(root, "map"), positions=data["database_positions"])
    return bundle, place_map, frames_from_video(data["queries"], os.path.join(root, "frames"))


class Timeline(object):
    """Every result and event with its wall time, from the pipeline thread."""

    def __init__(self) -> None:
        self.items = []  # type: List[Dict[str, Any]]
        self.lock = threading.Lock()

    def add(self, **item: Any) -> None:
        item["t"] = time.time()
        with self.lock:
            self.items.append(item)

    def first_after(self, t: float, pred) -> float:
        with self.lock:
            for item in self.items:
                if item["t"] >= t and pred(item):
                    return item["t"]
        return float("nan")

    def fps(self, t0: float, t1: float) -> float:
        with self.lock:
            n = sum(1 for i in self.items if i.get("kind") == "result" and t0 <= i["t"] < t1)
        return n / max(t1 - t0, 1e-9)


def _wait_until(pred, timeout_s: float) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _through_outage(timeline: "Timeline", seconds: float, interrupt, resume) -> Dict[str, Any]:
    """Interrupt the camera for `seconds`, resume it, and time the way back to a full window."""
    t_down = time.time()
    interrupt()
    time.sleep(seconds)
    resume()
    t_up = time.time()
    _wait_until(lambda: timeline.first_after(t_up, lambda i: i.get("window") == 5) > 0, 60)
    t_full = timeline.first_after(t_up, lambda i: i.get("window") == 5)
    t_back = timeline.first_after(t_up, lambda i: i.get("kind") == "source_back")
    row = {"seconds": seconds, "return_to_source_back_s": round(t_back - t_up, 3),
           "return_to_full_window_s": round(t_full - t_up, 3), "fps_through_outage": round(timeline.fps(t_down, t_full), 2)}
    time.sleep(3.0)
    row["fps_after_full_window"] = round(timeline.fps(t_full, t_full + 3.0), 2)
    return row


def run(stop_s: float, freeze_s: float, steady_s: float = 5.0) -> Dict[str, Any]:
    from jist_edge.benchmarks.camera_servers import RtspCamera, rtsp_unavailable
    from jist_edge.pipeline.localizer import Localizer

    why = rtsp_unavailable()
    if why:
        raise SystemExit("outage bench: " + why)
    root = tempfile.mkdtemp(prefix="jist-outages-")
    bundle, place_map, frames = _setup(root)
    loc = Localizer(bundle, place_map, backend="onnxruntime")
    timeline = Timeline()
    camera = RtspCamera(frames, fps=10).start()

    def consume() -> None:
        for r in loc.stream(camera.url, on_event=lambda e: timeline.add(kind=e.kind) if e.recorded else None):
            timeline.add(kind="result", window=r.window_size)
            if stop_event.is_set():
                break

    stop_event = threading.Event()
    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    _wait_until(lambda: len(timeline.items) > 0, 60)
    t_steady = time.time()
    time.sleep(steady_s)
    out = {"steady_fps": round(timeline.fps(t_steady, time.time()), 2)}
    out["stop"] = _through_outage(timeline, stop_s, camera.stop, camera.start)
    out["freeze"] = _through_outage(timeline, freeze_s, camera.freeze, camera.thaw)
    for key in ("stop", "freeze"):
        out[key]["fps_ratio_to_steady"] = round(out[key]["fps_through_outage"] / max(out["steady_fps"], 1e-9), 3)
    stop_event.set()
    worker.join(30)
    camera.stop()
    out["source"] = loc.source_counts()
    out["setup"] = {"weights": "random (seed 0), 64x96, L=5", "camera": "GStreamer RTSP H.264, 192x128 at 10 fps",
                    "backoff": "0.5 s doubling to 5 s", "cpu": _cpu_flags(), "python": platform.python_version(),
                    "load": os.getloadavg()}
    return out


def _cpu_flags() -> str:
    try:
        flags = [line for line in open("/proc/cpuinfo") if line.startswith("flags")][0].split()
    except (OSError, IndexError):
        return "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni") if f in flags) or "no AVX2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop", type=float, default=12.0, help="seconds the camera is stopped")
    parser.add_argument("--freeze", type=float, default=8.0, help="seconds the camera is frozen (SIGSTOP)")
    parser.add_argument("--out", default=None, help="write the figures here as JSON")
    args = parser.parse_args()
    result = run(args.stop, args.freeze)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from jist_edge.fileio import write_json_atomic

        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
