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
    dec = decompose_nodes(y[:, None], periods=24)
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


# ------------------------------------------------------------------ MSTL: every detected period
def _daily_weekly_trend(rng, nodes: int = 3, weeks: int = 6):
    """Hourly series: a daily sine, a weekly cosine, a slow linear trend and noise, with their truths."""
    T = 24 * 7 * weeks
    t = np.arange(T)
    daily, weekly, trend = 5 * np.sin(2 * np.pi * t / 24), 4 * np.cos(2 * np.pi * t / 168), 20 + 0.1 * t / 24
    x = np.stack([trend + daily * (1 + 0.1 * j) + weekly + 0.5 * rng.standard_normal(T) for j in range(nodes)], 1)
    return x, pd.date_range("2024-01-01", periods=T, freq="h"), t, weekly


def test_mstl_uses_the_daily_and_weekly_periods_and_keeps_the_week_out_of_the_trend(rng):
    from stkd.analysis.periodicity import periodicity
    from stkd.analysis.trend import choose_periods, strengths

    x, index, t, weekly = _daily_weekly_trend(rng)
    per = periodicity(x, index, ["a", "b", "c"])
    periods, note = choose_periods(per["cycles"])
    assert periods == [24, 168] and note is None  # both cycles detected, both used
    d = decompose_nodes(x, periods)[0]
    assert d["periods"] == [24, 168] and len(d["seasonals"]) == 2
    np.testing.assert_allclose(d["seasonal"], d["seasonals"][0] + d["seasonals"][1])
    s = strengths(d, index[1] - index[0])
    assert set(s) == {"trend", "1 day", "1 week"}
    assert s["1 week"] > 0.95 and s["1 day"] > 0.95
    assert np.corrcoef(d["seasonals"][1], weekly)[0, 1] > 0.98  # the weekly component is the weekly cycle
    trend = d["trend"]
    wiggle = trend - np.polyval(np.polyfit(t, trend, 1), t)  # the trend without its straight line
    assert np.var(wiggle) < 0.01 * np.var(d["seasonals"][1])
    assert abs(np.corrcoef(wiggle, weekly)[0, 1]) < 0.2
    assert ols_slope(t / 24, trend) == pytest.approx(0.1, rel=0.05)
    # what STL with the daily period alone did: the week in the trend
    old = decompose_nodes(x, 24)[0]
    old_wiggle = old["trend"] - np.polyval(np.polyfit(t, old["trend"], 1), t)
    assert np.corrcoef(old_wiggle, weekly)[0, 1] > 0.9 and np.var(old_wiggle) > 0.5 * np.var(weekly)


def test_a_node_too_short_for_two_weeks_is_decomposed_with_the_day_only(rng):
    x, _, _, _ = _daily_weekly_trend(rng, nodes=2)
    x[: x.shape[0] - 24 * 10, 1] = np.nan  # node 1: only its last 10 days observed
    dec = decompose_nodes(x, [24, 168])
    assert dec[0]["periods"] == [24, 168] and dec[1]["periods"] == [24]
    assert "skipped" in decompose_nodes(x[-40:], [24, 168])[0]  # not even two days


def test_choose_periods_falls_back_to_stl_or_says_why_it_cannot():
    from stkd.analysis.trend import choose_periods

    found = {"daily": {"steps": 24, "testable": True, "share_found": 1.0},
             "weekly": {"steps": 168, "testable": True, "share_found": 0.1}}
    assert choose_periods(found) == ([24], None)  # a weekly cycle in 1 of 10 nodes is not the data's
    none = {"daily": {"steps": 24, "testable": True, "share_found": 0.0},
            "weekly": {"steps": 168, "testable": False, "reason": "series too short for a weekly period"}}
    periods, note = choose_periods(none)
    assert periods == [24] and "no daily or weekly cycle was found" in note and "24 steps" in note
    short = {"daily": {"steps": 288, "testable": False, "reason": "series too short for a daily period"}}
    periods, note = choose_periods(short)
    assert periods == [] and "daily: series too short for a daily period" in note


def test_strength_by_hand():
    from stkd.analysis.trend import strength

    comp = np.array([1.0, -1.0, 1.0, -1.0])
    resid = np.array([0.5, 0.5, -0.5, -0.5])
    # Var(resid) = 0.25, Var(comp + resid) = 1.25 -> 1 - 0.25 / 1.25
    assert strength(comp, resid) == pytest.approx(0.8)
    assert strength(np.zeros(4), resid) == 0.0  # no larger than the noise
    assert strength(comp, np.array([0.5, np.nan, np.nan, -0.5])) == pytest.approx(1 - 0.25 / 2.25)  # observed only
