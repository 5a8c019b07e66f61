"""Nothing is lost (issue 10, files): --force replaces only what jist-edge wrote, a failed command
leaves existing files byte-identical, one writer per output, staging cleaned up on every exit
path (Ctrl-C and SIGTERM too), symlinks written through, and disk-full errors that name the
file. Real bundles, maps, files, signals and `jist-edge` subprocesses; no mocks."""
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from optional_imports import import_or_skip

from jist_edge.cli import main

from map_routes import positions, route_frames, write_images

import_or_skip("torch")

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
WAIT_S = 300  # generous: the machines are shared; nothing below asserts on time


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_bundle):
    """An image route (40 frames) and a map of it."""
    from jist_edge.maps.build import build_map

    root = tmp_path_factory.mktemp("safety")
    db = str(root / "db")
    write_images(db, route_frames(40, seed=5), positions(40))
    place_map = build_map(tiny_bundle, db, str(root / "map"))
    return {"db": db, "map": place_map.path}


def _tree(folder):
    """name -> sha256 of every file under ``folder`` (folders as entries too)."""
    out = {}
    for base, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(base, d), folder) + "/"] = None
        for f in files:
            with open(os.path.join(base, f), "rb") as handle:
                out[os.path.relpath(os.path.join(base, f), folder)] = hashlib.sha256(handle.read()).hexdigest()
    return out


def _user_folder(path):
    os.makedirs(os.path.join(path, "photos"))
    with open(os.path.join(path, "thesis.txt"), "w") as handle:
        handle.write("four years of work\n")
    with open(os.path.join(path, "photos", "a.jpg"), "wb") as handle:
        handle.write(b"\xff\xd8 not really a jpeg")
    return _tree(path)


def _one_error_line(res, *fragments):
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, res.output
    for fragment in fragments:
        assert fragment in errors[0], res.output
    return errors[0]


def _jist_edge(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "jist_edge"] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, env=ENV, **kw)


def _wait_for(predicate, proc=None, what="condition"):
    deadline = time.time() + WAIT_S
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process ended before {}: {}".format(what, proc.communicate()[0]))
        assert time.time() < deadline, "gave up waiting for " + what
        time.sleep(0.005)


def _lock_holder(lock):
    try:
        with open(lock) as handle:
            return json.load(handle).get("pid")
    except (OSError, ValueError):
        return None


# --- 1. --force replaces only what jist-edge wrote ------------------------------------------------

@pytest.mark.parametrize("command", ["map build", "export", "synth", "demo"])
def test_force_never_empties_a_folder_jist_edge_did_not_write(command, tiny_bundle, setup, tmp_path):
    """Before: `map build/export/synth --force` into a folder with thesis.txt and photos/ deleted
    both and exited 0; `demo --force` replaced a user's model/ folder."""
    out = str(tmp_path / "mine")
    if command == "demo":
        before = _user_folder(os.path.join(out, "model"))
        args = ["demo", "--output", out, "--force", "--frames", "20", "--img-size", "64", "96"]
        target = os.path.join(out, "model")
    else:
        before = _user_folder(out)
        target = out
        args = {"map build": ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"], "--quiet"],
                "export": ["export", "--random-init", "--img-size", "64", "96"],
                "synth": ["synth", "--frames", "3", "--img-size", "32", "32"]}[command] + ["--output", out, "--force"]
    res = CliRunner().invoke(main, args)
    _one_error_line(res, "thesis.txt" if command != "demo" else "model", "jist-edge wrote")
    assert _tree(target) == before


def test_force_refuses_a_map_folder_that_also_holds_a_strangers_file(tiny_bundle, setup, tmp_path):
    """Replacing the map would delete notes.txt with it (before: deleted, exit 0)."""
    out = str(tmp_path / "map")
    shutil.copytree(setup["map"], out)
    with open(os.path.join(out, "notes.txt"), "w") as handle:
        handle.write("where this map was driven")
    before = _tree(out)
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"],
                                    "--output", out, "--force", "--quiet"])
    _one_error_line(res, "notes.txt", "did not write")
    assert _tree(out) == before


