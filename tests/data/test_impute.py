"""Input imputation: causal forward fill, seasonal means from the train part only, never NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stkd.data import impute
from stkd.data.impute import fill_inputs
from stkd.errors import ConfigError, DataError

nan = np.nan


def _arr(cols):
    """``[T, N, 1]`` float32 from a list of per-node series, and its observed mask."""
    v = np.array(cols, dtype=np.float32).T[:, :, None]
    return v, ~np.isnan(v)


def test_ffill_carries_last_observation_and_fills_leading_gap_with_train_mean():
    v, m = _arr([[nan, 1.0, nan, nan, 4.0, nan], [2.0, nan, 6.0, nan, nan, nan]])
    out = fill_inputs(v, m, "ffill", train_end=4)
    np.testing.assert_array_equal(out[:, 0, 0], [1.0, 1.0, 1.0, 1.0, 4.0, 4.0])  # lead gap: train mean of [1]
    np.testing.assert_array_equal(out[:, 1, 0], [2.0, 2.0, 6.0, 6.0, 6.0, 6.0])
    assert out.dtype == np.float32


def test_ffill_matches_pandas_in_small_column_blocks(monkeypatch, rng):
    v = rng.normal(size=(50, 7, 3)).astype(np.float32)
    m = rng.random(v.shape) > 0.4
    m[0] = True  # no leading gaps: pure forward fill
    v[~m] = nan
    monkeypatch.setattr(impute, "_CHUNK_ELEMS", 120)  # 2 columns per block
    out = fill_inputs(v, m, "ffill")
    ref = pd.DataFrame(v.reshape(50, -1)).ffill().to_numpy().reshape(v.shape)
    np.testing.assert_array_equal(out, ref)


def test_leading_gap_uses_seasonal_mean_when_period_given():
    period = 3
    base = np.array([10.0, 20.0, 30.0] * 4, dtype=np.float32)  # slots 0, 1, 2
    base[:2] = nan  # leading gap at slots 0 and 1
    v, m = _arr([base])
    out = fill_inputs(v, m, "ffill", period=period, train_end=9)
    np.testing.assert_array_equal(out[:3, 0, 0], [10.0, 20.0, 30.0])


def test_seasonal_uses_slot_means_of_the_train_part_only():
    """LEAKAGE: huge values after train_end must not reach any filled value."""
    period, train_end = 4, 8
    s = np.array([1, 2, 3, 4, 3, 4, 5, 6, 1e6, 1e6, nan, 1e6, 1e6, nan, 1e6, 1e6], dtype=np.float32)
    s[1] = nan  # a train gap in slot 1
    v, m = _arr([s])
    out = fill_inputs(v, m, "seasonal", period=period, train_end=train_end)[:, 0, 0]
    assert out[1] == 4.0  # slot 1 in train: only t=5 observed -> 4
    assert out[10] == pytest.approx((3 + 5) / 2)  # slot 2 mean over train (t=2, 6)
    assert out[13] == 4.0  # slot 1 again
    np.testing.assert_array_equal(out[m[:, 0, 0]], s[m[:, 0, 0]])  # observed untouched


def test_unseen_slot_and_no_period_fall_back_to_train_mean():
    s = np.array([nan, 2.0, nan, 4.0, nan, nan], dtype=np.float32)
    v, m = _arr([s])
    out = fill_inputs(v, m, "seasonal", period=2, train_end=4)[:, 0, 0]
    np.testing.assert_array_equal(out, [3.0, 2.0, 3.0, 4.0, 3.0, 3.0])  # slot 0 never seen: mean 3
    out = fill_inputs(v, m, "seasonal", period=None, train_end=4)[:, 0, 0]
    np.testing.assert_array_equal(out, [3.0, 2.0, 3.0, 4.0, 3.0, 3.0])


def test_none_fills_train_mean_and_ignores_later_values():
    s = np.array([1.0, nan, 3.0, 1e6, nan], dtype=np.float32)
    v, m = _arr([s])
    out = fill_inputs(v, m, "none", train_end=3)[:, 0, 0]
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0, 1e6, 2.0])


def test_all_missing_node_and_feature_never_give_nan(rng):
    v = rng.normal(5.0, 1.0, (40, 3, 2)).astype(np.float32)
    v[:, 1, 0] = nan  # node never observed
    v[:, :, 1] = nan  # feature never observed
    m = ~np.isnan(v)
    for method in ("ffill", "seasonal", "none"):
        out = fill_inputs(v, m, method, period=7, train_end=30)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out[:, 1, 0], np.nanmean(v[:30, :, 0]), rtol=1e-6)  # the feature's mean
        np.testing.assert_array_equal(out[:, :, 1], 0.0)


def test_mask_is_authoritative_and_inplace_shares_memory(rng):
    v = rng.normal(size=(20, 2, 1)).astype(np.float32)
    m = rng.random(v.shape) > 0.3
    m[0] = True
    v[~m] = -9999.0  # a sentinel, not NaN
    copy_in = v.copy()
    out = fill_inputs(v, m, "ffill")
    np.testing.assert_array_equal(v, copy_in)  # not in place: input untouched
    assert (out != -9999.0).all()
    same = fill_inputs(v, m, "ffill", inplace=True)
    assert same is v
    np.testing.assert_array_equal(v, out)


def test_bad_arguments():
    v, m = _arr([[1.0, nan]])
    with pytest.raises(ConfigError, match="data.impute"):
        fill_inputs(v, m, "linear")
    with pytest.raises(DataError, match="train_end"):
        fill_inputs(v, m, train_end=5)
    with pytest.raises(DataError):
        fill_inputs(v.astype(np.float64), m, inplace=True)
    with pytest.raises(DataError):
        fill_inputs(v[:, :, 0], m[:, :, 0])


def test_long_leading_gap_across_chunks_keeps_its_own_slots(monkeypatch):
    """A leading gap spanning several internal chunks gets each step's slot mean, not a carried fill."""
    monkeypatch.setattr(impute, "_CHUNK_ELEMS", 3)  # 3 rows per chunk for N = F = 1
    s = np.tile(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32), 5)
    s[:7] = nan
    v, m = _arr([s])
    out = fill_inputs(v, m, "ffill", period=4, train_end=20)[:, 0, 0]
    np.testing.assert_array_equal(out, np.tile([1.0, 2.0, 3.0, 4.0], 5))
    s[12:15] = nan  # a later gap across a chunk boundary: forward fill from t = 11
    v, m = _arr([s])
    out = fill_inputs(v, m, "ffill", period=4, train_end=20)[:, 0, 0]
    np.testing.assert_array_equal(out[11:16], [4.0, 4.0, 4.0, 4.0, 4.0])
