"""Synthetic street routes: determinism, distinct places, a harder query pass, files."""
import json
import os

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from video_files import read_all_with_opencv

from jist_edge.cli import main
from jist_edge.errors import JistEdgeError
from jist_edge.positions import positions_from_names, read_positions_csv, sort_frame_names
from jist_edge.synth.dataset import make_route_dataset
from jist_edge.synth.traversal import (
    Condition,
    Route,
    make_traversal,
    render_frame,
    write_images,
    write_video,
)

H, W = 96, 128


def _desc(frame):
    """A crude global descriptor: a zero-mean, unit-norm grey thumbnail."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    d = cv2.resize(grey, (20, 15), interpolation=cv2.INTER_AREA).ravel()
    d -= d.mean()
    return d / np.linalg.norm(d)


def _mad(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def passes():
    route = Route(seed=5, length_m=200)
    db, q = make_traversal(route, "database", height=H, width=W), make_traversal(route, "query", height=H, width=W)
    return route, db, [f for f, _, _ in db], q, [f for f, _, _ in q]


def test_same_seed_same_frames_different_seed_different():
    a, b, c = Route(seed=11, length_m=120), Route(seed=11, length_m=120), Route(seed=12, length_m=120)
    cond = Condition(noise_sigma=3, blur_sigma=0.7, gain=0.8, lateral_m=0.3, yaw_deg=1.5, seed=4)
    # Render b in another order: caches (tiles, poses) must not change a frame.
    b_frames = {s: render_frame(b, s, H, W, cond) for s in (90.0, 3.0, 47.5)}
    for s in (3.0, 47.5, 90.0):
        fa = render_frame(a, s, H, W, cond)
        assert fa.shape == (H, W, 3) and fa.dtype == np.uint8
        np.testing.assert_array_equal(fa, b_frames[s])
        assert _mad(fa, render_frame(c, s, H, W, cond)) > 15
    assert np.allclose(a.position(60.0), b.position(60.0)) and not np.allclose(a.position(60.0), c.position(60.0))


def test_route_is_metric_and_starts_near_the_utm_origin():
    route = Route(seed=2, length_m=400)
    s = np.arange(0, 400, 1.0)
    e, n = route.position(s)
    steps = np.hypot(np.diff(e), np.diff(n))
    assert np.all(np.abs(steps - 1.0) < 0.01)  # arc length is metres
    assert abs(e[0] - 500000) < 1 and abs(n[0] - 4000000) < 1
    heading = np.unwrap(route.heading(s))
    assert np.ptp(heading) > np.radians(25)  # the route turns


def test_places_are_distinct_and_consecutive_frames_similar(passes):
    _, db, db_frames, _, _ = passes
    d = np.array([_desc(f) for f in db_frames])
    step = int(round(50 / db.spacing_m))
    consecutive = np.linalg.norm(d[1:] - d[:-1], axis=1).mean()
    apart = np.linalg.norm(d[step:] - d[:-step], axis=1).mean()
    assert apart > 1.5 * consecutive
    assert min(_mad(a, b) for a, b in zip(db_frames[1:], db_frames[:-1])) > 0.5  # the camera moves


def test_query_pass_is_harder_but_recognizable(passes):
    _, db, db_frames, q, q_frames = passes
    ds, qs = db.arc_positions(), q.arc_positions()
    assert q.spacing_m != db.spacing_m and qs[0] != ds[0]
    d_db = np.array([_desc(f) for f in db_frames])
    wins, same_all, far_all = 0, [], []
    for i, s in enumerate(qs):
        j = int(np.argmin(np.abs(ds - s)))
        assert abs(ds[j] - s) <= db.spacing_m / 2 + 1e-9
        assert _mad(q_frames[i], db_frames[j]) > 3  # not the same pixels
        dq = _desc(q_frames[i])
        far = [np.linalg.norm(dq - d_db[k]) for k in range(len(ds)) if abs(abs(ds[k] - s) - 50) < 1.01]
        same = np.linalg.norm(dq - d_db[j])
        wins += all(same < f for f in far)
        same_all.append(same)
        far_all.extend(far)
    assert wins >= 0.8 * len(qs)
    assert np.mean(same_all) < 0.75 * np.mean(far_all)


def test_query_positions_follow_the_route(passes):
    route, db, _, q, _ = passes
    pdb, pq = db.positions(), q.positions()
    nearest = np.min(np.linalg.norm(pq[:, None] - pdb[None], axis=2), axis=1)
    assert nearest.max() < db.spacing_m / 2 + 1.5  # half a spacing plus the lateral sway
    assert len(q) == len(pq) and len(db) == 101


def test_traversal_rejects_bad_arguments():
    route = Route(seed=1, length_m=50)
    for kwargs in ({"kind": "sideways"}, {"spacing_m": 0}, {"count": 999}, {"start_m": 80}):
        with pytest.raises(JistEdgeError):
            make_traversal(route, **kwargs)
    with pytest.raises(JistEdgeError):
        render_frame(route, 51.0, H, W)
    with pytest.raises(JistEdgeError):
        Route(seed=1, length_m=-5)


def test_images_parse_back_to_the_same_positions(tmp_path):
    route = Route(seed=7, length_m=30)
    trav = make_traversal(route, "query", height=H, width=W)
    out = str(tmp_path / "q")
    paths = write_images(trav, out)
    names = sorted(os.listdir(out))
    assert [os.path.basename(p) for p in paths] == names == sort_frame_names(names)
    pos, missing = positions_from_names(names)
    assert missing == 0
    np.testing.assert_allclose(pos, trav.positions(), atol=0.006, rtol=0)
    first = cv2.imread(paths[0])
    assert first.shape == (H, W, 3) and _mad(first, next(iter(trav))[0]) < 4


def test_video_reads_back_with_positions(tmp_path):
    route = Route(seed=8, length_m=40)
    trav = make_traversal(route, "database", height=H, width=W)
    video, csv_path = write_video(trav, str(tmp_path / "db.avi"), fps=10)
    assert csv_path == str(tmp_path / "db.csv")
    frames = read_all_with_opencv(video)
    assert len(frames) == len(trav) == 21
    rendered = [f for f, _, _ in trav]
    for i, frame in enumerate(frames):  # MJPG is lossy, but every frame is in its place
        own = _mad(frame, rendered[i])
        assert own < 8 and all(own < _mad(frame, rendered[j]) for j in (i - 1, i + 1) if 0 <= j < len(frames))
    table = read_positions_csv(csv_path)
    assert sorted(table) == list(range(len(trav)))
    np.testing.assert_array_equal(np.array([table[i] for i in range(len(trav))]), trav.positions())
    with pytest.raises(JistEdgeError):
        write_video(trav, str(tmp_path / "db.mp4"))
    assert sorted(os.listdir(str(tmp_path))) == ["db.avi", "db.csv"]


def test_dataset_replaces_the_folder_whole(tmp_path):
    out = str(tmp_path / "route")
    paths = make_route_dataset(out, frames=8, size=(48, 64), seed=3)
    assert len(os.listdir(paths["database"])) == 8 and len(os.listdir(paths["queries"])) == 6
    manifest = json.load(open(paths["manifest"]))
    assert manifest["route"]["length_m"] == 14.0 and manifest["queries"]["frames"] == 6
    paths = make_route_dataset(out, frames=6, size=(48, 64), seed=3, as_video=True)
    assert sorted(os.listdir(out)) == ["database.avi", "database.csv", "queries.avi", "queries.csv", "route.json"]
    assert len(read_positions_csv(paths["database_positions"])) == 6
    assert os.listdir(str(tmp_path)) == ["route"]  # no staging folders left behind


def test_cli_end_to_end(tmp_path):
    runner = CliRunner()
    out = str(tmp_path / "synth")
    result = runner.invoke(main, ["synth", "--output", out, "--frames", "10", "--img-size", "48", "64",
                                  "--seed", "4", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["database"]["frames"] == 10 and summary["route_length_m"] == 18.0
    assert len(os.listdir(summary["queries"]["path"])) == summary["queries"]["frames"] == 7
    result = runner.invoke(main, ["synth", "--output", out, "--length", "12", "--video", "--img-size", "48", "64"])
    assert result.exit_code == 0, result.output
    assert "database" in result.output and os.path.isfile(os.path.join(out, "queries.avi"))
    assert sum(1 for _ in open(os.path.join(out, "database.csv"))) == 1 + 7

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = runner.invoke(main, ["synth", "--output", str(foreign), "--frames", "3"])
    assert result.exit_code != 0 and "--force" in result.output and (foreign / "notes.txt").exists()
    result = runner.invoke(main, ["synth", "--output", out, "--frames", "3", "--length", "9"])
    assert result.exit_code != 0 and "not both" in result.output