def test_force_still_replaces_what_jist_edge_wrote(tiny_bundle, setup, tmp_path):
    from jist_edge.maps.store import load_map

    out = str(tmp_path / "map")
    shutil.copytree(setup["map"], out)
    runner = CliRunner()
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"],
                               "--output", out, "--quiet", "--stride", "2"])
    _one_error_line(res, "already holds a map", "--force")
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"],
                               "--output", out, "--quiet", "--stride", "2", "--force"])
    assert res.exit_code == 0, res.output
    assert len(load_map(out).frames) == 20
    assert sorted(os.listdir(str(tmp_path))) == ["map"]  # no staging, old or lock files left


def test_bench_report_never_replaces_someone_elses_readme(tiny_bundle, tmp_path):
    """Before: `bench --report DIR` overwrote DIR/README.md whoever wrote it (e.g. `--report .`)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "README.md").write_text("# my project\n")
    res = CliRunner().invoke(main, ["bench", "--quick", "--model", tiny_bundle.path, "--report", str(folder),
                                    "--workspace", str(tmp_path / "ws")])
    _one_error_line(res, "README.md", "did not write")
    assert (folder / "README.md").read_text() == "# my project\n"
    assert not (tmp_path / "ws").exists()  # refused before any timing


# --- 2. a failed run leaves --output byte-identical -----------------------------------------------

@pytest.mark.parametrize("source", ["unopenable video", "no usable image"])
def test_failed_run_leaves_the_existing_output_byte_identical(source, tiny_bundle, setup, tmp_path):
    """Before: the 46 lines of out.jsonl were gone (opened for writing before the source)."""
    out = tmp_path / "out.jsonl"
    out.write_text("".join('{"frame": %d}\n' % i for i in range(46)))
    before = out.read_bytes()
    if source == "unopenable video":
        bad = tmp_path / "bad.avi"
        bad.write_text("not a video")
        args = ["--video", str(bad)]
    else:
        (tmp_path / "imgs").mkdir()
        (tmp_path / "imgs" / "a.png").write_bytes(b"not a png")
        args = ["--images", str(tmp_path / "imgs")]
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", setup["map"], "--output", str(out),
                                    "--quiet"] + args)
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert out.read_bytes() == before


def test_run_output_is_still_written_live_and_replaced_by_a_good_run(tiny_bundle, setup, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n" * 46)
    res = CliRunner().invoke(main, ["run", "--model", tiny_bundle.path, "--map", setup["map"], "--images",
                                    setup["db"], "--output", str(out), "--quiet", "--max-frames", "7"])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert len(lines) == 7 and json.loads(lines[0])["frame"] == 0


# --- 3. one writer per output ----------------------------------------------------------------------

def test_second_map_build_into_the_same_output_is_refused_naming_the_first(tiny_bundle, setup, tmp_path):
    """Before: both builds ran, both said "map written" (or one failed after all its work), one silently won."""
    from jist_edge.maps.store import load_map

    out = str(tmp_path / "race")
    lock = str(tmp_path / ".race.lock")
    build = ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"], "--output", out, "--quiet"]
    first = _jist_edge(build)
    try:
        _wait_for(lambda: _lock_holder(lock) == first.pid, first, "the first build to take the lock")
        first.send_signal(signal.SIGSTOP)  # hold it mid-build, however fast this machine is
        second = _jist_edge(build)
        output = second.communicate(timeout=WAIT_S)[0]
        assert second.returncode == 1, output
        errors = [line for line in output.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and "pid {}".format(first.pid) in errors[0] and "map build" in errors[0], output
        assert "being written by another jist-edge process" in errors[0]
    finally:
        first.send_signal(signal.SIGCONT)
    output = first.communicate(timeout=WAIT_S)[0]
    assert first.returncode == 0 and "map written" in output, output
    assert len(load_map(out, tiny_bundle).frames) == 40
    assert sorted(os.listdir(str(tmp_path))) == ["race"]  # the lock file went with its holder


def test_a_lock_whose_holder_died_does_not_block(tiny_bundle, setup, tmp_path):
    out = str(tmp_path / "stale")
    lock = str(tmp_path / ".stale.lock")
    build = ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"], "--output", out, "--quiet"]
    dead = _jist_edge(build)
    _wait_for(lambda: _lock_holder(lock) == dead.pid, dead, "the build to take the lock")
    dead.kill()  # SIGKILL: no cleanup at all; the lock file stays behind with its pid
    dead.communicate()
    assert _lock_holder(lock) == dead.pid
    res = CliRunner().invoke(main, build)
    assert res.exit_code == 0, res.output
    assert not os.path.exists(lock)


def test_output_lock_is_reentrant_and_names_a_live_holder(tmp_path):
    from jist_edge.locks import LockedError, lock_path, output_lock

    target = str(tmp_path / "out")
    with output_lock(target, "test output"):
        with output_lock(target, "test output"):  # the CLI holds it; the library takes it again
            assert os.path.exists(lock_path(target))
        assert os.path.exists(lock_path(target))
    assert not os.path.exists(lock_path(target))
    with _lock_held_by_another_process(target, "engine cache") as holder:
        with pytest.raises(LockedError, match="pid {}".format(holder.pid)):
            with output_lock(target, "engine cache"):
                pass
    with output_lock(target, "engine cache"):
        pass


@contextlib.contextmanager
def _lock_held_by_another_process(path, what):
    """A process holding ``output_lock(path, what)`` until the block ends (it is killed then)."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from jist_edge.locks import output_lock\n"
        "with output_lock(sys.argv[1], sys.argv[2]):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"), path, what], stdout=subprocess.PIPE, universal_newlines=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.communicate()


