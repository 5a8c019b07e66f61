"""Index kinds: hnsw-pca (PCA-reduced hnswlib + exact re-rank from a float16 memory map) against exact search."""
import os

import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.benchmarks.descriptors import drive_frames
from jist_edge.cli import main
from jist_edge.errors import IntegrityError
from jist_edge.fileio import file_record, sha256_file
from jist_edge.search import index as index_kinds
from jist_edge.search.index import IndexSpec
from jist_edge.maps.store import FrameTable, INDEX_FILE, load_map
from jist_edge.maps.write import write_map
from jist_edge.search.matcher import Matcher
from jist_edge.encoder.seqgem import sliding_windows

import map_routes

N_FRAMES = 3000
L = 5


def _write(path, bundle, kind="hnsw-pca", reduced_dim=32, rerank=16):
    frames = drive_frames(np.random.default_rng(1), N_FRAMES, bundle.dim, 40.0)
    seqs = sliding_windows(frames, L, bundle.seqgem_p, bundle.seqgem_eps)
    table = FrameTable(range(N_FRAMES), ["f{}".format(i) for i in range(N_FRAMES)], [None] * N_FRAMES,
                       np.c_[np.arange(N_FRAMES, dtype=float), np.zeros(N_FRAMES)])
    spec = IndexSpec(kind, reduced_dim=reduced_dim, rerank=rerank)  # M=16, ef_construction=200: see docs/maps.md
    return write_map(path, bundle, frames, table, L, seqs, index=spec.meta(seqs.shape[0])), frames


@pytest.fixture(scope="module")
def pca_map(tiny_bundle, tmp_path_factory):
    return _write(str(tmp_path_factory.mktemp("pca") / "map"), tiny_bundle)


