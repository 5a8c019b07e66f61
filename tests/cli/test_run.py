"""The streaming runtime end to end: real bundle, real map, real MJPG videos, real ONNX Runtime."""
import json
import os

import cv2
import numpy as np
import pytest
from optional_imports import import_or_skip
from click.testing import CliRunner

from jist_edge.cli import main
from jist_edge.pipeline.localizer import Localizer
from jist_edge.maps.store import load_map

import_or_skip("torch")


def _rss_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def route(synth_route):
    """A synthetic route as MJPG videos, and a map of its database pass built offline."""
    return synth_route


def test_streamed_descriptors_equal_offline_map_and_each_frame_is_encoded_once(tiny_bundle, route):
    data, place_map = route
    loc = Localizer(tiny_bundle, load_map(place_map.path, bundle=tiny_bundle), backend="onnxruntime", exact=True)
    results = list(loc.stream(data["database"]))
    L = place_map.seq_len
    assert len(results) == len(place_map.frames) == loc.encoder.frames
    assert [r.partial for r in results[:L]] == [True] * (L - 1) + [False]
    assert [r.window_size for r in results[:L + 1]] == list(range(1, L + 1)) + [L]
    full = results[L - 1:]
    streamed = np.stack([r.descriptor for r in full])
    assert streamed.shape == place_map.descriptors.shape
    assert np.abs(streamed - place_map.descriptors).max() <= 1e-5
    # every full window finds itself first in the map it was built into (exact search)
    assert [r.best.seq_id for r in full] == list(range(place_map.count))
    assert all(r.best.distance < 1e-6 for r in full)


def test_partial_windows_equal_seqgem_of_the_frames_so_far(tiny_bundle, route):
    from jist_edge.encoder.seqgem import seqgem

    data, place_map = route
    loc = Localizer(tiny_bundle, place_map, backend="onnxruntime")
    frames = []
    for result in loc.stream(data["queries"], max_frames=3):
        frames.append(loc.encoder.encode(loc.preprocess(loc.last_image)[None])[0])
        assert np.abs(result.descriptor - seqgem(np.stack(frames), tiny_bundle.seqgem_p)).max() < 1e-5


def test_run_cli_writes_one_json_line_per_frame(tiny_bundle, route, tmp_path):
    data, place_map = route
    out = tmp_path / "run.jsonl"
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--video",
                                    data["queries"], "--top-k", "3", "--output", str(out), "--max-frames", "12"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 12
    assert [line["frame"] for line in lines] == list(range(12))
    first = lines[-1]
    assert set(first["latency_ms"]) >= {"capture_wait", "preprocess", "encode", "seqgem", "match", "total"}
    assert len(first["top_k"]) == 3 and first["match"] == first["top_k"][0]
    assert len(first["match"]["frames"]) == place_map.seq_len and len(first["match"]["position"]) == 2
    assert first["partial"] is False and lines[0]["partial"] is True
    assert "Run summary" in res.output and "frames 12" in res.output

    # stdout that is not a terminal gets the JSON lines
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--video",
                                    data["queries"], "--max-frames", "2", "--quiet"])
    assert res.exit_code == 0
    assert [json.loads(line)["frame"] for line in res.stdout.splitlines()] == [0, 1]


def test_run_counts_unreadable_images_even_after_the_last_result(tiny_bundle, route, tmp_path):
    _, place_map = route
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        assert cv2.imwrite(str(folder / "f{}.png".format(i)), np.full((64, 96, 3), 40 * i + 20, np.uint8))
    (folder / "f3.png").write_bytes(b"")
    (folder / "f4.png").write_bytes(b"\x89PNG not really")
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--images",
                                    str(folder), "--output", str(tmp_path / "r.jsonl")])
    assert res.exit_code == 0, res.output
    assert "frames 3 " in res.output and "skipped 2 " in res.output

    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--images",
                                    str(only_bad), "--output", str(tmp_path / "r2.jsonl")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "no usable frame" in res.output and "(1 skipped" in res.output and "Run summary" not in res.output


def test_run_refuses_a_map_of_another_bundle(alt_bundle, route):
    data, place_map = route
    res = CliRunner().invoke(main, ["run", "--model", alt_bundle.path, "--map", place_map.path, "--video",
                                    data["queries"]])
    assert res.exit_code != 0
    assert alt_bundle.bundle_id in res.output and place_map.bundle_id in res.output


def test_run_says_which_command_makes_a_missing_model_or_map(tmp_path, tiny_bundle):
    res = CliRunner().invoke(main, ["run", "--camera", "0", "--workspace", str(tmp_path)])
    assert res.exit_code != 0 and "jist-edge export" in res.output
    res = CliRunner().invoke(main, ["run", "--camera", "0", "--model", tiny_bundle.path, "--workspace", str(tmp_path)])
    assert res.exit_code != 0 and "jist-edge map build" in res.output


def test_display_without_a_screen_is_skipped_with_a_message(tiny_bundle, route, monkeypatch):
    data, place_map = route
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--video",
                                    data["queries"], "--display", "--max-frames", "2", "--output", os.devnull])
    assert res.exit_code == 0, res.output
    assert "--display skipped" in res.output


def test_truncated_video_is_a_clean_partial_run(tiny_bundle, route, tmp_path):
    data, place_map = route
    blob = open(data["queries"], "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(blob[: len(blob) * 2 // 3])
    out = tmp_path / "cut.jsonl"
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--video",
                                    str(cut), "--output", str(out)])
    assert res.exit_code == 0, res.output
    n = len(out.read_text().splitlines())
    total = int(cv2.VideoCapture(data["queries"]).get(cv2.CAP_PROP_FRAME_COUNT))
    assert 0 < n < total


@pytest.mark.slow
def test_soak_memory_flat_and_reconnects_continue(tiny_bundle, route):
    """Several thousand frames from a 'camera' that drops at the end of every clip and is reopened."""
    from jist_edge.stream.sources import LiveCaptureSource

    data, place_map = route
    source = LiveCaptureSource("test camera", lambda: cv2.VideoCapture(data["queries"]), max_retries=2,
                               backoff_s=0.001, backoff_max_s=0.002)
    loc = Localizer(tiny_bundle, place_map, backend="onnxruntime")
    ring_buffer = loc.ring._buf
    rss = []
    n = 0
    for n, result in enumerate(loc.stream(source, max_frames=3000), 1):
        if n in (500, 3000):
            rss.append(_rss_bytes())
    source.close()
    assert n == 3000
    assert source.reconnects >= 3000 // 40 - 1  # the clip has fewer than 40 frames: many drops, run went on
    # every reopen starts the window again (a clip end is a gap): bounded, same buffer
    assert loc.ring._buf is ring_buffer and 1 <= len(loc.ring) <= place_map.seq_len
    assert rss[1] - rss[0] < 16 * 1024 * 1024, "resident memory grew by {} MiB".format((rss[1] - rss[0]) >> 20)
