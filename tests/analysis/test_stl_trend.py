"""STL decomposition and trend slopes against series with a known trend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stkd.analysis.trend import (
    daily_mean_slope,
    decompose_nodes,
    despike,
    ols_slope,
    stl_decompose,
    stl_params,
    trend_slopes,
)


def test_stl_slope_of_linear_trend_plus_season_recovers_the_slope(rng):
    T = 24 * 30
    t = np.arange(T)
    per_day = 0.5  # units per day
    y = 20 + per_day * t / 24 + 4 * np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(T)
    index = pd.date_range("2024-01-01", periods=T, freq="h")
    dec = decompose_nodes(y[:, None], period=24)
    res = trend_slopes(y[:, None], index, ["n0"], dec, method="stl")
    assert res["per_node"]["n0"]["slope_per_day"] == pytest.approx(per_day, rel=0.02)
    # the seasonal component carries the sine, the residual only the noise
    d = dec[0]
    assert np.std(d["seasonal"]) == pytest.approx(4 / np.sqrt(2), rel=0.05)
    assert np.std(d["resid"]) < 0.4


def test_daily_mean_slope_matches_on_a_long_series(rng):
    T = 24 * 400
    t = np.arange(T)
    y = 100 - 0.05 * t / 24 + 10 * np.sin(2 * np.pi * t / 24) + rng.standard_normal(T)
    index = pd.date_range("2020-01-01", periods=T, freq="h")
    slope = daily_mean_slope(y[:, None], index)
    assert slope[0] == pytest.approx(-0.05, rel=0.02)
    res = trend_slopes(y[:, None], index, ["n0"], None, method="daily_means")
    assert res["method"] == "daily_means"
    assert res["per_node"]["n0"]["change_pct_per_year"] < 0


def test_ols_slope_by_hand():
    assert ols_slope(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0])) == pytest.approx(2.0)
    assert np.isnan(ols_slope(np.array([0.0]), np.array([1.0])))
    assert ols_slope(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, np.nan, 5.0, 7.0])) == pytest.approx(2.0)


def test_stl_params_use_r_default_jumps():
    p = stl_params(288)
    assert p["period"] == 288 and p["seasonal"] == 7
    assert p["trend"] % 2 == 1 and p["low_pass"] == 289
    assert p["trend_jump"] == -(-p["trend"] // 10) and p["low_pass_jump"] == 29


def test_a_spike_in_a_short_low_noise_series_stays_in_the_residual(rng):
    """7 days of 5-minute data: statsmodels' robust STL alone absorbs such a spike into the seasonal."""
    T = 288 * 7
    t = np.arange(T)
    clean = np.sin(2 * np.pi * t / 288) + 0.1 * rng.standard_normal(T)
    y = clean.copy()
    y[1000] += 5.0
    d = stl_decompose(y, 288)
    assert d["resid"][1000] > 4.5
    assert d["despiked"][1000] and d["despiked"].sum() == 1
    _, bad = despike(clean, 288)
    assert not bad.any()


def test_decompose_nodes_skips_short_constant_and_respects_gaps_and_budget(rng):
    T = 24 * 10
    t = np.arange(T)
    y = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(T)
    x = np.stack([y, np.full(T, 2.0), np.full(T, np.nan), y.copy()], axis=1)
    x[: T - 30, 2] = np.nan
    x[20:25, 3] = np.nan
    dec = decompose_nodes(x, 24)
    assert dec[1]["skipped"] == "constant series"
    assert "STL needs" in dec[2]["skipped"]
    assert np.isnan(dec[3]["resid"][20:25]).all() and np.isfinite(dec[3]["resid"][:20]).all()
    dec = decompose_nodes(x, 24, node_idx=[0], max_steps=24 * 5)
    assert (dec[0]["lo"], dec[0]["hi"]) == (T - 24 * 5, T)
