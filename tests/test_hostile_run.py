"""Hostile runs (issue 21): two `run --output` to one file, `run >&-`, JSON lines that stay strict.
Real `jist-edge` processes on a real synthetic route and map."""
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from jist_edge.cli import main
from jist_edge.locks import lock_path

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _args(tiny_bundle, synth_route, out):
    data, place_map = synth_route
    return ["run", "--model", tiny_bundle.path, "--map", place_map.path, "--video", data["queries"],
            "--output", out, "--quiet"]


def test_a_second_writer_of_the_same_output_is_refused_naming_the_first(tiny_bundle, synth_route, tmp_path):
    out = str(tmp_path / "same.jsonl")
    first = subprocess.Popen([sys.executable, "-m", "jist_edge"] + _args(tiny_bundle, synth_route, out) +
                             ["--realtime"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, env=ENV)
    try:
        deadline = time.time() + 300
        while not os.path.exists(lock_path(out)) and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.stdout.read()
        res = CliRunner().invoke(main, _args(tiny_bundle, synth_route, out))
        assert res.exit_code == 1, res.output
        assert "being written by another jist-edge process (pid {}".format(first.pid) in res.output
        assert "jist-edge run" in res.output and "Traceback" not in res.output
    finally:
        output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output
    lines = open(out).read().splitlines()
    assert lines and all(json.loads(line)["frame"] == i for i, line in enumerate(lines))  # one writer, whole lines
    assert not os.path.exists(lock_path(out))


def test_run_with_stdout_closed(tiny_bundle, synth_route, tmp_path):
    args = _args(tiny_bundle, synth_route, str(tmp_path / "r.jsonl"))

    def run(argv):
        return subprocess.run([sys.executable, "-m", "jist_edge"] + argv, stderr=subprocess.PIPE,
                              universal_newlines=True, env=ENV, preexec_fn=lambda: os.close(1), timeout=300)

    closed = run(args[:-3] + ["--quiet"])  # no --output: nowhere to write
    assert closed.returncode == 1 and "Traceback" not in closed.stderr
    assert "stdout is closed" in closed.stderr
    with_output = run(args[:-1])  # --output given, summary lines to a closed stdout: still works
    assert with_output.returncode == 0 and "Traceback" not in with_output.stderr, with_output.stderr
    assert open(str(tmp_path / "r.jsonl")).read().count("\n") > 5


def test_run_to_a_device_takes_no_lock(tiny_bundle, synth_route):
    res = CliRunner().invoke(main, _args(tiny_bundle, synth_route, os.devnull))
    assert res.exit_code == 0, res.output
    assert not os.path.exists(lock_path(os.devnull))


def test_json_lines_never_hold_nan():
    import io

    import numpy as np

    from jist_edge.pipeline.localizer import Match, Result
    from jist_edge.output.sinks import JsonlSink

    result = Result(0, 0.0, True, 1, [Match(1, float("nan"), [float("inf"), 2.0], [0])], {"total": 1.0},
                    np.zeros(4, np.float32))
    stream = io.StringIO()
    JsonlSink(stream)(result)
    line = stream.getvalue()
    assert "NaN" not in line and "Infinity" not in line
    record = json.loads(line)
    assert record["matches"][0]["distance"] is None if "matches" in record else True
