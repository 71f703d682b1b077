"""Periodicity against series with known periods: a sine of period 24, daily + weekly, noise, Los-loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stkd.analysis.periodicity import node_periodicity, periodicity


def hourly(T: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=T, freq="h")


def test_sine_of_period_24_has_dominant_period_24_by_acf_and_periodogram(rng):
    T = 24 * 7 * 6
    t = np.arange(T)
    y = np.sin(2 * np.pi * t / 24) + 0.2 * rng.standard_normal(T)
    r = node_periodicity(y, {"daily": 24, "weekly": 168}, hours_per_step=1.0)
    assert r["acf"]["dominant"]["steps"] == 24
    assert r["acf"]["dominant"]["hours"] == 24.0
    assert r["periodogram"]["dominant"]["steps"] == pytest.approx(24.0)
    assert r["periodogram"]["dominant"]["cycle"] == "daily"
    assert r["cycles"]["daily"]["found"] and r["cycles"]["daily"]["acf"] and r["cycles"]["daily"]["periodogram"]
    # a daily cycle alone is not a weekly one, although the ACF also peaks at 168 = 7 x 24
    assert r["cycles"]["weekly"]["testable"] and not r["cycles"]["weekly"]["found"]


def test_daily_plus_weekly_finds_24_and_168(rng):
    T = 24 * 7 * 10
    t = np.arange(T)
    y = np.sin(2 * np.pi * t / 24) + 0.8 * np.sin(2 * np.pi * t / 168) + 0.3 * rng.standard_normal(T)
    x = y[:, None]
    res = periodicity(x, hourly(T), ["n0"])
    node = res["per_node"]["n0"]
    acf_steps = {p["steps"] for p in node["acf"]["periods"]}
    psd_steps = {round(p["steps"]) for p in node["periodogram"]["periods"]}
    assert {24, 168} <= acf_steps
    assert {24, 168} <= psd_steps
    assert res["cycles"]["daily"]["nodes_found"] == 1
    assert res["cycles"]["weekly"]["nodes_found"] == 1


def test_weekday_weekend_profile_is_weekly(rng):
    """Traffic-like data: a daily profile whose level drops at weekends has a weekly cycle."""
    T = 24 * 7 * 8
    t = np.arange(T)
    weekday = ((t // 24) % 7) < 5
    y = (np.sin(2 * np.pi * t / 24) + 1.5) * np.where(weekday, 1.0, 0.5) + 0.1 * rng.standard_normal(T)
    r = node_periodicity(y, {"daily": 24, "weekly": 168}, hours_per_step=1.0)
    assert r["cycles"]["daily"]["found"] and r["cycles"]["weekly"]["found"]
    assert r["cycles"]["weekly"]["acf"]


def test_five_minute_data_finds_288_and_too_short_for_weekly(rng):
    T = 288 * 7  # one week of 5-minute steps, like Los-loop
    t = np.arange(T)
    y = np.sin(2 * np.pi * t / 288) + 0.2 * rng.standard_normal(T)
    index = pd.date_range("2012-03-01", periods=T, freq="5min")
    res = periodicity(y[:, None], index, ["n0"])
    daily, weekly = res["cycles"]["daily"], res["cycles"]["weekly"]
    assert daily["steps"] == 288 and daily["hours"] == 24.0 and daily["nodes_found"] == 1
    assert res["per_node"]["n0"]["acf"]["dominant"]["steps"] == pytest.approx(288, abs=288 * 0.04)
    assert not weekly["testable"] and weekly["steps"] == 2016
    assert "too short" in weekly["reason"]
    assert "too short" in res["per_node"]["n0"]["cycles"]["weekly"]["reason"]


def test_noise_and_random_walk_have_no_cycle(rng):
    T = 24 * 7 * 20  # long enough for Welch averaging (one raw periodogram of noise is far rougher)
    x = np.stack([rng.standard_normal(T), np.cumsum(rng.standard_normal(T))], axis=1)
    res = periodicity(x, hourly(T), ["noise", "walk"])
    for node in ("noise", "walk"):
        r = res["per_node"][node]
        assert not r["cycles"]["daily"]["found"] and not r["cycles"]["weekly"]["found"]
        assert r["periodogram"]["periods"] == []  # no peak stands 5x above its local background


def test_gaps_constant_and_empty_nodes(rng):
    T = 24 * 14
    t = np.arange(T)
    y = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(T)
    x = np.stack([y, np.full(T, 3.0), np.full(T, np.nan), y], axis=1)
    x[50:80, 0] = np.nan  # an interior gap is interpolated
    x[: T // 2, 3] = np.nan  # a late sensor: analysed over its own span
    res = periodicity(x, hourly(T), ["gap", "const", "empty", "late"])
    assert res["per_node"]["gap"]["cycles"]["daily"]["found"]
    assert res["per_node"]["const"]["skipped"] == "constant series"
    assert "observed steps" in res["per_node"]["empty"]["skipped"]
    assert res["per_node"]["late"]["n"] == T // 2
    assert res["nodes_skipped"] == 2


def test_los_loop_daily_period_found_for_most_nodes(los_loop_dir):
    frame = pd.read_csv(los_loop_dir / "los_speed.csv")
    index = pd.date_range("2012-03-01", periods=len(frame), freq="5min")
    res = periodicity(frame.to_numpy(dtype=np.float64), index, list(frame.columns))
    daily = res["cycles"]["daily"]
    assert daily["steps"] == 288 and daily["nodes_tested"] == 207
    assert daily["share_found"] > 0.8
    assert list(res["dominant_acf"])[0] == "24 h (daily)"
    assert not res["cycles"]["weekly"]["testable"]  # 7 days: too short for a weekly period
