"""Soak: thousands of frames through ``Localizer.stream`` in a fresh process, resident memory sampled.

A robot runs for hours, so memory must stay flat. The source is a short MJPG clip opened
as a live camera that "disconnects" at the end of every pass and is reopened (the
reconnect path runs hundreds of times), frames go through the whole runtime (capture,
preprocess, encoder, descriptor ring, SeqGeM, hnswlib), and VmRSS is read every
``sample_every`` results. Growth is measured from the end of the warm-up (10% of the
frames) to the end, so allocator warm-up does not count as a leak.

    python -m jist_edge.benchmarks.soak --bundle B --map M --clip clip.avi --frames 5000 --out soak.json
"""
import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from jist_edge.benchmarks.memory import current_rss_mb, peak_rss_mb

CLIP_FRAMES = 40


def run(bundle_dir: str, map_dir: str, clip: str, frames: int, backend: str = "auto",
        sample_every: int = 100) -> Dict[str, Any]:
    """Stream ``frames`` results from the clip played as a reconnecting camera; RSS samples and drops."""
    import cv2

    from jist_edge.pipeline.localizer import Localizer
    from jist_edge.stream.sources import LiveCaptureSource

    loc = Localizer.open(bundle_dir, map_dir, backend=backend)
    source = LiveCaptureSource("soak clip", lambda: cv2.VideoCapture(clip), max_retries=3, backoff_s=0.001,
                               backoff_max_s=0.002)
    samples = []  # type: List[List[float]]
    started = time.perf_counter()
    n = 0
    try:
        for n, result in enumerate(loc.stream(source, max_frames=frames), 1):
            if n % sample_every == 0 or n == frames:
                samples.append([n, current_rss_mb()])
    finally:
        source.close()
        loc.close()
    seconds = time.perf_counter() - started
    after_warmup = [mb for i, mb in samples if i >= frames // 10] or [samples[-1][1]]
    return {
        "frames": n, "seconds": seconds, "fps": n / seconds if seconds else None,
        "reconnects": source.reconnects, "skipped": loc.frames_skipped,
        "sample_every": sample_every, "rss_samples_mb": samples,
        "rss_after_warmup_mb": after_warmup[0], "rss_end_mb": after_warmup[-1],
        "rss_min_mb": min(after_warmup), "rss_max_mb": max(after_warmup),
        # the kernel updates VmHWM lazily: a VmRSS sample can lie a few pages above it
        "growth_after_warmup_mb": after_warmup[-1] - after_warmup[0],
        "peak_rss_mb": max([peak_rss_mb()] + [mb for _, mb in samples]),
        "torch_imported": "torch" in sys.modules,
    }


def bench(bundle: Any, backend: str, frames: int, log: Callable[[str], None]) -> Dict[str, Any]:
    """The bench section: a clip and a map made here, the soak in a fresh process (runtime memory only)."""
    from jist_edge.benchmarks import pipeline

    size = (bundle.height, bundle.width)
    with tempfile.TemporaryDirectory(prefix="jist-bench-soak-") as work:
        clip = pipeline.make_video(os.path.join(work, "clip.avi"), CLIP_FRAMES, size)
        map_dir = pipeline.make_map(bundle, os.path.join(work, "map"), CLIP_FRAMES, size)
        log("soak: {} frames from a {}-frame clip reopened as a camera, in a fresh process".format(frames, CLIP_FRAMES))
        result = pipeline.run_fresh("jist_edge.benchmarks.soak", [
            "--bundle", bundle.path, "--map", map_dir, "--clip", clip, "--frames", str(frames), "--backend", backend],
            "soak")
    result.update({"height": size[0], "width": size[1], "backend": backend, "random_init": bundle.random_init})
    log("  RSS {:.1f} MiB after warm-up, {:.1f} at the end ({:+.1f}), band {:.1f}-{:.1f}; {} reconnects".format(
        result["rss_after_warmup_mb"], result["rss_end_mb"], result["growth_after_warmup_mb"], result["rss_min_mb"],
        result["rss_max_mb"], result["reconnects"]))
    return result


def markdown(soak: Dict[str, Any]) -> List[str]:
    """The report's lines for this section."""
    return ["## Soak: resident memory over a long run", "",
            "{frames} frames ({height}x{width}, backend {backend}{weights}) from a {clip}-frame clip reopened as a "
            "camera {reconnects} times, through the whole runtime in a fresh process: resident memory {start:.1f} MiB "
            "after warm-up (10% of the frames), {end:.1f} MiB at the end ({growth:+.1f} MiB), between {lo:.1f} and "
            "{hi:.1f} MiB throughout; peak {peak:.1f} MiB; {fps:.1f} FPS.".format(
                clip=CLIP_FRAMES, weights=", random weights" if soak.get("random_init") else "",
                start=soak["rss_after_warmup_mb"], end=soak["rss_end_mb"], growth=soak["growth_after_warmup_mb"],
                lo=soak["rss_min_mb"], hi=soak["rss_max_mb"], peak=soak["peak_rss_mb"], fps=soak["fps"] or 0.0,
                **{k: soak[k] for k in ("frames", "height", "width", "backend", "reconnects")}), ""]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="memory soak of the runtime (used by jist-edge bench)")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--map", required=True)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = run(args.bundle, args.map, args.clip, args.frames, args.backend, args.sample_every)
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
