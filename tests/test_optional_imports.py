"""tests/optional_imports.import_or_skip: the skip the GPU tests rely on, on pytest 7.0 (JetPack) and 9."""
import os
import subprocess
import sys

import pytest

from optional_imports import import_or_skip


def test_present_module_is_returned():
    assert import_or_skip("json").dumps([1]) == "[1]"


def test_missing_module_skips_naming_it():
    with pytest.raises(pytest.skip.Exception, match="no_such_module_jist is not importable"):
        import_or_skip("no_such_module_jist")


def test_a_module_whose_import_fails_skips_and_other_errors_propagate(tmp_path, monkeypatch):
    # a TensorRT wheel without its CUDA libraries raises a plain ImportError, not ModuleNotFoundError
    (tmp_path / "broken_trt_like.py").write_text("raise ImportError('libnvinfer.so.8: cannot open shared object file')\n")
    (tmp_path / "crashing_lib.py").write_text("raise RuntimeError('CUDA driver version is insufficient')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="libnvinfer.so.8"):
        import_or_skip("broken_trt_like")
    with pytest.raises(RuntimeError, match="insufficient"):
        import_or_skip("crashing_lib")


def test_module_level_skip_in_a_real_pytest_run(tmp_path):
    (tmp_path / "test_needs_gpu.py").write_text(
        "from optional_imports import import_or_skip\n"
        "import_or_skip('no_such_gpu_library_jist')\n"
        "def test_never_runs():\n"
        "    raise AssertionError('ran without its library')\n"
    )
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=tests_dir),
    )
    assert proc.returncode in (0, 5), proc.stdout  # 5: nothing left to run, the module was skipped
    assert "error" not in proc.stdout.lower() and "1 skipped" in proc.stdout and "no_such_gpu_library_jist is not importable" in proc.stdout
