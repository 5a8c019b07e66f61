"""Frame sources on real files written by OpenCV: URIs, videos, image folders, bad input, reconnects."""
import itertools
import math
import os
import threading

import cv2
import numpy as np
import pytest

from jist_edge.errors import JistEdgeError
from jist_edge.stream.frame import apply_flip, to_bgr
from jist_edge.errors import BadFrame
from jist_edge.stream.uri import (SourceSpec, csi_pipeline, opencv_has_gstreamer, parse_source_uri,
                                  rtsp_gstreamer_pipeline)
from jist_edge.stream.sources import (ImageFolderSource, LiveCaptureSource, VideoFileSource, call_with_timeout,
                               jpeg_is_truncated, open_source, redact_url)
from video_files import frame_image, read_all_with_opencv, write_mjpg_avi

N = 20


@pytest.fixture(scope="module")
def avi(tmp_path_factory):
    return write_mjpg_avi(str(tmp_path_factory.mktemp("video") / "route.avi"), N, fps=30.0)


@pytest.fixture(scope="module")
def reference(avi):
    frames = read_all_with_opencv(avi)
    assert len(frames) == N
    return frames


# ---------------------------------------------------------------- URI parsing

@pytest.mark.parametrize("uri, kind, device, path", [
    ("0", "camera", 0, "/dev/video0"),
    (" 2 ", "camera", 2, "/dev/video2"),
    (3, "camera", 3, "/dev/video3"),
    ("/dev/video1", "camera", 1, "/dev/video1"),
    ("/dev/v4l/by-id/usb-cam-video-index0", "camera", None, "/dev/v4l/by-id/usb-cam-video-index0"),
    ("v4l2:///dev/video4", "camera", 4, "/dev/video4"),
    ("v4l2://5", "camera", 5, "/dev/video5"),
    ("csi://0", "csi", 0, None),
    ("CSI://1", "csi", 1, None),
    ("rtsp://user:pw@10.0.0.2:554/stream?channel=1", "rtsp", None, "rtsp://user:pw@10.0.0.2:554/stream?channel=1"),
    ("rtsps://cam.local/live", "rtsp", None, "rtsps://cam.local/live"),
    ("missing/route.mp4", "video", None, "missing/route.mp4"),
    ("file:///data/route.avi", "video", None, "/data/route.avi"),
    ("not-there-yet/", "images", None, "not-there-yet"),
])
def test_parse_every_uri_form(uri, kind, device, path):
    spec = parse_source_uri(uri)
    assert (spec.kind, spec.device, spec.path) == (kind, device, path)
    assert spec.live == (kind in ("camera", "csi", "rtsp"))


def test_parse_existing_folder_and_file_url(tmp_path, avi):
    assert parse_source_uri(str(tmp_path)) == SourceSpec(str(tmp_path), "images", path=str(tmp_path))
    url = "file://" + str(tmp_path)
    assert parse_source_uri(url).kind == "images"
    assert parse_source_uri("file://" + avi).path == avi
    assert parse_source_uri(avi).kind == "video"


def test_parse_csi_options():
    spec = parse_source_uri("csi://1?width=1920&height=1080&fps=60&flip=2")
    assert spec.options == {"width": 1920, "height": 1080, "fps": 60, "flip": 2}


@pytest.mark.parametrize("uri, words", [
    ("", ["empty"]),
    ("   ", ["empty"]),
    ("csi://left", ["csi://N"]),
    ("csi://0?zoom=2", ["zoom"]),
    ("csi://0?width=wide", ["width", "whole number"]),
    ("ftp://host/video.mp4", ["ftp://"]),  # http(s):// is an MJPEG camera since issue 20
    ("v4l2://front", ["v4l2"]),
    ("rtsp://", ["no host"]),
    (-1, ["0 or more"]),
    (True, ["camera number"]),
    (None, ["camera number"]),
])
def test_parse_refuses_malformed(uri, words):
    with pytest.raises(JistEdgeError) as err:
        parse_source_uri(uri)
    for word in words:
        assert word in str(err.value)


