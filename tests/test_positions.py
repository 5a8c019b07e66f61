"""Positions from VPR file names and CSVs, and the frame order of an image folder."""
import math
import os
import random

import numpy as np
import pytest

from jist_edge.errors import JistEdgeError
from jist_edge.positions import (
    order_key,
    position_from_name,
    positions_for_names,
    positions_from_names,
    read_positions_csv,
    sort_frame_names,
    write_positions_csv,
)


def test_position_round_trips_through_vpr_names():
    rng = random.Random(3)
    for _ in range(50):
        e, n = rng.uniform(1e5, 9e5), rng.uniform(0, 9e6)
        name = "{:06d}@{:.2f}@{:.2f}@@.jpg".format(rng.randrange(10 ** 6), e, n)
        got = position_from_name(os.path.join("some", "dir", name))
        assert got is not None
        assert abs(got[0] - e) <= 0.005 and abs(got[1] - n) <= 0.005


def test_full_vpr_name_and_names_without_positions():
    full = "@0543256.96@4178906.93@10@S@037.75643@-122.40931@pano@@@@@@201311@@.jpg"
    assert position_from_name(full) == (543256.96, 4178906.93)
    for bad in ("frame_0001.jpg", "a@b@c@.jpg", "x@12.5@.jpg", "x@nan@3@.jpg", "x@1@inf@.jpg", "x@12.5"):
        assert position_from_name(bad) is None, bad


def test_positions_from_names_marks_missing_rows():
    names = ["0@10@20@@.jpg", "noise.jpg", "2@30.5@-40@@.jpg"]
    pos, missing = positions_from_names(names)
    assert pos.dtype == np.float64 and pos.shape == (3, 2)
    assert missing == 1
    assert np.isnan(pos[1]).all()
    np.testing.assert_array_equal(pos[[0, 2]], [[10, 20], [30.5, -40]])


def test_order_is_natural_by_name_without_timestamps():
    names = ["img_10.jpg", "img_9.jpg", "img_100.jpg", "img_1.jpg"]
    assert sort_frame_names(names) == ["img_1.jpg", "img_9.jpg", "img_10.jpg", "img_100.jpg"]
    padded = ["{:06d}@1@2@@.jpg".format(i) for i in (5, 120, 7, 0)]
    assert sort_frame_names(padded) == sorted(padded)
    stamps = ["1650000000123.jpg", "999999999999.jpg", "1650000000009.jpg"]
    assert sort_frame_names(stamps) == ["999999999999.jpg", "1650000000009.jpg", "1650000000123.jpg"]
    assert order_key("a2b") < order_key("a10b")


def _vpr(name_prefix, stamp):
    fields = [name_prefix, "1.0", "2.0"] + [""] * 10 + [stamp, "", ".jpg"]
    return "@".join(fields)


def test_order_follows_the_vpr_timestamp_field_when_every_name_has_one():
    names = [_vpr("a", "300"), _vpr("b", "100"), _vpr("c", "200.5")]
    assert sort_frame_names(names) == [names[1], names[2], names[0]]
    # One name without a timestamp: the whole folder falls back to name order.
    mixed = names + [_vpr("0", "")]
    assert sort_frame_names(mixed) == sorted(mixed, key=order_key)


def test_csv_easting_northing_round_trip(tmp_path):
    path = str(tmp_path / "pos.csv")
    rows = [(i, 500000.0 + 1.5 * i, 4000000.0 - 0.25 * i) for i in range(20)]
    assert write_positions_csv(path, rows) == 20
    table = read_positions_csv(path)
    assert sorted(table) == list(range(20))
    for i, e, n in rows:
        assert table[i] == (e, n)
    names = ["{}.jpg".format(i) for i in range(3)]
    write_positions_csv(path, [(n, i, -i) for i, n in enumerate(names)])
    table = read_positions_csv(path)
    pos, missing = positions_for_names(["dir/1.jpg", "dir/2.jpg", "dir/9.jpg"], table)
    assert missing == 1
    np.testing.assert_array_equal(pos[:2], [[1, -1], [2, -2]])


