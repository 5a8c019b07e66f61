"""Engine cache: header fields, keys, refusal naming the field, checksum, atomic write."""
import os

import pytest

from jist_edge.encoder.tensorrt import cache as engine_cache
from jist_edge.errors import IntegrityError, JistEdgeError


def _expected(**change):
    fields = dict(
        tensorrt="8.2.1.8", typing="weak", gpu="NVIDIA Tegra X1", compute_capability="5.3", model="encoder",
        precision="fp16", input_shape=[3, 96, 128],
        profile={"min": [1, 3, 96, 128], "opt": [1, 3, 96, 128], "max": [5, 3, 96, 128]},
        onnx_sha256="a" * 64, bundle_id="0123456789abcdef",
    )
    fields.update(change)
    return engine_cache.expected_header(**fields)


CHANGES = {
    "tensorrt": {"tensorrt": "8.2.3.0"},
    "typing": {"typing": "strong"},
    "gpu": {"gpu": "Orin"},
    "compute_capability": {"compute_capability": "8.7"},
    "model": {"model": "sequence"},
    "precision": {"precision": "int8"},
    "input_shape": {"input_shape": [3, 480, 640]},
    "profile": {"profile": {"min": [1, 3, 96, 128], "opt": [1, 3, 96, 128], "max": [8, 3, 96, 128]}},
    "onnx_sha256": {"onnx_sha256": "b" * 64},
    "bundle_id": {"bundle_id": "fedcba9876543210"},
}


def test_changes_cover_every_identity_field():
    assert set(CHANGES) | {"format", "format_version"} == set(engine_cache.IDENTITY_FIELDS)


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_every_field_changes_key_and_is_named(field, tmp_path):
    built = _expected()
    here = _expected(**CHANGES[field])
    assert engine_cache.cache_key(built) != engine_cache.cache_key(here)
    assert engine_cache.check_header(built, here) == [field]
    path = str(tmp_path / "encoder-fp16.engine")
    engine_cache.write_engine(path, b"engine-bytes", built)
    with pytest.raises(engine_cache.EngineMismatch) as info:
        engine_cache.load_engine(path, here)
    assert info.value.fields == [field]
    message = str(info.value)
    assert field in message and "jist-edge engine build" in message and "\n" not in message


def test_matching_engine_loads_and_key_is_stable(tmp_path):
    path = engine_cache.engine_path(str(tmp_path), "encoder", "fp16")
    header = engine_cache.write_engine(path, b"\x00engine\xff" * 100, _expected(), extra={"workspace_mib": 256})
    assert os.path.basename(path) == "encoder-fp16.engine"
    assert os.path.isfile(engine_cache.header_path(path))
    assert header["cache_key"] == engine_cache.cache_key(_expected())
    data, loaded = engine_cache.load_engine(path, _expected())
    assert data == b"\x00engine\xff" * 100 and loaded == header
    # no temporary files left behind
    assert sorted(os.listdir(str(tmp_path))) == ["encoder-fp16.engine", "encoder-fp16.engine.json"]


def test_missing_field_and_format_refused(tmp_path):
    built = _expected()
    del built["gpu"]
    assert engine_cache.check_header(built, _expected()) == ["gpu"]
    assert "format" in engine_cache.check_header({}, _expected())


def test_swapped_or_truncated_engine_refused(tmp_path):
    path = str(tmp_path / "e.engine")
    engine_cache.write_engine(path, b"x" * 1000, _expected())
    with open(path, "wb") as handle:
        handle.write(b"y" * 1000)
    with pytest.raises(engine_cache.EngineMismatch, match="sha256"):
        engine_cache.load_engine(path, _expected())
    with open(path, "wb") as handle:
        handle.write(b"x" * 10)
    with pytest.raises(IntegrityError):
        engine_cache.load_engine(path, _expected())