def _queries(frames, bundle, n=150, seed=2):
    """Another pass over random places: the places' frames with noise, pooled like the map."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, N_FRAMES - L, size=n)
    out = []
    for s in starts:
        window = frames[s:s + L] + rng.normal(0, 0.5 / np.sqrt(frames.shape[1]), size=(L, frames.shape[1]))
        window /= np.linalg.norm(window, axis=1, keepdims=True)
        out.append(sliding_windows(window.astype(np.float32), L, bundle.seqgem_p, bundle.seqgem_eps)[0])
    return np.stack(out)


def test_reduced_index_agrees_with_exact_search(tiny_bundle, pca_map):
    m, frames = pca_map
    assert m.index_kind == "hnsw-pca" and m.manifest["format_version"] == 2
    assert isinstance(m.descriptors, np.memmap) and m.descriptors.dtype == np.float16  # never loaded whole
    q = _queries(frames, tiny_bundle)
    ids, dists = Matcher(m).query(q, k=3)
    exact_ids, _ = Matcher(m, exact=True).query(q, k=3)
    assert np.mean(ids[:, 0] == exact_ids[:, 0]) >= 0.98
    # the distances are exact squared L2 to the stored (float16) descriptors, nearest first
    stored = np.asarray(m.descriptors[ids[:, 0]], dtype=np.float64)
    assert np.allclose(dists[:, 0], ((stored - q) ** 2).sum(axis=1), rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(dists, axis=1) >= 0)
    assert Matcher(m).method == "hnsw-pca(ef=64,rerank=16)"


def test_projection_is_a_pca(pca_map):
    m, _ = pca_map
    projection = m.projection()
    axes = projection[1:].astype(np.float64)
    assert projection.shape == (33, m.dim)
    assert np.allclose(axes @ axes.T, np.eye(32), atol=1e-4)  # orthonormal axes
    reduced = index_kinds.project(np.asarray(m.descriptors, dtype=np.float32), projection)
    variances = reduced.var(axis=0)
    assert np.all(np.diff(variances) <= 1e-6 + 1e-3 * variances[:-1])  # in order of variance


def test_build_is_deterministic(tiny_bundle, pca_map, tmp_path):
    m, _ = pca_map
    again, _ = _write(str(tmp_path / "again"), tiny_bundle)
    for name in (INDEX_FILE, index_kinds.PROJECTION_FILE, "sequences.npy"):
        assert sha256_file(os.path.join(m.path, name)) == sha256_file(os.path.join(again.path, name))


def test_auto_keeps_hnsw_for_small_maps(tiny_bundle, tmp_path):
    assert index_kinds.choose_kind("auto", index_kinds.AUTO_PCA_PLACES) == "hnsw"
    assert index_kinds.choose_kind("auto", index_kinds.AUTO_PCA_PLACES + 1) == "hnsw-pca"
    m, _ = _write(str(tmp_path / "m"), tiny_bundle, kind="auto")
    assert m.index_kind == "hnsw" and m.manifest["format_version"] == 1
    assert m.descriptors.dtype == np.float32 and not isinstance(m.descriptors, np.memmap)


def test_bad_projection_or_manifest_is_refused(tiny_bundle, tmp_path):
    m, _ = _write(str(tmp_path / "m"), tiny_bundle, reduced_dim=8, rerank=4)
    path = os.path.join(m.path, index_kinds.PROJECTION_FILE)
    # another projection with checksums recomputed: the index no longer holds its projections
    projection = np.load(path)
    projection[1:] *= -1.0
    np.save(path, projection)
    map_routes.edit_map_manifest(m.path, lambda man: man["files"].__setitem__(index_kinds.PROJECTION_FILE, file_record(path)))
    with pytest.raises(IntegrityError, match="does not hold the projections"):
        load_map(m.path).hnsw_index()
    map_routes.edit_map_manifest(m.path, lambda man: man["index"].__setitem__("reduced_dim", 4096))
    with pytest.raises(IntegrityError, match="reduced_dim 4096 exceeds"):
        load_map(m.path)
    map_routes.edit_map_manifest(m.path, lambda man: man["index"].__setitem__("kind", "ivf-pq"))
    with pytest.raises(IntegrityError, match="index kind 'ivf-pq'"):
        load_map(m.path)
    with open(path, "r+b") as handle:  # a flipped byte: refused by its checksum before numpy reads it
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    map_routes.edit_map_manifest(m.path, lambda man: man["index"].update({"kind": "hnsw-pca", "reduced_dim": 8}))
    with pytest.raises(IntegrityError, match="sha256"):
        load_map(m.path)


def test_cli_build_with_pca_index(tiny_bundle, tmp_path):
    frames = map_routes.route_frames(30, tiny_bundle.height, tiny_bundle.width)
    map_routes.write_images(str(tmp_path / "imgs"), frames, map_routes.positions(30))
    out = str(tmp_path / "map")
    runner = CliRunner()
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", str(tmp_path / "imgs"),
                               "--index", "hnsw-pca", "--reduced-dim", "16", "--rerank", "8", "--output", out,
                               "--quiet"])
    assert res.exit_code == 0, res.output
    assert "hnsw-pca: PCA 16-D graph, exact re-rank of 8" in res.output
    m = load_map(out, tiny_bundle)
    ids, _ = Matcher(m).query(np.asarray(m.descriptors[:10], dtype=np.float32), k=1)
    assert list(ids[:, 0]) == list(range(10))  # each stored place finds itself
    res = runner.invoke(main, ["map", "info", out])
    assert res.exit_code == 0 and "hnsw-pca" in res.output
    res = runner.invoke(main, ["map", "build", "--model", tiny_bundle.path, "--images", str(tmp_path / "imgs"),
                               "--index", "hnsw-pca", "--reduced-dim", "600", "--output", str(tmp_path / "m2")])
    assert res.exit_code != 0 and "--reduced-dim 600 exceeds the model's 512-D" in res.output
    assert not os.path.exists(str(tmp_path / "m2"))
