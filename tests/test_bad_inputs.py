"""Bad input never crashes a command: damaged maps, image bombs, broken video frames, odd API input.

Real files and real processes throughout: maps built by the writer and then damaged and
re-signed the way anyone can (sha256 recomputed), PNG headers declaring 1.6 gigapixels,
MJPG videos written by OpenCV with one frame's JPEG damaged, and the CLI in a subprocess,
so a segfault shows as rc -11 and native log lines are seen at the file-descriptor level.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from bad_media import (IndexFile, bomb_bmp, bomb_png, damage_mjpg_frame, index_path, insert_junk_packet,
                       resign_map)
from optional_imports import import_or_skip
from video_files import frame_image, write_mjpg_avi

from jist_edge.errors import IntegrityError, JistEdgeError
from jist_edge.search.index_check import check_hnsw_index
from jist_edge.maps.store import load_map
from jist_edge.maps.write import build_hnsw

import_or_skip("torch")

# what C libraries print on their own: OpenCV's logger, FFmpeg's av_log, libjpeg, libpng
NATIVE = re.compile(r"^(\[ ?(WARN|ERROR|INFO)|\[[\w:-]+ @ 0x[0-9a-f]+\]|Corrupt JPEG data|Premature end of JPEG|"
                    r"libpng |Traceback)", re.M)
ROUTE_FRAMES = 24


def jist(*args, timeout=300):
    """The CLI in its own process; stdout and stderr apart, as the file descriptors saw them."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "jist_edge"] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout, env=env)


def write_route_folder(folder, count=ROUTE_FRAMES, ext=".jpg"):
    os.makedirs(folder)
    for i in range(count):
        assert cv2.imwrite(os.path.join(folder, "frame{:04d}{}".format(i, ext)), frame_image(i, 96, 64))
    return folder


@pytest.fixture(scope="module")
def route(tmp_path_factory, tiny_bundle):
    """An image route and a map of it, built by the real writer."""
    from jist_edge.maps.build import build_map

    root = tmp_path_factory.mktemp("bad_inputs")
    folder = write_route_folder(str(root / "route"))
    place_map = build_map(tiny_bundle, folder, str(root / "map"))
    return {"root": root, "images": folder, "map": place_map.path, "model": tiny_bundle.path}


def damaged_copy(route, tmp_path, damage):
    """A copy of the map whose index ``damage(IndexFile)`` edits, then re-signed."""
    target = str(tmp_path / "map")
    shutil.copytree(route["map"], target)
    index = IndexFile(index_path(target))
    damage(index)
    resign_map(target)
    return target


def first_upper(index):
    return min(index.upper)


def level0_element(index, avoid=()):
    return next(e for e, lv in enumerate(index.levels) if lv == 0 and e not in avoid)


def _link_out_of_range(ix):
    ix.put(ix.word0(5, 1), 0x7FFFFFF0)
    ix.save()


def _upper_link_to_level0(ix):
    e = first_upper(ix)
    ix.put(ix.upper_word(e, 1, 0), 1)  # one link at level 1 ...
    ix.put(ix.upper_word(e, 1, 1), level0_element(ix, avoid=(e,)))  # ... to an element without level 1
    ix.save()


def _entry_point_at_level0(ix):
    ix.set_header("enterpoint", level0_element(ix))
    ix.save()


def _flipped_header_byte(ix):
    ix.data[HEADER_OFFSET_SIZE_DATA] ^= 0x04  # size_data_per_element
    ix.save()


def _too_many_links(ix):
    ix.put(ix.word0(3, 0), ix.maxM0 + 1)
    ix.save()


def _deleted_mark(ix):
    ix.put(ix.word0(3, 0), ix.get(ix.word0(3, 0)) | 1 << 16)
    ix.save()


def _duplicate_label(ix):
    label = (ix.size - 8) // 4
    ix.put(ix.word0(4, label), ix.get(ix.word0(3, label)))
    ix.save()


def _maxlevel_too_high(ix):
    ix.set_header("maxlevel", int(ix.head["maxlevel"]) + 5)
    ix.save()


def _truncated(ix):
    ix.save(ix.data[:len(ix.data) - 100])


