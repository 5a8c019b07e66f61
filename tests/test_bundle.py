"""The runtime loader refuses a tampered, edited or incomplete bundle before ONNX Runtime parses it."""
import json
import os

import pytest
from optional_imports import import_or_skip

from jist_edge.bundle import load_bundle
from jist_edge.errors import IntegrityError, JistEdgeError


def _replace(path, data):
    """Write a new file over ``path`` (the copy may share inodes with the session bundle)."""
    os.unlink(path)
    with open(path, "wb") as handle:
        handle.write(data)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_untouched_copy_loads(bundle_copy, tiny_bundle):
    bundle = load_bundle(bundle_copy)
    assert bundle.bundle_id == tiny_bundle.bundle_id
    assert (bundle.height, bundle.width, bundle.seq_len, bundle.dim) == (64, 96, 5, 512)


def test_corrupt_onnx_is_refused_by_checksum_not_by_onnxruntime(bundle_copy):
    ort = import_or_skip("onnxruntime")
    path = os.path.join(bundle_copy, "encoder.onnx")
    data = _read(path)
    _replace(path, b"\x00garbage" * 8 + data[64:])
    # ONNX Runtime itself would choke on this file ...
    with pytest.raises(Exception) as ort_err:
        ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    # ... but the loader stops at the checksum, naming the file, before any parser runs
    with pytest.raises(IntegrityError) as err:
        load_bundle(bundle_copy)
    message = str(err.value)
    assert "encoder.onnx" in message and "sha256" in message
    assert str(ort_err.value) not in message


def test_one_flipped_weight_byte_is_refused(bundle_copy):
    """A change ONNX Runtime would happily run (silently different descriptors)."""
    path = os.path.join(bundle_copy, "sequence.onnx")
    data = bytearray(_read(path))
    middle = len(data) // 2  # deep inside the weights
    data[middle] ^= 0x01
    _replace(path, bytes(data))
    with pytest.raises(IntegrityError, match="sequence.onnx"):
        load_bundle(bundle_copy, check_onnx=False)


def _edit_manifest(folder, edit):
    path = os.path.join(folder, "manifest.json")
    manifest = json.loads(_read(path).decode("utf-8"))
    edit(manifest)
    _replace(path, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    return path


@pytest.mark.parametrize("edit", [
    lambda m: m.__setitem__("seqgem_p", m["seqgem_p"] + 0.5),
    lambda m: m["input"].__setitem__("mean", [0.5, 0.5, 0.5]),
    lambda m: m["input"].__setitem__("height", 480),
    lambda m: m.__setitem__("descriptor_dim", 256),
    lambda m: m.__setitem__("random_init", not m["random_init"]),
    lambda m: m.__setitem__("gem_p", 3.0),
    lambda m: m.__setitem__("seq_len", m["seq_len"] + 1),
], ids=["seqgem_p", "mean", "height", "dim", "random_init", "gem_p", "seq_len"])
def test_edited_manifest_value_is_refused(bundle_copy, edit):
    manifest_path = _edit_manifest(bundle_copy, edit)
    with pytest.raises(IntegrityError) as err:
        load_bundle(bundle_copy)
    assert "manifest.json" in str(err.value) and manifest_path in str(err.value)


def test_manifest_rehashed_for_a_swapped_file_is_still_refused(bundle_copy):
    """Updating the file's sha256 in the manifest does not help: the bundle id covers the hashes."""
    from jist_edge.fileio import file_record

    enc = os.path.join(bundle_copy, "encoder.onnx")
    data = bytearray(_read(enc))
    data[len(data) // 3] ^= 0xFF
    _replace(enc, bytes(data))
    record = file_record(enc)
    _edit_manifest(bundle_copy, lambda m: m["files"].__setitem__("encoder.onnx", record))
    with pytest.raises(IntegrityError, match="manifest_sha256"):
        load_bundle(bundle_copy)
    # even with the manifest's own digest recomputed, the bundle id still names the old weights
    from jist_edge.fileio import manifest_digest

    _edit_manifest(bundle_copy, lambda m: m.__setitem__("manifest_sha256", manifest_digest(m)))
    with pytest.raises(IntegrityError, match="bundle_id"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["encoder.onnx", "sequence.onnx"])
def test_missing_file_is_refused(bundle_copy, name):
    os.unlink(os.path.join(bundle_copy, name))
    with pytest.raises(IntegrityError) as err:
        load_bundle(bundle_copy)
    assert name in str(err.value) and "missing" in str(err.value)


def test_missing_or_broken_manifest_is_refused(bundle_copy, tmp_path):
    path = os.path.join(bundle_copy, "manifest.json")
    _replace(path, _read(path)[:100])
    with pytest.raises(IntegrityError, match="manifest"):
        load_bundle(bundle_copy)
    os.unlink(path)
    with pytest.raises(JistEdgeError, match="manifest"):
        load_bundle(bundle_copy)
    with pytest.raises(JistEdgeError, match="jist-edge export"):
        load_bundle(str(tmp_path / "nowhere"))
