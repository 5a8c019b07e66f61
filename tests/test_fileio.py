import os
import stat

import pytest

from jist_edge.errors import IntegrityError
from jist_edge.fileio import file_record, staged_directory, verify_files, write_json_atomic


def test_atomic_write_keeps_old_file_on_failure_and_uses_normal_permissions(tmp_path):
    target = tmp_path / "a.json"
    write_json_atomic(str(target), {"v": 1})
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_umask()
    with pytest.raises(TypeError):
        write_json_atomic(str(target), {"v": object()})
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_staged_directory_swaps_whole_or_not_at_all(tmp_path):
    final = tmp_path / "d"
    with staged_directory(str(final)) as stage:
        (open(os.path.join(stage, "x"), "w")).write("one")
    assert (final / "x").read_text() == "one"
    assert stat.S_IMODE(os.stat(final).st_mode) == 0o777 & ~_umask()
    with pytest.raises(RuntimeError):
        with staged_directory(str(final)) as stage:
            open(os.path.join(stage, "x"), "w").write("two")
            raise RuntimeError("interrupted")
    assert (final / "x").read_text() == "one"
    assert sorted(os.listdir(tmp_path)) == ["d"]


def test_verify_files_catches_size_hash_and_path_escape(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    rec = {"f.bin": file_record(str(f))}
    verify_files(str(tmp_path), rec, "thing")
    f.write_bytes(b"abd")
    with pytest.raises(IntegrityError, match="sha256"):
        verify_files(str(tmp_path), rec, "thing")
    f.write_bytes(b"abcd")
    with pytest.raises(IntegrityError, match="bytes"):
        verify_files(str(tmp_path), rec, "thing")
    with pytest.raises(IntegrityError, match="outside"):
        verify_files(str(tmp_path), {"../f.bin": rec["f.bin"]}, "thing")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_unwritable_destination_is_one_line_error_naming_the_path(tmp_path):
    from jist_edge.errors import JistEdgeError

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(JistEdgeError, match="a_file is a file, not a folder"):
        write_json_atomic(str(blocker / "sub" / "r.json"), {"v": 1})
    with pytest.raises(JistEdgeError, match="cannot write .*out"):
        with staged_directory(str(blocker / "out")):
            pass
    assert blocker.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["a_file"]
