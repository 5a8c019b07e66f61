"""The route filter's covariance (estimate.covariance_m2): small when tracking, large when lost, never zero."""
import numpy as np
import pytest

from jist_edge.filter.belief_covariance import PositionMoments, belief_covariance
from jist_edge.filter.route_filter import LOST, TRACKING, RouteFilter

from test_route_filter import STATS, _drive, _positions


def test_tracking_is_tight_lost_is_as_wide_as_the_map():
    rng = np.random.RandomState(0)
    count = 1000
    flt = RouteFilter(count, [0, count], STATS, _positions(count))
    tracked = _drive(flt, 100, 40, count, rng)
    _, est = tracked[-1]
    assert est.state == TRACKING
    cov = np.array(est.covariance_m2)
    assert cov.shape == (2, 2) and np.allclose(cov, cov.T)
    assert cov[0, 0] >= STATS["place_spacing_m"] ** 2  # the floor: never better than a place apart
    assert np.sqrt(cov[0, 0]) < 50.0  # metres along the route
    assert est.to_dict()["covariance_m2"] == est.covariance_m2
    # the vehicle leaves the map: observations far from everything
    lost = _drive(flt, 300, 60, count, rng, far=True, t0=10.0)
    _, est = lost[-1]
    assert est.state == LOST
    spread = np.var(_positions(count)[:, 0])
    assert est.covariance_m2[0][0] > 0.3 * spread  # about the map's own spread
    assert est.covariance_m2[1][1] >= STATS["place_spacing_m"] ** 2  # no spread across: the floor, not zero


def test_covariance_is_the_second_moment_of_the_belief_about_the_estimate():
    pos = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [np.nan, np.nan]])
    moments = PositionMoments(pos, floor_m=1.0)
    # all mass on places 0 and 1 equally (u = 0, no off-map): about place 0 the x variance is 0.5 * 10^2
    cov = belief_covariance(moments, np.array([0, 1]), np.array([0.5, 0.5]), 0.0, 0.0, 0)
    assert cov == [[51.0, 0.0], [0.0, 1.0]]
    # a uniform background over the three positioned places, about place 2
    cov = np.array(belief_covariance(moments, np.zeros(0, np.int64), np.zeros(0), 0.25, 0.0, 2))
    d = pos[:3] - pos[2]
    assert np.allclose(cov, d.T.dot(d) / 3 + np.eye(2))
    assert belief_covariance(moments, np.zeros(0, np.int64), np.zeros(0), 0.25, 0.0, 3) is None  # no position
    centre, spread = moments.spread()
    assert centre == pytest.approx([10 / 3.0, 10 / 3.0]) and spread[0][0] > 1.0


def test_utm_sized_coordinates_lose_no_precision():
    pos = np.stack([500000.0 + np.arange(100) * 2.0, np.full(100, 5400000.0)], axis=1)
    moments = PositionMoments(pos, floor_m=2.0)
    cov = belief_covariance(moments, np.array([50]), np.array([1.0]), 0.0, 0.0, 50)
    assert cov == [[4.0, 0.0], [0.0, 4.0]]  # all mass at the estimate: exactly the floor


def test_the_mode_covariance_is_widened_by_the_mass_it_lacks():
    pos = np.stack([np.arange(100) * 2.0, np.zeros(100)], axis=1)
    moments = PositionMoments(pos, floor_m=2.0)
    idx = np.array([49, 50, 51, 90])
    full = belief_covariance(moments, idx, np.array([0.2, 0.4, 0.2, 0.2]), 0.0, 0.0, 50, local_radius_m=25.0)
    # the mode: 0.2 at -2 m and at +2 m, 0.4 at 0 -> 1.6 m^2 over 0.8 of mass; widened by 1 / 0.8
    assert full[0][0] == pytest.approx(1.6 / 0.8 / 0.8 + 4.0)
    whole = belief_covariance(moments, idx, np.array([0.2, 0.4, 0.2, 0.2]), 0.0, 0.0, 50)
    assert whole[0][0] == pytest.approx(0.2 * 4 + 0.2 * 4 + 0.2 * 80 ** 2 + 4.0)
