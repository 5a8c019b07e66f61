"""Hostile maps and routes (issue 21): re-signed maps with wrong types or NaN in their distance statistics
and drive records, positions CSVs that leave frames without a position or hold absurd coordinates, a route
with no extent, an option given twice, a map file that is a FIFO. Real maps built by the real builder."""
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.cli import main
from jist_edge.errors import IntegrityError, JistEdgeError
from jist_edge.fileio import file_record

from map_routes import edit_map_manifest, positions, route_frames, write_csv, write_images


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_bundle):
    from jist_edge.maps.build import build_map

    root = tmp_path_factory.mktemp("hostile_maps")
    db = str(root / "db")
    write_images(db, route_frames(30, seed=3), positions(30))
    return {"db": db, "map": build_map(tiny_bundle, db, str(root / "map")).path, "root": root}


def _copy(built, tmp_path):
    out = str(tmp_path / "map")
    shutil.copytree(built["map"], out)
    return out


def _edit_stats(map_dir, edit):
    from jist_edge.maps.store import STATS_FILE

    path = os.path.join(map_dir, STATS_FILE)
    stats = json.load(open(path))
    edit(stats)
    os.unlink(path)
    with open(path, "w") as handle:
        handle.write(json.dumps(stats))  # NaN written as NaN: what a hand edit gives
    record = file_record(path)
    edit_map_manifest(map_dir, lambda m: m["files"].__setitem__(STATS_FILE, record))


@pytest.mark.parametrize("edit,fragment", [
    (lambda s: s["confuser_best"].__setitem__("p50", float("nan")), "confuser_best.p50"),
    (lambda s: s["confuser_best"].__setitem__("p5", "12"), "confuser_best.p5"),
    (lambda s: s.__setitem__("next_place", [1, 2]), "next_place"),
    (lambda s: s.__setitem__("exclusion", [1]), "exclusion"),
    (lambda s: s.__setitem__("k", "3"), "'k'"),
    (lambda s: s.__setitem__("place_spacing_m", float("inf")), "place_spacing_m"),
])
def test_distance_stats_with_wrong_values_are_one_line(tiny_bundle, built, tmp_path, edit, fragment):
    from jist_edge.filter.distance_stats import map_distance_stats
    from jist_edge.maps.store import load_map

    out = _copy(built, tmp_path)
    _edit_stats(out, edit)
    with pytest.raises(IntegrityError) as info:
        map_distance_stats(load_map(out))
    assert fragment in str(info.value) and "distance_stats" in str(info.value) and "\n" not in str(info.value)
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", out, "--images", built["db"],
                                    "--output", str(tmp_path / "r.jsonl"), "--quiet"])
    assert res.exit_code == 1 and "Traceback" not in res.output and fragment in res.output, res.output


@pytest.mark.parametrize("edit,fragment", [
    (lambda d: d.__setitem__("positions", {"frame": "latlon"}), "origin"),
    (lambda d: d.__setitem__("positions", {"frame": "latlon", "origin": "48.1,11.5"}), "origin"),
    (lambda d: d.__setitem__("positions", {"frame": "latlon", "origin": [float("nan"), 1]}), "origin[0]"),
    (lambda d: d.__setitem__("source", "a string"), "'source'"),
    (lambda d: d.__setitem__("positions", "metric"), "'positions'"),
    (lambda d: d.__setitem__("skipped_frames", -3), "skipped_frames"),
])
def test_drive_records_with_wrong_types_are_one_line(built, tmp_path, edit, fragment):
    from jist_edge.maps.store import load_map

    out = _copy(built, tmp_path)
    edit_map_manifest(out, lambda m: edit(m["drives"][0]))
    with pytest.raises(IntegrityError) as info:
        load_map(out)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    for argv in (["map", "info", out], ["map", "merge", out, out, "--output", str(tmp_path / "merged")]):
        res = CliRunner().invoke(main, argv)
        assert res.exit_code == 1 and "Traceback" not in res.output and fragment in res.output, (argv, res.output)


def _build(tiny_bundle, images, tmp_path, *extra):
    return CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", images, "--output",
                                     str(tmp_path / "out"), "--quiet"] + list(extra))


