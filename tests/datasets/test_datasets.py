"""`jist-edge dataset import`: MSLS, Nordland and RobotCar fixtures in their documented layouts -> VPR folders."""
import csv
import json
import os

import cv2
import numpy as np
from click.testing import CliRunner

from bag_files import bayer_rggb
from map_routes import route_frames
from jist_edge.cli import main
from jist_edge.positions import positions_from_names, sort_frame_names


def _import(*args):
    res = CliRunner().invoke(main, ["dataset", "import"] + [str(a) for a in args] + ["--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _images(folder):
    return sort_frame_names([n for n in os.listdir(folder) if n.endswith((".jpg", ".png"))])


def _csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        out.writerows(rows)


def _msls_pass(folder, sequences, east0):
    """MSLS's files: images/<key>.jpg, seq_info.csv (an unnamed index column first), raw.csv, postprocessed.csv."""
    os.makedirs(os.path.join(folder, "images"))
    seq_rows, raw_rows, post_rows = [], [], []
    n = 0
    for s, (seq_key, frames, t0) in enumerate(sequences):
        for f in frames:  # listed out of order on purpose: the importer sorts by frame_number
            key = "k{}{}x".format(seq_key, f)
            ok, enc = cv2.imencode(".jpg", route_frames(1, seed=n)[0])
            open(os.path.join(folder, "images", key + ".jpg"), "wb").write(enc.tobytes())
            seq_rows.append([n, key, seq_key, f])
            raw_rows.append([n, key, 12.5 + f * 1e-5, 55.6, 90.0, int(t0 + f * 1000), False])
            post_rows.append([n, key, east0 + 100 * s + 3.0 * f, 6170000.0 + f, 0, False, False, "Forward"])
            n += 1
    _csv(os.path.join(folder, "seq_info.csv"), ["", "key", "sequence_key", "frame_number"], seq_rows)
    _csv(os.path.join(folder, "raw.csv"), ["", "key", "lon", "lat", "ca", "captured_at", "pano"], raw_rows)
    _csv(os.path.join(folder, "postprocessed.csv"),
         ["", "key", "easting", "northing", "unique_cluster", "control_panel", "night", "view_direction"], post_rows)


def test_msls_city_passes_become_vpr_folders_in_sequence_order(tmp_path):
    city = tmp_path / "msls" / "train_val" / "cph"
    # sequence B was captured first; its frames are listed 2, 0, 1
    _msls_pass(str(city / "database"), [("A", [0, 1, 2, 3], 2e12), ("B", [2, 0, 1], 1e12)], 350000.0)
    _msls_pass(str(city / "query"), [("Q", [1, 0, 2], 3e12)], 350001.0)
    report = _import("msls", tmp_path / "msls", "--output", tmp_path / "out")
    assert report["cities"]["cph"]["database"] == {"images": 7, "sequences": 2, "skipped": 0}
    db = _images(str(tmp_path / "out" / "cph" / "database"))
    assert [n.split("@")[7] for n in db] == ["kB0x", "kB1x", "kB2x", "kA0x", "kA1x", "kA2x", "kA3x"]
    pos, missing = positions_from_names(db)
    assert missing == 0 and pos[0].tolist() == [350100.0, 6170000.0] and pos[3].tolist() == [350000.0, 6170000.0]
    src = open(str(city / "database" / "images" / "kA1x.jpg"), "rb").read()
    assert open(str(tmp_path / "out" / "cph" / "database" / db[4]), "rb").read() == src  # bytes kept
    assert len(_images(str(tmp_path / "out" / "cph" / "queries"))) == 3
    rows = list(csv.DictReader(open(str(tmp_path / "out" / "cph" / "database" / "sequences.csv"))))
    assert [(r["sequence_key"], r["frame_number"]) for r in rows][:3] == [("B", "0"), ("B", "1"), ("B", "2")]


def test_msls_without_positions_is_refused_and_nothing_written(tmp_path):
    city = tmp_path / "msls" / "test" / "x"
    _msls_pass(str(city / "database"), [("A", [0, 1], 1e12)], 0.0)
    _msls_pass(str(city / "query"), [("Q", [0, 1], 1e12)], 0.0)
    os.unlink(str(city / "query" / "postprocessed.csv"))
    res = CliRunner().invoke(main, ["dataset", "import", "msls", str(tmp_path / "msls" / "test"), "--output",
                                    str(tmp_path / "out")])
    assert res.exit_code != 0 and "postprocessed.csv" in res.output
    assert not os.path.exists(str(tmp_path / "out"))
    assert [n for n in os.listdir(str(tmp_path)) if n.startswith(".jist-edge")] == []


def test_nordland_frame_index_is_the_place(tmp_path):
    for season in ("summer", "winter", "spring"):
        for section, indices in (("section1", range(1, 4)), ("section2", range(4, 7))):
            folder = tmp_path / "nordland" / season / section
            folder.mkdir(parents=True)
            for i in indices:
                cv2.imwrite(str(folder / "{:05d}.png".format(i)), route_frames(1, seed=i)[0])
    report = _import("nordland", tmp_path / "nordland", "--output", tmp_path / "out")
    assert report["database"] == {"season": "summer", "images": 6}
    db, q = _images(str(tmp_path / "out" / "database")), _images(str(tmp_path / "out" / "queries"))
    assert len(db) == len(q) == 6
    pos_db, _ = positions_from_names(db)
    pos_q, _ = positions_from_names(q)
    assert np.array_equal(pos_db, pos_q)  # frame i of both seasons: the same place
    assert np.allclose(np.diff(pos_db[:, 1]), 2.4) and (pos_db[:, 0] == 0).all()
    assert 10 * 2.4 < 25.0  # frames up to 10 apart are positives, as Nordland is usually scored
    res = CliRunner().invoke(main, ["dataset", "import", "nordland", str(tmp_path / "nordland"), "--output",
                                    str(tmp_path / "o2"), "--query-season", "fall"])
    assert res.exit_code != 0 and "fall" in res.output


def test_robotcar_bayer_pngs_are_demosaiced_and_positioned_from_the_ins(tmp_path):
    run = tmp_path / "2014-12-09-13-21-02"
    cam = run / "mono_left"
    cam.mkdir(parents=True)
    (run / "gps").mkdir()
    t0 = 1418132416000000
    frames = route_frames(5)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(cam / "{}.png".format(t0 + i * 62500)), bayer_rggb(frame))
    # INS at 20 Hz from the second image on: the first image lies outside its span
    _csv(str(run / "gps" / "ins.csv"),
         ["timestamp", "ins_status", "latitude", "longitude", "altitude", "northing", "easting", "down", "utm_zone",
          "velocity_north", "velocity_east", "velocity_down", "roll", "pitch", "yaw"],
         [[t0 + 62500 + k * 50000, "INS_SOLUTION_GOOD", 51.76, -1.26, 110.0, 5735000.0 + k, 620000.0 + 2 * k, -110.0,
           "30U", 0, 0, 0, 0, 0, 0] for k in range(10)])
    report = _import("robotcar", run, "--output", tmp_path / "out", "--camera", "mono_left")
    assert report["images"] == 4 and report["outside_positions"] == 1 and report["pattern"] == "rggb"
    names = _images(str(tmp_path / "out"))
    pos, missing = positions_from_names(names)
    assert missing == 0
    # image 2 is 62500 us after the first INS row: 1.25 rows of 50000 us
    assert pos[1].tolist() == [620000.0 + 2 * 1.25, 5735000.0 + 1.25]
    img = cv2.imread(str(tmp_path / "out" / names[1]))
    diff = np.abs(img[4:-4, 4:-4].astype(int) - frames[2][4:-4, 4:-4].astype(int))
    assert img.shape == frames[2].shape and diff.mean() < 20  # demosaiced back to colour