def test_csi_pipeline_has_the_jetson_elements():
    text = csi_pipeline(1, 1920, 1080, 30, 2)
    for part in ("nvarguscamerasrc sensor-id=1", "width=1920", "height=1080", "framerate=30/1",
                 "nvvidconv flip-method=2", "format=BGR", "appsink drop=true max-buffers=1"):
        assert part in text
    with pytest.raises(JistEdgeError, match="flip"):
        csi_pipeline(0, 640, 480, 30, 8)
    with pytest.raises(JistEdgeError, match="fps"):
        csi_pipeline(0, 640, 480, 0, 0)
    assert "latency=0" in rtsp_gstreamer_pipeline("rtsp://h/s")


def test_gstreamer_detection_agrees_with_build_information():
    lines = [l for l in cv2.getBuildInformation().splitlines() if l.strip().startswith("GStreamer:")]
    assert opencv_has_gstreamer() == bool(lines and "YES" in lines[0])


def test_csi_without_gstreamer_says_what_to_install():
    if opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer; the message is for builds without it")
    with pytest.raises(JistEdgeError) as err:
        open_source("csi://0")
    text = str(err.value)
    for word in ("csi://0", "GStreamer", "JetPack", "pip3 uninstall opencv-python"):
        assert word in text


@pytest.mark.parametrize("uri", ["99", "/dev/video99"])
def test_missing_camera_fails_naming_the_device(uri):
    with pytest.raises(JistEdgeError) as err:
        open_source(uri, open_timeout_s=3.0)
    assert "video99" in str(err.value)


def test_unreachable_rtsp_fails_without_leaking_the_password():
    # Port 9 (discard) is closed on a test machine: the connection is refused at once.
    with pytest.raises(JistEdgeError) as err:
        open_source("rtsp://viewer:s3cret@127.0.0.1:9/live", open_timeout_s=3.0)
    assert "127.0.0.1:9" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_redact_url():
    assert redact_url("rtsp://u:p@h/x") == "rtsp://u:***@h/x"
    assert redact_url("rtsp://u@h/x") == "rtsp://u@h/x"
    assert redact_url("rtsp://h/x@y") == "rtsp://h/x@y"


@pytest.mark.parametrize("kwargs, word", [
    ({"stride": 0}, "stride"), ({"flip": 9}, "flip"), ({"max_retries": -1}, "retries")])
def test_open_source_refuses_bad_options(avi, kwargs, word):
    with pytest.raises(JistEdgeError, match=word):
        open_source(avi, **kwargs)


def test_missing_path_names_it(tmp_path):
    for uri in (str(tmp_path / "nope.avi"), str(tmp_path / "nope"), str(tmp_path / "nope") + "/"):
        with pytest.raises(JistEdgeError) as err:
            open_source(uri)
        assert "nope" in str(err.value)


# ---------------------------------------------------------------- frame rules

@pytest.mark.parametrize("image", [
    None, np.zeros((0, 0, 3), np.uint8), np.zeros((1, 10, 3), np.uint8), np.zeros((10, 1, 3), np.uint8),
    np.zeros((10, 10, 2), np.uint8), np.zeros((10, 10, 5), np.uint8), np.zeros((10, 10, 3), np.float32),
    np.zeros((4, 4, 3, 1), np.uint8), np.zeros(12, np.uint8),
], ids=["none", "empty", "1-high", "1-wide", "2-channel", "5-channel", "float", "4d", "1d"])
def test_unusable_frames_raise_badframe(image):
    with pytest.raises(BadFrame):
        to_bgr(image)


@pytest.mark.parametrize("shape", [(6, 8), (6, 8, 1)])
def test_grey_frames_become_bgr(shape):
    grey = np.arange(48, dtype=np.uint8).reshape(shape)
    bgr, converted = to_bgr(grey)
    assert converted and bgr.shape == (6, 8, 3) and bgr.dtype == np.uint8
    for c in range(3):
        assert np.array_equal(bgr[:, :, c], grey.reshape(6, 8))


