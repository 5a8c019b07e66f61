"""The route filter through the product: map statistics on disk, run's JSON lines, eval's raw-vs-filtered
report (recomputed from its per-query rows), PNGs, and synthetic passes that leave the map. Real bundle,
real rendered routes, real hnswlib maps."""
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from optional_imports import import_or_skip

from jist_edge.cli import main
from jist_edge.errors import IntegrityError
from jist_edge.fileio import manifest_digest, read_json, write_json_atomic
from jist_edge.filter.distance_stats import STATS_FILE, map_distance_stats
from jist_edge.evaluation.localization import relocalization_events
from jist_edge.evaluation.pr_curve import frames_to_relocalize, pr_curve, quantiles
from jist_edge.maps.store import load_map
from jist_edge.pipeline.localizer import Localizer
from jist_edge.filter.route_filter import STATES

import_or_skip("torch")
FRAMES = 60
SEED = 3


@pytest.fixture(scope="module")
def routes(tiny_bundle, tmp_path_factory):
    """One route: a plain query pass and one with a detour and a kidnap; a map of its database pass."""
    from jist_edge.maps.build import build_map
    from jist_edge.synth.dataset import make_route_dataset

    root = tmp_path_factory.mktemp("filter")
    plain = make_route_dataset(str(root / "plain"), frames=FRAMES, size=(64, 96), seed=SEED)
    away = make_route_dataset(str(root / "away"), frames=FRAMES, size=(64, 96), seed=SEED, detour=True, kidnaps=1)
    place_map = build_map(tiny_bundle, plain["database"], str(root / "map"))
    return {"root": root, "plain": plain, "away": away, "map": place_map}


def _eval(tiny_bundle, database, queries, tmp_path, *extra):
    report = tmp_path / "eval.json"
    res = CliRunner().invoke(main, ["eval", "--model", tiny_bundle.path, "--database", database, "--queries", queries,
                                    "--json", str(report), "--quiet"] + list(extra))
    assert res.exit_code == 0, res.output
    return json.loads(report.read_text()), res.output


