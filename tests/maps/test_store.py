"""Map folders: round trip, determinism, atomic replace, and refusal of corrupt or foreign maps."""
import os
import subprocess
import sys

import numpy as np
import pytest

from jist_edge.errors import IntegrityError, JistEdgeError
from jist_edge.fileio import sha256_file
from jist_edge.maps.store import FrameTable, INDEX_FILE, SEQUENCES_FILE, load_map
from jist_edge.maps.write import write_map
from jist_edge.search.matcher import Matcher
from jist_edge.encoder.seqgem import sliding_windows

import map_routes

N_FRAMES = 120
L = 5


def _route(dim, n=N_FRAMES, seed=0, missing=()):
    rng = np.random.RandomState(seed)
    desc = np.abs(rng.normal(size=(n, dim))).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    pos = np.c_[np.arange(n) * 2.0, np.full(n, 100.0)]
    pos[list(missing)] = np.nan
    table = FrameTable(range(0, 2 * n, 2), ["img{:04d}.png".format(i) for i in range(n)], [0.1 * i for i in range(n)], pos)
    return desc, table


def _write(path, bundle, seed=0, fp16=False, force=False, missing=()):
    desc, table = _route(bundle.dim, seed=seed, missing=missing)
    seqs = sliding_windows(desc, L, bundle.seqgem_p, bundle.seqgem_eps)
    return write_map(path, bundle, desc, table, L, seqs, fp16=fp16, force=force), desc, seqs


def test_round_trip_holds_everything(tiny_bundle, tmp_path):
    written, desc, seqs = _write(str(tmp_path / "map"), tiny_bundle, missing=(7,))
    m = load_map(written.path, tiny_bundle)
    assert (m.count, m.seq_len, m.dim, m.bundle_id) == (N_FRAMES - L + 1, L, tiny_bundle.dim, tiny_bundle.bundle_id)
    assert m.descriptors.dtype == np.float32 and np.array_equal(m.descriptors, seqs)
    assert np.array_equal(np.asarray(m.frame_descriptors), desc)
    frames = m.frames_of(5)
    assert [f["row"] for f in frames] == list(range(5, 10))
    assert [f["index"] for f in frames] == [10, 12, 14, 16, 18]
    assert frames[2]["name"] == "img0007.png" and frames[2]["position"] is None
    # centre frame 7 of sequence 5 has no position: the mean of the others stands in
    assert np.allclose(m.positions_of([5])[0], [np.mean([10, 12, 16, 18]), 100.0])
    assert np.allclose(m.positions_of([0, 3]), [[4.0, 100.0], [10.0, 100.0]])
    assert np.isnan(m.positions_of([-1, m.count])).all()
    man = m.manifest
    assert man["space"] == "l2" and man["index"]["M"] == 16 and man["index"]["ef_construction"] == 200
    assert man["counts"] == {"frames": N_FRAMES, "sequences": m.count, "skipped_frames": 0,
                             "positioned_frames": N_FRAMES - 1}
    for name, rec in man["files"].items():
        assert rec["sha256"] == sha256_file(os.path.join(m.path, name))
    with pytest.raises(JistEdgeError, match="outside the map"):
        m.frames_of(m.count)


def test_build_is_deterministic(tiny_bundle, tmp_path):
    a, _, _ = _write(str(tmp_path / "a"), tiny_bundle)
    b, _, _ = _write(str(tmp_path / "b"), tiny_bundle)
    c, _, _ = _write(str(tmp_path / "c"), tiny_bundle, seed=1)
    assert sha256_file(a.index_path) == sha256_file(b.index_path)
    assert sha256_file(a.index_path) != sha256_file(c.index_path)


def test_fp16_storage_loads_as_float32_and_index_matches_it(tiny_bundle, tmp_path):
    m, _, seqs = _write(str(tmp_path / "map"), tiny_bundle, fp16=True)
    assert np.load(os.path.join(m.path, SEQUENCES_FILE)).dtype == np.float16
    assert m.descriptors.dtype == np.float32
    assert np.allclose(m.descriptors, seqs, rtol=1e-3, atol=1e-4) and not np.array_equal(m.descriptors, seqs)
    ids, d = Matcher(m).query(m.descriptors[:20], k=1)
    # the index holds the same rounded vectors: each finds itself at distance 0
    assert np.array_equal(ids[:, 0], np.arange(20)) and np.all(d == 0)
    fp32, _, _ = _write(str(tmp_path / "fp32"), tiny_bundle)
    assert os.path.getsize(os.path.join(m.path, SEQUENCES_FILE)) < os.path.getsize(
        os.path.join(fp32.path, SEQUENCES_FILE))


