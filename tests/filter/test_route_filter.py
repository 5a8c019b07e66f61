"""The route filter itself (jist_edge.filter.route_filter) on streams of top-K observations,
the precision-recall helpers, and the map's distance statistics."""
import numpy as np
import pytest

from jist_edge.errors import JistEdgeError
from jist_edge.filter.distance_stats import compute_distance_stats
from jist_edge.evaluation.pr_curve import average_precision, frames_to_relocalize, pr_curve
from jist_edge.filter.route_filter import INITIALIZING, LOST, TRACKING, FilterParams, RouteFilter

STATS = {"confuser_best": {"p50": 1.0, "p95": 1.3, "p99": 1.4}, "confuser_spread": {"p50": 0.5},
         "place_spacing_m": 2.0}
K = 32


def _positions(n):
    return np.stack([np.arange(n) * 2.0, np.zeros(n)], axis=1)


def _observe(place, count, rng, k=K, best=0.8, far=False, confusers=None):
    """Top-K: ``place`` and its neighbours a little nearer than random confusers (drawn from
    ``confusers`` places, default all), or, ``far``, all of them further than anything on the map."""
    near = [p for p in (place, place - 1, place + 1) if 0 <= p < count]
    pool = rng.randint(0, confusers or count, 4 * k).tolist()
    others = [o for o in dict.fromkeys(pool) if o not in near][:k - len(near)]
    ids = np.array(near + others)
    d = np.r_[rng.uniform(best, best + 0.1, len(near)), rng.uniform(best + 0.15, best + 0.6, len(others))]
    if far:
        d = d + 3.0
    return ids, d


def _drive(flt, start, frames, count, rng, speed=1.3, t0=0.0, **kw):
    out = []
    for t in range(frames):
        place = int(start + speed * t)
        est = flt.update(*_observe(min(place, count - 1), count, rng, **kw), timestamp=t0 + 0.1 * t)
        out.append((min(place, count - 1), est))
    return out


def test_follows_a_vehicle_and_becomes_confident():
    rng = np.random.RandomState(0)
    flt = RouteFilter(2000, [0, 2000], STATS, _positions(2000))
    track = _drive(flt, 100, 60, 2000, rng)
    assert track[0][1].state == INITIALIZING
    late = track[10:]
    assert all(abs(est.seq_id - place) <= 3 and est.state == TRACKING for place, est in late)
    # a place among 2,000 with weak evidence per frame: the confidence grows with every consistent frame
    conf = [est.confidence for _, est in track]
    assert conf[0] < 0.1 and min(conf[25:]) > 0.9
    assert late[-1][1].position == [2.0 * late[-1][1].seq_id, 0.0]
    # the velocity belief learned about 1.3 places per frame
    assert 0.8 < float((flt.q * flt.offsets).sum()) < 2.0


def test_confidence_is_a_probability_and_lower_when_the_observations_disagree():
    rng = np.random.RandomState(1)
    flt = RouteFilter(500, [0, 500], STATS, _positions(500))
    _drive(flt, 10, 30, 500, rng)
    sure = flt.update(*_observe(int(10 + 1.3 * 30), 500, rng)).confidence
    flt2 = RouteFilter(500, [0, 500], STATS, _positions(500))
    jumpy = [flt2.update(*_observe(int(p), 500, rng)).confidence for p in rng.randint(0, 500, 30)]
    assert 0.0 <= min(jumpy) and max(jumpy) < sure <= 1.0


def test_off_the_map_is_lost_and_back_on_it_tracks_again():
    rng = np.random.RandomState(2)
    flt = RouteFilter(1000, [0, 1000], STATS, _positions(1000))
    _drive(flt, 50, 20, 1000, rng)
    off = _drive(flt, 76, 15, 1000, rng, far=True, t0=2.0)
    assert [est.state for _, est in off[3:]] == [LOST] * 12
    assert off[-1][1].off_map > 0.5
    back = _drive(flt, 96, 20, 1000, rng, t0=3.5)
    assert all(est.state == TRACKING and abs(est.seq_id - p) <= 3 for p, est in back[8:])


def test_relocalizes_after_a_kidnap():
    rng = np.random.RandomState(3)
    flt = RouteFilter(1000, [0, 1000], STATS, _positions(1000))
    _drive(flt, 50, 30, 1000, rng)
    after = _drive(flt, 600, 30, 1000, rng, t0=3.0)
    first = next(i for i, (p, est) in enumerate(after) if abs(est.seq_id - p) <= 3 and est.state == TRACKING)
    # the jump prior spreads p_jump over 1,000 places; evidence of about e per frame overturns it in
    # ln(1000 / 0.01) ~ 12 frames on this weak stream
    assert first <= 15
    assert all(abs(est.seq_id - p) <= 3 for p, est in after[first:])
    assert after[first - 1][1].confidence < after[0][1].confidence  # the old belief lost ground first


