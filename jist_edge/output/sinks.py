"""Where results go: JSON lines, a live terminal status line, a window."""
import json
import logging
import os
import shutil
import sys
import threading
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

    def event(self, event: Any) -> None:
        """A source event record ({"event": "source_lost", ...}) between the results."""
        if event.recorded:
            self.stream.write(json.dumps(event.to_dict(), sort_keys=True) + "\n")
            self.stream.flush()


class StatusLine(object):
    """A single rewritten terminal line: FPS, latency, current match; "camera lost for N s" in an outage.

    The line is cut to the terminal's width (never wrapped) and clears what it overwrote;
    ``message`` puts a warning on its own line and redraws the status under it."""

    def __init__(self, stream: IO[str] = sys.stderr, every_s: float = 0.2, width: Optional[int] = None) -> None:
        self.stream = stream
        self.every_s = every_s
        self.width = width  # None: the terminal's, read at every redraw (it may be resized)
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._n = 0
        self._line = ""
        self._write = threading.Lock()  # warnings come from the capture thread too

    def __call__(self, result: Result) -> None:
        self._n += 1
        now = time.perf_counter()
        if now - self._last < self.every_s:
            return
        self._last = now
        fps = min(self._n / max(now - self._t0, 1e-9), 999.9)  # a fixed width: the line must not jitter
        best = result.best
        where = "blind camera" if getattr(result, "blind", False) else "-"
        if best is not None:
            where = "seq {} d={:.3f}".format(best.seq_id, best.distance)
            if best.position:
                where += " @ ({:.1f}, {:.1f})".format(best.position[0], best.position[1])
        # the filter's estimate first: what a narrow terminal cuts off is the raw match and the counts
        line = "{:>6}  {:5.1f} FPS {:5.0f} ms{} | raw {}{} | drops {}".format(
            result.frame_index, fps, result.latency["total"], estimate_text(result.estimate, " | "), where,
            " (partial)" if result.partial else "", result.dropped)
        self._draw(line)

    def lost(self, seconds: float, frames: Optional[int] = None) -> None:
        """The camera is gone: say so (redrawn at most every ``every_s``)."""
        now = time.perf_counter()
        if now - self._last < self.every_s:
            return
        self._last = now
        self._draw("camera lost for {:.0f} s  | no_camera{}  reconnecting...".format(
            seconds, "  ({} frames so far)".format(frames) if frames is not None else ""))

    def message(self, text: str) -> None:
        """A warning on its own line; the status line is drawn again below it."""
        with self._write:
            self.stream.write("\r\x1b[K" + text + "\n")
            if self._line:
                self.stream.write(self._line)
            self.stream.flush()

    def _draw(self, line: str) -> None:
        with self._write:
            self._line = fit_line(line, self.width or terminal_width(self.stream))
            self.stream.write("\r" + self._line + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


class StatusLogHandler(logging.Handler):
    """Routes the runtime's warnings (reconnects, skips) through the status line: on their own lines."""

    def __init__(self, status: StatusLine) -> None:
        super(StatusLogHandler, self).__init__(logging.WARNING)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.status.message(self.format(record))
        except Exception:  # a broken terminal must not end the capture thread
            self.handleError(record)


def terminal_width(stream: Any) -> int:
    """Columns of the terminal behind ``stream``; 80 for a terminal of unknown size, 200 for what is
    not a terminal (nothing wraps there)."""
    try:
        if not stream.isatty():
            return 200
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size((80, 24)).columns or 80


def fit_line(line: str, width: int) -> str:
    """``line`` cut to leave the last column free (writing into it wraps on many terminals)."""
    room = max(int(width) - 1, 10)
    return line if len(line) <= room else line[:room - 1] + "~"


def estimate_text(estimate: Any, prefix: str = "") -> str:
    """The route filter's estimate in a few words ("" when the filter is off)."""
    if estimate is None:
        return ""
    if estimate.seq_id is None:
        return prefix + estimate.state
    where = " @ ({:.1f}, {:.1f})".format(*estimate.position) if estimate.position else ""
    return "{}{} seq {}{} conf {:.2f}".format(prefix, estimate.state, estimate.seq_id, where, estimate.confidence)


STATE_COLOURS = {"tracking": (0, 200, 0), "initializing": (0, 200, 255), "lost": (0, 0, 255),
                 "blind": (160, 160, 160), "no_camera": (0, 0, 255)}  # BGR


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

    def lost(self, image: Optional[np.ndarray], seconds: float) -> None:
        """The last frame, greyed, with "camera lost for N s" on it (not a live picture)."""
        if image is None:
            return
        cv2 = self.cv2
        canvas = (image // 3).astype(np.uint8)
        cv2.putText(canvas, "camera lost for {:.0f} s".format(seconds), (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                    STATE_COLOURS["no_camera"], 2)
        cv2.imshow(self.WINDOW, canvas)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stopped = True

    def close(self) -> None:
        self.cv2.destroyAllWindows()
