"""Process faults and messages (issue 21): Ctrl-C right after the output lock is taken, SIGKILL during
export, an empty HOME, a demo too short to plan. Real `jist-edge` processes and signals."""
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from optional_imports import import_or_skip

from jist_edge import locks
from jist_edge.cli import main

from map_routes import positions, route_frames, write_images

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


@pytest.mark.parametrize("command", ["map build", "synth"])
def test_ctrl_c_just_after_the_lock_is_taken_says_what_was_kept(command, tiny_bundle, tmp_path, monkeypatch):
    def interrupt(_):
        raise KeyboardInterrupt()  # Ctrl-C at the first thing the lock holder does

    monkeypatch.setattr(locks, "sweep_leftovers", interrupt)
    out = str(tmp_path / "out")
    if command == "map build":
        images = str(tmp_path / "images")
        write_images(images, route_frames(10, seed=1), positions(10))
        argv = ["map", "build", "--model", tiny_bundle.path, "--images", images, "--output", out]
        noun = "map"
    else:
        argv = ["synth", "--output", out, "--frames", "30"]
        noun = "route"
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 130, res.output
    assert "interrupted (Ctrl-C); no {} was written".format(noun) in res.output
    assert not os.path.exists(locks.lock_path(out))


def test_sigkill_during_export_leaves_nothing_in_the_temp_dir(tmp_path):
    import_or_skip("torch")
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = tmp_path / "model"
    env = dict(ENV, TMPDIR=str(temp))
    argv = [sys.executable, "-m", "jist_edge", "export", "--random-init", "--img-size", "64", "96", "--output",
            str(out), "--workspace", str(tmp_path / "ws")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 300
    staging = []
    while time.time() < deadline and proc.poll() is None:
        staging = [n for n in os.listdir(str(tmp_path)) if n.startswith(".model.") and n.endswith(".staging")]
        if staging and os.listdir(str(tmp_path / staging[0])):  # the exporter has written into it
            break
        time.sleep(0.02)
    assert proc.poll() is None and staging, proc.communicate()[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    assert not [n for n in os.listdir(str(temp)) if n.startswith("jist-edge-export-")]
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=300)
    assert done.returncode == 0, done.stdout
    assert not [n for n in os.listdir(str(tmp_path)) if n.endswith(".staging")]  # swept by the next export
    assert not [n for n in os.listdir(str(temp)) if n.startswith("jist-edge")]


def test_empty_home_names_the_workspace_problem(tmp_path):
    env = dict(ENV, HOME="")
    env.pop("JIST_EDGE_HOME", None)
    res = subprocess.run([sys.executable, "-m", "jist_edge", "map", "info"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, env=env, cwd=str(tmp_path), timeout=120)
    assert res.returncode == 1 and "HOME is empty" in res.stdout and "--workspace" in res.stdout, res.stdout
    assert "Traceback" not in res.stdout


def test_demo_frames_too_few_is_refused_up_front(tmp_path):
    out = tmp_path / "demo"
    started = time.time()
    res = CliRunner().invoke(main, ["demo", "--frames", "21", "--output", str(out)])
    assert res.exit_code == 2 and "--frames" in res.output and "or more" in res.output, res.output
    assert not out.exists() and time.time() - started < 60  # nothing exported or rendered first