def test_positions_csv_leaving_frames_without_a_position_is_refused(tiny_bundle, tmp_path):
    images = str(tmp_path / "images")
    names = write_images(images, route_frames(20, seed=4))
    csv = str(tmp_path / "other.csv")
    write_csv(csv, [(n, float(i), 7.0) for i, n in enumerate(names[:13])])  # 7 frames not in it
    res = _build(tiny_bundle, images, tmp_path, "--positions", csv)
    assert res.exit_code == 1 and "7 of 20 frames" in res.output and "--allow-missing-positions" in res.output
    assert not (tmp_path / "out").exists()
    res = _build(tiny_bundle, images, tmp_path, "--positions", csv, "--allow-missing-positions")
    assert res.exit_code == 0 and "7 of 20 frames have no position" in res.output, res.output


@pytest.mark.parametrize("value", ["1e308", "-1e308", "2e8"])
def test_absurd_coordinates_are_refused_naming_the_row(tiny_bundle, tmp_path, value):
    images = str(tmp_path / "images")
    names = write_images(images, route_frames(10, seed=4))
    csv = str(tmp_path / "p.csv")
    write_csv(csv, [(n, value if i == 4 else float(i), 1.0) for i, n in enumerate(names)])
    res = _build(tiny_bundle, images, tmp_path, "--positions", csv)
    assert res.exit_code == 1 and "line 6" in res.output and "plausible" in res.output, res.output
    assert "Traceback" not in res.output and "overflow" not in res.output


def test_absurd_coordinates_in_file_names_are_refused(tiny_bundle, tmp_path):
    images = str(tmp_path / "images")
    import cv2

    os.makedirs(images)
    for i, frame in enumerate(route_frames(8, seed=4)):
        assert cv2.imwrite(os.path.join(images, "@{}@1e300@frame{:05d}@.png".format(i, i)), frame)
    res = _build(tiny_bundle, images, tmp_path)
    assert res.exit_code == 1 and "plausible" in res.output and "Traceback" not in res.output, res.output


def test_a_route_with_no_extent_is_refused(tiny_bundle, tmp_path):
    images = str(tmp_path / "images")
    write_images(images, route_frames(12, seed=4), np.tile([[100.0, 200.0]], (12, 1)))
    res = _build(tiny_bundle, images, tmp_path)
    assert res.exit_code == 1 and "no extent" in res.output and "Traceback" not in res.output, res.output


@pytest.mark.parametrize("argv,name", [
    (["map", "build", "--images", "A", "--images", "B"], "--images"),
    (["map", "build", "--video=a.avi", "--video", "b.avi"], "--video"),
    (["run", "--map", "a", "--map=b", "--images", "."], "--map"),
    (["export", "--random-init", "--img-size", "64", "96", "--img-size", "32", "32"], "--img-size"),
])
def test_an_option_that_takes_one_value_refuses_a_second(argv, name):
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2 and "{} given twice".format(name) in res.output, res.output


def test_repeatable_options_still_repeat(tiny_bundle, tmp_path):
    res = CliRunner().invoke(main, ["map", "build", "--route", "nope1", "--route", "nope2"])
    assert "given twice" not in res.output and "nope1" in res.output


def test_a_map_file_that_is_a_fifo_is_not_a_regular_file(built, tmp_path):
    from jist_edge.maps.store import load_map

    out = _copy(built, tmp_path)
    index = os.path.join(out, "index.hnsw")
    os.unlink(index)
    os.mkfifo(index)
    with pytest.raises(JistEdgeError, match="not a regular file"):
        load_map(out)


def test_a_map_with_absurd_positions_is_refused_at_load(built, tmp_path):
    from jist_edge.maps.store import load_map

    out = _copy(built, tmp_path)
    path = os.path.join(out, "frame_positions.npy")
    values = np.load(path)
    values[3, 0] = 1e308
    os.unlink(path)
    np.save(path, values)
    record = file_record(path)
    edit_map_manifest(out, lambda m: m["files"].__setitem__("frame_positions.npy", record))
    with pytest.raises(IntegrityError, match="frame_positions.npy: row 3"):
        load_map(out)
