"""Tests of the baselines on hand-made series: last value, seasonal (time-of-week) average, ridge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stkd.baselines import (
    BASELINE_NAMES,
    BASELINES,
    LastValue,
    RidgeWindow,
    SeasonalAverage,
    build_baseline,
    seasonal_period,
)
from stkd.config import DataConfig, WindowConfig
from stkd.data.container import STData
from stkd.data.windows import prepare
from stkd.evaluate import evaluate_forecaster


def _prepare(values: np.ndarray, freq: str, P: int, H: int, impute: str = "ffill"):
    T, N = values.shape
    data = STData.from_values(values.astype(np.float32), pd.date_range("2024-01-01", periods=T, freq=freq),
                              [f"n{i}" for i in range(N)], ["v"], name="toy")
    return prepare(data, DataConfig(window=WindowConfig(input=P, horizon=H), impute=impute))


def test_last_value_repeats_the_last_observation():
    values = np.arange(100, dtype=np.float64)[:, None] * np.array([1.0, -2.0])[None] + 100
    wd = _prepare(values, "1h", P=4, H=3)
    starts = wd.starts["test"][:5]
    pred = LastValue(wd)(wd.batch(starts))  # [B, H, N, 1]
    assert pred.shape == (5, 3, 2, 1)
    expected = values[starts + 3]  # the last input step, [B, N]
    torch.testing.assert_close(pred[..., 0], torch.as_tensor(expected, dtype=torch.float32)[:, None, :]
                               .expand(-1, 3, -1), rtol=0, atol=1e-3)


def test_last_value_uses_the_last_observed_value_when_the_last_input_is_missing():
    values = np.arange(100, dtype=np.float64)[:, None] + 10.0
    values[44, 0] = np.nan
    wd = _prepare(values, "1h", P=4, H=2)
    pred = LastValue(wd)(wd.batch([41]))  # inputs are steps 41..44; 44 is missing
    assert torch.allclose(pred, torch.full_like(pred, 53.0), atol=1e-3)  # value of step 43 carried forward


def test_seasonal_average_is_the_time_of_week_mean_of_the_train_part():
    # 6-hour steps: 4 a day, a weekly period of 28 steps; 10 weeks of data with noise and gaps
    rng = np.random.default_rng(0)
    T, N, period = 280, 3, 28
    values = rng.normal(20, 5, (T, N))
    values[rng.random((T, N)) < 0.1] = np.nan
    values[0:period:4, 2] = np.nan  # node 2 never observed at slot 0 of the week in train: falls back
    values[period:period * 7:period, 2] = np.nan
    wd = _prepare(values, "6h", P=4, H=4)
    assert wd.steps_per_day == 4
    T_train = wd.splits["train"][1]
    base = SeasonalAverage(wd)
    assert (base.period, base.period_name) == (period, "1 week")  # 7 weeks of training data

    profile = np.empty((period, N))
    train = values[:T_train]
    for slot in range(period):
        rows = train[slot::period]
        for n in range(N):
            obs = rows[:, n][~np.isnan(rows[:, n])]
            profile[slot, n] = obs.mean() if len(obs) else np.nanmean(train[:, n])
    starts = wd.starts["test"]
    pred = base(wd.batch(starts)).numpy()[..., 0]  # [B, H, N]
    steps = starts[:, None] + 4 + np.arange(4)
    np.testing.assert_allclose(pred, profile[steps % period], rtol=1e-5)
    # no test value leaks in: changing the test part changes nothing
    assert T_train < starts.min() + 4


def test_the_seasonal_period_is_the_longest_one_the_training_part_holds_twice():
    assert seasonal_period(288, 1411) == (288, "1 day")  # Los-loop: 4.9 training days, not two weeks
    assert seasonal_period(24, 18_000) == (168, "1 week")
    assert seasonal_period(24, 24 * 14) == (168, "1 week") and seasonal_period(24, 24 * 14 - 1) == (24, "1 day")
    assert seasonal_period(24, 47) == (1, "none")
    # daily data: a "day" period of one step is no season at all
    assert seasonal_period(1, 13) == (1, "none") and seasonal_period(1, 14) == (7, "1 week")


def test_seasonal_average_falls_back_to_a_daily_profile_on_a_short_series():
    # 5-minute steps, 6 days (Los-loop-like): training holds ~4 days, so the profile is daily, and a
    # daily pattern is predicted at the right time of day (a weekly profile would be the node mean here)
    spd, days = 288, 6
    t = np.arange(spd * days)
    daily = 50 + 10 * np.sin(2 * np.pi * t / spd)
    wd = _prepare(np.stack([daily, daily + 5], axis=1), "5min", P=12, H=12)
    base = SeasonalAverage(wd)
    assert (base.period, base.period_name) == (spd, "1 day")
    b = wd.batch(wd.starts["test"])
    assert (base(b) - b.y).abs().max().item() < 1e-3


def test_ridge_fits_a_linear_recurrence_exactly_and_beats_last_value_on_noisy_ar():
    # a noise-free sinusoid obeys x_t = 2 cos(w) x_{t-1} - x_{t-2}: the window determines the horizon linearly
    t = np.arange(800)
    w = 2 * np.pi / 17
    clean = 50 + 10 * np.stack([np.sin(w * t), np.cos(w * t + 1)], axis=1)
    wd = _prepare(clean, "1h", P=6, H=3)
    ridge = RidgeWindow(wd, alpha=1e-6)
    b = wd.batch(wd.starts["test"])
    err = (ridge(b) - b.y).abs().max().item()
    assert err < 1e-2  # amplitude 10

    # AR(2) with noise: oscillating, so repeating the last value is poor and a linear fit is good
    rng = np.random.default_rng(1)
    x = np.zeros((1500, 3))
    for i in range(2, len(x)):
        x[i] = 1.5 * x[i - 1] - 0.8 * x[i - 2] + rng.normal(0, 1, 3)
    wd = _prepare(x + 30, "1h", P=8, H=2)
    mae = {name: evaluate_forecaster(build_baseline(name, wd), wd, "test", [1, 2]).metrics["mae"]
           for name in ("last", "ridge")}
    assert mae["ridge"] < 0.8 * mae["last"]


def test_every_baseline_is_built_by_name_and_scores_finite():
    rng = np.random.default_rng(2)
    values = 30 + np.cumsum(rng.normal(0, 1, (400, 2)), axis=0)
    values[rng.random(values.shape) < 0.05] = np.nan
    wd = _prepare(values, "1h", P=6, H=3)
    assert set(BASELINE_NAMES) == set(BASELINES)
    for name in BASELINES:
        m = evaluate_forecaster(build_baseline(name, wd), wd, "test", [1, 3]).metrics
        assert 0 < m["mae"] <= m["rmse"] < np.inf, name
    with pytest.raises(ValueError):
        build_baseline("nope", wd)
    # the config accepts exactly these names
    from stkd.config import parse_config
    from stkd.errors import ConfigError

    assert parse_config({"eval": {"baselines": list(BASELINES)}}).eval.baselines == list(BASELINES)
    with pytest.raises(ConfigError, match="did you mean 'ridge'"):
        parse_config({"eval": {"baselines": ["ridgee"]}})
