"""Hostile bundles (issue 21): external data a graph reads must be a listed, checksummed, regular file of
the bundle; numbers in a manifest must be sane. Real bundles exported by the exporter, re-signed as an
attacker would (file records, bundle_id and manifest_sha256 recomputed), loaded by the real loader."""
import json
import os

import pytest
from optional_imports import import_or_skip

from jist_edge.bundle import MANIFEST_FILE, bundle_identity, load_bundle
from jist_edge.errors import IntegrityError, JistEdgeError
from jist_edge.fileio import file_record, manifest_digest
from jist_edge.onnx_external import external_locations


def resign(folder, edit=None, extra_files=()):
    """Recompute every checksum of the manifest after an edit (what a hostile colleague can do)."""
    path = os.path.join(folder, MANIFEST_FILE)
    with open(path) as handle:
        manifest = json.load(handle)
    if edit is not None:
        edit(manifest)
    names = set(manifest["files"]) | set(extra_files)
    manifest["files"] = {n: file_record(os.path.join(folder, n)) for n in sorted(names)}
    manifest["bundle_id"] = bundle_identity(manifest)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    os.unlink(path)
    with open(path, "w") as handle:
        json.dump(manifest, handle)


def externalize(folder):
    """encoder.onnx with its weights moved to w.bin beside it (onnx's own external-data writer)."""
    onnx = import_or_skip("onnx")
    src = os.path.join(folder, "encoder.onnx")
    model = onnx.load(src)
    os.unlink(src)
    onnx.save_model(model, src, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
                    size_threshold=0)
    return os.path.join(folder, "w.bin")


def test_exported_bundles_read_no_external_data(tiny_bundle):
    assert external_locations(tiny_bundle.encoder_path) == []
    assert external_locations(tiny_bundle.sequence_path) == []


def test_external_data_not_in_the_manifest_is_refused(bundle_copy):
    externalize(bundle_copy)
    resign(bundle_copy)  # the manifest lists encoder.onnx only: w.bin could be swapped at will
    assert external_locations(os.path.join(bundle_copy, "encoder.onnx")) == ["w.bin"]
    with pytest.raises(IntegrityError, match=r"encoder.onnx reads external data 'w.bin'.*does not list"):
        load_bundle(bundle_copy)


def test_listed_external_data_loads_and_a_swapped_one_is_refused(bundle_copy):
    wbin = externalize(bundle_copy)
    resign(bundle_copy, extra_files=["w.bin"])
    load_bundle(bundle_copy)  # listed with its checksum: fine, and ONNX Runtime loads it
    data = bytearray(open(wbin, "rb").read())
    data[len(data) // 2] ^= 0xFF
    os.unlink(wbin)
    with open(wbin, "wb") as handle:
        handle.write(bytes(data))
    with pytest.raises(IntegrityError, match="w.bin does not match the sha256"):
        load_bundle(bundle_copy)


def test_external_data_outside_the_bundle_is_refused(bundle_copy, tmp_path):
    onnx = import_or_skip("onnx")

    src = os.path.join(bundle_copy, "encoder.onnx")
    model = onnx.load(src)
    tensor = model.graph.initializer[0]  # its bytes "come from" a file outside the bundle
    (tmp_path / "outside.bin").write_bytes(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../outside.bin"
    os.unlink(src)
    with open(src, "wb") as handle:
        handle.write(model.SerializeToString())
    resign(bundle_copy)
    with pytest.raises(IntegrityError, match="outside.bin"):
        load_bundle(bundle_copy)


def test_a_bundle_file_that_is_a_symlink_is_refused(bundle_copy, tmp_path):
    target = tmp_path / "real-sequence.onnx"
    os.replace(os.path.join(bundle_copy, "sequence.onnx"), str(target))
    os.symlink(str(target), os.path.join(bundle_copy, "sequence.onnx"))
    with pytest.raises(IntegrityError, match="symlink"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("blob", [b"", b"\x3a\xff\xff\xff\xff\x0f", b"\x07", b"\x3a\x05ab", b"\x0b" * 3])
def test_garbage_onnx_is_one_error(tmp_path, blob):
    path = tmp_path / "g.onnx"
    path.write_bytes(blob)
    try:
        assert isinstance(external_locations(str(path)), list)
    except JistEdgeError as exc:
        assert str(path) in str(exc)


def test_deeply_nested_graphs_are_refused_not_a_recursion_crash(tmp_path):
    # graph -> node -> attribute g -> graph ... 200 levels, built by hand in wire format
    def field(number, payload):
        out, n = bytearray([(number << 3) | 2]), len(payload)
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out) + payload

    graph = b""
    for _ in range(200):
        graph = field(1, field(5, field(6, graph)))  # graph.node[0].attribute[0].g
    path = tmp_path / "deep.onnx"
    path.write_bytes(field(7, graph))
    with pytest.raises(IntegrityError, match="nested deeper"):
        external_locations(str(path))


@pytest.mark.parametrize("field,value,fragment", [
    ("gem_p", 0.0, "gem_p"), ("gem_p", -1.0, "gem_p"), ("seqgem_p", 1e6, "seqgem_p"),
    ("seqgem_p", float("nan"), "seqgem_p"), ("seqgem_p", "3", "seqgem_p"), ("seqgem_eps", 0.0, "seqgem_eps"),
    ("input.std", [0.0, 0.0, 0.0], "input.std[0]"), ("input.mean", [float("inf"), 0, 0], "input.mean[0]"),
    ("input.scale", -1.0, "input.scale"), ("seq_len", 0, "seq_len"), ("input.height", 10 ** 9, "input.height"),
])
def test_manifest_numbers_are_checked_naming_the_field(bundle_copy, field, value, fragment):
    def edit(manifest):
        if field.startswith("input."):
            manifest["input"][field[6:]] = value
        else:
            manifest[field] = value

    resign(bundle_copy, edit)
    with pytest.raises(IntegrityError) as info:
        load_bundle(bundle_copy, check_onnx=False)
    assert fragment in str(info.value) and "manifest.json" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("p", ["0", "-1", "1e6", "nan"])
def test_export_refuses_a_degenerate_pooling_p(tmp_path, p):
    import_or_skip("torch")
    from click.testing import CliRunner

    from jist_edge.cli import main

    out = tmp_path / "model"
    res = CliRunner().invoke(main, ["export", "--random-init", "--img-size", "64", "96", "--output", str(out),
                                    "--gem-p", p, "--workspace", str(tmp_path / "ws")])
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert "GeM p" in res.output or "gem" in res.output.lower(), res.output
    assert not out.exists()


def test_a_bundle_whose_encoder_gives_nan_is_refused_at_load(bundle_copy):
    onnx = import_or_skip("onnx")
    import numpy as np
    from onnx import numpy_helper

    src = os.path.join(bundle_copy, "encoder.onnx")
    model = onnx.load(src)
    for tensor in model.graph.initializer:
        arr = numpy_helper.to_array(tensor)
        if arr.dtype == np.float32 and arr.size > 100:  # a conv or the head: NaN weights
            tensor.CopyFrom(numpy_helper.from_array(np.full_like(arr, np.nan), tensor.name))
            break
    os.unlink(src)
    onnx.save(model, src)
    resign(bundle_copy)
    with pytest.raises(IntegrityError, match="non-finite descriptors"):
        load_bundle(bundle_copy)
