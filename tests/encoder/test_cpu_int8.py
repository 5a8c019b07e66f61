"""The CPU INT8 encoder: U8S8 quantization, calibrate's gate and install, run --precision, refusals.

Every figure here comes from random-weight bundles: their descriptors are nearly parallel,
so cosines near 1 say that the INT8 graph computes the same function, not that a trained
model would localize as well (DESIGN.md).
"""
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.encoder import create_encoder
from jist_edge.encoder.onnxruntime import int8_model
from jist_edge.encoder.onnxruntime import backend as ortb
from jist_edge.encoder.cpu_features import int8_support, physical_cores
from jist_edge.cli import main
from jist_edge.errors import JistEdgeError
from map_routes import positions, route_frames, write_images

ZEN3_FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma bmi2 vaes\n"
SAPPHIRE_FLAGS = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx_vnni amx_int8\n"
ORIN_FEATURES = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimdrdm asimddp\n"
NANO_FEATURES = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"


def test_int8_support_reads_vnni_and_dot_product_flags():
    from jist_edge.encoder.cpu_features import cpu_flags

    cases = [(ZEN3_FLAGS, "some", []), (SAPPHIRE_FLAGS, "fast", ["AVX-512 VNNI", "AVX-VNNI", "AMX-INT8"]),
             (ORIN_FEATURES, "fast", ["ARM dot product"]), (NANO_FEATURES, "some", []), ("", "unknown", [])]
    for text, verdict, dot in cases:
        got = int8_support(cpu_flags(text))
        assert (got["verdict"], got["dot_product"]) == (verdict, dot), text
    assert int8_support(["fpu", "sse2"])["verdict"] == "none"


