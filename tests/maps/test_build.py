"""Building maps from real routes: video vs images, once-per-frame encoding, sequence.onnx parity, bad input."""
import json
import os

import cv2
import numpy as np
import pytest
from optional_imports import import_or_skip
from click.testing import CliRunner

from jist_edge.encoder import create_encoder
from jist_edge.cli import main
from jist_edge.errors import JistEdgeError
from jist_edge.maps.store import load_map
from jist_edge.maps.build import build_map, encode_frames, rebuild_map
from jist_edge.encoder.preprocess import Preprocessor
from jist_edge.encoder.seqgem import sliding_windows

import map_routes
from video_files import read_all_with_opencv

N = 23


@pytest.fixture(scope="module")
def route(tiny_bundle, tmp_path_factory):
    """A video and the same decoded frames as PNG images named @easting@northing@."""
    root = tmp_path_factory.mktemp("route")
    video = str(root / "route.avi")
    map_routes.write_video(video, map_routes.route_frames(N, tiny_bundle.height, tiny_bundle.width))
    frames = read_all_with_opencv(video)
    assert len(frames) == N
    pos = map_routes.positions(N)
    map_routes.write_images(str(root / "images"), frames, pos)
    map_routes.write_csv(str(root / "route.csv"), [(i, p[0], p[1]) for i, p in enumerate(pos)])
    return {"root": root, "video": video, "images": str(root / "images"), "csv": str(root / "route.csv"),
            "frames": frames, "positions": pos}


@pytest.fixture(scope="module")
def video_map(tiny_bundle, route, tmp_path_factory):
    encoder = create_encoder(tiny_bundle)
    m = build_map(tiny_bundle, route["video"], str(tmp_path_factory.mktemp("vm") / "map"), positions=route["csv"],
                  batch_size=4, encoder=encoder)
    return m, encoder


def test_video_and_images_give_the_same_map(tiny_bundle, route, video_map, tmp_path):
    vmap, _ = video_map
    imap = build_map(tiny_bundle, route["images"], str(tmp_path / "map"), batch_size=7)
    assert vmap.count == imap.count == N - tiny_bundle.seq_len + 1
    assert np.allclose(vmap.descriptors, imap.descriptors, rtol=0, atol=1e-6)
    assert np.allclose(np.asarray(vmap.frame_descriptors), np.asarray(imap.frame_descriptors), rtol=0, atol=1e-6)
    # positions from the CSV (video) and from the file names (images) agree
    assert np.allclose(vmap.frames.positions, route["positions"]) and np.allclose(imap.frames.positions,
                                                                                 route["positions"])
    assert imap.frames.names[0].startswith("@0.00@5000.00@") and vmap.manifest["source"]["kind"] == "video"


