"""Bad input across commands: one line naming the file or option, exit 1, no traceback,
and nothing good replaced by something half-written. Real bundle, real map, real files."""
import os

import pytest
from optional_imports import import_or_skip
from click.testing import CliRunner

from jist_edge.cli import main

from map_routes import positions, route_frames, write_images

import_or_skip("torch")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_bundle):
    """An image route (database and queries) and a map of its database pass."""
    from jist_edge.maps.build import build_map

    root = tmp_path_factory.mktemp("cli_errors")
    db = str(root / "db")
    queries = str(root / "queries")
    write_images(db, route_frames(12, seed=5), positions(12))
    write_images(queries, route_frames(10, seed=5, shift=2), positions(10, offset=1.0))
    place_map = build_map(tiny_bundle, db, str(root / "map"))
    blocker = root / "a_file"
    blocker.write_text("not a folder")
    return {"db": db, "queries": queries, "map": place_map.path, "blocker": str(blocker)}


def _fails_with_one_line(res, *fragments):
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    error_lines = [line for line in res.output.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1, res.output
    for fragment in fragments:
        assert fragment in error_lines[0], res.output


def test_outputs_that_cannot_be_written_are_one_line_errors(tiny_bundle, setup, tmp_path):
    under_file = os.path.join(setup["blocker"], "sub")
    runner = CliRunner()
    empty = tmp_path / "no_images"
    empty.mkdir()
    # refused before the route is read (an empty folder would be the error otherwise)
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", str(empty),
                               "--output", os.path.join(under_file, "map"), "--quiet"])
    _fails_with_one_line(res, "cannot write", "a_file is a file, not a folder")
    res = runner.invoke(main, ["eval", "--model", tiny_bundle.path, "--database", setup["db"],
                               "--queries", setup["queries"], "--quiet", "--json", os.path.join(under_file, "e.json")])
    _fails_with_one_line(res, "a_file is a file, not a folder")
    assert "recall" not in res.output.lower()  # refused before evaluating
    res = runner.invoke(main, ["run", "--model", tiny_bundle.path, "--map", setup["map"], "--images",
                               setup["queries"], "--quiet", "--output", os.path.join(setup["blocker"], "r.jsonl")])
    _fails_with_one_line(res, "r.jsonl")
    with open(setup["blocker"]) as handle:
        assert handle.read() == "not a folder"


@pytest.mark.parametrize("args", [
    ["synth", "--length", "nan"],
    ["synth", "--frames", "5", "--spacing", "inf"],
    ["eval", "--database", "x", "--queries", "y", "--threshold", "nan"],
    ["demo", "--threshold", "-inf"],
    ["demo", "--threshold", "-5"],
])
def test_non_finite_or_negative_distances_are_refused_before_any_work(args, tmp_path):
    res = CliRunner().invoke(main, args + ["--workspace", str(tmp_path)] if args[0] != "eval" else args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "Invalid value for '--" in res.output
    assert os.listdir(str(tmp_path)) == []


def test_a_map_given_as_model_and_a_bundle_given_as_map_are_named_as_such(tiny_bundle, setup):
    runner = CliRunner()
    res = runner.invoke(main, ["run", "--model", setup["map"], "--map", setup["map"], "--images", setup["queries"]])
    _fails_with_one_line(res, "format is 'jist-edge-map'", "not a model bundle")
    res = runner.invoke(main, ["map", "info", tiny_bundle.path])
    _fails_with_one_line(res, "format is 'jist-edge-bundle'", "not a map folder")


@pytest.mark.parametrize("command", [["run", "--map", "MAP"], ["map", "build", "--output", "OUT"]])
def test_images_must_be_a_folder_and_video_a_file(command, tiny_bundle, setup, tmp_path):
    """run used to open a file given as --images as a video (and a folder given as --video as images)."""
    args = [setup["map"] if a == "MAP" else str(tmp_path / "m") if a == "OUT" else a for a in command]
    runner = CliRunner()
    res = runner.invoke(main, args + ["--model", tiny_bundle.path, "--images", setup["blocker"]])
    _fails_with_one_line(res, "--images must be a folder", "a_file")
    res = runner.invoke(main, args + ["--model", tiny_bundle.path, "--video", setup["db"]])
    _fails_with_one_line(res, "--video must be a file", "use --images")
    assert not os.path.exists(str(tmp_path / "m"))


def test_demo_refuses_a_folder_it_did_not_make(tmp_path):
    from click.testing import CliRunner

    from jist_edge.cli import main

    precious = tmp_path / "ws" / "model"
    precious.mkdir(parents=True)
    (precious / "manifest.json").write_text("{}")
    res = CliRunner().invoke(main, ["demo", "--output", str(tmp_path / "ws"), "--frames", "20"])
    assert res.exit_code != 0 and "--force" in res.output and "Traceback" not in res.output
    assert (precious / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["model"]


def test_calibrate_defaults_to_the_workspace_model(tmp_path):
    from click.testing import CliRunner

    from jist_edge.cli import main

    calib = tmp_path / "calib"
    calib.mkdir()
    res = CliRunner().invoke(main, ["calibrate", "--calibration", str(calib), "--workspace", str(tmp_path / "ws")])
    assert res.exit_code != 0 and str(tmp_path / "ws" / "model") in res.output and "Traceback" not in res.output
