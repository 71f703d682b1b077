"""data.clip: forecasts of a non-negative target never come back below 0 (auto when the train targets
never are), through the scaler every path inverts with (evaluation, baselines, the saved run, serving)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from stkd.config import DataConfig, parse_config
from stkd.data.container import STData
from stkd.data.scalers import Scaler
from stkd.data.windows import clip_floors, prepare
from stkd.errors import ConfigError


def _data(shift: float = 0.0) -> STData:
    rng = np.random.default_rng(0)
    T, N = 400, 3
    v = np.stack([rng.gamma(1.0, 2.0, (T, N)) + shift, rng.normal(0, 5, (T, N))], axis=-1).astype(np.float32)
    return STData.from_values(v, pd.date_range("2024-01-01", periods=T, freq="h"), ["a", "b", "c"],
                              ["count", "temp"], ["count"])


def test_auto_floors_a_nonnegative_target_only():
    d = _data()
    assert clip_floors(d, 280, "auto") == [0.0, None]  # the covariate is never clipped
    assert clip_floors(_data(shift=-1.0), 280, "auto") is None  # the target goes below 0 in train
    assert clip_floors(_data(shift=-1.0), 280, "nonnegative") == [0.0, None]
    assert clip_floors(d, 280, "none") is None


def test_inverse_clips_numpy_and_torch_and_the_state_round_trips():
    d = _data()
    wd = prepare(d, DataConfig())
    sc = wd.scaler
    very_low = np.full((2, 12, 3, 1), -50.0, dtype=np.float32)  # scaled predictions far below the data
    assert (sc.inverse(very_low, feature_slice=slice(0, 1)) == 0).all()
    assert (sc.inverse(torch.from_numpy(very_low), feature_slice=slice(0, 1)) == 0).all()
    both = np.full((5, 3, 2), -50.0, dtype=np.float32)
    out = sc.inverse(both)
    assert (out[..., 0] == 0).all() and (out[..., 1] < 0).all()
    state = json.loads(json.dumps(sc.state_dict()))
    assert state["lower"] == [0.0, None]
    back = Scaler.from_state(state)
    np.testing.assert_array_equal(back.inverse(both), out)
    off = prepare(d, DataConfig(clip="none")).scaler
    assert "lower" not in off.state_dict() and (off.inverse(very_low, feature_slice=slice(0, 1)) < 0).all()


def test_clip_is_a_checked_config_key():
    assert parse_config({}).data.clip == "auto"
    with pytest.raises(ConfigError, match="data.clip"):
        parse_config({"data": {"clip": "yes"}})
