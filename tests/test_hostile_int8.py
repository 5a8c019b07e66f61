"""Hostile CPU INT8 models (issue 21): the header and model are signed together with this user's key,
so an edited gate verdict, another bundle's model with a recomputed checksum, an unsigned header or a
header with wrong types are refused naming what differs; calibration sets without variety are refused
and the fidelity gate is measured on route frames held out from calibration. Real bundles, real ONNX
files run by ONNX Runtime, real `jist-edge calibrate` runs."""
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.encoder import create_encoder
from jist_edge.encoder.onnxruntime import int8_model, int8_signature
from jist_edge.cli import main
from jist_edge.encoder.tensorrt.cache import header_path
from jist_edge.errors import JistEdgeError

from map_routes import positions, route_frames, write_images


@pytest.fixture(autouse=True)
def key(tmp_path, monkeypatch):
    path = str(tmp_path / "keys" / "signing.key")
    monkeypatch.setenv(int8_signature.KEY_ENV, path)
    return path


def _install(bundle, cache_dir, model_bytes, passed=True):
    import onnxruntime as ort

    expected = int8_model.expected_header(bundle, ort.__version__, {"frames": 12, "seed": 0})
    fidelity = {"passed": passed, "forced": not passed, "failures": [] if passed else ["top-1 0.3 < 0.95"]}
    path = int8_model.model_path(cache_dir)
    os.makedirs(cache_dir, exist_ok=True)
    int8_model.write_model(path, model_bytes, expected, fidelity)
    return path


def _edit_header(path, edit):
    hpath = header_path(path)
    with open(hpath) as handle:
        header = json.load(handle)
    edit(header)
    os.unlink(hpath)
    with open(hpath, "w") as handle:
        json.dump(header, handle)


def _encoder_bytes(bundle):
    with open(bundle.encoder_path, "rb") as handle:
        return handle.read()


def test_a_signed_model_loads_and_the_key_is_private(tiny_bundle, tmp_path, key):
    cache = str(tmp_path / "engines")
    _install(tiny_bundle, cache, _encoder_bytes(tiny_bundle))
    with create_encoder(tiny_bundle, "onnxruntime", precision="best", cache_dir=cache) as enc:
        assert enc.describe()["precision"] == "int8"
    assert os.stat(key).st_mode & 0o077 == 0


def test_a_failed_gate_edited_to_passed_is_refused(tiny_bundle, tmp_path):
    cache = str(tmp_path / "engines")
    path = _install(tiny_bundle, cache, _encoder_bytes(tiny_bundle), passed=False)
    _edit_header(path, lambda h: h["fidelity"].update(passed=True, forced=False))
    with pytest.raises(int8_model.Int8Mismatch, match="signature does not match") as info:
        create_encoder(tiny_bundle, "onnxruntime", precision="int8", cache_dir=cache)
    assert info.value.fields == ["signature"] and "\n" not in str(info.value)
    with create_encoder(tiny_bundle, "onnxruntime", precision="best", cache_dir=cache) as enc:
        assert enc.describe()["precision"] == "fp32"  # best falls back and says why


def test_another_bundles_model_with_a_recomputed_checksum_is_refused(tiny_bundle, alt_bundle, tmp_path):
    from jist_edge.fileio import sha256_bytes

    cache = str(tmp_path / "engines")
    path = _install(tiny_bundle, cache, _encoder_bytes(tiny_bundle))
    other = _encoder_bytes(alt_bundle)
    os.unlink(path)
    with open(path, "wb") as handle:
        handle.write(other)
    _edit_header(path, lambda h: h.update(model_sha256=sha256_bytes(other), model_bytes=len(other)))
    with pytest.raises(int8_model.Int8Mismatch, match="signature"):
        create_encoder(tiny_bundle, "onnxruntime", precision="int8", cache_dir=cache)


def test_a_model_signed_on_another_machine_is_refused(tiny_bundle, tmp_path, monkeypatch):
    cache = str(tmp_path / "engines")
    _install(tiny_bundle, cache, _encoder_bytes(tiny_bundle))
    monkeypatch.setenv(int8_signature.KEY_ENV, str(tmp_path / "other-machine.key"))
    int8_signature.signing_key(create=True)
    with pytest.raises(int8_model.Int8Mismatch, match="made on another machine"):
        create_encoder(tiny_bundle, "onnxruntime", precision="int8", cache_dir=cache)