def test_cpu_int8_install_is_refused_while_another_process_holds_the_engine_cache(tmp_path):
    """Engine builds and the CPU INT8 install write the same cache folder under the same lock."""
    from jist_edge.calibration import cpu_int8
    from jist_edge.locks import LockedError

    cache = str(tmp_path / "engines")
    model = tmp_path / "q.onnx"
    model.write_bytes(b"not used: the lock is taken before the write")
    with _lock_held_by_another_process(cache, "engine cache") as holder:
        with pytest.raises(LockedError, match="pid {}".format(holder.pid)):
            cpu_int8.install(str(model), cache, {}, {"passed": True, "forced": False})
        assert not os.path.exists(os.path.join(cache, "encoder-int8-cpu.onnx"))


# --- 4. the map manifest has its own checksum; map and bundle bound by identity ------------------------

def _edit_map_manifest(path, edit):
    manifest_path = os.path.join(path, "manifest.json")
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    edit(manifest)
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)


def test_edited_map_manifest_is_refused(tiny_bundle, alt_bundle, setup, tmp_path):
    """Before: a map whose bundle id was edited ran with another model; an edited M was printed as fact."""
    edited = str(tmp_path / "m")
    shutil.copytree(setup["map"], edited)
    _edit_map_manifest(edited, lambda m: m["bundle"].__setitem__("bundle_id", alt_bundle.bundle_id))
    res = CliRunner().invoke(main, ["run", "--model", alt_bundle.path, "--map", edited, "--images", setup["db"],
                                    "--output", str(tmp_path / "r.jsonl"), "--quiet"])
    _one_error_line(res, "manifest_sha256 does not match")
    assert not (tmp_path / "r.jsonl").exists()
    shutil.rmtree(edited)
    shutil.copytree(setup["map"], edited)
    _edit_map_manifest(edited, lambda m: m["index"].update(M=99, ef_construction=7))
    res = CliRunner().invoke(main, ["map", "info", edited])
    _one_error_line(res, "manifest_sha256")
    assert "M=99" not in res.output


