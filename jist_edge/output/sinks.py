"""Where results go: JSON lines, a live terminal status line, a window."""
import json
import os
import sys
import time
from typing import IO, Any, Optional

import numpy as np

from jist_edge.pipeline.localizer import Result
from jist_edge.stream.uri import opencv_build_value


class JsonlSink(object):
    """One JSON object per line; flushed per frame so a consumer can tail it live."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, result: Result) -> None:
        self.stream.write(json.dumps(result.to_dict(), sort_keys=True) + "\n")
        self.stream.flush()


class StatusLine(object):
    """A single rewritten terminal line: FPS, latency, current match."""

    def __init__(self, stream: IO[str] = sys.stderr, every_s: float = 0.2) -> None:
        self.stream = stream
        self.every_s = every_s
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._n = 0

    def __call__(self, result: Result) -> None:
        self._n += 1
        now = time.perf_counter()
        if now - self._last < self.every_s:
            return
        self._last = now
        fps = self._n / max(now - self._t0, 1e-9)
        best = result.best
        where = "-"
        if best is not None:
            where = "seq {} d={:.3f}".format(best.seq_id, best.distance)
            if best.position:
                where += " @ ({:.1f}, {:.1f})".format(best.position[0], best.position[1])
        line = "frame {:>6}  {:5.1f} FPS  {:6.1f} ms  {}{}{}  drops {}".format(
            result.frame_index, fps, result.latency["total"], where, " (partial)" if result.partial else "",
            estimate_text(result.estimate, "  | "), result.dropped)
        self.stream.write("\r" + line[:200].ljust(100))
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def estimate_text(estimate: Any, prefix: str = "") -> str:
    """The route filter's estimate in a few words ("" when the filter is off)."""
    if estimate is None:
        return ""
    if estimate.seq_id is None:
        return prefix + estimate.state
    where = " @ ({:.1f}, {:.1f})".format(*estimate.position) if estimate.position else ""
    return "{}{} seq {}{} conf {:.2f}".format(prefix, estimate.state, estimate.seq_id, where, estimate.confidence)


STATE_COLOURS = {"tracking": (0, 200, 0), "initializing": (0, 200, 255), "lost": (0, 0, 255)}  # BGR


def display_problem() -> Optional[str]:
    """Why a window cannot be shown here, or None. cv2.imshow would abort without a display."""
    gui = opencv_build_value("GUI")
    if gui is not None and gui.upper() in ("NONE", "NO", ""):
        return "this OpenCV build has no GUI support (opencv-python-headless?)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display ($DISPLAY is not set)"
    return None


class Display(object):
    """Shows each frame with the match and latency drawn on it; q or Esc stops."""

    WINDOW = "jist-edge"

    def __init__(self) -> None:
        import cv2

        self.cv2 = cv2
        self.stopped = False

    def __call__(self, result: Result, image: np.ndarray) -> None:
        cv2 = self.cv2
        canvas = image.copy()
        best = result.best
        lines = ["frame {}  {:.1f} ms".format(result.frame_index, result.latency["total"])]
        if best is not None:
            lines.append("seq {}  d={:.3f}{}".format(best.seq_id, best.distance, "  partial" if result.partial else ""))
            if best.position:
                lines.append("pos ({:.1f}, {:.1f})".format(best.position[0], best.position[1]))
        colours = [(0, 255, 0)] * len(lines)
        if result.estimate is not None:
            lines.append(estimate_text(result.estimate))
            colours.append(STATE_COLOURS.get(result.estimate.state, (255, 255, 255)))
        for i, (text, colour) in enumerate(zip(lines, colours)):
            cv2.putText(canvas, text, (10, 25 + 25 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.7, colour, 2)
        cv2.imshow(self.WINDOW, canvas)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stopped = True

    def close(self) -> None:
        self.cv2.destroyAllWindows()
