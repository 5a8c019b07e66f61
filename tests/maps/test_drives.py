"""Several drives in one map: built at once or merged, windows within each drive, one position frame."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.encoder import create_encoder
from jist_edge.cli import main
from jist_edge.errors import JistEdgeError
from jist_edge.fileio import sha256_file
from jist_edge.maps.build import build_map, rebuild_map
from jist_edge.maps.drives import Drive
from jist_edge.maps.merge import merge_maps
from jist_edge.maps.store import DATA_FILES, MANIFEST_FILE, load_map

import map_routes

N1, N2 = 19, 14
# manifest fields that say when and how fast, not what: the only ones two builds of the same routes differ in
TIMING = ("created", "encode_seconds", "manifest_sha256")  # the digest covers the timing fields too


def _strip_timing(obj):
    if isinstance(obj, dict):
        return {k: _strip_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip_timing(v) for v in obj]
    return obj


def same_map_files(a, b):
    """Every data file byte-identical, manifests equal field by field except the timing fields."""
    for name in DATA_FILES:
        assert sha256_file(os.path.join(a, name)) == sha256_file(os.path.join(b, name)), name
    with open(os.path.join(a, MANIFEST_FILE)) as fa, open(os.path.join(b, MANIFEST_FILE)) as fb:
        ma, mb = json.load(fa), json.load(fb)
    assert _strip_timing(ma) == _strip_timing(mb)


@pytest.fixture(scope="module")
def routes(tiny_bundle, tmp_path_factory):
    """Drive 1: a video with an easting/northing CSV. Drive 2: another street as @e@n@-named images."""
    root = tmp_path_factory.mktemp("drives")
    h, w = tiny_bundle.height, tiny_bundle.width
    video = str(root / "day.avi")
    map_routes.write_video(video, map_routes.route_frames(N1, h, w, seed=0))
    pos1 = map_routes.positions(N1)
    map_routes.write_csv(str(root / "day.csv"), [(i, p[0], p[1]) for i, p in enumerate(pos1)])
    frames2 = map_routes.route_frames(N2, h, w, seed=5)
    pos2 = map_routes.positions(N2, offset=1000.0)
    map_routes.write_images(str(root / "other"), frames2, pos2)
    return {"root": root, "video": video, "csv": str(root / "day.csv"), "images": str(root / "other"),
            "pos1": pos1, "pos2": pos2, "encoder": create_encoder(tiny_bundle)}


@pytest.fixture(scope="module")
def both(tiny_bundle, routes, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("both") / "map")
    return build_map(tiny_bundle, [Drive(routes["video"], routes["csv"]), Drive(routes["images"])], out,
                     encoder=routes["encoder"])


def test_windows_stay_inside_each_drive(tiny_bundle, routes, both):
    L = tiny_bundle.seq_len
    assert both.count == (N1 - L + 1) + (N2 - L + 1)
    assert list(both.drive_bounds) == [0, N1 - L + 1, both.count]
    # no sequence holds frames of two drives
    first_drive = both.sequence_frames[:N1 - L + 1]
    second_drive = both.sequence_frames[N1 - L + 1:]
    assert first_drive.max() == N1 - 1 and second_drive.min() == N1
    assert list(both.drive_of([0, N1 - L, N1 - L + 1, both.count - 1, both.count])) == [0, 0, 1, 1, -1]
    assert min(f["row"] for f in both.frames_of(N1 - L + 1)) == N1  # drive 2's first window starts at its frame 0
    assert np.allclose(both.frames.positions, np.vstack([routes["pos1"], routes["pos2"]]))
    assert both.manifest["format_version"] == 2 and len(both.drives) == 2
    assert [s["frames"] for s in both.build_stats] == [N1, N2]


def test_each_drive_is_what_a_one_drive_map_of_it_holds(tiny_bundle, routes, both, tmp_path):
    single = build_map(tiny_bundle, routes["images"], str(tmp_path / "second"), encoder=routes["encoder"])
    b = int(both.drive_bounds[1])
    assert np.array_equal(both.descriptors[b:], single.descriptors)
    assert np.array_equal(np.asarray(both.frame_descriptors)[N1:], np.asarray(single.frame_descriptors))
    assert single.manifest["format_version"] == 1 and list(single.drive_bounds) == [0, single.count]


def test_merge_gives_the_files_of_a_build_of_both(tiny_bundle, routes, both, tmp_path):
    """Byte-identical data files; the manifests differ only in when/how fast (created, encode_seconds)."""
    a = build_map(tiny_bundle, routes["video"], str(tmp_path / "a"), positions=routes["csv"],
                  encoder=routes["encoder"])
    b = build_map(tiny_bundle, routes["images"], str(tmp_path / "b"), encoder=routes["encoder"])
    frames_before = routes["encoder"].frames
    merged = merge_maps([a.path, b.path], str(tmp_path / "merged"))
    assert routes["encoder"].frames == frames_before  # nothing re-encoded
    same_map_files(merged.path, both.path)
    # and a map rebuilt with another L keeps both drives apart
    l3 = rebuild_map(tiny_bundle, merged.path, str(tmp_path / "l3"), seq_len=3)
    assert list(l3.drive_bounds) == [0, N1 - 2, N1 - 2 + N2 - 2]


def test_merge_refuses_other_model_length_or_size(tiny_bundle, alt_bundle, routes, both, tmp_path):
    l3 = rebuild_map(tiny_bundle, both.path, str(tmp_path / "l3"), seq_len=3)
    with pytest.raises(JistEdgeError, match=r"L=5.*L=3") as err:
        merge_maps([both.path, l3.path], str(tmp_path / "out"))
    assert both.path in str(err.value) and l3.path in str(err.value)
    other = build_map(alt_bundle, routes["images"], str(tmp_path / "alt"))
    with pytest.raises(JistEdgeError, match=r"input 64x96.*input 72x100"):
        merge_maps([both.path, other.path], str(tmp_path / "out"))
    # same input size, another model: the manifest's bundle id differs
    manifest_path = os.path.join(str(tmp_path / "alt"), MANIFEST_FILE)
    edited = str(tmp_path / "same-size-other-model")
    _copy_with_manifest(both.path, edited, lambda m: m["bundle"].__setitem__("bundle_id", "0123456789abcdef"))
    with pytest.raises(JistEdgeError, match="model bundle {}.*model bundle 0123456789abcdef".format(
            tiny_bundle.bundle_id)):
        merge_maps([both.path, edited], str(tmp_path / "out"))
    assert not os.path.exists(str(tmp_path / "out")) and os.path.exists(manifest_path)


def _copy_with_manifest(src, dst, edit):
    """A copy whose manifest was edited and re-signed (so only the edited field can be refused)."""
    import shutil

    shutil.copytree(src, dst)
    map_routes.edit_map_manifest(dst, edit)


def _latlon_csv(path, n, lat0, lon0):
    with open(path, "w") as handle:
        handle.write("frame,lat,lon\n")
        for i in range(n):
            handle.write("{},{:.8f},{:.8f}\n".format(i, lat0 + i * 1e-5, lon0))


def test_latlon_and_easting_northing_drives_are_refused(tiny_bundle, routes, tmp_path):
    csv = str(tmp_path / "ll.csv")
    _latlon_csv(csv, N1, 45.0, 7.0)
    with pytest.raises(JistEdgeError, match=r"drive 0 .*lat/lon.*drive 1 .*easting/northing") as err:
        build_map(tiny_bundle, [Drive(routes["video"], csv), Drive(routes["images"])], str(tmp_path / "m"),
                  encoder=routes["encoder"])
    assert routes["images"] in str(err.value) and "\n" not in str(err.value)
    assert not os.path.exists(str(tmp_path / "m"))


def test_latlon_drives_share_one_origin(tiny_bundle, routes, tmp_path):
    """Two lat/lon drives 0.001 deg of latitude apart (~111 m): drive 2 lands ~111 m north of drive 1."""
    c1, c2 = str(tmp_path / "a.csv"), str(tmp_path / "b.csv")
    _latlon_csv(c1, N1, 45.0, 7.0)
    _latlon_csv(c2, N1, 45.001, 7.0)
    m = build_map(tiny_bundle, [Drive(routes["video"], c1), Drive(routes["video"], c2)], str(tmp_path / "m"),
                  encoder=routes["encoder"])
    pos = m.frames.positions
    assert np.allclose(pos[0], [0.0, 0.0]) and abs(pos[N1, 0]) < 1e-6
    assert 110.0 < pos[N1, 1] < 112.5
    assert m.drives[1]["positions"] == {"frame": "latlon", "origin": [45.0, 7.0]}
    # merging the two one-drive maps (each around its own origin) lands the same places
    a = build_map(tiny_bundle, routes["video"], str(tmp_path / "a"), positions=c1, encoder=routes["encoder"])
    b = build_map(tiny_bundle, routes["video"], str(tmp_path / "b"), positions=c2, encoder=routes["encoder"])
    assert np.allclose(b.frames.positions[0], [0.0, 0.0])
    merged = merge_maps([a.path, b.path], str(tmp_path / "merged"))
    assert np.allclose(merged.frames.positions, pos, atol=1e-6)


def test_old_manifest_without_drives_is_one_drive(tiny_bundle, routes, tmp_path):
    m = build_map(tiny_bundle, routes["images"], str(tmp_path / "m"), encoder=routes["encoder"])
    old = str(tmp_path / "old")
    _copy_with_manifest(m.path, old, lambda man: man.pop("drives"))
    loaded = load_map(old, tiny_bundle)
    assert list(loaded.drive_bounds) == [0, loaded.count] and len(loaded.drives) == 1


def test_cli_build_merge_info(tiny_bundle, routes, both, tmp_path):
    runner = CliRunner()
    out = str(tmp_path / "cli")
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--route", routes["video"],
                               "--positions", routes["csv"], "--route", routes["images"], "--positions", "-",
                               "--output", out, "--quiet"])
    assert res.exit_code == 0, res.output
    same_map_files(out, both.path)
    res = runner.invoke(main, ["map", "info", out])
    assert res.exit_code == 0, res.output
    assert "drives" in res.output and routes["images"] in res.output and "0..{}".format(N1 - 5) in res.output
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--route", routes["video"],
                               "--route", routes["images"], "--positions", routes["csv"], "--output",
                               str(tmp_path / "x")])
    assert res.exit_code != 0 and "2 --route but 1 --positions" in res.output
    res = runner.invoke(main, ["map", "merge", out, both.path, "--output", str(tmp_path / "merged")])
    assert res.exit_code == 0, res.output
    assert len(load_map(str(tmp_path / "merged")).drives) == 4
    res = runner.invoke(main, ["map", "merge", out, "--output", str(tmp_path / "one")])
    assert res.exit_code != 0 and "at least two maps" in res.output


def test_eval_against_a_two_drive_map_at_another_length(tiny_bundle, routes, both, tmp_path):
    from jist_edge.evaluation.recall import evaluate

    report = evaluate(tiny_bundle, both.path, routes["images"], seq_len=3, encoder=routes["encoder"])
    # queries are drive 2's own frames: every top-1 lies in drive 2 (ids past the first drive's at L=3)
    assert report["results"]["exact"]["recall"]["1"] == 100.0
    assert report["database"]["sequences"] == (N1 - 2) + (N2 - 2)
    assert [d["sequences"] for d in report["database"]["drives"]] == [N1 - 2, N2 - 2]
