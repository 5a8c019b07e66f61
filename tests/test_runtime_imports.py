"""The on-device runtime (jist_edge/) imports without torch and keeps to Python 3.6 syntax."""
import json
import os
import shutil
import subprocess
import sys

import jist_edge

RUNTIME_DIR = os.path.dirname(os.path.abspath(jist_edge.__file__))
HOST_ONLY = ("jist_edge.export", "jist_edge.calibration", "jist_edge.benchmarks")
# device-only libraries a CPU machine lacks; a module may import them at top level
DEVICE_ONLY = ("tensorrt", "pycuda")

_PROBE = r"""
import importlib, json, os, pkgutil, sys
import jist_edge
host_only = tuple(sys.argv[1].split(","))
device_only = tuple(sys.argv[2].split(","))
imported, skipped, failed = [], [], []
names = ["jist_edge"] + [m.name for m in pkgutil.walk_packages(jist_edge.__path__, "jist_edge.")]
for name in names:
    if name.startswith(host_only) or name.endswith(".__main__"):  # __main__ would run the CLI
        continue
    try:
        importlib.import_module(name)
        imported.append(name)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in device_only:
            skipped.append(name)
        else:
            failed.append("{}: {!r}".format(name, exc))
    except Exception as exc:
        failed.append("{}: {!r}".format(name, exc))
print(json.dumps({"imported": imported, "skipped": skipped, "failed": failed,
                  "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
                  "ray": sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))}))
"""


def runtime_modules_on_disk():
    """Every module of the runtime, from the files themselves (not from pkgutil, which the probe uses)."""
    names = set()
    for root, dirs, files in os.walk(RUNTIME_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if "__init__.py" not in files:
            continue
        rel = os.path.relpath(root, RUNTIME_DIR)
        package = ".".join(["jist_edge"] + ([] if rel == os.curdir else rel.split(os.sep)))
        for name in files:
            if not name.endswith(".py") or name == "__main__.py":
                continue
            module = package if name == "__init__.py" else package + "." + name[:-3]
            if not module.startswith(HOST_ONLY):
                names.add(module)
    return names


def test_every_runtime_module_imports_without_torch():
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(HOST_ONLY), ",".join(DEVICE_ONLY)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["failed"], report["failed"]
    assert report["torch"] == [], "torch imported by the runtime: {}".format(report["torch"][:5])
    # Ray (map build --ray, jist_edge.maps.cluster) is host-side and imported only inside its functions
    assert report["ray"] == [], "ray imported by the runtime: {}".format(report["ray"][:5])
    # every module on disk was imported (or skipped only for lacking TensorRT/pycuda), nothing else
    expected = runtime_modules_on_disk()
    assert set(report["imported"]) | set(report["skipped"]) == expected
    assert {"jist_edge.bundle", "jist_edge.pipeline.localizer", "jist_edge.stream.sources.video",
            "jist_edge.maps.store", "jist_edge.encoder.tensorrt.runner", "jist_edge.cli.export_cmd",
            "jist_edge.maps.cluster", "jist_edge.search.index", "jist_edge.filter.route_filter",
            "jist_edge.evaluation.recall", "jist_edge.output.web.server"} <= set(report["imported"])


PUBLIC_API = {"Localizer", "Result", "Estimate", "PlaceMap", "Bundle", "build_map", "merge_maps", "evaluate",
              "IndexSpec", "FilterParams", "open_source", "load_bundle", "load_map", "Drive", "JistEdgeError"}


def test_the_public_api_is_importable_from_the_top():
    import jist_edge

    assert set(jist_edge.__all__) == PUBLIC_API | {"__version__"}  # the exact public set: a change is deliberate
    for name in jist_edge.__all__:
        assert getattr(jist_edge, name) is not None, name
    from jist_edge import Estimate, IndexSpec, PlaceMap, Result, build_map  # noqa: F401  (the documented spelling)

    assert IndexSpec("hnsw-pca", reduced_dim=32).reduced_dim == 32 and PlaceMap.__module__ == "jist_edge.maps.store"
    from jist_edge import JistEdgeError, Localizer  # noqa: F401  (the documented spelling)

    assert Localizer.__module__ == "jist_edge.pipeline.localizer"
    assert issubclass(JistEdgeError, Exception)


def test_runtime_is_python36_syntax():
    vermin = shutil.which("vermin") or os.path.join(os.path.dirname(sys.executable), "vermin")
    if not os.path.exists(vermin):
        import pytest

        pytest.skip("vermin is not installed (pip install vermin, in the dev extra)")
    proc = subprocess.run(
        [vermin, "--no-tips", "--violations", "-t=3.6-", RUNTIME_DIR],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
