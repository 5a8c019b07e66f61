"""Bad bags get one-line errors naming the file and the topic, and nothing is written."""
import os

import numpy as np
import pytest
from click.testing import CliRunner

from optional_imports import import_or_skip

import_or_skip("rosbags")

from bag_files import pose_msg, route_topics, stamps, write_bag  # noqa: E402
from map_routes import positions, route_frames  # noqa: E402
from jist_edge.cli import main  # noqa: E402

N = 8


def _build(tiny_bundle, tmp_path, *args):
    out = str(tmp_path / "map")
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--output", out, "--quiet"] +
                             list(args))
    assert res.exit_code != 0
    assert not os.path.exists(out)
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("Error: ") and "Traceback" not in res.output
    return line


@pytest.fixture
def frames():
    return route_frames(N)


@pytest.mark.parametrize("kind,name", [("ros1", "t.bag"), ("bare-mcap", "t.mcap"), ("sqlite3", "t")])
def test_truncated_bags(tiny_bundle, tmp_path, frames, kind, name):
    bag = write_bag(str(tmp_path / name), kind, route_topics(frames, stamps(N), positions(N)))
    target = bag if kind != "sqlite3" else os.path.join(bag, [f for f in os.listdir(bag) if f.endswith(".db3")][0])
    size = os.path.getsize(target)
    with open(target, "r+b") as handle:
        handle.truncate(size // 2)
    line = _build(tiny_bundle, tmp_path, "--bag", bag)
    assert bag in line or target in line
    assert "truncated" in line


def test_no_image_topic(tiny_bundle, tmp_path):
    poses = [(float(t), (lambda s, r, t, q: pose_msg(s, r, t, q, 1.0, 2.0))) for t in stamps(N)]
    bag = write_bag(str(tmp_path / "p.bag"), "ros1", [("/pose", "geometry_msgs/msg/PoseStamped", poses)])
    line = _build(tiny_bundle, tmp_path, "--bag", bag)
    assert bag in line and "no image topic" in line and "/pose" in line


def test_two_image_topics_need_image_topic(tiny_bundle, tmp_path, frames):
    topics = route_topics(frames, stamps(N), positions(N)) + route_topics(frames, stamps(N), None,
                                                                         image_topic="/camera2/image")
    bag = write_bag(str(tmp_path / "two.bag"), "ros1", topics)
    line = _build(tiny_bundle, tmp_path, "--bag", bag)
    assert bag in line and "/camera/image" in line and "/camera2/image" in line and "--image-topic" in line
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--output", str(tmp_path / "ok"),
                                    "--bag", bag, "--image-topic", "/camera2/image", "--quiet"])
    assert res.exit_code == 0, res.output


def test_an_image_topic_of_an_unknown_message_type(tiny_bundle, tmp_path, frames):
    bag = write_bag(str(tmp_path / "u.bag"), "ros1", route_topics(frames, stamps(N), positions(N)))
    line = _build(tiny_bundle, tmp_path, "--bag", bag, "--image-topic", "/pose")
    assert bag in line and "/pose" in line and "unknown message type" in line
    line = _build(tiny_bundle, tmp_path, "--bag", bag, "--image-topic", "/nope")
    assert bag in line and "no topic /nope" in line


def test_no_overlapping_positions(tiny_bundle, tmp_path, frames):
    later = stamps(N, t0=1700001000.0)  # positions recorded 1000 s after the images
    bag = write_bag(str(tmp_path / "late.bag"), "ros1", route_topics(frames, stamps(N), positions(N),
                                                                     position_times=later))
    line = _build(tiny_bundle, tmp_path, "--bag", bag)
    assert bag in line and "/camera/image" in line and "/pose" in line and "within the positions" in line


def test_not_a_bag_and_missing(tiny_bundle, tmp_path):
    junk = tmp_path / "junk.bag"
    junk.write_bytes(b"#ROSBAG V2.0\nnot really")
    line = _build(tiny_bundle, tmp_path, "--bag", str(junk))
    assert str(junk) in line
    line = _build(tiny_bundle, tmp_path, "--bag", str(tmp_path / "none.bag"))
    assert "not found" in line


def test_a_bag_without_positions_is_refused_by_eval(tiny_bundle, tmp_path, frames):
    bag = write_bag(str(tmp_path / "nopos.bag"), "ros1", route_topics(frames, stamps(N), None))
    res = CliRunner().invoke(main, ["eval", "--model", tiny_bundle.path, "--database", bag, "--queries", bag,
                                    "--quiet"])
    assert res.exit_code != 0 and "no frame positions" in res.output, res.output


def test_eval_database_and_queries_from_bags(tiny_bundle, tmp_path):
    import json

    n = 20
    xy = positions(n)
    db = write_bag(str(tmp_path / "db.bag"), "ros1", route_topics(route_frames(n), stamps(n), xy))
    q = write_bag(str(tmp_path / "q.mcap"), "bare-mcap", route_topics(route_frames(n, shift=2, gain=0.9), stamps(n),
                                                                      xy + 1.0, "bgr8"))
    out = str(tmp_path / "eval.json")
    res = CliRunner().invoke(main, ["eval", "--model", tiny_bundle.path, "--database", db, "--queries", q, "--json",
                                    out, "--quiet"])
    assert res.exit_code == 0, res.output
    report = json.load(open(out))
    assert report["database"]["kind"] == "bag" and report["queries"]["kind"] == "bag"
    assert report["queries"]["evaluated"] == n - 5 + 1
    assert np.isfinite(report["results"]["exact"]["recall"]["1"])
