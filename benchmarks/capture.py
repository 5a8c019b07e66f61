"""CPU cost of capture + preprocess: a 720p frame vs a frame already at the model's size.

On a Jetson, csi:// frames come out of the ISP in NVMM memory; what the CPU then does is
videoconvert's BGRx->BGR and the runtime's preprocess (resize + normalize). With nvvidconv
scaling in hardware (jist_edge.stream.uri.csi_output_size), both run on a model-sized
frame instead of a 1280x720 one. GStreamer is absent here, so the same CPU work is timed
on frames of a real video file: decode (which the Nano's ISP does instead; reported
apart), BGRx->BGR with OpenCV (the conversion videoconvert does), then the runtime's
Preprocessor. The 720p and the model-size videos show the same synthetic street, and the
two paths are timed alternately, frame by frame.
"""
import os
import tempfile
from typing import Any, Callable, Dict, List

import cv2
import numpy as np

from jist_edge.benchmarks.timing import per_round_ratios, ratio_summary, summarize

Log = Callable[[str], None]
FULL = (1280, 720)  # jetson-inference's and our CSI default capture mode (w, h)
STAGES = ("decode", "bgrx_to_bgr", "preprocess", "cpu_after_isp", "total")


def write_videos(bundle: Any, frames: int, folder: str) -> Dict[str, str]:
    """The same synthetic street as MJPG at 1280x720 and at the model's size."""
    from jist_edge.synth.traversal import Route, make_traversal

    route = Route(seed=3, length_m=max(40.0, frames * 2.6 + 10.0))
    images = [f for f, _, _ in make_traversal(route, "query", height=FULL[1], width=FULL[0], seed=3, count=frames)]
    paths = {}
    for name, size in (("720p", FULL), ("model", (bundle.width, bundle.height))):
        paths[name] = os.path.join(folder, "{}.avi".format(name))
        writer = cv2.VideoWriter(paths[name], cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
        for image in images:
            writer.write(image if size == FULL else cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        writer.release()
    return paths


def _one_frame(cap: Any, pre: Any, out: np.ndarray) -> Dict[str, float]:
    tick = cv2.getTickFrequency() / 1e3
    t0 = cv2.getTickCount()
    ok, frame = cap.read()
    t1 = cv2.getTickCount()
    if not ok:
        raise RuntimeError("capture benchmark video ended early")
    bgrx = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)  # what nvvidconv hands over (not timed)
    t2 = cv2.getTickCount()
    bgr = cv2.cvtColor(bgrx, cv2.COLOR_BGRA2BGR)
    t3 = cv2.getTickCount()
    pre(bgr, out=out)
    t4 = cv2.getTickCount()
    times = {"decode": (t1 - t0) / tick, "bgrx_to_bgr": (t3 - t2) / tick, "preprocess": (t4 - t3) / tick}
    times["cpu_after_isp"] = times["bgrx_to_bgr"] + times["preprocess"]
    times["total"] = times["decode"] + times["cpu_after_isp"]
    return times


def run(bundle: Any, frames: int, log: Log) -> Dict[str, Any]:
    from jist_edge.encoder.preprocess import Preprocessor

    pre = Preprocessor.for_bundle(bundle)
    out = np.empty((3, bundle.height, bundle.width), dtype=np.float32)
    samples = {p: {s: [] for s in STAGES} for p in ("720p", "model")}  # type: Dict[str, Dict[str, List[float]]]
    with tempfile.TemporaryDirectory(prefix="jist-bench-capture-") as work:
        log("capture: {} frames at 1280x720 and at {}x{}, alternating".format(frames, bundle.width, bundle.height))
        paths = write_videos(bundle, frames, work)
        caps = {p: cv2.VideoCapture(path) for p, path in paths.items()}
        try:
            for i in range(frames):
                for p in (("720p", "model") if i % 2 else ("model", "720p")):
                    for stage, value in _one_frame(caps[p], pre, out).items():
                        samples[p][stage].append(value)
        finally:
            for cap in caps.values():
                cap.release()
    result = {"frames": frames, "model_wh": [bundle.width, bundle.height], "full_wh": list(FULL),
              "stats": {p: {s: summarize(v) for s, v in st.items()} for p, st in samples.items()},
              "ratio_720p_over_model": {s: ratio_summary(per_round_ratios(samples["720p"][s], samples["model"][s]))
                                        for s in ("cpu_after_isp", "total")}}
    r = result["ratio_720p_over_model"]["cpu_after_isp"]
    log("  BGRx->BGR + preprocess: 720p p50 {:.2f} ms, model size p50 {:.2f} ms, 720p / model median {:.1f}x".format(
        result["stats"]["720p"]["cpu_after_isp"]["p50_ms"], result["stats"]["model"]["cpu_after_isp"]["p50_ms"],
        r["median"]))
    return result


def markdown(section: Dict[str, Any]) -> List[str]:
    st = section["stats"]
    lines = ["## Capture + preprocess on the CPU: 720p in vs model size in", "",
             "What the CPU does per csi:// frame after the ISP: BGRx->BGR (videoconvert) and the runtime's "
             "preprocess, for a 1280x720 frame (scaled by the CPU) and for a {}x{} frame (scaled by nvvidconv "
             "in hardware). Decode is this machine's MJPG decode, which the Nano's ISP replaces. {} frames each, "
             "alternating.".format(section["model_wh"][0], section["model_wh"][1], section["frames"]), "",
             "| input | decode p50 | BGRx->BGR p50 | preprocess p50 | CPU after ISP p50 / p95 ms |", "|---|---|---|---|---|"]
    for p in ("720p", "model"):
        s = st[p]
        lines.append("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} / {:.2f} |".format(
            "1280x720" if p == "720p" else "{}x{}".format(*section["model_wh"]), s["decode"]["p50_ms"],
            s["bgrx_to_bgr"]["p50_ms"], s["preprocess"]["p50_ms"], s["cpu_after_isp"]["p50_ms"],
            s["cpu_after_isp"]["p95_ms"]))
    r = section["ratio_720p_over_model"]
    lines += ["", "720p / model size, per frame: CPU after the ISP {:.1f}x [{:.1f}..{:.1f}]; including decode "
              "{:.1f}x.".format(r["cpu_after_isp"]["median"], r["cpu_after_isp"]["min"], r["cpu_after_isp"]["max"],
                                r["total"]["median"]), ""]
    return lines
