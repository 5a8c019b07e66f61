"""Shared fixtures: small real bundles exported once per session.

``tiny_bundle`` is a random-init bundle (seed 0, 64x96, L=5, seed-derived GeM/SeqGeM
p away from 3) exported with the real exporter; tests of every area may use it. The
export takes a few seconds, so it is done once per session.
"""
import os
import shutil
from typing import Callable

import pytest

from optional_imports import import_or_skip

# The test machines have 2 cores shared by several jobs: torch's default of one spinning
# thread per core is ~10x slower there than one thread. Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# CPU INT8 models are signed with a per-user key (~/.config/jist-edge/signing.key): the tests
# sign with a key of their own, so a test run never creates or uses the user's key.
if "JIST_EDGE_SIGNING_KEY" not in os.environ:
    import tempfile

    os.environ["JIST_EDGE_SIGNING_KEY"] = os.path.join(tempfile.mkdtemp(prefix="jist-edge-tests-"), "signing.key")

TINY_SIZE = (64, 96)
ALT_SIZE = (72, 100)  # not a multiple of 32: odd feature-map sizes through the trunk
TINY_SEQ_LEN = 5


def _export(folder: str, seed: int, size):
    import_or_skip("torch")
    import_or_skip("onnx")
    from jist_edge.export.exporter import export_bundle

    return export_bundle(folder, random_init=True, seed=seed, img_size=size, seq_len=TINY_SEQ_LEN)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """jist_edge.bundle.Bundle: random weights (seed 0), 64x96, L=5, non-default p."""
    return _export(str(tmp_path_factory.mktemp("tiny_bundle") / "model"), 0, TINY_SIZE)


@pytest.fixture(scope="session")
def alt_bundle(tmp_path_factory):
    """A second size (72x100) and seed (1), for checks that must hold at two image sizes."""
    return _export(str(tmp_path_factory.mktemp("alt_bundle") / "model"), 1, ALT_SIZE)


@pytest.fixture(scope="session")
def reference_model() -> Callable:
    """bundle -> the torch JistModel its random weights came from (rebuilt from seed and p)."""
    import_or_skip("torch")
    from jist_edge.export.model import build_model

    def build(bundle):
        assert bundle.random_init, "only random-init bundles can be rebuilt from their seed"
        return build_model(
            random_init=True, seed=bundle.manifest["seed"], gem_p=bundle.gem_p, seqgem_p=bundle.seqgem_p
        )

    return build


def copy_bundle(bundle, dest: str) -> str:
    """A private copy of a bundle folder (hard links where possible: never edit files in place)."""
    try:
        shutil.copytree(bundle.path, dest, copy_function=os.link)
    except OSError:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(bundle.path, dest)
    return dest


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> str:
    """A copy of tiny_bundle's folder that a test may tamper with (replace files, never edit them)."""
    return copy_bundle(tiny_bundle, str(tmp_path / "model"))


@pytest.fixture(scope="session")
def synth_route(tmp_path_factory, tiny_bundle):
    """(paths of a synthetic route as MJPG videos + CSVs, the map of its database pass built offline)."""
    from jist_edge.maps.build import build_map
    from jist_edge.synth.dataset import make_route_dataset

    root = tmp_path_factory.mktemp("route")
    data = make_route_dataset(str(root / "route"), frames=40, size=(64, 96), seed=3, as_video=True)
    place_map = build_map(tiny_bundle, data["database"], str(root / "map"), positions=data["database_positions"])
    return data, place_map