def test_every_summary_number_recomputes_from_the_per_query_rows(tiny_bundle, routes, tmp_path):
    report, output = _eval(tiny_bundle, routes["map"].path, routes["away"]["queries"], tmp_path,
                           "--plot", str(tmp_path / "plots"))
    f, rows = report["filter"], report["per_query"]
    assert "Raw retrieval vs the route filter" in output and "route filter" in output
    assert len(rows) == report["queries"]["sequences"] and [r["index"] for r in rows] == list(range(len(rows)))
    valid = np.array([r["valid"] for r in rows])
    assert f["off_map"] == int((~valid).sum()) > 0  # the detour left the map
    correct = np.array([r["correct"] for r in rows])
    raw_ok = np.array([r["raw"]["correct"] for r in rows])
    states = np.array([r["estimate"]["state"] for r in rows])
    assert f["recall_at_1"] == pytest.approx(100.0 * correct[valid].mean(), abs=1e-3)
    assert f["raw_recall_at_1"] == pytest.approx(100.0 * raw_ok[valid].mean(), abs=1e-3)
    assert f["raw_recall_at_1"] == pytest.approx(report["results"]["hnsw"]["recall"]["1"], abs=1e-3)
    assert not (correct & ~valid).any()  # nothing off the map can be right
    assert f["states"] == {s: int((states == s).sum()) for s in STATES}
    assert f["lost_on_map"] == pytest.approx(100.0 * ((states == "lost") & valid).sum() / valid.sum(), abs=1e-3)
    assert f["lost_off_map"] == pytest.approx(100.0 * ((states == "lost") & ~valid).sum() / (~valid).sum(), abs=1e-3)
    assert f["error_m"] == quantiles([r["error_m"] for r in rows if r["valid"] and r["error_m"] is not None])
    for r in rows:  # the error is the distance from the estimate to the query window's centre
        if r["error_m"] is not None:
            e, t = r["estimate"]["position"], r["position"]
            assert r["error_m"] == pytest.approx(np.hypot(e[0] - t[0], e[1] - t[1]), abs=1e-2)
    conf = [r["estimate"]["confidence"] for r in rows]
    assert f["pr"]["filtered"] == pr_curve(conf, correct, valid)
    assert f["pr"]["raw"] == pr_curve([-r["raw"]["distance"] for r in rows], raw_ok, valid)
    events = [{k: v for k, v in e.items() if k != "frames"} for e in f["relocalization"]["events"]]
    assert {e["kind"] for e in events} >= {"kidnap"}
    frames = frames_to_relocalize(events, correct, states == "tracking", report["seq_len"])
    assert [e["frames"] for e in f["relocalization"]["events"]] == frames
    done = [v for v in frames if v is not None]
    assert f["relocalization"]["frames_p50"] == (float(np.median(done)) if done else None)
    for name in ("pr_curves.png", "route.png"):
        with open(str(tmp_path / "plots" / name), "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_events_are_where_the_synthetic_pass_jumps_and_returns(routes):
    manifest = read_json(os.path.join(routes["away"]["root"], "route.json"), "route")
    planned = [(e["kind"], e["frame"]) for e in manifest["queries"]["events"]]
    assert [k for k, _ in planned] == ["kidnap", "leave", "return"] or [k for k, _ in planned] == [
        "leave", "return", "kidnap"]
    from jist_edge.positions import positions_from_names, sort_frame_names

    pos, _ = positions_from_names(sort_frame_names(os.listdir(routes["away"]["queries"])))
    db = routes["map"].frames.positions
    on_map = np.array([np.hypot(*(db - p).T).min() <= 25.0 for p in pos])
    found = relocalization_events(pos, on_map, 5, 25.0)
    assert [(e["kind"], e["frame"]) for e in found] == [(k, f) for k, f in planned if k != "leave"]
    detour = [s for s in manifest["queries"]["segments"] if s["kind"] == "detour"][0]
    off = pos[detour["first_frame"]:detour["first_frame"] + detour["frames"]]
    assert min(np.hypot(*(db - p).T).min() for p in off) >= 50.0  # every detour frame is far from the map


def test_filter_is_exact_on_an_identical_pass(tiny_bundle, routes, tmp_path):
    report, _ = _eval(tiny_bundle, routes["map"].path, routes["plain"]["database"], tmp_path)
    assert report["results"]["hnsw"]["recall"]["1"] == 100.0
    assert report["filter"]["recall_at_1"] == 100.0
    assert report["filter"]["lost_on_map"] == 0.0


def test_no_filter_keeps_the_old_report(tiny_bundle, routes, tmp_path):
    report, output = _eval(tiny_bundle, routes["map"].path, routes["plain"]["queries"], tmp_path, "--no-filter")
    assert "filter" not in report and "per_query" not in report and "route filter" not in output
    res = CliRunner().invoke(main, ["eval", "--model", tiny_bundle.path, "--database", routes["map"].path,
                                    "--queries", routes["plain"]["queries"], "--no-filter", "--plot",
                                    str(tmp_path / "p")])
    assert res.exit_code != 0 and "--no-filter" in res.output and not (tmp_path / "p").exists()


def test_run_writes_the_estimate_beside_the_raw_match(tiny_bundle, routes, tmp_path):
    out, raw_out = tmp_path / "run.jsonl", tmp_path / "raw.jsonl"
    common = ["run", "--model", tiny_bundle.path, "--map", routes["map"].path, "--images",
              routes["plain"]["queries"], "--max-frames", "20"]
    res = CliRunner().invoke(main, common + ["--output", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, common + ["--output", str(raw_out), "--no-filter"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    raw = [json.loads(line) for line in raw_out.read_text().splitlines()]
    assert all("estimate" not in line for line in raw)
    for a, b in zip(lines, raw):  # the raw match is the same with and without the filter
        assert a["match"] == b["match"] and a["top_k"] == b["top_k"]
        assert set(a) - set(b) == {"estimate"} and "filter" in a["latency_ms"]
    first, last = lines[0]["estimate"], lines[-1]["estimate"]
    assert first == {"seq_id": None, "position": None, "confidence": 0.0, "state": "initializing"}
    assert last["state"] in STATES and 0.0 <= last["confidence"] <= 1.0
    assert last["position"] == routes["map"].positions_of([last["seq_id"]])[0].tolist()


def test_a_long_gap_in_the_stream_restarts_the_filter(tiny_bundle, routes):
    from jist_edge.stream.sources import open_source

    loc = Localizer(tiny_bundle, routes["map"], backend="onnxruntime")
    try:
        with open_source(routes["plain"]["queries"]) as source:
            images = [frame.image for _, frame in zip(range(14), source)]
        states = [loc.process(img, i, timestamp=0.1 * i).estimate.state for i, img in enumerate(images[:10])]
        assert states[:4] == ["initializing"] * 4 and loc.tracker.filter.frames == 6
        after = loc.process(images[10], 10, timestamp=100.0).estimate
        assert after.state == "initializing" and loc.tracker.filter.frames == 1
    finally:
        loc.close()


def test_map_statistics_are_stored_checksummed_and_computed_for_older_maps(tiny_bundle, routes, tmp_path):
    place_map = routes["map"]
    assert STATS_FILE in place_map.manifest["files"]
    stored = read_json(os.path.join(place_map.path, STATS_FILE), "stats")
    assert stored["places"] == place_map.count and stored["exclusion"]["rule"] == "frames"
    assert map_distance_stats(load_map(place_map.path, tiny_bundle)) == stored
    # a map written before the statistics existed: no file, no manifest entry -> computed on load, same numbers
    old = str(tmp_path / "old")
    shutil.copytree(place_map.path, old)
    manifest = read_json(os.path.join(old, "manifest.json"), "manifest")
    del manifest["files"][STATS_FILE]
    manifest["manifest_sha256"] = manifest_digest(manifest)  # as that jist-edge would have written it
    write_json_atomic(os.path.join(old, "manifest.json"), manifest)
    os.unlink(os.path.join(old, STATS_FILE))
    computed = map_distance_stats(load_map(old, tiny_bundle))
    assert computed["computed_on_load"] is True
    for key in ("confuser_best", "confuser_spread", "next_place", "place_spacing_m", "probes"):
        assert computed[key] == stored[key]
    # a changed statistics file is refused like any other map file
    tampered = str(tmp_path / "tampered")
    shutil.copytree(place_map.path, tampered)
    write_json_atomic(os.path.join(tampered, STATS_FILE), dict(stored, k=1))
    with pytest.raises(IntegrityError, match=STATS_FILE):
        load_map(tampered, tiny_bundle)


def test_map_without_positions_still_filters(tiny_bundle, routes, tmp_path):
    from jist_edge.maps.build import build_map
    from jist_edge.stream.sources import open_source

    with open_source(routes["plain"]["database"]) as source:
        images = [frame.image for frame in source]  # bare arrays: no names, so no positions
    place_map = build_map(tiny_bundle, images, str(tmp_path / "nopos"))
    loc = Localizer(tiny_bundle, place_map, backend="onnxruntime")
    try:
        assert not loc.tracker.filter.has_positions and loc.describe()["route_filter"]["positions"] is False
        estimates = [loc.process(img, i, timestamp=0.1 * i).estimate for i, img in enumerate(images[:12])]
    finally:
        loc.close()
    assert all(e.position is None for e in estimates)
    assert estimates[-1].seq_id is not None and estimates[-1].state in STATES


def test_synth_cli_detour_and_kidnap(tmp_path):
    out = tmp_path / "synth"
    args = ["synth", "--output", str(out), "--frames", "60", "--img-size", "48", "64", "--detour", "--kidnap", "1",
            "--video", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert [e["kind"] for e in summary["queries"]["events"]] in (["kidnap", "leave", "return"],
                                                                 ["leave", "return", "kidnap"])
    csv_first = (out / "queries.csv").read_bytes()
    res = CliRunner().invoke(main, args)  # same seed, same pass
    assert res.exit_code == 0 and (out / "queries.csv").read_bytes() == csv_first
    res = CliRunner().invoke(main, ["synth", "--output", str(tmp_path / "short"), "--frames", "20", "--kidnap", "5"])
    assert res.exit_code != 0 and "too short" in res.output and not (tmp_path / "short").exists()


def test_a_map_of_fewer_places_than_k(tiny_bundle, routes, tmp_path):
    from jist_edge.maps.build import build_map
    from jist_edge.stream.sources import open_source

    small = build_map(tiny_bundle, routes["plain"]["database"], str(tmp_path / "small"), stride=6)
    assert small.count < 32  # the filter's K
    loc = Localizer(tiny_bundle, small, backend="onnxruntime")
    try:
        assert loc.tracker.top_k == small.count
        with open_source(routes["plain"]["queries"]) as source:
            estimates = [loc.process(f.image, f.index, timestamp=f.timestamp).estimate for f in source]
    finally:
        loc.close()
    assert all(0 <= e.seq_id < small.count for e in estimates[4:])
    assert all(0.0 <= e.confidence <= 1.0 and e.state in STATES for e in estimates)
