"""Matcher: exact search agrees with a direct float64 computation; hnswlib agrees with exact."""
import os

import numpy as np
import pytest
from optional_imports import import_or_skip

from jist_edge.errors import JistEdgeError
from jist_edge.maps.store import FrameTable
from jist_edge.maps.write import write_map
from jist_edge.search.matcher import DEFAULT_EF, ExactSearch, Matcher, exact_sq_l2
from jist_edge.encoder.seqgem import sliding_windows

import map_routes


def _map(bundle, path, desc):
    n = desc.shape[0]
    table = FrameTable(range(n), ["f{}".format(i) for i in range(n)], [None] * n, np.c_[np.arange(n), np.zeros(n)])
    return write_map(path, bundle, desc, table, 1, desc.copy())


def test_exact_matches_direct_float64_with_ties_to_lower_id():
    rng = np.random.RandomState(3)
    db = rng.rand(400, 64).astype(np.float32) * 10  # large norms: the float32 expansion loses digits
    db[200] = db[50]  # an exact tie
    db[301] = db[300] + np.float32(1e-6)  # a near tie below float32 expansion precision
    queries = np.concatenate([db[[50, 300, 7]] + 1e-7, rng.rand(60, 64).astype(np.float32) * 10])
    ids, dists = ExactSearch(db).query(queries, k=5)
    ref = exact_sq_l2(queries, db)
    order = np.lexsort((np.broadcast_to(np.arange(db.shape[0]), ref.shape), ref), axis=1)[:, :5]
    assert np.array_equal(ids, order)
    assert np.allclose(dists, np.take_along_axis(ref, order, axis=1), rtol=1e-6, atol=1e-9)
    assert ids[0, 0] == 50 and ids[0, 1] == 200


def test_hnsw_returns_squared_l2_and_handles_k(tiny_bundle, tmp_path):
    rng = np.random.RandomState(0)
    desc = np.abs(rng.normal(size=(300, tiny_bundle.dim))).astype(np.float32)
    m = _map(tiny_bundle, str(tmp_path / "map"), desc)
    q = desc[:10] + rng.normal(scale=0.05, size=(10, tiny_bundle.dim)).astype(np.float32)
    ids, d = Matcher(m).query(q, k=3)
    assert ids.dtype == np.int64 and d.dtype == np.float32 and ids.shape == (10, 3)
    ref = exact_sq_l2(q, desc)
    assert np.allclose(d, np.take_along_axis(ref, ids, axis=1), rtol=1e-5)
    assert np.all(np.diff(d, axis=1) >= 0)
    ids_e, d_e = Matcher(m, exact=True).query(q[0], k=1000)  # 1-D query, k above the map size
    assert ids_e.shape == (1, 300) and sorted(ids_e[0]) == list(range(300))
    assert Matcher(m, ef=2).query(q, k=50)[0].shape == (10, 50)  # ef is raised to k
    with pytest.raises(JistEdgeError, match="512|-D"):
        Matcher(m).query(q[:, :100])
    with pytest.raises(JistEdgeError, match="NaN"):
        Matcher(m).query(np.full((1, tiny_bundle.dim), np.nan, np.float32))
    with pytest.raises(JistEdgeError, match="k must"):
        Matcher(m).query(q, k=0)
    with pytest.raises(JistEdgeError, match="ef"):
        Matcher(m, ef=0)


@pytest.mark.slow
def test_default_ef_agreement_on_real_map(tmp_path_factory):
    """>= 5,000 sequences of real encoder descriptors (a route at 32x32 px, random weights):
    hnswlib top-1 must agree with exact search on >= 99% of a perturbed query pass."""
    import_or_skip("torch")
    from jist_edge.encoder import create_encoder
    from jist_edge.export.exporter import export_bundle
    from jist_edge.maps.build import build_map, encode_route

    bundle = export_bundle(str(tmp_path_factory.mktemp("ef") / "model"), random_init=True, seed=0,
                           img_size=(32, 32), seq_len=5)
    n = 5004
    encoder = create_encoder(bundle)
    db = map_routes.route_frames(n, bundle.height, bundle.width, seed=5)
    m = build_map(bundle, db, str(tmp_path_factory.mktemp("ef") / "map"), encoder=encoder, batch_size=32)
    assert m.count >= 5000 and encoder.frames == n
    queries = map_routes.route_frames(n, bundle.height, bundle.width, seed=5, shift=2, gain=0.85, noise=5)
    q = encode_route(bundle, queries, encoder=encoder, batch_size=32).sequences(5, bundle.seqgem_p,
                                                                                  bundle.seqgem_eps)
    exact_ids, _ = Matcher(m, exact=True).query(q, k=1)
    hnsw_ids, _ = Matcher(m).query(q, k=1)
    agreement = float((exact_ids[:, 0] == hnsw_ids[:, 0]).mean())
    print("default ef={}: top-1 agreement {:.4f} on {} queries x {} sequences".format(
        DEFAULT_EF, agreement, len(q), m.count))
    assert agreement >= 0.99
    # and exact top-1 is the true nearest sequence by a direct float64 computation
    sample = np.arange(0, len(q), 97)
    direct = exact_sq_l2(q[sample], m.descriptors).argmin(axis=1)
    assert np.array_equal(exact_ids[sample, 0], direct)


def test_exact_on_windows_of_a_route(tiny_bundle, tmp_path):
    """Sequence descriptors (SeqGeM of overlapping windows) are close to each other: still exact."""
    rng = np.random.RandomState(1)
    frames = np.abs(rng.normal(size=(500, tiny_bundle.dim))).astype(np.float32)
    frames /= np.linalg.norm(frames, axis=1, keepdims=True)
    seqs = sliding_windows(frames, 5, tiny_bundle.seqgem_p)
    m = _map(tiny_bundle, os.path.join(str(tmp_path), "m"), seqs)
    q = seqs[::7] + rng.normal(scale=1e-3, size=seqs[::7].shape).astype(np.float32)
    ids, _ = Matcher(m, exact=True).query(q, k=1)
    assert np.array_equal(ids[:, 0], exact_sq_l2(q, seqs).argmin(axis=1))
    hnsw, _ = Matcher(m).query(q, k=1)
    assert (hnsw[:, 0] == ids[:, 0]).mean() >= 0.99