def test_refuses_map_of_another_bundle_naming_both(tiny_bundle, alt_bundle, tmp_path):
    m, _, _ = _write(str(tmp_path / "map"), tiny_bundle)
    with pytest.raises(JistEdgeError) as err:
        load_map(m.path, alt_bundle)
    text = str(err.value)
    for part in (tiny_bundle.bundle_id, alt_bundle.bundle_id, tiny_bundle.path, alt_bundle.path):
        assert part in text


def test_refuses_other_sequence_length(tiny_bundle, tmp_path):
    m, _, _ = _write(str(tmp_path / "map"), tiny_bundle)
    with pytest.raises(JistEdgeError, match="L=5.*L=3.*--from-map"):
        load_map(m.path, tiny_bundle, seq_len=3)


def _load_in_subprocess(path):
    """hnswlib may segfault on a corrupt file: load where a crash cannot take pytest down."""
    code = ("import sys\nfrom jist_edge.maps.store import load_map\nfrom jist_edge.errors import JistEdgeError\n"
            "try:\n    load_map(sys.argv[1]).hnsw_index()\nexcept JistEdgeError as e:\n"
            "    print('REFUSED', e)\n    sys.exit(3)\nprint('LOADED')\n")
    return subprocess.run([sys.executable, "-c", code, path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120)


@pytest.mark.parametrize("damage", ["truncate", "flip_header_byte", "flip_last_byte"])
def test_corrupt_index_refused_by_checksum_before_hnswlib(tiny_bundle, tmp_path, damage):
    m, _, _ = _write(str(tmp_path / "map"), tiny_bundle)
    data = bytearray(open(m.index_path, "rb").read())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_header_byte":
        data[9] ^= 0x40
    else:
        data[-1] ^= 0x01
    with open(m.index_path, "wb") as handle:
        handle.write(bytes(data))
    proc = _load_in_subprocess(m.path)
    assert proc.returncode == 3, proc.stdout
    assert "REFUSED" in proc.stdout and INDEX_FILE in proc.stdout
    assert ("sha256" in proc.stdout) or ("bytes" in proc.stdout)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.__setitem__("space", "ip"), "space"),
    (lambda m: m.__setitem__("dim", 256), "implies|descriptors"),
    (lambda m: m["counts"].__setitem__("sequences", 10), "sequences do not fit"),
    (lambda m: m.__setitem__("format", "something-else"), "format"),
    (lambda m: m.pop("files"), "files"),
    (lambda m: m["files"].pop(INDEX_FILE), INDEX_FILE),
])
def test_edited_manifest_refused(tiny_bundle, tmp_path, edit, message):
    m, _, _ = _write(str(tmp_path / "map"), tiny_bundle)
    map_routes.edit_map_manifest(m.path, edit)
    with pytest.raises(IntegrityError, match=message):
        load_map(m.path)


def test_missing_file_and_not_a_map(tmp_path, tiny_bundle):
    with pytest.raises(JistEdgeError, match="map not found"):
        load_map(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(JistEdgeError, match="map manifest not found"):
        load_map(str(tmp_path / "empty"))
    m, _, _ = _write(str(tmp_path / "map"), tiny_bundle)
    os.unlink(os.path.join(m.path, SEQUENCES_FILE))
    with pytest.raises(IntegrityError, match="missing"):
        load_map(m.path)


def test_existing_folder_needs_force_and_failed_write_keeps_old_map(tiny_bundle, tmp_path, monkeypatch):
    path = str(tmp_path / "map")
    old, _, _ = _write(path, tiny_bundle)
    old_sha = sha256_file(old.index_path)
    with pytest.raises(JistEdgeError, match="--force"):
        _write(path, tiny_bundle, seed=1)

    def disk_full(*_):  # fault injection: the last file of the map cannot be written
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("jist_edge.maps.write.write_json_atomic", disk_full)
        with pytest.raises(JistEdgeError, match="frame_info.json: disk full; the previous map .* was kept"):
            _write(path, tiny_bundle, seed=1, force=True)
    assert sha256_file(load_map(path).index_path) == old_sha
    assert sorted(os.listdir(str(tmp_path))) == ["map"]
    new, _, _ = _write(path, tiny_bundle, seed=1, force=True)
    assert sha256_file(new.index_path) != old_sha
    assert sorted(os.listdir(str(tmp_path))) == ["map"]  # no staging or old folders left behind