@pytest.mark.parametrize("edit,fragment", [
    (lambda h: h.pop("signature"), "not signed"),
    (lambda h: h.update(fidelity="yes"), "'fidelity' must be an object"),
    (lambda h: h.update(fidelity={"passed": "yes"}), "'fidelity' must be an object"),
    (lambda h: h.update(calibration={"frames": 40, "seed": 0}), "signature"),
    (lambda h: h.update(signature=12), "signature"),
])
def test_header_edits_are_one_line_errors(tiny_bundle, tmp_path, edit, fragment):
    cache = str(tmp_path / "engines")
    path = _install(tiny_bundle, cache, _encoder_bytes(tiny_bundle))
    _edit_header(path, edit)
    with pytest.raises(int8_model.Int8Mismatch) as info:
        create_encoder(tiny_bundle, "onnxruntime", precision="int8", cache_dir=cache)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert not int8_model.is_current(path, int8_model.expected_header(tiny_bundle, "x"))


def test_a_signing_key_that_is_a_link_is_refused(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("0" * 64)
    link = tmp_path / "link.key"
    os.symlink(str(victim), str(link))
    monkeypatch.setenv(int8_signature.KEY_ENV, str(link))
    with pytest.raises(JistEdgeError, match="signing key"):
        int8_signature.signing_key(create=True)


def test_empty_home_is_named(monkeypatch):
    monkeypatch.delenv(int8_signature.KEY_ENV)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", "")
    with pytest.raises(JistEdgeError, match="HOME is empty"):
        int8_signature.key_path()


def test_calibration_variety_check():
    from jist_edge.calibration.variety import check_variety

    rng = np.random.default_rng(0)
    with pytest.raises(JistEdgeError, match="40 of 40 frames are uniform"):
        check_variety(np.full((40, 3, 32, 48), -2.1, np.float32), "black.mp4")
    scene = rng.normal(size=(1, 3, 32, 48)).astype(np.float32)
    with pytest.raises(JistEdgeError, match="all alike"):
        check_variety(np.repeat(scene, 20, axis=0) + 0.001 * rng.normal(size=(20, 3, 32, 48)), "still.mp4")
    check_variety(rng.normal(size=(20, 3, 32, 48)).astype(np.float32), "route")
    check_variety(scene, "one frame")  # a single textured frame is allowed (tests calibrate on one)


def test_calibrate_refuses_black_frames(tiny_bundle, tmp_path):
    black = str(tmp_path / "black")
    write_images(black, [np.zeros((64, 96, 3), np.uint8)] * 40, positions(40))
    res = CliRunner().invoke(main, ["calibrate", tiny_bundle.path, "--calibration", black, "--frames", "12",
                                    "--route-frames", "10", "--no-fp16", "--no-tensorrt-qdq", "--workspace",
                                    str(tmp_path / "ws")])
    assert res.exit_code == 1 and "uniform" in res.output and "Traceback" not in res.output, res.output
    assert not os.path.exists(str(tmp_path / "ws" / "engines" / int8_model.FILE_NAME))


def test_the_gate_is_measured_on_frames_held_out_from_calibration(tiny_bundle, tmp_path):
    from jist_edge.calibration.dataset import open_calibration_set
    from jist_edge.calibration.workflow import _hold_out

    folder = str(tmp_path / "route")
    write_images(folder, route_frames(40, 64, 96, seed=2), positions(40))
    calib = open_calibration_set(folder, tiny_bundle, frames=256, seed=0)
    assert len(calib.indices) == 40  # before: every frame, the gate's frames among them
    route = _hold_out(calib, tiny_bundle, 60)
    assert len(route) == 20 and not set(route) & set(calib.indices)
    assert sorted(set(route) | set(calib.indices)) == list(range(40))


def test_no_calibrate_scratch_is_left_in_the_temp_dir(tiny_bundle, tmp_path):
    import tempfile

    before = set(n for n in os.listdir(tempfile.gettempdir()) if n.startswith("jist-edge-calibrate-"))
    folder = str(tmp_path / "route")
    write_images(folder, route_frames(30, 64, 96, seed=2), positions(30))
    ws = str(tmp_path / "ws")
    res = CliRunner().invoke(main, ["calibrate", tiny_bundle.path, "--calibration", folder, "--frames", "6",
                                    "--route-frames", "10", "--no-fp16", "--no-tensorrt-qdq", "--workspace", ws])
    assert res.exit_code in (0, 1) and "Traceback" not in res.output, res.output
    after = set(n for n in os.listdir(tempfile.gettempdir()) if n.startswith("jist-edge-calibrate-"))
    assert after <= before
    assert not [n for n in os.listdir(ws) if n.endswith(".staging")]
    shutil.rmtree(ws, ignore_errors=True)
