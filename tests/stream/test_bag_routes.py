"""ROS bags as routes: maps built from a ROS 1 bag, a ROS 2 sqlite3 bag and an MCAP equal the image folder's map.

The bags are written with rosbags' own writers from the same frames as the folder: raw
images (the decoded pixels of the folder's JPEG files) and CompressedImage messages
holding the folder's JPEG bytes. Same pixels in, same descriptors out, bit for bit.
"""
import os

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from optional_imports import import_or_skip

import_or_skip("rosbags")

from bag_files import T0, route_topics, stamps, write_bag  # noqa: E402
from map_routes import positions, route_frames  # noqa: E402
from jist_edge.cli import main  # noqa: E402
from jist_edge.maps.store import load_map  # noqa: E402

N = 12


@pytest.fixture(scope="module")
def route(tmp_path_factory):
    """An image folder of JPEGs named @easting@northing@, their bytes, decoded pixels, stamps and positions."""
    root = tmp_path_factory.mktemp("bag_route")
    folder = root / "images"
    folder.mkdir()
    xy = positions(N)
    data, pixels = [], []
    for i, frame in enumerate(route_frames(N)):
        ok, enc = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        name = "@{:.2f}@{:.2f}@frame{:05d}@.jpg".format(xy[i, 0], xy[i, 1], i)
        (folder / name).write_bytes(enc.tobytes())
        data.append(enc.tobytes())
        pixels.append(cv2.imread(str(folder / name), cv2.IMREAD_COLOR))
    return {"root": root, "folder": str(folder), "jpeg": data, "pixels": pixels, "times": stamps(N), "xy": xy}


@pytest.fixture(scope="module")
def folder_map(route, tiny_bundle):
    from jist_edge.maps.build import build_map

    return build_map(tiny_bundle, route["folder"], str(route["root"] / "folder_map"))


def _build(tiny_bundle, bag, out, *extra):
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--bag", bag, "--output", out,
                                    "--quiet"] + list(extra))
    assert res.exit_code == 0, res.output
    return load_map(out)


@pytest.mark.parametrize("kind,images", [("ros1", "pixels"), ("sqlite3", "pixels"), ("bare-mcap", "jpeg"),
                                         ("mcap", "jpeg")])
def test_bag_map_has_the_folder_maps_descriptors(route, folder_map, tiny_bundle, tmp_path, kind, images):
    # positions at twice the image rate, offset by half a frame: interpolated back to each image's stamp
    pos_times = T0 - 0.05 + 0.05 * np.arange(2 * N + 1)
    encoding = "rgb8" if kind == "ros1" else "bgr8"
    bag = write_bag(str(tmp_path / ("drive.bag" if kind == "ros1" else "drive.mcap" if kind == "bare-mcap"
                                    else "drive")), kind,
                    route_topics(route[images], route["times"], route["xy"], encoding, position_times=pos_times))
    place_map = _build(tiny_bundle, bag, str(tmp_path / "map"))
    assert place_map.count == folder_map.count
    assert np.array_equal(np.asarray(place_map.frame_descriptors), np.asarray(folder_map.frame_descriptors))
    assert np.array_equal(np.asarray(place_map.descriptors), np.asarray(folder_map.descriptors))
    np.testing.assert_allclose(place_map.frames.positions, folder_map.frames.positions, atol=0.01)
    drive = place_map.drives[0]
    assert drive["source"]["kind"] == "bag" and drive["source"]["image_topic"] == "/camera/image"
    assert drive["source"]["position_topic"] == "/pose"
    assert place_map.frames.timestamps[3] == pytest.approx(route["times"][3], abs=1e-6)


def test_two_bags_are_two_drives_and_images_outside_the_positions_are_skipped(route, tiny_bundle, tmp_path):
    times = route["times"]
    inner = times[2:-2]  # positions cover only the middle frames: 2 at each end fall outside
    bag1 = write_bag(str(tmp_path / "a.bag"), "ros1", route_topics(route["pixels"], times, route["xy"],
                                                                  position_times=inner))
    bag2 = write_bag(str(tmp_path / "b"), "sqlite3", route_topics(route["pixels"], times, route["xy"], "bgr8"))
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--bag", bag1, "--bag", bag2,
                                    "--output", str(tmp_path / "map"), "--quiet"])
    assert res.exit_code == 0, res.output
    place_map = load_map(str(tmp_path / "map"))
    assert [d["frames"] for d in place_map.drives] == [N - 4, N]
    assert place_map.drives[0]["skipped_frames"] == 4
    assert place_map.drives[0]["source"]["outside_positions"] == 4
    assert np.isfinite(place_map.frames.positions).all()