def test_absent_engine_and_corrupt_header(tmp_path):
    path = str(tmp_path / "none.engine")
    with pytest.raises(JistEdgeError, match="engine not found"):
        engine_cache.load_engine(path, _expected())
    with open(path, "wb") as handle:
        handle.write(b"z")
    with open(engine_cache.header_path(path), "w") as handle:
        handle.write("{not json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        engine_cache.load_engine(path, _expected())


def test_failed_write_keeps_old_engine(tmp_path):
    path = str(tmp_path / "e.engine")
    engine_cache.write_engine(path, b"old", _expected())

    class Boom(Exception):
        pass

    class BadBytes(bytes):
        def __len__(self):
            raise Boom()

    with pytest.raises(Boom):
        engine_cache.write_engine(path, BadBytes(b"new"), _expected())
    assert engine_cache.load_engine(path, _expected())[0] == b"old"


def test_timing_cache_path_depends_on_trt_and_gpu(tmp_path):
    a = engine_cache.timing_cache_path(str(tmp_path), "8.2.1.8", "5.3")
    b = engine_cache.timing_cache_path(str(tmp_path), "8.2.1.8", "8.7")
    c = engine_cache.timing_cache_path(str(tmp_path), "10.3.0", "5.3")
    assert len({a, b, c}) == 3


def test_an_engine_of_the_previous_format_is_refused_by_format_version(tmp_path):
    """Format 1 headers had no typing field: such an engine is rebuilt, with the reason named."""
    path = str(tmp_path / "encoder-fp16.engine")
    old = dict(_expected(), format_version=1)
    del old["typing"]
    engine_cache.write_engine(path, b"engine", old)
    with pytest.raises(engine_cache.EngineMismatch) as info:
        engine_cache.load_engine(path, _expected())
    assert info.value.fields == ["format_version", "typing"]
    assert "written by another jist-edge version" in str(info.value)


def _bundle(encoder_sha="e" * 64, seq_len=5):
    from jist_edge.bundle import Bundle, bundle_identity, make_manifest

    manifest = make_manifest(96, 128, seq_len, 512, 3.0, 3.0, 18, True, {"test": "1"})
    manifest["files"] = {"encoder.onnx": {"sha256": encoder_sha, "bytes": 1},
                         "sequence.onnx": {"sha256": "s" * 64, "bytes": 1}}
    manifest["bundle_id"] = bundle_identity(manifest)
    return Bundle("/nowhere", manifest)


PLATFORM = {"tensorrt": "8.2.1.8", "typing": "weak", "gpu": "NVIDIA Tegra X1", "compute_capability": "5.3"}


def test_expected_header_from_bundle():
    from jist_edge.encoder.tensorrt import build as engine_build

    enc = engine_build.expected_for(_bundle(), "encoder", "fp16", PLATFORM)
    assert enc["input_shape"] == [3, 96, 128] and enc["typing"] == "weak"
    assert enc["profile"]["max"] == [5, 3, 96, 128] and enc["profile"]["opt"][0] == 1
    assert enc["onnx_sha256"] == "e" * 64
    with pytest.raises(JistEdgeError, match="encoder only"):
        engine_build.expected_for(_bundle(), "sequence", "fp16", PLATFORM)
    # a re-exported bundle changes the ONNX hash and the identity: both named
    reexport = engine_build.expected_for(_bundle(encoder_sha="f" * 64), "encoder", "fp16", PLATFORM)
    assert engine_cache.check_header(enc, reexport) == ["onnx_sha256", "bundle_id"]
    bigger = engine_build.expected_for(_bundle(), "encoder", "fp16", PLATFORM, max_batch=8)
    assert engine_cache.check_header(enc, bigger) == ["profile"]
    # the same device after a JetPack upgrade to TensorRT 10: another version and another typing path
    orin = engine_build.expected_for(_bundle(), "encoder", "fp16", dict(PLATFORM, tensorrt="10.3.0", typing="strong"))
    assert engine_cache.check_header(enc, orin) == ["tensorrt", "typing"]


def test_engine_build_without_tensorrt_is_one_line(tmp_path):
    from click.testing import CliRunner

    from jist_edge.encoder.tensorrt import backend as tensorrt_backend
    from jist_edge.cli import main

    if tensorrt_backend.is_available():
        pytest.skip("TensorRT is installed here")
    result = CliRunner().invoke(main, ["engine", "build", str(tmp_path)])
    assert result.exit_code != 0
    assert "cannot build engines here" in result.output and "tensorrt" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_engine_build_workspace_is_the_folder_and_trt_workspace_the_builder_mib(tmp_path):
    """--workspace is the jist-edge folder as in every command; TensorRT's memory is --trt-workspace."""
    from click.testing import CliRunner

    from jist_edge.cli import main

    runner = CliRunner()
    folder = runner.invoke(main, ["engine", "build", "--workspace", str(tmp_path), "--trt-workspace", "128"])
    assert folder.exit_code != 2 and "Invalid value" not in folder.output, folder.output
    help_text = runner.invoke(main, ["engine", "build", "--help"]).output
    assert "--workspace DIRECTORY" in help_text and "--trt-workspace MiB" in help_text
    for option, value in (("--trt-workspace", "8"), ("--trt-workspace", "big"), ("--frames", "0"),
                          ("--max-batch", "0")):
        bad = runner.invoke(main, ["engine", "build", str(tmp_path), option, value])
        assert bad.exit_code == 2 and "Invalid value for '{}'".format(option) in bad.output
    gone = runner.invoke(main, ["engine", "build", str(tmp_path), "--sequence"])
    assert gone.exit_code == 2 and "No such option" in gone.output