def test_each_frame_encoded_once_in_batches(video_map):
    vmap, encoder = video_map
    assert encoder.frames == N
    assert encoder.calls == -(-N // 4)


def test_map_descriptors_equal_sequence_onnx(tiny_bundle, route, video_map):
    ort = import_or_skip("onnxruntime")
    vmap, _ = video_map
    sess = ort.InferenceSession(tiny_bundle.sequence_path, providers=["CPUExecutionProvider"])
    pre = Preprocessor.for_bundle(tiny_bundle)
    batch = pre.batch(route["frames"])
    starts = [0, 7, vmap.count - 1]
    windows = np.stack([batch[s:s + tiny_bundle.seq_len] for s in starts])
    expected = sess.run(None, {sess.get_inputs()[0].name: windows})[0]
    assert np.abs(vmap.descriptors[starts] - expected).max() <= 1e-5
    assert [f["index"] for f in vmap.frames_of(7)] == list(range(7, 7 + tiny_bundle.seq_len))


def test_encode_frames_calls_encoder_once_per_frame(tiny_bundle, route):
    encoder = create_encoder(tiny_bundle)
    seen = []
    out = encode_frames(encoder, Preprocessor.for_bundle(tiny_bundle), iter(route["frames"][:10]), batch_size=3,
                        progress=seen.append)
    assert out.shape == (10, tiny_bundle.dim) and encoder.frames == 10 and encoder.calls == 4
    assert seen == [3, 3, 3, 1]
    single = create_encoder(tiny_bundle).encode(Preprocessor.for_bundle(tiny_bundle).batch(route["frames"][9:10]))
    assert np.allclose(out[9], single[0], atol=1e-5)


def test_rebuild_with_another_length_encodes_nothing(tiny_bundle, video_map, tmp_path):
    vmap, encoder = video_map
    before = encoder.frames
    m3 = rebuild_map(tiny_bundle, vmap.path, str(tmp_path / "l3"), seq_len=3)
    assert encoder.frames == before and m3.seq_len == 3 and m3.count == N - 2
    expected = sliding_windows(np.asarray(vmap.frame_descriptors), 3, tiny_bundle.seqgem_p, tiny_bundle.seqgem_eps)
    assert np.array_equal(m3.descriptors, expected)
    assert np.array_equal(m3.frames.positions, vmap.frames.positions)


def test_stride_keeps_every_nth_frame(tiny_bundle, route, tmp_path):
    m = build_map(tiny_bundle, route["images"], str(tmp_path / "map"), stride=3)
    assert m.frames.indices == list(range(0, N, 3)) and m.manifest["source"]["stride"] == 3


def test_positions_missing_for_some_frames(tiny_bundle, route, tmp_path):
    csv = str(tmp_path / "part.csv")
    map_routes.write_csv(csv, [(i, float(i), 7.0) for i in range(N) if i % 4])
    m = build_map(tiny_bundle, route["video"], str(tmp_path / "map"), positions=csv)
    missing = np.isnan(m.frames.positions).any(axis=1)
    assert list(np.nonzero(missing)[0]) == list(range(0, N, 4))
    assert m.manifest["counts"]["positioned_frames"] == N - missing.sum()
    assert np.isfinite(m.positions_of(np.arange(m.count))).all()  # centres fall back to the window's mean


def test_bad_csv_row_names_the_line(tiny_bundle, route, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("frame,easting,northing\n0,1.0,2.0\n1,abc,2.0\n")
    with pytest.raises(JistEdgeError, match="line 3"):
        build_map(tiny_bundle, route["video"], str(tmp_path / "map"), positions=str(csv))
    assert not os.path.exists(str(tmp_path / "map"))


def test_empty_folder_and_too_few_frames(tiny_bundle, route, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(JistEdgeError, match="no images"):
        build_map(tiny_bundle, str(tmp_path / "empty"), str(tmp_path / "m1"))
    map_routes.write_images(str(tmp_path / "few"), route["frames"][:3])
    with pytest.raises(JistEdgeError, match="3 usable frames, fewer than the sequence length L=5"):
        build_map(tiny_bundle, str(tmp_path / "few"), str(tmp_path / "m2"))
    with pytest.raises(JistEdgeError, match="route not found"):
        build_map(tiny_bundle, str(tmp_path / "nope"), str(tmp_path / "m3"))
    assert not any(os.path.exists(str(tmp_path / m)) for m in ("m1", "m2", "m3"))


def test_interrupted_build_leaves_no_map(tiny_bundle, route, tmp_path):
    def frames():
        for i, frame in enumerate(route["frames"]):
            if i == 12:
                raise KeyboardInterrupt
            yield frame

    with pytest.raises(KeyboardInterrupt):
        build_map(tiny_bundle, frames(), str(tmp_path / "map"))
    assert os.listdir(str(tmp_path)) == []


def test_cli_build_skips_bad_files_and_info(tiny_bundle, route, tmp_path):
    folder = tmp_path / "imgs"
    map_routes.write_images(str(folder), route["frames"][:12], route["positions"][:12])
    (folder / "notes.txt").write_text("not an image")
    (folder / "@999.00@5000.00@broken@.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    bad = np.zeros((1, 1, 3), np.uint8)
    assert cv2.imwrite(str(folder / "@998.00@5000.00@tiny@.png"), bad)
    out = str(tmp_path / "map")
    runner = CliRunner()
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", str(folder), "--output", out,
                               "--fp16", "--M", "8", "--ef-construction", "50", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "2 frames of" in res.output and "skipped" in res.output
    assert "1 files in" in res.output and "not images" in res.output
    assert "frames encoded" in res.output
    m = load_map(out, tiny_bundle)
    assert len(m.frames) == 12 and m.manifest["counts"]["skipped_frames"] == 2
    assert m.manifest["index"]["M"] == 8 and m.manifest["storage"]["sequence_dtype"] == "float16"
    res = runner.invoke(main, ["map", "info", out, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["summary"]["sequences"] == m.count and info["summary"]["bundle_id"] == tiny_bundle.bundle_id
    res = runner.invoke(main, ["map", "info", out])
    assert res.exit_code == 0 and "verified" in res.output
    # an existing map is kept unless --force
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", str(folder), "--output", out,
                               "--quiet"])
    assert res.exit_code != 0 and "--force" in res.output
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--from-map", out, "--seq-len", "3",
                               "--output", str(tmp_path / "l3")])
    assert res.exit_code == 0, res.output
    assert load_map(str(tmp_path / "l3")).seq_len == 3


def test_cli_build_uses_workspace_and_refuses_foreign_map(tiny_bundle, alt_bundle, route, tmp_path):
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    res = runner.invoke(main, ["map", "build", "--images", route["images"], "--workspace", ws, "--quiet"])
    assert res.exit_code != 0 and "no model bundle" in res.output
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", route["images"],
                               "--workspace", ws, "--quiet"])
    assert res.exit_code == 0, res.output
    assert load_map(os.path.join(ws, "map")).count == N - 4
    res = runner.invoke(main, ["map", "build", "--model", alt_bundle.path, "--from-map", os.path.join(ws, "map"),
                               "--output", str(tmp_path / "other")])
    assert res.exit_code != 0
    assert tiny_bundle.bundle_id in res.output and alt_bundle.bundle_id in res.output