def test_bgra_loses_alpha_and_bgr_passes_through():
    bgra = np.random.RandomState(0).randint(0, 256, (5, 7, 4)).astype(np.uint8)
    bgr, converted = to_bgr(bgra)
    assert converted and np.array_equal(bgr, bgra[:, :, :3])
    strided = bgra[:, :, :3][:, ::-1]
    same, converted = to_bgr(strided)
    assert not converted and same.flags["C_CONTIGUOUS"] and np.array_equal(same, strided)


def test_flip_methods_match_nvvidconv_geometry():
    img = np.random.RandomState(1).randint(0, 256, (4, 6, 3)).astype(np.uint8)
    expected = {
        0: img, 1: np.rot90(img, 1), 2: img[::-1, ::-1], 3: np.rot90(img, -1), 4: img[:, ::-1],
        5: img[::-1, ::-1].transpose(1, 0, 2), 6: img[::-1], 7: img.transpose(1, 0, 2),
    }
    for method, want in expected.items():
        assert np.array_equal(apply_flip(img, method), want), method


# ---------------------------------------------------------------- video files

def test_video_frames_in_order_and_complete(avi, reference):
    with open_source(avi) as src:
        assert isinstance(src, VideoFileSource) and not src.live
        assert src.frame_count == N and len(src) == N and src.fps == 30.0
        assert "{} frames".format(N) in src.description and "30 fps" in src.description
        frames = list(src)
    assert [f.index for f in frames] == list(range(N))
    assert all(f.name is None for f in frames)
    assert [f.timestamp for f in frames] == pytest.approx([i / 30.0 for i in range(N)])
    for frame, ref in zip(frames, reference):
        assert frame.image.dtype == np.uint8 and np.array_equal(frame.image, ref)
    assert src.skipped == 0


def test_video_stride_and_flip(avi, reference):
    with open_source(avi, stride=3, flip=4) as src:
        assert len(src) == int(math.ceil(N / 3.0))
        frames = list(src)
    assert [f.index for f in frames] == list(range(0, N, 3))
    for frame in frames:
        assert np.array_equal(frame.image, reference[frame.index][:, ::-1])


def test_video_can_be_read_twice(avi):
    src = open_source(avi)
    assert len(list(src)) == N and len(list(src)) == N
    src.close()
    assert list(src) == []


def _read_defensively(path):
    """(frames, skipped, error): a bad video may refuse to open or read partially, never crash."""
    try:
        with open_source(path) as src:
            frames = list(src)
            return frames, src.skipped, None
    except JistEdgeError as exc:
        return [], 0, exc


