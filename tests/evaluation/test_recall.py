"""The paper's recall protocol: positives, exclusion of queries without one, determinism, CLI."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.encoder import create_encoder
from jist_edge.cli import main
from jist_edge.errors import JistEdgeError
from jist_edge.evaluation.ground_truth import is_positive, near_frames, sequence_positives
from jist_edge.evaluation.recall import evaluate, recall_at
from jist_edge.maps.store import window_rows
from jist_edge.maps.build import build_map

import map_routes

N_DB = 40
N_Q = 30


@pytest.fixture(scope="module")
def passes(tiny_bundle, tmp_path_factory):
    """A database pass, the identical pass, and a perturbed query pass (shifted, darker, noisy,
    1 m off) over the first 30 frames plus 6 frames 500 m away that have no positive."""
    root = tmp_path_factory.mktemp("eval")
    h, w = tiny_bundle.height, tiny_bundle.width
    db = map_routes.route_frames(N_DB, h, w, seed=2)
    map_routes.write_images(str(root / "db"), db, map_routes.positions(N_DB))
    query = map_routes.route_frames(N_Q, h, w, seed=2, shift=3, gain=0.8, noise=6)
    far = map_routes.route_frames(6, h, w, seed=9)
    q_pos = np.concatenate([map_routes.positions(N_Q, offset=1.0), map_routes.positions(6, offset=500.0 + 2 * N_DB)])
    map_routes.write_images(str(root / "query"), query + far, q_pos)
    return {"db": str(root / "db"), "query": str(root / "query"), "root": root}


def _brute_positives(db_pos, q_pos, L, threshold):
    """Reference: every pair of sequences, every pair of frames."""
    db_seqs, q_seqs = window_rows(len(db_pos), L), window_rows(len(q_pos), L)
    out = np.zeros((len(q_seqs), len(db_seqs)), dtype=bool)
    for qi, qf in enumerate(q_seqs):
        for di, df in enumerate(db_seqs):
            d = np.sqrt(((q_pos[qf][:, None, :] - db_pos[df][None, :, :]) ** 2).sum(axis=2))
            with np.errstate(invalid="ignore"):
                out[qi, di] = bool((d <= threshold).any())
    return out


def test_positive_rule_matches_brute_force():
    rng = np.random.RandomState(0)
    db_pos = np.cumsum(rng.uniform(0, 6, size=(60, 2)), axis=0)
    q_pos = db_pos[10:45] + rng.normal(0, 8, size=(35, 2))
    q_pos[[3, 17]] = np.nan
    db_pos[[20, 21]] = np.nan
    q_pos[30:] += 400  # far away: no positive
    L, threshold = 4, 12.0
    ref = _brute_positives(db_pos, q_pos, L, threshold)
    q_seqs, db_seqs = window_rows(len(q_pos), L), window_rows(len(db_pos), L)
    positives = sequence_positives(q_seqs, near_frames(q_pos, db_pos, threshold))
    for qi in range(len(q_seqs)):
        got = is_positive(np.arange(len(db_seqs)), positives[qi], db_seqs)
        assert np.array_equal(got, ref[qi]), qi
        assert (len(positives[qi]) > 0) == ref[qi].any()
    assert not ref[-1].any() and ref[0].any()
    # recall@N from predictions: rank every database sequence by distance of centres
    preds = np.argsort(rng.rand(len(q_seqs), len(db_seqs)), axis=1)[:, :5]
    valid = ref.any(axis=1)
    rec = recall_at(preds, positives, db_seqs, valid, [1, 5])
    for n in (1, 5):
        expected = np.mean([ref[q, preds[q, :n]].any() for q in np.nonzero(valid)[0]]) * 100
        assert rec[str(n)] == pytest.approx(expected, abs=1e-3)


def test_identical_passes_give_full_recall(tiny_bundle, passes):
    report = evaluate(tiny_bundle, passes["db"], passes["db"])
    for method in ("hnsw", "exact"):
        assert report["results"][method]["recall"] == {"1": 100.0, "5": 100.0, "10": 100.0}
    assert report["queries"]["without_positive"] == 0 and report["queries"]["evaluated"] == N_DB - 4
    assert report["top1_agreement_hnsw_exact"] == 1.0


def test_perturbed_pass_plausible_and_deterministic(tiny_bundle, passes, tmp_path):
    encoder = create_encoder(tiny_bundle)
    a = evaluate(tiny_bundle, passes["db"], passes["query"], encoder=encoder, recalls=(10, 1, 5))
    n_db_frames = encoder.frames
    b = evaluate(tiny_bundle, passes["db"], passes["query"], encoder=encoder)
    assert encoder.frames == 2 * n_db_frames  # once per frame per run: database + queries
    assert a["results"] == b["results"] and a["queries"] == b["queries"]
    for method in ("hnsw", "exact"):
        r = a["results"][method]["recall"]
        assert 0 < r["1"] <= r["5"] <= r["10"] <= 100
    # chance level: about (positives per query) / (database sequences) at R@1
    chance = 100.0 * (2 * 25 / map_routes.METRES_PER_FRAME + 4) / (N_DB - 4)
    assert a["results"]["exact"]["recall"]["1"] > min(chance, 99)
    # only the 2 windows made entirely of the 6 far-away frames have no positive
    q = a["queries"]
    assert q["sequences"] == N_Q + 6 - 4 and q["without_positive"] == 2
    assert q["evaluated"] == q["sequences"] - 2 and len(q["without_positive_first"]) == 2
    # a map folder as the database gives the same numbers
    m = build_map(tiny_bundle, passes["db"], str(tmp_path / "map"), encoder=encoder)
    c = evaluate(tiny_bundle, m.path, passes["query"], encoder=encoder)
    assert c["results"] == a["results"]


def test_missing_positions_refused(tiny_bundle, passes, tmp_path):
    frames = map_routes.route_frames(8, tiny_bundle.height, tiny_bundle.width)
    map_routes.write_images(str(tmp_path / "nopos"), frames)
    with pytest.raises(JistEdgeError, match="queries .* no frame positions"):
        evaluate(tiny_bundle, passes["db"], str(tmp_path / "nopos"))
    with pytest.raises(JistEdgeError, match="database .* no frame positions"):
        evaluate(tiny_bundle, str(tmp_path / "nopos"), passes["db"])
    with pytest.raises(JistEdgeError, match="threshold"):
        evaluate(tiny_bundle, passes["db"], passes["db"], threshold=0)


def test_cli_eval_table_and_json(tiny_bundle, passes, tmp_path):
    out = str(tmp_path / "eval.json")
    res = CliRunner().invoke(main, ["eval", "--model", tiny_bundle.path, "--database", passes["db"], "--queries",
                                    passes["query"], "--recall", "1", "5", "10", "--json", out, "--quiet",
                                    "--seq-len", "3"])
    assert res.exit_code == 0, res.output
    report = json.load(open(out))
    assert report["seq_len"] == 3 and report["recall_at"] == [1, 5, 10]
    for col in ("R@1", "R@5", "R@10", "hnsw(ef=", "exact", "left out", "random weights"):
        assert col in res.output
    assert "{:.2f}".format(report["results"]["exact"]["recall"]["1"]) in res.output
    res = CliRunner().invoke(main, ["eval", "--model", tiny_bundle.path, "--database", passes["db"], "--queries",
                                    passes["query"], "--exact", "--recall", "1,2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "R@2" in res.output and "hnsw" not in res.output
    res = CliRunner().invoke(main, ["eval", "--model", tiny_bundle.path, "--database", passes["db"], "--queries",
                                    passes["query"], "--recall", "1", "oops"])
    assert res.exit_code != 0 and "oops" in res.output