def test_a_map_runs_only_with_the_bundle_that_made_it_in_the_api_too(tiny_bundle, alt_bundle, setup):
    from jist_edge.errors import JistEdgeError
    from jist_edge.maps.store import load_map
    from jist_edge.pipeline.localizer import Localizer

    place_map = load_map(setup["map"], tiny_bundle)
    with pytest.raises(JistEdgeError, match=alt_bundle.bundle_id):
        Localizer(alt_bundle, place_map, backend="onnxruntime")


def test_map_without_its_own_checksum_is_refused(setup, tmp_path):
    from jist_edge.errors import IntegrityError
    from jist_edge.maps.store import load_map

    old = str(tmp_path / "old")
    shutil.copytree(setup["map"], old)
    _edit_map_manifest(old, lambda m: m.pop("manifest_sha256"))
    with pytest.raises(IntegrityError, match="no manifest_sha256.*map build"):
        load_map(old)


# --- 5. symlinks and staging on every exit path ---------------------------------------------------

def test_force_onto_a_symlink_writes_through_it(tiny_bundle, setup, tmp_path):
    """Before: the link was replaced by a folder and a stray `link.old-....staging` link was left."""
    from jist_edge.maps.store import load_map

    real = tmp_path / "maps" / "city"
    real.parent.mkdir()
    shutil.copytree(setup["map"], str(real))
    link = tmp_path / "current"
    link.symlink_to(real)
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"],
                                    "--output", str(link), "--force", "--quiet", "--stride", "4"])
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and os.path.realpath(str(link)) == str(real)
    assert len(load_map(str(real)).frames) == 10
    assert sorted(os.listdir(str(tmp_path))) == ["current", "maps"]
    assert sorted(os.listdir(str(real.parent))) == ["city"]
    dangling = tmp_path / "nowhere"
    dangling.symlink_to(tmp_path / "unmounted" / "map")
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"],
                                    "--output", str(dangling), "--quiet"])
    _one_error_line(res, "symlink", "does not exist")
    assert not (tmp_path / "unmounted").exists()


def test_json_outputs_write_through_links_and_into_fifos(tmp_path):
    """Before: a --json/--report symlink was replaced by a regular file; a FIFO (or /dev/stdout)
    was replaced by a regular file created beside it."""
    from jist_edge.fileio import write_json_atomic

    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json_atomic(str(link), {"v": 1})
    assert link.is_symlink() and json.loads(target.read_text()) == {"v": 1}
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    write_json_atomic(fifo, {"v": 2})
    reader.join(WAIT_S)
    assert json.loads(got[0]) == {"v": 2}
    assert sorted(os.listdir(str(tmp_path))) == ["link.json", "pipe", "target.json"]


@pytest.fixture(scope="module")
def big_map(tmp_path_factory, tiny_bundle):
    """A map of 4,000 frames of random descriptors: rebuilding its index takes seconds, long
    enough to signal a `map build --from-map` in its write phase."""
    import numpy as np

    from jist_edge.maps.store import FrameTable
    from jist_edge.maps.write import write_map
    from jist_edge.encoder.seqgem import sliding_windows

    n = 4000
    rng = np.random.RandomState(0)
    desc = rng.normal(size=(n, tiny_bundle.dim)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    table = FrameTable(range(n), ["f{}".format(i) for i in range(n)], [None] * n, np.zeros((n, 2)))
    seqs = sliding_windows(desc, 5, tiny_bundle.seqgem_p, tiny_bundle.seqgem_eps)
    return write_map(str(tmp_path_factory.mktemp("big") / "map"), tiny_bundle, desc, table, 5, seqs, M=4,
                     ef_construction=10).path


def test_sigterm_in_the_write_phase_leaves_no_staging_folder(tiny_bundle, big_map, tmp_path):
    """Before: killed by SIGTERM (rc -15) with an empty hidden `.out.*.staging` folder left behind."""
    proc = _jist_edge(["map", "build", "--model", tiny_bundle.path, "--from-map", big_map, "--seq-len", "3",
                       "--M", "64", "--ef-construction", "800", "--output", str(tmp_path / "out")])
    _wait_for(lambda: any(n.endswith(".staging") for n in os.listdir(str(tmp_path))), proc, "the staging folder")
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=WAIT_S)[0]
    assert proc.returncode == 143, output
    assert "map build interrupted (SIGTERM); no map was written" in output and "Traceback" not in output
    assert os.listdir(str(tmp_path)) == []  # no staging folder, no lock file, no map