def test_truncated_video_reads_a_prefix_and_counts_the_rest(tmp_path, avi, reference):
    data = open(avi, "rb").read()
    path = str(tmp_path / "cut.avi")
    with open(path, "wb") as handle:
        handle.write(data[:len(data) // 2])
    frames, skipped, error = _read_defensively(path)
    if error is not None:
        assert path in str(error)
        return
    assert 0 < len(frames) < N
    assert len(frames) + skipped == N
    for frame in frames:
        assert np.array_equal(frame.image, reference[frame.index])


def test_corrupt_frame_mid_video_is_skipped_and_indices_stay_true(tmp_path, avi, reference):
    # Scramble the Huffman tables of frame 10's JPEG: that frame cannot be decoded at all.
    # (Damage inside the entropy-coded data is concealed by the decoder, not reported.)
    data = bytearray(open(avi, "rb").read())
    soi = -1
    for _ in range(11):
        soi = data.index(b"\xff\xd8", soi + 1)
    dht = data.index(b"\xff\xc4", soi)
    for k in range(dht + 4, dht + 60):
        data[k] = (data[k] * 7 + 13) % 256
    path = str(tmp_path / "corrupt.avi")
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    frames, skipped, error = _read_defensively(path)
    assert error is None
    assert [f.index for f in frames] == [i for i in range(N) if i != 10]
    assert skipped == 1
    for frame in frames:  # frames after the damaged one keep their true index
        assert np.array_equal(frame.image, reference[frame.index])


def test_random_bytes_with_video_suffix(tmp_path):
    path = str(tmp_path / "noise.avi")
    with open(path, "wb") as handle:
        handle.write(np.random.RandomState(2).randint(0, 256, 50000).astype(np.uint8).tobytes())
    frames, skipped, error = _read_defensively(path)
    assert error is not None and path in str(error)
    assert frames == []


def test_empty_video_file_names_it(tmp_path):
    path = str(tmp_path / "empty.avi")
    open(path, "wb").close()
    with pytest.raises(JistEdgeError) as err:
        open_source(path)
    assert path in str(err.value) and "empty" in str(err.value)


# ---------------------------------------------------------------- image folders

def _image_folder(root):
    """Good images (natural order img_2 < img_10) among files that must be skipped or ignored."""
    folder = root / "images"
    folder.mkdir()
    good = {}
    for i in (1, 2, 10):
        name = "img_{}.jpg".format(i)
        cv2.imwrite(str(folder / name), frame_image(i))
        good[name] = cv2.imread(str(folder / name))
    cv2.imwrite(str(folder / "img_11.png"), frame_image(11)[:, :, 0])  # grey PNG
    good["img_11.png"] = cv2.cvtColor(frame_image(11)[:, :, 0], cv2.COLOR_GRAY2BGR)
    jpg = open(str(folder / "img_1.jpg"), "rb").read()
    with open(str(folder / "img_3.jpg"), "wb") as handle:  # truncated
        handle.write(jpg[:len(jpg) // 2])
    open(str(folder / "img_4.png"), "wb").close()  # empty
    with open(str(folder / "img_5.jpg"), "wb") as handle:  # not an image at all
        handle.write(b"this is a text file, not a JPEG\n" * 10)
    cv2.imwrite(str(folder / "img_6.png"), np.zeros((1, 40, 3), np.uint8))  # 1 pixel high
    (folder / "notes.txt").write_text(u"positions are in the CSV\n")
    (folder / ".hidden.jpg").write_bytes(jpg)
    (folder / "sub").mkdir()
    return str(folder), good


def test_image_folder_skips_and_counts_bad_files(tmp_path):
    folder, good = _image_folder(tmp_path)
    skipped = []
    with open_source(folder, on_skip=lambda index, name, reason: skipped.append((index, name))) as src:
        assert isinstance(src, ImageFolderSource) and not src.live
        assert src.frame_count == 8 and src.ignored == 1
        assert "8 images" in src.description and "1 other files ignored" in src.description
        frames = list(src)
    order = ["img_1.jpg", "img_2.jpg", "img_3.jpg", "img_4.png", "img_5.jpg", "img_6.png", "img_10.jpg", "img_11.png"]
    assert [f.name for f in frames] == ["img_1.jpg", "img_2.jpg", "img_10.jpg", "img_11.png"]
    assert [f.index for f in frames] == [order.index(f.name) for f in frames]
    assert src.skipped == 4
    assert sorted(name for _, name in skipped) == ["img_3.jpg", "img_4.png", "img_5.jpg", "img_6.png"]
    assert all(order[index] == name for index, name in skipped)
    for frame in frames:
        assert frame.image.shape[2] == 3 and np.array_equal(frame.image, good[frame.name])
    assert [f.timestamp for f in frames] == [float(f.index) for f in frames]


def test_image_folder_stride_and_fps(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(7):
        cv2.imwrite(str(folder / "{:03d}.png".format(i)), frame_image(i))
    with open_source(str(folder), stride=2, fps=5) as src:
        assert len(src) == 4
        frames = list(src)
    assert [f.index for f in frames] == [0, 2, 4, 6]
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.4, 0.8, 1.2])


def test_image_folder_without_images_names_it(tmp_path):
    with pytest.raises(JistEdgeError) as err:
        open_source(str(tmp_path))
    assert str(tmp_path) in str(err.value) and "no images" in str(err.value)
    (tmp_path / "positions.csv").write_text(u"x,y\n")
    with pytest.raises(JistEdgeError, match="1 other file"):
        open_source(str(tmp_path))


def test_jpeg_truncation_check_on_real_jpeg_bytes():
    ok, buf = cv2.imencode(".jpg", frame_image(3))
    data = buf.tobytes()
    assert ok and not jpeg_is_truncated(data)
    assert not jpeg_is_truncated(data + b"\x00trailing")
    assert jpeg_is_truncated(data[:len(data) - 10])
    assert jpeg_is_truncated(data[:100])


# ---------------------------------------------------------------- live sources (reconnects)

def _live_on_file(path, **kwargs):
    """A "camera" built on a real video file: its end looks exactly like a disconnect."""
    return LiveCaptureSource("test camera " + os.path.basename(path),
                             lambda: cv2.VideoCapture(path, cv2.CAP_FFMPEG), **kwargs)


def test_live_source_reopens_and_keeps_counting(avi, reference):
    with _live_on_file(avi, max_retries=2, backoff_s=0.001) as src:
        assert src.live
        frames = list(itertools.islice(iter(src), 3 * N + 5))
    assert [f.index for f in frames] == list(range(3 * N + 5))
    assert src.reconnects == 3 and src.reconnect_failures == 0
    for frame in frames:
        assert np.array_equal(frame.image, reference[frame.index % N])


def test_live_source_gives_up_after_max_retries(tmp_path):
    path = write_mjpg_avi(str(tmp_path / "cam.avi"), 6)
    src = _live_on_file(path, max_retries=3, backoff_s=0.001)
    os.remove(path)  # the open capture keeps reading; every reopen fails
    got = []
    with pytest.raises(JistEdgeError) as err:
        for frame in src:
            got.append(frame.index)
    assert got == list(range(6))
    assert src.reconnects == 0 and src.reconnect_failures == 3
    assert "test camera cam.avi" in str(err.value) and "3 attempt" in str(err.value)
    src.close()


def test_live_source_without_retries_stops_with_an_error(avi):
    src = _live_on_file(avi, max_retries=0)
    with pytest.raises(JistEdgeError, match="max retries 0"):
        for _ in src:
            pass
    assert src.reconnects == 0


def test_live_source_stride(avi, reference):
    with _live_on_file(avi, max_retries=1, backoff_s=0.001, stride=4) as src:
        frames = list(itertools.islice(iter(src), 8))
    assert [f.index for f in frames] == list(range(0, 32, 4))
    assert all(np.array_equal(f.image, reference[f.index % N]) for f in frames)


def test_live_source_that_cannot_open_fails_at_once(tmp_path):
    missing = str(tmp_path / "gone.avi")
    with pytest.raises(JistEdgeError, match="gone.avi"):
        _live_on_file(missing)


def test_close_interrupts_the_backoff(tmp_path):
    path = write_mjpg_avi(str(tmp_path / "cam.avi"), 4)
    src = _live_on_file(path, max_retries=5, backoff_s=60.0)
    os.remove(path)
    outcome = []

    def consume():
        try:
            outcome.append(len(list(src)))
        except Exception as exc:  # reported below
            outcome.append(exc)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    while src.skipped == 0 and src.reconnect_failures == 0 and reader.is_alive() and not _in_backoff(src):
        reader.join(0.01)
    src.close()
    reader.join(10.0)
    assert not reader.is_alive()
    assert outcome == [4]


def _in_backoff(src):
    return src._cap is None


def test_call_with_timeout_gives_up_and_releases_the_late_result():
    release = threading.Event()
    released = []

    class Late(object):
        def release(self):
            released.append(True)

    def slow_open():
        release.wait(10.0)
        return Late()

    with pytest.raises(JistEdgeError, match="slow thing did not open within"):
        call_with_timeout(slow_open, 0.05, "slow thing")
    release.set()
    for _ in range(500):
        if released:
            break
        threading.Event().wait(0.01)
    assert released == [True]
    assert call_with_timeout(lambda: 42, 1.0, "quick") == 42
    with pytest.raises(ZeroDivisionError):
        call_with_timeout(lambda: 1 // 0, 1.0, "broken")