def _haversine(lat1, lon1, lat2, lon2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


@pytest.mark.parametrize("lat0,lon0", [(45.07, 7.68), (-33.9, 151.2), (64.1, -21.9)])
def test_csv_lat_lon_gives_metres(tmp_path, lat0, lon0):
    rng = random.Random(int(abs(lat0) * 100))
    points = [(lat0, lon0)] + [(lat0 + rng.uniform(-0.003, 0.003), lon0 + rng.uniform(-0.004, 0.004)) for _ in range(8)]
    path = tmp_path / "ll.csv"
    path.write_text("frame,lat,lon\n" + "".join("f{}.jpg,{!r},{!r}\n".format(i, a, b) for i, (a, b) in enumerate(points)))
    table = read_positions_csv(str(path))
    assert table["f0.jpg"] == (0.0, 0.0)
    checked = 0
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            ref = _haversine(points[i][0], points[i][1], points[j][0], points[j][1])
            (e1, n1), (e2, n2) = table["f{}.jpg".format(i)], table["f{}.jpg".format(j)]
            got = math.hypot(e1 - e2, n1 - n2)
            if ref > 50:
                assert abs(got - ref) / ref < 0.01, (i, j, got, ref)
                checked += 1
    assert checked > 10
    # Directions: north is +northing, east is +easting.
    e, n = table["f1.jpg"]
    assert (n > 0) == (points[1][0] > lat0) and (e > 0) == (points[1][1] > lon0)


def test_csv_header_is_case_and_order_free_with_extra_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Northing, Easting ,frame,speed\n10,20,0,3\n\n11,21,1,3\n")
    assert read_positions_csv(str(path)) == {0: (20.0, 10.0), 1: (21.0, 11.0)}


@pytest.mark.parametrize(
    "body,line,words",
    [
        ("frame,easting,northing\n0,1,2\n1,abc,3\n", 3, "abc"),
        ("frame,easting,northing\n0,1,2\n\n1,2\n", 4, "fields"),
        ("frame,easting,northing\n0,1,2\n0,2,3\n", 3, "twice"),
        ("frame,lat,lon\n0,45,7\n1,95,7\n", 3, "range"),
        ("frame,easting,northing\n0,1,nan\n", 2, "finite"),
        ("frame,easting,northing\n,1,2\n", 2, "empty frame"),
    ],
)
def test_csv_bad_rows_name_file_and_line(tmp_path, body, line, words):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(JistEdgeError) as info:
        read_positions_csv(str(path))
    message = str(info.value)
    assert str(path) in message and "line {}".format(line) in message and words in message


@pytest.mark.parametrize(
    "body,words",
    [
        ("frame,x,y\n0,1,2\n", "frame,easting,northing or frame,lat,lon"),
        ("easting,northing\n1,2\n", "frame,easting,northing or frame,lat,lon"),
        ("", "empty"),
        ("frame,easting,northing\n", "no positions"),
    ],
)
def test_csv_unknown_header_or_no_rows(tmp_path, body, words):
    path = tmp_path / "h.csv"
    path.write_text(body)
    with pytest.raises(JistEdgeError) as info:
        read_positions_csv(str(path))
    assert str(path) in str(info.value) and words in str(info.value)


def test_csv_missing_file(tmp_path):
    with pytest.raises(JistEdgeError, match="cannot be read"):
        read_positions_csv(str(tmp_path / "nope.csv"))


def test_write_positions_csv_is_atomic_on_error(tmp_path):
    path = str(tmp_path / "p.csv")
    write_positions_csv(path, [(0, 1.0, 2.0)])

    def rows():
        yield (1, 5.0, 6.0)
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_positions_csv(path, rows())
    assert read_positions_csv(path) == {0: (1.0, 2.0)}
    assert os.listdir(str(tmp_path)) == ["p.csv"]
