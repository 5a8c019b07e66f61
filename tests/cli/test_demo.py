"""`jist-edge demo` end to end (small), checked against the offline evaluation of the same passes."""
import json
import os

import pytest
from click.testing import CliRunner

from jist_edge.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("demo") / "out"
    summary = out.parent / "demo.json"
    res = CliRunner().invoke(main, ["demo", "--output", str(out), "--frames", "40", "--img-size", "64", "96",
                                    "--json", str(summary)])
    assert res.exit_code == 0, res.output
    return {"out": str(out), "summary": json.loads(summary.read_text()), "output": res.output}


def test_demo_writes_its_files_and_a_complete_summary(demo):
    s = demo["summary"]
    for sub in ("model/manifest.json", "map/manifest.json", "route/queries.avi", "route/database.avi"):
        assert os.path.exists(os.path.join(demo["out"], sub)), sub
    assert s["random_init"] is True and "RANDOM weights" in demo["output"]
    assert s["run"]["frames"] == s["encoder_frames"]  # every frame encoded exactly once
    windows = s["run"]["frames"] - s["seq_len"] + 1
    for method in ("hnsw", "exact"):
        r = s["recall"][method]
        assert r["evaluated"] + r["without_positive"] == windows
        assert 0.0 <= r["recall"]["1"] <= r["recall"]["5"] <= r["recall"]["10"] <= 100.0


def test_demo_recall_equals_the_offline_evaluation_of_the_same_passes(demo):
    """The live stream (one encoder pass per frame, ring, SeqGeM) and `eval` (batch encoding,
    sliding windows) must give the same exact-search recall on the same two videos."""
    out = demo["out"]
    report = out + "-eval.json"
    route = os.path.join(out, "route")
    res = CliRunner().invoke(main, [
        "eval", "--model", os.path.join(out, "model"), "--database", os.path.join(route, "database.avi"),
        "--database-positions", os.path.join(route, "database.csv"), "--queries", os.path.join(route, "queries.avi"),
        "--query-positions", os.path.join(route, "queries.csv"), "--exact", "--json", report, "--quiet"])
    assert res.exit_code == 0, res.output
    offline = json.loads(open(report).read())
    assert offline["queries"]["evaluated"] == demo["summary"]["recall"]["exact"]["evaluated"]
    assert offline["results"]["exact"]["recall"] == pytest.approx(demo["summary"]["recall"]["exact"]["recall"])


def test_demo_reports_the_route_filter_on_both_passes(demo):
    f = demo["summary"]["filter"]
    assert "Route filter on the streamed query pass" in demo["output"]
    assert "Route filter on a query pass that leaves the map" in demo["output"]
    windows = demo["summary"]["run"]["frames"] - demo["summary"]["seq_len"] + 1
    assert f["query"]["evaluated"] + f["query"]["off_map"] == windows
    assert f["query"]["raw_recall_at_1"] == pytest.approx(demo["summary"]["recall"]["hnsw"]["recall"]["1"])
    assert f["excursions"]["off_map"] > 0  # its detour left the map
    assert sum(f["query"]["states"].values()) == windows
    for path in f["plots"]:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert len(f["plots"]) == 4
