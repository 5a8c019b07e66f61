"""What the terminal and the live view show through a camera outage: a status line that fits the
terminal and keeps warnings on their own lines, "camera lost for N s", the no_camera state."""
import io
import json
import time

import numpy as np

from jist_edge.stream.events import SOURCE_BACK, SOURCE_LOST


def test_status_line_fits_the_terminal_clears_and_keeps_warnings_apart():
    from jist_edge.pipeline.localizer import Match, Result
    from jist_edge.filter.route_filter import TRACKING, Estimate
    from jist_edge.output.sinks import StatusLine, fit_line

    result = Result(123456, 0.3, False, 5, [Match(40, 0.5, [500001.0, 4000002.0], [])], {"total": 12.0},
                    np.zeros(4), dropped=7)
    result.estimate = Estimate(42, [500010.0, 4000020.5], 0.875, TRACKING)
    out = io.StringIO()
    status = StatusLine(out, every_s=0.0, width=80)
    status(result)
    text = out.getvalue()
    line = text.split("\r")[-1]
    assert line.endswith("\x1b[K")  # clears what a longer line left
    assert len(line) - len("\x1b[K") <= 79 and "tracking seq 42" in line and "conf 0.88" in line
    status.message("camera reconnect 1 failed")
    assert out.getvalue().endswith("\r\x1b[Kcamera reconnect 1 failed\n" + status._line)
    status.lost(12.4)
    assert "camera lost for 12 s" in out.getvalue().split("\r")[-1]
    assert fit_line("x" * 100, 40) == "x" * 38 + "~"


def test_live_view_says_camera_lost_and_the_estimate_is_not_tracking():
    from jist_edge.pipeline.localizer import Match, Result
    from jist_edge.filter.route_filter import TRACKING, Estimate
    from jist_edge.stream.events import SourceEvent
    from jist_edge.output.web.feed import LiveFeed

    feed = LiveFeed()
    result = Result(3, 0.3, False, 5, [Match(40, 0.5, [1.0, 2.0], [])], {"total": 12.0}, np.zeros(4))
    result.estimate = Estimate(42, [1.0, 2.0], 0.9, TRACKING)
    feed.offer(result, np.zeros((8, 8, 3), np.uint8))
    assert json.loads(feed.status_json())["camera"] == {"lost": False}
    feed.source_event(SourceEvent(SOURCE_LOST, time.time(), reason="cable"))
    status = json.loads(feed.status_json())
    assert status["camera"]["lost"] and status["camera"]["message"].startswith("camera lost for")
    assert status["estimate"]["state"] == "no_camera"
    feed.source_event(SourceEvent(SOURCE_BACK, time.time(), gap_s=1.0))
    assert json.loads(feed.status_json())["estimate"]["state"] == "tracking"