def test_the_next_writer_sweeps_what_a_killed_one_left(tiny_bundle, setup, tmp_path):
    """SIGKILL or a power cut leaves `.map.xxxxxxxx.staging` (and, between the two renames of the
    swap, the only copy of the old map as `.map.xxxxxxxx.old`): the next writer of that output,
    holding its lock, removes the one and puts the other back. Another output's staging stays."""
    from jist_edge.maps.store import load_map

    (tmp_path / ".map.abcdefgh.staging").mkdir()
    (tmp_path / ".map.abcdefgh.staging" / "index.hnsw").write_bytes(b"half")
    shutil.copytree(setup["map"], str(tmp_path / ".map.ijklmnop.old"))
    (tmp_path / ".map.v2.qrstuvwx.staging").mkdir()  # map.v2's, not map's
    res = CliRunner().invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"],
                                    "--output", str(tmp_path / "map"), "--quiet"])
    _one_error_line(res, "already holds a map", "--force")  # the old map is back, and kept
    assert len(load_map(str(tmp_path / "map")).frames) == 40
    assert sorted(os.listdir(str(tmp_path))) == [".map.v2.qrstuvwx.staging", "map"]


@pytest.mark.parametrize("command", ["map build", "export"])
def test_ctrl_c_says_the_previous_output_was_kept(command, tiny_bundle, big_map, tmp_path):
    """Before: only `Aborted!`."""
    from jist_edge.fileio import sha256_file

    if command == "map build":
        out = str(tmp_path / "map")
        shutil.copytree(big_map, out)
        args = ["map", "build", "--model", tiny_bundle.path, "--from-map", big_map, "--seq-len", "3", "--M", "64",
                "--ef-construction", "800", "--output", out, "--force"]
        noun = "map"
    else:
        out = str(tmp_path / "model")
        shutil.copytree(tiny_bundle.path, out)
        args = ["export", "--random-init", "--seed", "7", "--img-size", "64", "96", "--output", out, "--force"]
        noun = "bundle"
    before = {n: sha256_file(os.path.join(out, n)) for n in os.listdir(out)}
    proc = _jist_edge(args)
    lock = os.path.join(str(tmp_path), "." + os.path.basename(out) + ".lock")
    _wait_for(lambda: _lock_holder(lock) == proc.pid, proc, "the command to take its lock")
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=WAIT_S)[0]
    assert proc.returncode == 130, output
    assert "{} interrupted (Ctrl-C); the previous {} in {} was kept".format(command, noun, out) in output, output
    assert {n: sha256_file(os.path.join(out, n)) for n in os.listdir(out)} == before
    assert sorted(os.listdir(str(tmp_path))) == [os.path.basename(out)]


# --- 6. disk full names the file and the cause ----------------------------------------------------

def test_run_onto_a_full_disk_names_the_file_and_keeps_the_summary(tiny_bundle, setup):
    """/dev/full fails every write with ENOSPC. Before: `Error: No space left on device`, no summary."""
    proc = _jist_edge(["run", "--model", tiny_bundle.path, "--map", setup["map"], "--images", setup["db"],
                       "--output", "/dev/full"])
    output = proc.communicate(timeout=WAIT_S)[0]
    assert proc.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert errors == ["Error: cannot write /dev/full: disk full; the run stopped after 1 frame"], output
    assert "Run summary" in output and "Traceback" not in output