def _wrong_dim(ix):
    rng = np.random.RandomState(0)
    other = build_hnsw(rng.rand(ix.count, 64).astype(np.float32), 16, 200, 100)
    other.save_index(ix.path)


HEADER_OFFSET_SIZE_DATA = 24
DAMAGES = [
    ("link_out_of_range", _link_out_of_range, "points at element 2147483632"),
    ("upper_link_to_level0", _upper_link_to_level0, "level-1 link points at element"),
    ("entry_point_at_level0", _entry_point_at_level0, "entry point"),
    ("flipped_header_byte", _flipped_header_byte, "size_data_per_element"),
    ("too_many_links", _too_many_links, "more than 32"),
    ("deleted_mark", _deleted_mark, "marked deleted"),
    ("duplicate_label", _duplicate_label, "label 3 is used by 2"),
    ("maxlevel_too_high", _maxlevel_too_high, "maxlevel"),
    ("truncated", _truncated, "truncated|too short|ends"),
    ("wrong_dim", _wrong_dim, "holds 64-D vectors"),
]

_LOAD = """
import sys
from jist_edge.maps.store import load_map
from jist_edge.errors import JistEdgeError
try:
    m = load_map(sys.argv[1])
    m.hnsw_index().knn_query(m.descriptors[:5], k=3)
except JistEdgeError as e:
    print('REFUSED', e)
    sys.exit(3)
print('LOADED')
"""


