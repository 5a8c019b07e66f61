"""`run --bag ... --output-bag out.mcap`: one pose with covariance per result, read back with mcap's own readers."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from optional_imports import import_or_skip

import_or_skip("rosbags")
import_or_skip("mcap_ros2")

from bag_files import fix_msg, image_msg, route_topics, stamps, write_bag  # noqa: E402
from map_routes import positions, route_frames  # noqa: E402
from jist_edge.cli import main  # noqa: E402

N = 14


def _read(path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        return [(channel.topic, schema.name, message.log_time, decoded)
                for schema, channel, message, decoded in reader.iter_decoded_messages()]


@pytest.fixture(scope="module")
def drive(tmp_path_factory, tiny_bundle):
    root = tmp_path_factory.mktemp("out_bag")
    frames = route_frames(N)
    bag = write_bag(str(root / "drive.bag"), "ros1", route_topics(frames, stamps(N), positions(N)))
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--bag", bag, "--output",
                                    str(root / "map"), "--quiet"])
    assert res.exit_code == 0, res.output
    query = write_bag(str(root / "query.mcap"), "bare-mcap", route_topics(frames, stamps(N, t0=1800000000.0), None,
                                                                          "bgr8"))
    return {"root": root, "bag": bag, "map": str(root / "map"), "query": query, "frames": frames}


def test_run_bag_writes_one_pose_with_covariance_per_result(drive, tiny_bundle, tmp_path):
    out, lines = str(tmp_path / "out.mcap"), str(tmp_path / "run.jsonl")
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", drive["map"], "--bag", drive["query"],
                                    "--output", lines, "--output-bag", out, "--quiet"])
    assert res.exit_code == 0, res.output
    results = [json.loads(line) for line in open(lines)]
    assert len(results) == N
    messages = _read(out)
    poses = [m for m in messages if m[0] == "/jist_edge/pose"]
    status = [m for m in messages if m[0] == "/jist_edge/status"]
    assert len(poses) == len(status) == len(results)
    assert not [m for m in messages if m[0] == "/jist_edge/fix"]  # the map's positions are metres, not lat/lon
    for (topic, schema, log_time, msg), result in zip(poses, results):
        assert schema == "geometry_msgs/msg/PoseWithCovarianceStamped" and msg.header.frame_id == "map"
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        assert stamp == pytest.approx(result["timestamp"], abs=1e-6)  # the frame's capture time
        cov = np.array(msg.pose.covariance).reshape(6, 6)
        assert cov[0, 0] > 0 and cov[1, 1] > 0 and np.linalg.det(cov[:2, :2]) > 0
        est = result["estimate"]
        if est.get("covariance_m2") is not None:
            assert np.allclose(cov[:2, :2], est["covariance_m2"])
            assert [msg.pose.pose.position.x, msg.pose.pose.position.y] == pytest.approx(est["position"])
    full = [r for r in results if not r["partial"]]
    assert full and all(np.linalg.det(np.array(r["estimate"]["covariance_m2"])) > 0 for r in full)
    states = [s[3].status[0].values[0].value for s in status]
    assert states[0] == "initializing" and set(states) <= {"initializing", "tracking", "lost"}


def test_a_failed_run_leaves_an_existing_output_bag_byte_identical(drive, tiny_bundle, tmp_path):
    out = tmp_path / "out.mcap"
    out.write_bytes(b"precious")
    empty = write_bag(str(tmp_path / "broken.bag"), "ros1", route_topics(
        [np.zeros((1, 1, 3), np.uint8)] * 3, stamps(3), None, "bgr8"))  # every frame unusable
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", drive["map"], "--bag", empty,
                                    "--output-bag", str(out), "--quiet"])
    assert res.exit_code != 0 and "no usable frame" in res.output
    assert out.read_bytes() == b"precious"
    assert [n for n in os.listdir(str(tmp_path)) if n.startswith(".jist-edge")] == []


def test_lat_lon_maps_also_get_navsatfix(tiny_bundle, tmp_path):
    frames = route_frames(8)
    times = stamps(8)
    fixes = [(float(t), (lambda i: lambda s, r, t, q: fix_msg(s, r, t, q, 48.0 + 2e-5 * i, 11.0))(i))
             for i, t in enumerate(times)]
    images = [(float(t), (lambda im: lambda s, r, t, q: image_msg(s, r, t, q, im))(im)) for t, im in zip(times, frames)]
    bag = write_bag(str(tmp_path / "gps.bag"), "ros1", [("/cam", "sensor_msgs/msg/Image", images),
                                                       ("/fix", "sensor_msgs/msg/NavSatFix", fixes)])
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--bag", bag, "--output",
                                    str(tmp_path / "map"), "--quiet"])
    assert res.exit_code == 0, res.output
    out = str(tmp_path / "out.mcap")
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", str(tmp_path / "map"), "--bag", bag,
                                    "--output-bag", out, "--quiet", "--output", str(tmp_path / "r.jsonl")])
    assert res.exit_code == 0, res.output
    fix = [m[3] for m in _read(out) if m[0] == "/jist_edge/fix"]
    assert len(fix) == 8
    assert all(47.99 < f.latitude < 48.01 and 10.99 < f.longitude < 11.01 for f in fix)
    assert all(f.position_covariance[0] > 0 for f in fix)


def test_output_bag_needs_the_filter_and_a_writable_place(drive, tiny_bundle, tmp_path):
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", drive["map"], "--bag", drive["query"],
                                    "--output-bag", str(tmp_path / "o.mcap"), "--no-filter"])
    assert res.exit_code != 0 and "--no-filter" in res.output
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", drive["map"], "--bag", drive["query"],
                                    "--output-bag", str(tmp_path)])
    assert res.exit_code != 0 and "--output-bag" in res.output


def test_realtime_replays_at_the_recorded_rate(drive, tiny_bundle, tmp_path):
    import time

    start = time.time()
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", drive["map"], "--bag", drive["query"],
                                    "--realtime", "--quiet", "--output", str(tmp_path / "r.jsonl")])
    assert res.exit_code == 0, res.output
    assert time.time() - start >= 0.9 * (N - 1) * 0.1  # the bag spans 1.3 s at 10 Hz
    assert len(open(str(tmp_path / "r.jsonl")).readlines()) >= 1