def _fsize_limit(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_map_build_over_the_file_size_limit_names_the_file_and_keeps_the_old_map(tiny_bundle, big_map, tmp_path):
    """RLIMIT_FSIZE (ulimit -f, no root needed) makes writes past 64 KiB fail with EFBIG; numpy
    reports that as `N requested and M written` and hnswlib not at all. Before: that bare line."""
    from jist_edge.fileio import sha256_file

    out = str(tmp_path / "map")
    shutil.copytree(big_map, out)
    before = {n: sha256_file(os.path.join(out, n)) for n in os.listdir(out)}
    proc = _jist_edge(["map", "build", "--model", tiny_bundle.path, "--from-map", big_map, "--seq-len", "3",
                       "--M", "4", "--ef-construction", "10", "--output", out, "--force"],
                      preexec_fn=_fsize_limit(64 * 1024))
    output = proc.communicate(timeout=WAIT_S)[0]
    assert proc.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    assert "cannot write {}/".format(out) in errors[0] and "file too large" in errors[0], output
    assert "the previous map in {} was kept".format(out) in errors[0]
    assert {n: sha256_file(os.path.join(out, n)) for n in os.listdir(out)} == before
    assert sorted(os.listdir(str(tmp_path))) == ["map"]


def _can_mount_tmpfs():
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="cannot mount a tmpfs in a user namespace here (unshare -rm)")
@pytest.mark.parametrize("command", ["map build", "synth --video", "synth"])
def test_writing_onto_a_full_disk_says_disk_full(command, tiny_bundle, setup, tmp_path):
    """A 200 KiB tmpfs in a private mount namespace: a real ENOSPC. Before: `map build` said
    `Error: 20480 requested and 11232 written`; `synth` could not say why an image failed."""
    full = tmp_path / "small"
    full.mkdir()
    out = str(full / "out")
    args = {"map build": ["map", "build", "--model", tiny_bundle.path, "--images", setup["db"], "--quiet"],
            "synth --video": ["synth", "--video", "--frames", "200", "--img-size", "64", "96"],
            "synth": ["synth", "--frames", "200", "--img-size", "64", "96"]}[command] + ["--output", out]
    script = 'mount -t tmpfs -o size=200k tmpfs "$1" && shift && "$@"; rc=$?; ls -A "$SMALL"; exit $rc'
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", str(full), sys.executable, "-m", "jist_edge"]
                          + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=dict(ENV, SMALL=str(full)))
    assert proc.returncode == 1, proc.stdout
    errors = [line for line in proc.stdout.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "cannot write {}".format(out) in errors[0], proc.stdout
    assert ": disk full" in errors[0] and "was written to {}".format(out) in errors[0], proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("Error: ")  # `ls -A` of the tmpfs printed nothing


@pytest.mark.parametrize("command", ["bench", "calibrate", "eval"])
def test_unwritable_report_paths_are_refused_before_any_work(command, tiny_bundle, setup, tmp_path):
    """/proc refuses new files even to root (a chmod 555 folder does not). Before: `bench` and
    `calibrate` ran to the end and then failed on the path."""
    path = "/proc/jist-edge-report.json"
    args = {"bench": ["bench", "--quick", "--model", tiny_bundle.path, "--json", path,
                      "--workspace", str(tmp_path / "ws")],
            "calibrate": ["calibrate", tiny_bundle.path, "--calibration", setup["db"], "--frames", "4",
                          "--no-fp16", "--report", path],
            "eval": ["eval", "--model", tiny_bundle.path, "--database", setup["db"], "--queries", setup["db"],
                     "--quiet", "--json", path]}[command]
    res = CliRunner().invoke(main, args)
    error = _one_error_line(res, path)
    assert res.output.strip() == error  # nothing ran: no bench tables, no "calibrating", no recall