def test_never_steps_from_one_drive_into_the_next():
    rng = np.random.RandomState(4)
    flt = RouteFilter(200, [0, 100, 200], STATS, _positions(200))
    for t in range(25):  # a belief moving up to the end of drive 0 (ids 0..99), seen only there
        flt.update(*_observe(min(80 + t, 98), 200, rng, confusers=100))
    before = flt.p_off
    flat_ids = np.arange(100, 132)  # then an observation that favours nothing: the start of drive 1
    flt.update(flat_ids, np.full(len(flat_ids), 5.0))
    at = {int(i): float(e) for i, e in zip(flt.idx, flt.exc)}
    assert all(at.get(i, 0.0) <= 1e-12 for i in range(100, 110))  # no mass carried over the boundary
    assert flt.p_off > before  # it drove off the end of its drive instead


def test_long_gap_resets_to_initializing():
    rng = np.random.RandomState(5)
    flt = RouteFilter(500, [0, 500], STATS, _positions(500))
    _drive(flt, 10, 20, 500, rng)
    est = flt.update(*_observe(40, 500, rng), timestamp=1.9 + 60.0)
    assert est.state == INITIALIZING and flt.frames == 1
    est = flt.update(*_observe(41, 500, rng), timestamp=1.9 + 60.1)
    assert flt.frames == 2  # a normal interval after the gap does not reset again


def test_map_without_positions_filters_by_place_index():
    rng = np.random.RandomState(6)
    flt = RouteFilter(800, [0, 800], dict(STATS, place_spacing_m=None), positions=None)
    assert not flt.has_positions
    track = _drive(flt, 100, 40, 800, rng)
    assert all(est.position is None for _, est in track)
    assert all(abs(est.seq_id - p) <= 3 and est.state == TRACKING for p, est in track[12:])