def test_raw_encodings_mono_and_bayer_decode_like_opencv(tmp_path):
    from jist_edge.stream.sources.bag import BagSource

    frames = route_frames(3)
    times = stamps(3)
    for encoding in ("mono8", "bayer_rggb8", "rgb8"):
        bag = write_bag(str(tmp_path / (encoding + ".bag")), "ros1", route_topics(frames, times, None, encoding))
        got = [f.image for f in BagSource(bag)]
        assert len(got) == 3 and got[0].shape == frames[0].shape
        if encoding == "mono8":
            grey = cv2.cvtColor(frames[1], cv2.COLOR_BGR2GRAY)
            assert np.array_equal(got[1], cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
        elif encoding == "rgb8":
            assert np.array_equal(got[1], frames[1])
        else:  # demosaiced: close to the original away from the borders
            diff = np.abs(got[1][4:-4, 4:-4].astype(int) - frames[1][4:-4, 4:-4].astype(int))
            assert diff.mean() < 20, diff.mean()


def test_navsatfix_becomes_local_metres_and_no_fix_is_skipped(tmp_path):
    from bag_files import fix_msg, image_msg

    from jist_edge.stream.sources.bag import BagSource

    frames = route_frames(4)
    times = stamps(4)
    lat0, lon0 = 48.0, 11.0
    fixes = [(float(t), (lambda i: lambda s, r, t, q: fix_msg(s, r, t, q, lat0 + 1e-5 * i, lon0, -1 if i == 1 else 0))(i))
             for i, t in enumerate(times)]
    images = [(float(t), (lambda im: lambda s, r, t, q: image_msg(s, r, t, q, im))(im)) for t, im in zip(times, frames)]
    bag = write_bag(str(tmp_path / "gps"), "mcap", [("/cam", "sensor_msgs/msg/Image", images),
                                                   ("/fix", "sensor_msgs/msg/NavSatFix", fixes)])
    source = BagSource(bag)
    got = list(source)
    assert source.bag_positions.no_fix == 1
    assert source.position_frame["frame"] == "latlon" and source.position_frame["origin"] == [lat0, lon0]
    assert len(got) == 4
    north = [source.positions[f.index][1] for f in got]
    assert north[0] == 0.0 and north[3] == pytest.approx(3 * 1.113, abs=0.01)  # 1e-5 deg of latitude ~ 1.11 m
    assert north[1] == pytest.approx((north[0] + north[2]) / 2, abs=1e-3)  # interpolated across the NO_FIX


def test_bag_info_lists_topics_types_counts_and_rates(route, tmp_path):
    import json

    bag = write_bag(str(tmp_path / "info.bag"), "ros1", route_topics(route["pixels"], route["times"], route["xy"]))
    res = CliRunner().invoke(main, ["bag", "info", bag, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    topics = {t["topic"]: t for t in info["topics"]}
    assert topics["/camera/image"]["messages"] == N and topics["/camera/image"]["kind"] == "image"
    assert topics["/camera/image"]["rate_hz"] == pytest.approx(10.0, rel=1e-3)
    assert topics["/pose"]["type"] == "geometry_msgs/msg/PoseStamped" and topics["/pose"]["kind"] == "position"
    res = CliRunner().invoke(main, ["bag", "info", bag])
    assert res.exit_code == 0 and "sensor_msgs/Image" in res.output


def test_bag_export_writes_what_the_nano_reads(route, folder_map, tiny_bundle, tmp_path):
    bag = write_bag(str(tmp_path / "drive.bag"), "ros1", route_topics(route["pixels"], route["times"], route["xy"]))
    out = str(tmp_path / "export")
    res = CliRunner().invoke(main, ["bag", "export", bag, "--output", out])
    assert res.exit_code == 0, res.output
    assert len([n for n in os.listdir(out) if n.endswith(".png")]) == N
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", out, "--positions",
                                    os.path.join(out, "positions.csv"), "--output", str(tmp_path / "map"), "--quiet"])
    assert res.exit_code == 0, res.output
    place_map = load_map(str(tmp_path / "map"))
    assert np.array_equal(np.asarray(place_map.frame_descriptors), np.asarray(folder_map.frame_descriptors))
    np.testing.assert_allclose(place_map.frames.positions, folder_map.frames.positions, atol=0.01)
    res = CliRunner().invoke(main, ["bag", "export", bag, "--output", str(tmp_path / "video"), "--format", "video"])
    assert res.exit_code == 0, res.output
    cap = cv2.VideoCapture(str(tmp_path / "video" / "route.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N
    cap.release()
    res = CliRunner().invoke(main, ["bag", "export", bag, "--output", out])  # not empty: refused, kept
    assert res.exit_code != 0 and "not an empty folder" in res.output


def test_the_runtime_imports_rosbags_and_mcap_only_when_a_bag_is_used():
    import subprocess
    import sys

    code = ("import sys, jist_edge.stream.sources.bag, jist_edge.output.bag_writer, jist_edge.output.bag_export, "
            "jist_edge.cli.bag_cmd, jist_edge.cli.dataset_cmd, jist_edge.datasets.robotcar, jist_edge.cli.run_cmd; "
            "print(sorted(m for m in sys.modules if m.startswith(('rosbags', 'mcap'))))")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]"