def test_physical_cores_counts_smt_siblings_once():
    allowed = len(os.sched_getaffinity(0))
    block = "processor\t: {}\nphysical id\t: 0\ncore id\t\t: {}\n"
    smt = "\n".join(block.format(i, i // 2) for i in range(4))  # 4 logical CPUs on 2 cores
    assert physical_cores(smt) == max(1, allowed // 2)
    assert physical_cores(ORIN_FEATURES + "\nprocessor\t: 1\n") == allowed  # ARM: no SMT listed


def test_doctor_reports_cpu_int8():
    from jist_edge.cli import doctor

    report = doctor.collect()
    assert report["cpu_int8"] == dict(int8_support(), physical_cores=physical_cores())
    rows = dict(doctor.rows(report))
    assert rows["CPU INT8"].startswith(report["cpu_int8"]["verdict"] + " (")


def test_session_options_are_the_tuned_ones():
    opts = ortb.session_options()
    assert opts.intra_op_num_threads == physical_cores()
    assert opts.enable_cpu_mem_arena
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert ortb.session_options(threads=1, spinning=True).get_session_config_entry(
        "session.intra_op.allow_spinning") == "1"


def test_onnxruntime_refuses_what_it_cannot_honour(tiny_bundle):
    for options, words in [({"precision": "fp16"}, ["--precision fp16", "tensorrt"]),
                           ({"no_build": True}, ["--no-build", "TensorRT option"]),
                           ({"max_batch": 8}, ["--max-batch", "TensorRT option"]),
                           ({"colour": "red"}, ["no option colour"])]:
        with pytest.raises(JistEdgeError) as info:
            create_encoder(tiny_bundle, "onnxruntime", **options)
        assert all(w in str(info.value) for w in words) and "\n" not in str(info.value)
    # the values that mean "not asked for" pass; auto is FP32 here
    with create_encoder(tiny_bundle, "onnxruntime", precision="auto", no_build=False, max_batch=None) as enc:
        assert enc.describe()["precision"] == "fp32"


def test_int8_without_a_model_says_which_command_makes_one(tiny_bundle, tmp_path):
    with pytest.raises(JistEdgeError, match="jist-edge calibrate --calibration"):
        create_encoder(tiny_bundle, "onnxruntime", precision="int8", cache_dir=str(tmp_path))
    with create_encoder(tiny_bundle, "onnxruntime", precision="best", cache_dir=str(tmp_path)) as enc:
        info = enc.describe()
    assert info["precision"] == "fp32" and "jist-edge calibrate" in info["precision_note"]


@pytest.fixture(scope="module")
def route(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("int8_route"))
    write_images(folder, route_frames(40, 64, 96, seed=2), positions(40))
    return folder


def calibrate(bundle, route, workspace, *extra):
    args = ["calibrate", bundle.path, "--calibration", route, "--frames", "12", "--route-frames", "30",
            "--no-fp16", "--no-tensorrt-qdq", "--workspace", workspace] + list(extra)
    return CliRunner().invoke(main, args)


@pytest.fixture(scope="module")
def calibrated(tiny_bundle, route, tmp_path_factory):
    """A workspace whose engines/ holds the CPU INT8 model calibrate installed for tiny_bundle."""
    workspace = str(tmp_path_factory.mktemp("int8_ws"))
    report = os.path.join(workspace, "report.json")
    result = calibrate(tiny_bundle, route, workspace, "--report", report)
    assert result.exit_code == 0, result.output
    return workspace, json.loads(open(report).read()), result.output


def model_file(workspace):
    return int8_model.model_path(os.path.join(workspace, "engines"))


def test_calibrate_installs_a_u8s8_model_with_the_head_in_fp32(tiny_bundle, calibrated):
    import onnx
    from onnx import TensorProto, numpy_helper

    workspace, report, output = calibrated
    path = model_file(workspace)
    assert "RANDOM WEIGHTS" in output and "gate passed" in output
    model = onnx.load(path)
    inits = {t.name: t for t in model.graph.initializer}
    quant = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    dequant = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    # activations: uint8 zero points; weights: int8, one scale per output channel
    assert quant and all(inits[n.input[2]].data_type == TensorProto.UINT8 for n in quant)
    weights = [n for n in dequant if n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.INT8]
    assert len(weights) >= 20  # ResNet-18's convolutions (BatchNorm folded into them)
    assert all(numpy_helper.to_array(inits[n.input[1]]).size > 1 for n in weights)
    # nothing from the first reduction (the L2 norm before GeM) on is quantized
    first = next(i for i, n in enumerate(model.graph.node) if n.op_type == "ReduceL2")
    assert not [n for n in model.graph.node[first:] if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    header = int8_model.read_header(path)
    assert header["bundle_id"] == tiny_bundle.bundle_id and header["fidelity"]["passed"]
    assert header["fidelity"]["random_weights"] and header["calibration"]["frames"] == 12
    numbers = report["variants"]["int8-cpu"]
    assert numbers["frame_cosine_mean"] >= 0.99 and numbers["top1_agreement"] >= 0.95
    assert numbers["max_abs_diff"] > 0  # it really is quantized
    # the bundle stays what it was: INT8 is a precision of the same model
    assert tiny_bundle.bundle_id == __import__("jist_edge").load_bundle(tiny_bundle.path).bundle_id


@pytest.mark.slow
def test_run_and_the_api_use_the_int8_model(tiny_bundle, calibrated, route, tmp_path):
    from jist_edge import Localizer
    from jist_edge.maps.build import build_map

    workspace = calibrated[0]
    engines = os.path.join(workspace, "engines")
    map_dir = str(tmp_path / "map")
    build_map(tiny_bundle, route_frames(30, 64, 96, seed=2), map_dir)
    with create_encoder(tiny_bundle, "onnxruntime", precision="fp32") as fp32:
        frames = np.stack([fp32_frame for fp32_frame in _frames(tiny_bundle, 4)])
        want = fp32.encode(frames)
    for precision in ("int8", "best"):
        loc = Localizer.open(tiny_bundle.path, map_dir, backend="onnxruntime", precision=precision, cache_dir=engines)
        try:
            info = loc.describe()
            got = loc.encoder.encode(frames)
        finally:
            loc.close()
        assert info["precision"] == "int8" and info["int8_model"] == model_file(workspace)
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        assert cos.min() > 0.99 and not np.array_equal(got, want)
    out = str(tmp_path / "run.jsonl")
    result = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", map_dir, "--images", route,
                                       "--precision", "int8", "--workspace", workspace, "--max-frames", "6",
                                       "--output", out])
    assert result.exit_code == 0, result.output
    assert "(int8)" in result.output and len(open(out).read().splitlines()) == 6


def _frames(bundle, n):
    from jist_edge.encoder.preprocess import Preprocessor

    return Preprocessor.for_bundle(bundle).batch(route_frames(n, bundle.height, bundle.width, seed=9))


def _tampered_copy(calibrated, tmp_path):
    engines = str(tmp_path / "engines")
    shutil.copytree(os.path.join(calibrated[0], "engines"), engines)
    return engines, int8_model.model_path(engines)


def _edit_header(path, **fields):
    header = json.loads(open(int8_model.header_path(path)).read())
    header.update(fields)
    with open(int8_model.header_path(path), "w") as handle:
        json.dump(header, handle)


def test_a_model_from_another_bundle_or_onnxruntime_is_refused_by_field(tiny_bundle, alt_bundle, calibrated,
                                                                          tmp_path):
    engines, path = _tampered_copy(calibrated, tmp_path)
    with pytest.raises(int8_model.Int8Mismatch) as info:
        create_encoder(alt_bundle, "onnxruntime", precision="int8", cache_dir=engines)
    assert info.value.fields[0] == "bundle_id" and "input_shape" in info.value.fields
    assert "bundle_id is {}".format(tiny_bundle.bundle_id) in str(info.value)
    _edit_header(path, onnxruntime="1.11.0")
    with pytest.raises(int8_model.Int8Mismatch) as info:
        create_encoder(tiny_bundle, "onnxruntime", precision="int8", cache_dir=engines)
    assert info.value.fields == ["onnxruntime"] and "onnxruntime is 1.11.0 there" in str(info.value)
    assert "jist-edge calibrate" in str(info.value) and "\n" not in str(info.value)
    # best falls back to FP32 and says why
    with create_encoder(tiny_bundle, "onnxruntime", precision="best", cache_dir=engines) as enc:
        assert enc.describe()["precision"] == "fp32" and "onnxruntime" in enc.describe()["precision_note"]


def test_a_truncated_model_is_refused(tiny_bundle, calibrated, tmp_path):
    engines, path = _tampered_copy(calibrated, tmp_path)
    data = open(path, "rb").read()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) // 2])
    with pytest.raises(int8_model.Int8Mismatch, match="sha256") as info:
        create_encoder(tiny_bundle, "onnxruntime", precision="int8", cache_dir=engines)
    assert info.value.fields == ["model_sha256"]


@pytest.mark.slow
def test_calibrate_reuses_a_current_model_and_remakes_for_another_set(tiny_bundle, calibrated, route, tmp_path):
    workspace = str(tmp_path / "ws")
    shutil.copytree(calibrated[0], workspace)
    before = open(model_file(workspace), "rb").read()
    result = calibrate(tiny_bundle, route, workspace)
    assert result.exit_code == 0 and "up to date" in result.output
    assert open(model_file(workspace), "rb").read() == before
    result = calibrate(tiny_bundle, route, workspace, "--seed", "3")  # another calibration set
    assert result.exit_code == 0 and "up to date" not in result.output
    header = int8_model.read_header(model_file(workspace))
    assert header["calibration"]["seed"] == 3


@pytest.mark.slow
def test_the_gate_refuses_and_keeps_the_installed_model_unless_forced(tiny_bundle, calibrated, route, tmp_path,
                                                                       monkeypatch):
    from jist_edge.calibration import cpu_int8

    workspace = str(tmp_path / "ws")
    shutil.copytree(calibrated[0], workspace)
    engines = os.path.join(workspace, "engines")
    before = {n: open(os.path.join(engines, n), "rb").read() for n in os.listdir(engines)}
    monkeypatch.setattr(cpu_int8, "MIN_TOP1", 1.01)  # no model can pass: the refusal path, for real
    report = str(tmp_path / "r.json")
    result = calibrate(tiny_bundle, route, workspace, "--seed", "4", "--report", report)
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: CPU INT8 model not installed: top-1 agreement") and "--force" in last
    assert {n: open(os.path.join(engines, n), "rb").read() for n in os.listdir(engines)} == before
    assert json.loads(open(report).read())["cpu_int8"]["passed"] is False
    result = calibrate(tiny_bundle, route, workspace, "--seed", "4", "--force")
    assert result.exit_code == 0 and "installed by --force" in result.output
    header = int8_model.read_header(model_file(workspace))
    assert header["fidelity"]["forced"] and not header["fidelity"]["passed"]
    with create_encoder(tiny_bundle, "onnxruntime", precision="best", cache_dir=engines) as enc:
        assert enc.describe()["precision"] == "fp32" and "fidelity gate" in enc.describe()["precision_note"]
    with create_encoder(tiny_bundle, "onnxruntime", precision="int8", cache_dir=engines) as enc:
        assert enc.describe()["precision"] == "int8"


def test_gate_names_what_fails():
    from jist_edge.calibration.cpu_int8 import gate

    good = {"finite": True, "frame_cosine_mean": 0.995, "top1_agreement": 0.96}
    assert gate(good) == []
    failures = gate(dict(good, frame_cosine_mean=0.98, top1_agreement=0.5))
    assert len(failures) == 2 and "0.9800 < 0.99" in failures[0] and "0.500 < 0.95" in failures[1]
    assert gate(dict(good, finite=False)) == ["descriptors are not all finite"]


@pytest.mark.slow
def test_calibration_sets_of_one_frame_unreadable_frames_or_other_sizes(tiny_bundle, route, tmp_path):
    import cv2

    workspace = str(tmp_path / "ws")
    # one calibration frame of a longer route: works
    result = calibrate(tiny_bundle, route, workspace, "--frames", "1")
    assert result.exit_code == 0, result.output
    assert int8_model.read_header(model_file(workspace))["calibration"]["frames"] == 1
    # a route of one frame: refused in one line (the fidelity route needs L frames)
    single = str(tmp_path / "single")
    write_images(single, route_frames(1, 64, 96))
    result = calibrate(tiny_bundle, single, str(tmp_path / "ws1"))
    assert result.exit_code == 1 and "at least L=5 frames" in result.output.strip().splitlines()[-1]
    # unreadable frames: refused in one line naming the file
    broken = str(tmp_path / "broken")
    os.makedirs(broken)
    for i in range(6):
        with open(os.path.join(broken, "frame{}.jpg".format(i)), "wb") as handle:
            handle.write(b"\xff\xd8 not a jpeg")
    result = calibrate(tiny_bundle, broken, str(tmp_path / "ws2"))
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 1 and last.startswith("Error:") and "frame" in last and "cannot be read" in last
    assert not os.path.exists(str(tmp_path / "ws2" / "engines"))
    # frames of other sizes than the model's (and of each other): resized like the runtime's; works
    mixed = str(tmp_path / "mixed")
    os.makedirs(mixed)
    for i, frame in enumerate(route_frames(20, 128, 192, seed=2)):
        size = (192, 128) if i % 2 else (150, 100)
        cv2.imwrite(os.path.join(mixed, "f{:03d}.png".format(i)), cv2.resize(frame, size))
    result = calibrate(tiny_bundle, mixed, str(tmp_path / "ws3"), "--route-frames", "20")
    assert result.exit_code == 0 and os.path.isfile(model_file(str(tmp_path / "ws3"))), result.output