def test_map_with_fewer_places_than_k():
    flt = RouteFilter(6, [0, 6], STATS, _positions(6))
    for t in range(10):
        ids = np.arange(6)
        d = 1.0 + 0.3 * np.abs(ids - min(t // 2, 5))
        est = flt.update(ids, d, timestamp=t * 0.1)
    assert est.seq_id == 4 and 0.0 <= est.confidence <= 1.0
    one = RouteFilter(1, [0, 1], {}, _positions(1))  # one place: no confusers at all
    assert one.update([0], [0.3]).seq_id == 0


def test_belief_stays_sparse_on_a_large_map():
    rng = np.random.RandomState(7)
    params = FilterParams(window=64)
    flt = RouteFilter(1000000, [0, 1000000], STATS, _positions(1000000), params=params)
    for t in range(30):
        flt.update(*_observe(500000 + t, 1000000, rng))
        assert len(flt.idx) <= params.window
    assert abs(flt.update(*_observe(500030, 1000000, rng)).seq_id - 500030) <= 3


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(JistEdgeError, match="p_jump"):
        FilterParams(p_jump=1.5)
    with pytest.raises(JistEdgeError, match="top_k"):
        FilterParams(top_k=0)
    with pytest.raises(JistEdgeError, match="drive bounds"):
        RouteFilter(10, [0, 5], STATS)
    flt = RouteFilter(10, [0, 10], STATS)
    with pytest.raises(JistEdgeError, match="without any place"):
        flt.update([-1, 12], [0.1, 0.2])


def test_pr_curve_by_hand():
    # ranked: right, wrong, right, an unanswerable query (wrong by definition)
    pr = pr_curve([0.9, 0.8, 0.7, 0.6], [True, False, True, True], [True, True, True, False])
    assert pr["answerable"] == 3
    assert pr["precision"] == pytest.approx([1.0, 0.5, 2 / 3.0, 0.5], abs=1e-6)
    assert pr["recall"] == pytest.approx([1 / 3.0, 1 / 3.0, 2 / 3.0, 2 / 3.0], abs=1e-6)
    assert pr["auc"] == pytest.approx(5 / 9.0, abs=1e-6)
    assert pr["recall_at_100_precision"] == pytest.approx(1 / 3.0, abs=1e-6)
    tied = pr_curve([1.0, 1.0], [False, True], [True, True])  # ties are kept or dropped together
    assert tied["precision"] == [0.5] and tied["recall"] == [0.5] and tied["recall_at_100_precision"] == 0.0
    assert average_precision(np.array([1.0]), np.array([1.0])) == 1.0


def test_frames_to_relocalize_counts_to_the_end_of_the_first_right_tracking_window():
    correct = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    tracking = [1, 1, 0, 1, 1, 1, 1, 1, 1, 1]
    events = [{"at": 1}, {"at": 5}, {"at": 8}]
    # window 3 is the first right and tracking one after the event at 1: 3 - 1 windows, then L frames to fill it
    assert frames_to_relocalize(events, correct, tracking, 5) == [2 + 5, 2 + 5, None]


def test_distance_stats_leave_out_the_same_place():
    rng = np.random.RandomState(8)
    n, dim, seq_len = 300, 16, 5
    walk = np.cumsum(rng.normal(0, 0.05, (n, dim)), axis=0) + rng.normal(0, 1, dim)
    frames = n + seq_len - 1
    positions = np.stack([np.arange(frames) * 2.0, np.zeros(frames)], axis=1)
    seq_frames = np.arange(n)[:, None] + np.arange(seq_len)[None, :]
    stats = compute_distance_stats(walk.astype(np.float32), [0, n], seq_len, positions, seq_frames, k=8, sample=50)
    assert stats["exclusion"] == {"rule": "frames", "threshold_m": 25.0}
    assert stats["probes"] == 50 and stats["place_spacing_m"] == 2.0
    # the nearest place more than 25 m away is further than the next place of the drive
    assert stats["confuser_best"]["p50"] > stats["next_place"]["p50"]
    assert stats["confuser_best"]["p5"] <= stats["confuser_best"]["p95"] <= stats["confuser_best"]["p100"]
    by_index = compute_distance_stats(walk.astype(np.float32), [0, n], seq_len, k=8, sample=50)
    assert by_index["exclusion"]["rule"] == "places" and by_index["place_spacing_m"] is None


def test_distance_stats_search_the_map_as_its_matcher_does_for_either_index_kind():
    """Maps over 2,000 places take the statistics' neighbours from their own search: hnswlib, or
    hnsw-pca (reduced graph + exact re-ranking); both must agree with exact search."""
    from jist_edge.search import index as index_kinds

    rng = np.random.RandomState(3)
    n, dim, seq_len = 1500, 32, 5
    walk = (np.cumsum(rng.normal(0, 0.05, (n, dim)), axis=0) + rng.normal(0, 1, dim)).astype(np.float32)
    bounds = [0, 700, n]  # two drives
    projection = index_kinds.fit_projection(walk, 8)
    searches = {
        "hnsw": index_kinds.HnswSearch(index_kinds.build_hnsw(walk, 16, 100, 0)),
        "hnsw-pca": index_kinds.ReducedSearch(index_kinds.build_hnsw(index_kinds.project(walk, projection), 16, 100, 0),
                                              projection, walk, rerank=64),
    }
    exact = compute_distance_stats(walk, bounds, seq_len, k=8, sample=60)
    for kind, search in searches.items():
        stats = compute_distance_stats(walk, bounds, seq_len, index=search, k=8, sample=60)
        assert stats["probes"] == exact["probes"] == 60, kind
        for key in ("confuser_best", "confuser_kth"):
            assert stats[key]["p50"] == pytest.approx(exact[key]["p50"], rel=0.02), (kind, key)
        assert stats["next_place"] == exact["next_place"]  # computed from the rows, not searched


def test_status_line_and_window_text_show_the_estimate_and_its_state():
    import io

    from jist_edge.pipeline.localizer import Match, Result
    from jist_edge.filter.route_filter import Estimate
    from jist_edge.output.sinks import StatusLine, estimate_text

    assert estimate_text(None) == ""
    assert estimate_text(Estimate(None, None, 0.0, INITIALIZING)) == "initializing"
    est = Estimate(42, [500010.0, 4000020.5], 0.875, TRACKING)
    assert estimate_text(est) == "tracking seq 42 @ (500010.0, 4000020.5) conf 0.88"
    assert estimate_text(Estimate(7, None, 0.1, LOST)) == "lost seq 7 conf 0.10"
    result = Result(3, 0.3, False, 5, [Match(40, 0.5, [1.0, 2.0], [])], {"total": 12.0}, np.zeros(4))
    result.estimate = est
    out = io.StringIO()
    StatusLine(out, every_s=0.0)(result)
    assert "seq 40 d=0.500" in out.getvalue() and "| tracking seq 42" in out.getvalue()


def test_map_mean_is_summed_in_blocks_of_a_memory_map(tmp_path):
    from jist_edge.filter.tracker import mean_descriptor

    rng = np.random.RandomState(5)
    desc = rng.normal(0, 1, (1000, 16)).astype(np.float16)
    np.save(str(tmp_path / "d.npy"), desc)
    mapped = np.load(str(tmp_path / "d.npy"), mmap_mode="r")
    expected = desc.astype(np.float64).mean(axis=0)
    for block in (1, 7, 1000, 4096):  # blocks that divide the rows, leave a remainder, or hold them all
        assert np.allclose(mean_descriptor(mapped, block=block), expected, rtol=0, atol=1e-12)
