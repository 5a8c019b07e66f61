"""The pipeline over gaps (real model, real map): the window restarts after an outage, the route filter
predicts over the time that passed instead of resetting, blind frames are counted and never tracking."""
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from optional_imports import import_or_skip


# ------------------------------------------------------------ the pipeline over gaps (real model and map)

@pytest.fixture(scope="module")
def localizer(tiny_bundle, synth_route):
    import_or_skip("torch")
    from jist_edge.pipeline.localizer import Localizer

    data, place_map = synth_route
    return Localizer(tiny_bundle, place_map, backend="onnxruntime"), data


def _query_frames(data, n=20):
    cap = cv2.VideoCapture(data["queries"])
    frames = []
    while len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    return frames


def test_after_a_gap_the_window_restarts_and_the_filter_predicts_over_it(localizer):
    loc, data = localizer
    loc.reset()
    frames = _query_frames(data)
    t = 1000.0
    for i, img in enumerate(frames[:10]):
        last = loc.process(img, i, t + 0.1 * i)
    assert last.window_size == loc.seq_len and not last.partial
    before = loc.tracker.filter.frames
    loc.gap()  # what a source_back does
    after = [loc.process(img, 10 + i, t + 20.0 + 0.1 * i) for i, img in enumerate(frames[10:10 + loc.seq_len])]
    assert [r.window_size for r in after] == list(range(1, loc.seq_len + 1))
    assert [r.partial for r in after] == [True] * (loc.seq_len - 1) + [False]
    assert set(loc.ring.frame_ids()) == set(range(10, 10 + loc.seq_len))  # nothing from before the gap
    # no reset: the filter kept its frames (it did not start over) and predicted over 20 s
    assert loc.tracker.filter.frames == before + 1
    assert after[-1].estimate.state != "initializing"


def test_route_filter_prediction_moves_and_widens_the_belief(localizer):
    loc, data = localizer
    loc.reset()
    frames = _query_frames(data)
    for i, img in enumerate(frames[:12]):
        loc.process(img, i, 0.1 * i)
    flt = loc.tracker.filter
    mass_before = flt.exc.max()
    steps = flt.predict_to(0.1 * 11 + 3.0)
    assert steps == 29  # 3 s at 10 frames/s, less the step the next update makes
    assert flt.exc.max() < mass_before  # spread out: less sure where we are
    total = flt.u * flt.count + flt.exc.sum() + flt.p_off
    assert total == pytest.approx(1.0)
    assert flt.predict(0.0) == 0


def test_blind_frames_from_the_first_are_counted_and_never_tracking(localizer):
    loc, data = localizer
    loc.reset()
    loc.blind_frames = 0
    black = np.zeros((128, 192, 3), np.uint8)
    results = [loc.process(black, i, 0.1 * i) for i in range(12)]
    assert loc.blind_frames == 12 and loc.tracker.filter.frames == 0  # the filter never updated
    assert {r.estimate.state for r in results} == {"blind"}
    d = results[-1].to_dict()
    assert d["blind"] is True and d["match"] is None and d["estimate"]["confidence"] == 0.0
    frames = _query_frames(data, 6)
    seen = [loc.process(img, 12 + i, 1.2 + 0.1 * i) for i, img in enumerate(frames)]
    assert seen[0].window_size == 1 and "blind" not in seen[0].to_dict()


def test_run_on_a_black_images_folder_says_blind(tiny_bundle, synth_route, tmp_path):
    from jist_edge.cli import main

    _, place_map = synth_route
    folder = tmp_path / "black"
    folder.mkdir()
    for i in range(8):
        cv2.imwrite(str(folder / "{:03d}.png".format(i)), np.zeros((128, 192, 3), np.uint8))
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--images",
                                    str(folder), "--output", str(out)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 8 and all(line["estimate"]["state"] == "blind" for line in lines)
    assert "8 blind frames" in res.output