@pytest.mark.parametrize("name,damage,message", DAMAGES, ids=[d[0] for d in DAMAGES])
def test_resigned_damaged_index_refused_in_one_line_by_load_map_info_and_run(route, tmp_path, name, damage, message):
    """Before: link_out_of_range and entry_point_at_level0 segfaulted `run` (rc -11), maxlevel_too_high
    died with a RuntimeError traceback, and `map info` called every one of them verified."""
    bad = damaged_copy(route, tmp_path, damage)
    proc = subprocess.run([sys.executable, "-c", _LOAD, bad], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 3, proc.stdout
    assert re.search(message, proc.stdout), proc.stdout
    info = jist("map", "info", bad)
    run = jist("run", "--model", route["model"], "--map", bad,
               "--images", route["images"], "--quiet", "--output", tmp_path / "out.jsonl")
    for proc in (info, run):
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: map index") and "index.hnsw" in lines[0], proc.stderr
        assert re.search(message, lines[0])
    assert not os.path.exists(str(tmp_path / "out.jsonl"))


def test_damaged_index_of_an_hnsw_pca_map_is_refused_too(tiny_bundle, route, tmp_path):
    """The check reads the index at the reduced size an hnsw-pca map's hnswlib file holds."""
    from jist_edge.maps.build import build_map

    pca = build_map(tiny_bundle, route["images"], str(tmp_path / "pca"), index_kind="hnsw-pca", reduced_dim=16)
    assert pca.index_kind == "hnsw-pca" and check_hnsw_index(pca.index_path, 16, pca.count)["count"] == pca.count
    index = IndexFile(pca.index_path)
    _link_out_of_range(index)
    resign_map(pca.path)
    proc = subprocess.run([sys.executable, "-c", _LOAD, pca.path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 3 and "points at element 2147483632" in proc.stdout, proc.stdout


def test_every_single_word_damage_is_refused_or_harmless(route, tmp_path):
    """120 random 32-bit words of a real index overwritten (re-signed each time) in one child
    process: each load is refused or answers queries; the child never dies of a signal."""
    target = str(tmp_path / "map")
    shutil.copytree(route["map"], target)
    code = """
import json, os, sys, numpy as np
sys.path.insert(0, sys.argv[2])
from bad_media import resign_map, index_path
from jist_edge.maps.store import load_map
from jist_edge.errors import JistEdgeError
path = index_path(sys.argv[1]); clean = open(path, 'rb').read()
rng = np.random.RandomState(7); refused = answered = 0
for case in range(120):
    data = bytearray(clean)
    at = int(rng.randint(0, len(data) // 4)) * 4
    data[at:at + 4] = rng.randint(0, 2 ** 32, dtype=np.uint64).astype('<u4').tobytes()
    open(path, 'wb').write(bytes(data)); resign_map(sys.argv[1])
    print(case, at, flush=True)
    try:
        m = load_map(sys.argv[1]); ids, _ = m.hnsw_index().knn_query(m.descriptors, k=3)
        assert ((ids >= 0) & (ids < m.count)).all(); answered += 1
    except JistEdgeError:
        refused += 1
print(json.dumps({'refused': refused, 'answered': answered}))
"""
    proc = subprocess.run([sys.executable, "-c", code, target, os.path.dirname(__file__)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["refused"] > 0 and counts["refused"] + counts["answered"] == 120


@pytest.mark.parametrize("M,ef,n", [(4, 10, 50), (8, 40, 300), (16, 200, 1000), (48, 100, 200)])
def test_sound_indexes_pass_the_check(tmp_path, M, ef, n):
    """No false alarms: indexes hnswlib builds at other degrees and sizes pass, and their levels add up."""
    path = str(tmp_path / "i.bin")
    build_hnsw(np.random.RandomState(n).rand(n, 8).astype(np.float32), M, ef, 100).save_index(path)
    info = check_hnsw_index(path, 8, n, M, ef)
    assert sum(info["levels"]) == n and len(info["levels"]) == info["maxlevel"] + 1
    with pytest.raises(IntegrityError, match="M is {}, expected {}".format(M, M + 1)):
        check_hnsw_index(path, 8, n, M + 1, ef)
    with pytest.raises(IntegrityError, match="cur_element_count is {}".format(n)):
        check_hnsw_index(path, 8, n + 1)


def _route_with(tmp_path, extra):
    """The route folder plus damaged files; returns the folder."""
    folder = write_route_folder(str(tmp_path / "frames"), 12)
    for name, data in extra.items():
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)
    return folder


BOMBS = {"frame0005b.png": bomb_png(),  # refused from its header, before OpenCV allocates anything
         "frame0008b.bmp": bomb_bmp(),  # OpenCV's own limit: cv2.error, now that file's problem only
         "frame0010b.png": bomb_png(20000, 10000)}  # under OpenCV's limit: it would allocate 600 MB


def test_image_bombs_are_skipped_by_map_build_and_run(route, tmp_path):
    """1 KB files declaring 1.6 and 0.2 gigapixels. Before: cv2.error traceback in both commands."""
    folder = _route_with(tmp_path, BOMBS)
    build = jist("map", "build", "--model", route["model"], "--images", folder, "--output", tmp_path / "m",
                 "--quiet")
    assert build.returncode == 0, build.stderr
    assert not NATIVE.search(build.stderr), build.stderr
    assert re.search(r"frames skipped\s+3\b", build.stdout), build.stdout
    assert "frame0005b.png: declares 40000x40000 pixels" in build.stderr
    assert "frame0008b.bmp: OpenCV cannot decode it: pixels <= CV_IO_MAX_IMAGE_PIXELS" in build.stderr
    assert "frame0010b.png: declares 20000x10000 pixels" in build.stderr
    run = jist("run", "--model", route["model"], "--map", tmp_path / "m", "--images", folder,
               "--output", tmp_path / "o.jsonl")
    assert run.returncode == 0, run.stderr
    assert not NATIVE.search(run.stderr), run.stderr
    assert re.search(r"frames 12 .*\n.*skipped 3\b", run.stdout), run.stdout
    assert len(open(str(tmp_path / "o.jsonl")).read().splitlines()) == 12


@pytest.mark.slow
def test_image_bombs_are_skipped_by_calibrate(route, tmp_path):
    folder = _route_with(tmp_path, BOMBS)
    proc = jist("calibrate", route["model"], "--calibration", folder, "--frames", "15", "--route-frames", "15",
                "--no-fp16", "--report", tmp_path / "r.json", "--workspace", tmp_path / "ws", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "3 of 15 selected calibration frames" in proc.stderr and not NATIVE.search(proc.stderr), proc.stderr
    assert json.loads(open(str(tmp_path / "r.json")).read())["calibration"]["frames"] == 15


def test_calibration_set_skips_unreadable_frames_instead_of_aborting(tiny_bundle, tmp_path):
    """Before: 'calibration image ... cannot be read' / 'calibration video ended before frame 0'."""
    from jist_edge.calibration.dataset import open_calibration_set

    folder = _route_with(tmp_path, {"frame0003b.bmp": bomb_bmp(), "frame0007b.jpg": b"\xff\xd8 not a jpeg"})
    images = open_calibration_set(folder, tiny_bundle, frames=100)
    assert len(images) == 14 and images.array().shape[0] == 12 and images.skipped == 2
    video = write_mjpg_avi(str(tmp_path / "v.avi"), 20, width=96, height=64)
    damage_mjpg_frame(video, 0, "headers")
    clip = open_calibration_set(video, tiny_bundle, frames=5)
    assert 0 in clip.indices and clip.array().shape[0] == 4 and clip.skipped == 1
    dead = _route_with(tmp_path / "dead", {})
    for name in os.listdir(dead):
        with open(os.path.join(dead, name), "wb") as handle:
            handle.write(bomb_png())
    with pytest.raises(JistEdgeError, match=r"the 12 selected frames cannot be read \(frame0000.jpg: "):
        open_calibration_set(dead, tiny_bundle, frames=100).array()


# --- the Python API -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def localizer(route, tiny_bundle):
    from jist_edge.pipeline.localizer import Localizer

    return Localizer(tiny_bundle, load_map(route["map"], tiny_bundle), backend="onnxruntime", top_k=2)


def test_stream_accepts_any_iterable_of_bgr_arrays(localizer, route):
    """Before: AttributeError ('list_iterator' object has no attribute ...)."""
    img = frame_image(3, 96, 64)
    before = time.time()
    results = list(localizer.stream(iter([img, img])))
    assert [r.frame_index for r in results] == [0, 1] and all(before <= r.timestamp <= time.time() for r in results)
    stamped = list(localizer.stream((f, 100.0 + i) for i, f in enumerate([img, None, img[:, :, 0], img[:1]])))
    assert [(r.frame_index, r.timestamp) for r in stamped] == [(0, 100.0), (2, 102.0)]  # grey converted
    assert localizer.frames_skipped == 2  # the None and the 1-pixel-high frame
    stack = np.stack([img] * 3)
    assert len(list(localizer.stream(stack))) == 3
    import pathlib

    assert len(list(localizer.stream(pathlib.Path(route["images"]), max_frames=2))) == 2


@pytest.mark.parametrize("source,message", [
    (7, "camera 7"),
    (7.5, "cannot stream a float: give a camera number.*iterable of BGR numpy arrays"),
    (object(), "cannot stream a object"),
    ({"frame": 1}, "cannot stream a dict"),
    (np.zeros((64, 96, 3), np.uint8), "one 3-D array.*process\\(\\)"),
    (["frame0000.jpg"], "frame 0 of the stream is the str 'frame0000.jpg'.*stream their folder"),
    ([np.zeros((4, 4, 3), np.uint8), 3], "frame 1 of the stream is a int"),
])
def test_stream_refuses_other_kinds_naming_what_it_takes(localizer, source, message):
    """Before: stream(7) raised TypeError, a list of paths an AttributeError."""
    with pytest.raises(JistEdgeError, match=message):
        list(localizer.stream(source))


def test_api_errors_name_api_parameters_not_cli_flags(tiny_bundle, route, tmp_path):
    from jist_edge.calibration.dataset import open_calibration_set
    from jist_edge.maps.build import build_map, encode_frames
    from jist_edge.evaluation.recall import evaluate
    from jist_edge.pipeline.localizer import Localizer
    from jist_edge.encoder.preprocess import Preprocessor

    place_map = load_map(route["map"], tiny_bundle)
    calls = [
        (lambda: Localizer(tiny_bundle, place_map, top_k=0), "top_k"),
        (lambda: Localizer(tiny_bundle, place_map, ef=0), "ef"),
        (lambda: Localizer(tiny_bundle, place_map, seq_len=0), "seq_len"),
        (lambda: list(Localizer(tiny_bundle, place_map).stream(route["images"], max_frames=0)), "max_frames"),
        (lambda: build_map(tiny_bundle, route["images"], str(tmp_path / "a"), stride=0), "stride"),
        (lambda: build_map(tiny_bundle, route["images"], str(tmp_path / "b"), seq_len=0), "seq_len"),
        (lambda: encode_frames(None, Preprocessor.for_bundle(tiny_bundle), [], batch_size=0), "batch_size"),
        (lambda: build_map(tiny_bundle, 7, str(tmp_path / "c")), "cannot read a route from a int"),
        (lambda: evaluate(tiny_bundle, route["map"], route["images"], threshold=0), "threshold"),
        (lambda: evaluate(tiny_bundle, route["map"], route["images"], recalls=[0]), "recalls"),
        (lambda: open_calibration_set(route["images"], tiny_bundle, frames=0), "frames"),
        (lambda: open_calibration_set(str(tmp_path / "notes.txt"), tiny_bundle), "calibration source"),
    ]
    for call, name in calls:
        with pytest.raises(JistEdgeError) as err:
            call()
        text = str(err.value)
        assert re.match(name, text) or name in text, text
        assert not re.search(r"(^|\s)--[a-z]", text), "an API error names a CLI flag: " + text


def test_process_takes_grey_frames_like_stream(localizer):
    grey = frame_image(2, 96, 64)[:, :, 1].copy()
    assert localizer.process(grey).descriptor.shape == (localizer.bundle.dim,)


# --- CSV with a byte-order mark, dangling symlinks, special files ---------------------------------------------

def test_positions_csv_with_byte_order_mark_is_read(tmp_path):
    """Before: 'header '\\ufeffframe,easting,northing' is not understood' (it looks identical)."""
    from jist_edge.positions import read_positions_csv

    text = "frame,easting,northing\r\n0,1.5,2.5\r\n1,3.0,4.0\r\n"
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    plain.write_bytes(text.encode("utf-8"))
    excel.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_positions_csv(str(excel)) == read_positions_csv(str(plain)) == {0: (1.5, 2.5), 1: (3.0, 4.0)}


def test_dangling_symlink_and_fifo_in_an_image_folder_are_counted_as_skipped(tmp_path):
    """Before: a dangling symlink vanished from the frame list without a count (and a FIFO named
    like an image would have blocked the read forever)."""
    from jist_edge.stream.sources import ImageFolderSource

    folder = write_route_folder(str(tmp_path / "f"), 6)
    os.symlink(str(tmp_path / "gone.jpg"), os.path.join(folder, "frame0002b.jpg"))
    os.mkfifo(os.path.join(folder, "frame0004b.jpg"))
    os.makedirs(os.path.join(folder, "sub.jpg"))  # a folder is not a frame and not counted
    src = ImageFolderSource(folder)
    frames = list(src)
    assert len(src.names) == 8 and len(frames) == 6 and src.skipped == 2 and src.ignored == 0
    assert [f.index for f in frames] == [0, 1, 2, 4, 5, 7]


# --- native log lines and counts that add up ---------------------------------------------------------------

def _summary(stdout):
    frames = int(re.search(r"^\s+frames (\d+)", stdout, re.M).group(1))
    skipped = int(re.search(r"skipped (\d+)", stdout).group(1))
    return frames, skipped


@pytest.mark.parametrize("damage,frames,skipped", [
    ("headers", 29, 1),      # FFmpeg: "No JPEG data found in image"; the frame is lost
    ("early_eoi", 30, 0),    # FFmpeg: "overread"; the decoder conceals the rest of the frame
    ("junk_packet", 30, 0),  # a chunk that is not a frame: before, 30 encoded + 1 skipped for 30
])
def test_damaged_video_frame_gives_no_native_lines_and_counts_add_up(route, tmp_path, damage, frames, skipped):
    video = write_mjpg_avi(str(tmp_path / "v.avi"), 30, width=96, height=64)
    if damage == "junk_packet":
        insert_junk_packet(video, 7)
    else:
        damage_mjpg_frame(video, 7, damage)
    assert int(cv2.VideoCapture(video).get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    run = jist("run", "--model", route["model"], "--map", route["map"], "--video", video,
               "--output", tmp_path / "o.jsonl")
    assert run.returncode == 0, run.stderr
    assert not NATIVE.search(run.stderr), run.stderr
    assert _summary(run.stdout) == (frames, skipped)
    assert len(open(str(tmp_path / "o.jsonl")).read().splitlines()) == frames
    build = jist("map", "build", "--model", route["model"], "--video", video, "--output", tmp_path / "m",
                 "--quiet")
    assert build.returncode == 0 and not NATIVE.search(build.stderr), build.stderr
    assert re.search(r"frames encoded\s+{}\b".format(frames), build.stdout)
    assert re.search(r"frames skipped\s+{}\b".format(skipped), build.stdout), build.stdout


def test_damaged_images_give_no_native_lines_and_are_skipped(route, tmp_path):
    ok, png = cv2.imencode(".png", frame_image(1, 96, 64))
    jpeg = bytearray(cv2.imencode(".jpg", frame_image(2, 96, 64))[1].tobytes())
    sos = jpeg.find(b"\xff\xda")
    for k in range(sos + 20, len(jpeg) - 10, 5):  # garbled entropy data, end marker kept
        jpeg[k] = (jpeg[k] * 7 + 13) & 0xFF if jpeg[k - 1] != 0xFF else jpeg[k]
    jpeg = bytes(jpeg[:-2]).replace(b"\xff\xd9", b"\x00\x00") + b"\xff\xd9"
    folder = _route_with(tmp_path, {"frame0003b.png": png.tobytes()[:len(png) // 2], "frame0006b.jpg": jpeg})
    run = jist("run", "--model", route["model"], "--map", route["map"], "--images", folder,
               "--output", tmp_path / "o.jsonl")
    assert run.returncode == 0, run.stderr
    assert not NATIVE.search(run.stderr), run.stderr
    assert _summary(run.stdout) == (12, 2)
    # the decoders' complaints become the reasons of the skips
    assert "frame0003b.png: not a decodable image" in run.stderr
    assert "frame0006b.jpg: damaged image data (Corrupt JPEG data" in run.stderr


def test_ffmpeg_level_set_after_open_silences_an_opencv_that_ignores_the_variable(tmp_path):
    """OpenCV 4.1 (JetPack) has no OPENCV_FFMPEG_LOGLEVEL: this OpenCV is run without it, so FFmpeg logs at
    its default level, and only quiet_ffmpeg() (libavutil's av_log_set_level) stands between its
    'overread' lines and the terminal. The control run without it shows the test can fail."""
    video = write_mjpg_avi(str(tmp_path / "v.avi"), 12, width=96, height=64)
    damage_mjpg_frame(video, 4, "early_eoi")
    damage_mjpg_frame(video, 8, "headers")
    code = ("import sys, cv2\nfrom jist_edge.stream.opencv_log import quiet_ffmpeg\n"
            "cap = cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG)\n"
            "if sys.argv[2] == 'quiet': quiet_ffmpeg()\n"
            "while cap.grab(): cap.retrieve()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    out = {}
    for mode in ("quiet", "control"):
        out[mode] = subprocess.run([sys.executable, "-c", code, video, mode], stderr=subprocess.PIPE,
                                   universal_newlines=True, env=env, timeout=60).stderr
    assert re.search(r"\[mjpeg @ 0x[0-9a-f]+\]", out["control"]), out["control"]
    assert not NATIVE.search(out["quiet"]), out["quiet"]


def test_decoder_messages_give_back_what_others_wrote_meanwhile(tmp_path):
    code = ("import os\nfrom jist_edge.stream.native_stderr import decoder_messages\n"
            "with decoder_messages() as found:\n"
            "    os.write(2, b'Corrupt JPEG data: bad Huffman code\\nanother thread says hello\\n')\n"
            "print(found)\n")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    assert proc.stdout.strip() == "['Corrupt JPEG data: bad Huffman code']"
    assert proc.stderr == "another thread says hello\n"


def test_ctrl_c_during_run_keeps_a_clean_summary_and_whole_json_lines(route, tmp_path):
    """SIGINT while frames are decoded and encoded: rc 0, the summary, and every JSON line complete."""
    video = write_mjpg_avi(str(tmp_path / "long.avi"), 400, fps=30.0, width=96, height=64)
    out = tmp_path / "o.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "jist_edge", "run", "--model", route["model"], "--map",
                             route["map"], "--video", video, "--realtime", "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_bytes().splitlines()) < 10):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "interrupted: stopping" in stdout and "Run summary" in stdout
    assert not NATIVE.search(stderr), stderr
    lines = out.read_text().splitlines()
    assert 10 <= len(lines) < 400
    assert all(isinstance(json.loads(line)["frame"], int) for line in lines)
    assert _summary(stdout)[0] == len(lines)
