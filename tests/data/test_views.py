"""Input views: a privileged teacher reads a longer history, lagged channels or other features of the
same windows; targets, masks and window starts stay the student's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stkd.config import DataConfig, InputsConfig, WindowConfig
from stkd.data.container import STData
from stkd.data.windows import prepare, time_covariates
from stkd.errors import ConfigError


@pytest.fixture(scope="module")
def wd():
    T, N = 24 * 6, 3  # six days of hourly steps, a covariate
    values = np.stack([np.arange(T * N, dtype=np.float32).reshape(T, N),
                       -np.arange(T * N, dtype=np.float32).reshape(T, N)], axis=-1)
    data = STData.from_values(values, pd.date_range("2024-03-01", periods=T, freq="1h"), ["a", "b", "c"],
                              ["flow", "temp"], ["flow"], name="toy")
    return prepare(data, DataConfig(window=WindowConfig(input=4, horizon=3), impute="none"))


def test_a_longer_history_with_a_day_lag_reads_exactly_those_steps(wd):
    view = wd.view(InputsConfig(length=10, lags=["1D"], features=["flow"]))
    assert (view.input_len, view.in_features, view.P, view.H) == (10, 2, 4, 3)
    starts = np.array([30, 60])
    b, plain = view.batch(starts), wd.batch(starts)
    torch.testing.assert_close(b.y, plain.y)  # the same targets and mask
    assert torch.equal(b.mask, plain.mask) and torch.equal(b.start, plain.start)
    for i, s in enumerate(starts):
        steps = np.arange(s + 4 - 10, s + 4)  # the 10 steps ending at the window's last input step
        torch.testing.assert_close(b.x[i, :, :, 0], wd.x_all[steps, :, 0])
        torch.testing.assert_close(b.x[i, :, :, 1], wd.x_all[steps + 3 - 24, :, 0])  # t + H - lag
        assert torch.equal(b.tod[i], wd.tod[steps]) and torch.equal(b.dow[i], wd.dow[steps])
        # the lag channel at the last input step is yesterday's value at the last target time
        assert b.x[i, -1, 0, 1] == wd.x_all[s + 4 + 3 - 1 - 24, 0, 0]


def test_steps_before_the_data_read_as_the_training_mean_with_the_clock_running_on(wd):
    view = wd.view(InputsConfig(length=8, lags=["1D"]))
    b = view.batch(np.array([0]))
    assert (b.x[0, :4] == 0).all()  # steps -4..-1: the scaled training mean
    assert (b.x[0, :, :, 2:] == 0).all()  # a day back is before the data for every step
    before = pd.date_range(end=wd.index[0] - pd.Timedelta("1h"), periods=4, freq="1h")
    tod, dow = time_covariates(before)
    assert torch.equal(b.tod[0, :4], torch.from_numpy(tod)) and torch.equal(b.dow[0, :4], torch.from_numpy(dow))


def test_the_plain_window_is_no_view_and_bad_views_are_config_errors(wd):
    assert wd.view(None) is wd and wd.view(InputsConfig()) is wd
    with pytest.raises(ConfigError, match="2h.*shorter than the horizon"):
        wd.view(InputsConfig(lags=["2h"]))
    with pytest.raises(ConfigError, match="features.*'speed'"):
        wd.view(InputsConfig(features=["speed"]))
    with pytest.raises(ConfigError, match="not a whole number"):
        wd.view(InputsConfig(lags=["90min"]))


def test_the_share_of_training_windows_that_see_no_lagged_value_is_counted_from_the_last_input_step(wd):
    assert wd.unseen_lag_share() == 0.0 and wd.view(InputsConfig(length=8)).unseen_lag_share() == 0.0
    for lag in ("1D", "3D"):
        view = wd.view(InputsConfig(lags=[lag]))
        starts = wd.starts["train"]
        lag_steps = int(pd.Timedelta(lag) / pd.Timedelta("1h"))
        # brute force: a window sees a lagged value when its last input step's lag (t + H - lag) is a real step
        unseen = [s + wd.P - 1 + wd.H - lag_steps < 0 for s in starts]
        assert view.unseen_lag_share() == pytest.approx(np.mean(unseen))
        batch = view.batch(starts[np.array(unseen)][-1:])  # the last such window: its lag channel is all mean
        assert (batch.x[..., 2] == 0).all()


def test_a_lag_that_most_training_windows_cannot_see_warns_and_one_that_none_can_see_is_refused(wd):
    from stkd.steps import check_lag_reach

    train_last = int(wd.starts["train"].max())
    check_lag_reach(wd.view(InputsConfig(lags=["1D"])), "teacher 'stid'")  # most windows see it: silent
    most = wd.view(InputsConfig(lags=[f"{train_last - 10}h"]))  # seen from the last 11 + P + H - 1 windows only
    assert most.unseen_lag_share() > 0.5
    with pytest.warns(UserWarning, match=r"teacher 'stid' inputs.lags: the longest lag, .* reaches before the data's "
                                         r"first step from \d+ % of the \d+ training windows"):
        check_lag_reach(most, "teacher 'stid'")
    none = wd.view(InputsConfig(lags=[f"{train_last + wd.P + wd.H}h"]))
    assert none.unseen_lag_share() == 1.0
    with pytest.raises(ConfigError, match="would read only the training mean; use a shorter lag"):
        check_lag_reach(none, "student 'stid'")
