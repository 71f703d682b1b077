"""Lagged cross-correlation: a copy shifted by 3 steps peaks at lag 3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stkd.analysis.lags import lagged_correlation, neighbour_pairs, pair_lags


def _pair_adjacency(n: int, edges) -> sp.csr_array:
    A = np.zeros((n, n))
    for a, b in edges:
        A[a, b] = A[b, a] = 1.0
    return sp.csr_array(A)


def test_copy_shifted_by_3_steps_peaks_at_plus_3(rng):
    T = 2000
    a = rng.standard_normal(T)
    b = np.roll(a, 3)  # b(t) = a(t - 3): b follows a by 3 steps
    b[:3] = rng.standard_normal(3)
    x = np.stack([a, b], axis=1)
    r = lagged_correlation(x, np.array([[0, 1]]), max_lag=6)
    assert np.argmax(r[0]) - 6 == 3
    assert r[0, 6 + 3] == pytest.approx(1.0, abs=0.01)
    # the reversed pair peaks at -3: the sign says who follows whom
    r = lagged_correlation(x, np.array([[1, 0]]), max_lag=6)
    assert np.argmax(r[0]) - 6 == -3


def test_pair_lags_minutes_distance_and_speed(rng):
    T = 288 * 7
    index = pd.date_range("2012-03-01", periods=T, freq="5min")
    t = np.arange(T)
    daily = 10 * np.sin(2 * np.pi * t / 288)
    shocks = np.convolve(rng.standard_normal(T + 20), np.ones(5) / 5, mode="same")[:T]
    a = daily + shocks
    b = daily + np.roll(shocks, 3)  # the deviations reach b 15 minutes later
    unrelated = daily + rng.standard_normal(T)
    x = np.stack([a, b, unrelated], axis=1)
    coords = np.array([[34.0, -118.0], [34.0, -118.0 + 0.1], [34.1, -118.0]])
    W = _pair_adjacency(3, [(0, 1), (0, 2)])
    res = pair_lags(x, index, ["a", "b", "u"], W, coords=coords, max_lag=12)
    ab = next(p for p in res["pairs"] if {p["a"], p["b"]} == {"a", "b"})
    assert (ab["a"], ab["b"], ab["lag_steps"], ab["lag_minutes"]) == ("a", "b", 3, 15.0)
    assert ab["clear"] and ab["peak_corr"] > 0.9
    km = ab["distance_km"]
    assert km == pytest.approx(111.19 * 0.1 * np.cos(np.radians(34.0)), rel=0.01)
    assert ab["speed_kmh"] == pytest.approx(km / 0.25)
    au = next(p for p in res["pairs"] if {p["a"], p["b"]} == {"a", "u"})
    assert not au["clear"] and au["speed_kmh"] is None  # no clear peak: the daily cycle was removed first
    s = res["summary"]
    assert s["pairs_total"] == 2 and s["pairs_clear"] == 1 and s["median_abs_lag_minutes"] == 15.0
    assert res["max_lag_minutes"] == 60.0 and "b follows" in res["sign_convention"]


def test_lag_zero_has_no_speed_and_default_max_lag_is_an_hour(rng):
    T = 24 * 30
    index = pd.date_range("2024-01-01", periods=T, freq="h")
    a = rng.standard_normal(T)
    x = np.stack([a, a + 0.1 * rng.standard_normal(T)], axis=1)
    res = pair_lags(x, index, ["a", "b"], _pair_adjacency(2, [(0, 1)]), coords=np.array([[0, 0], [0, 0.01]]))
    assert res["max_lag_steps"] == 3  # one hour is one step: at least 3
    p = res["pairs"][0]
    assert p["lag_steps"] == 0 and p["speed_kmh"] is None and p["clear"]


def test_neighbour_pairs_are_unique_and_capped_with_a_seed():
    A = np.zeros((6, 6))
    for i in range(5):
        A[i, i + 1] = 1.0
    A[1, 0] = 0.5  # both directions: one pair
    A[2, 2] = 1.0  # a self loop: not a pair
    pairs = neighbour_pairs(A, None)
    assert pairs.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
    a, b = neighbour_pairs(A, 3, seed=7), neighbour_pairs(A, 3, seed=7)
    assert len(a) == 3 and a.tolist() == b.tolist()


def test_missing_values_use_overlapping_steps_only(rng):
    T = 1500
    a = rng.standard_normal(T)
    b = np.roll(a, 2)
    a[100:200] = np.nan
    b[700:720] = np.nan
    r = lagged_correlation(np.stack([a, b], axis=1), np.array([[0, 1]]), max_lag=4)
    assert np.argmax(r[0]) - 4 == 2 and r[0, 6] == pytest.approx(1.0, abs=0.01)
