"""Hostile lock files (issue 21): a planted ``.NAME.lock`` link never makes a writer truncate or
create a file elsewhere; the lock is refused with one line. Real files and real `jist-edge` runs."""
import os

import pytest
from click.testing import CliRunner

from jist_edge.cli import main
from jist_edge.errors import JistEdgeError
from jist_edge.locks import lock_path, output_lock


def _victim(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    return victim


def test_lock_link_to_a_file_is_refused_and_the_file_untouched(tmp_path):
    victim = _victim(tmp_path)
    out = str(tmp_path / "lockmap")
    os.symlink(str(victim), lock_path(out))
    with pytest.raises(JistEdgeError, match="symlink"):
        with output_lock(out, "map output"):
            pass
    assert victim.read_text() == "precious\n"
    assert os.path.islink(lock_path(out))  # not removed either: it is not ours


def test_dangling_lock_link_creates_nothing(tmp_path):
    target = tmp_path / "elsewhere" / "created.txt"
    (tmp_path / "elsewhere").mkdir()
    out = str(tmp_path / "lockmap")
    os.symlink(str(target), lock_path(out))
    with pytest.raises(JistEdgeError, match="symlink"):
        with output_lock(out):
            pass
    assert not target.exists()


def test_lock_path_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    out = str(tmp_path / "lockmap")
    os.mkfifo(lock_path(out))
    with pytest.raises(JistEdgeError, match="not a regular file"):
        with output_lock(out):
            pass


def test_lock_fd_is_not_inherited(tmp_path):
    import fcntl

    out = str(tmp_path / "m")
    with output_lock(out):
        from jist_edge.locks import _HELD

        fd = _HELD[os.path.realpath(out)][0]
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


@pytest.mark.parametrize("argv", [
    ["map", "build", "--images", "IMAGES", "--output", "OUT"],
    ["synth", "--output", "OUT", "--frames", "30"],
])
def test_cli_writers_refuse_a_planted_lock_link(tmp_path, argv):
    victim = _victim(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    out = str(tmp_path / "out")
    os.symlink(str(victim), lock_path(out))
    args = [str(images) if a == "IMAGES" else out if a == "OUT" else a for a in argv]
    res = CliRunner().invoke(main, args + ["--workspace", str(tmp_path / "ws")])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert "symlink" in res.output, res.output
    assert victim.read_text() == "precious\n"
