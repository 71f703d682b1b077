"""prepare / WindowedData: no leakage, exact window counts and boundaries, batches equal hand-cut slices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stkd.config import DataConfig, WindowConfig
from stkd.data.container import STData
from stkd.data.impute import fill_inputs
from stkd.data.scalers import Scaler
from stkd.data.windows import Batch, prepare, time_covariates
from stkd.errors import ConfigError, DataError


def _cfg(P=4, H=3, split=(0.7, 0.1, 0.2), **kw) -> DataConfig:
    return DataConfig(window=WindowConfig(input=P, horizon=H), split=list(split), **kw)


def _data(rng, T=200, N=5, F=2, missing=0.1, freq="1h", start="2024-01-01", targets=None) -> STData:
    v = rng.normal(50.0, 8.0, (T, N, F)).astype(np.float32)
    v[rng.random(v.shape) < missing] = np.nan
    feats = ["speed", "flow", "temp"][:F]
    return STData.from_values(v, pd.date_range(start, periods=T, freq=freq), [f"s{i}" for i in range(N)],
                              feats, targets=targets)


# ---------------------------------------------------------------------------------- leakage
def test_scaler_sees_only_the_train_slice(rng):
    """LEAKAGE: val/test values are huge; the fitted statistics must equal those of the train slice alone."""
    d = _data(rng, T=200)
    a = 140  # 70 % of 200
    d.values[a:] = np.where(d.mask[a:], 1e6, np.nan)
    for kind in ("zscore", "minmax"):
        for scope in ("node", "global"):
            wd = prepare(d, _cfg(scaler=kind, scaler_scope=scope))
            assert wd.ranges["train"] == (0, a)
            alone = Scaler(kind, scope).fit(d.values[:a].copy(), d.mask[:a].copy())
            np.testing.assert_array_equal(wd.scaler.center, alone.center)
            np.testing.assert_array_equal(wd.scaler.scale, alone.scale)
            assert wd.scaler.center.max() < 1e3
    # and the numbers the leakage would move: train-only z-score means
    wd = prepare(d, _cfg())
    np.testing.assert_allclose(wd.scaler.center, np.nanmean(d.values[:a].astype(np.float64), axis=0), rtol=1e-6)


def test_imputation_uses_train_statistics_only(rng):
    """LEAKAGE: a gap in the test part is filled from train slot means, not from the huge test values."""
    T = 24 * 7 * 4  # four weeks, hourly: period 168
    d = _data(rng, T=T, N=3, F=1, missing=0.0)
    a = int(T * 0.7)
    d.values[a:] = 1e6
    d.values[T - 5, 0, 0] = np.nan
    d.mask[T - 5, 0, 0] = False
    wd = prepare(d, _cfg(impute="seasonal"))
    slot = (T - 5) % 168
    expected = d.values[slot:a:168, 0, 0].astype(np.float64).mean()
    raw_filled = wd.scaler.inverse(wd.x_all[T - 5].numpy()[None])[0, 0, 0]
    assert raw_filled == pytest.approx(expected, rel=1e-5)
    wd = prepare(d, _cfg(impute="none"))
    assert wd.x_all[T - 5, 0, 0].item() == pytest.approx(0.0, abs=1e-5)  # train mean -> 0 after z-score


def test_prepare_leaves_the_source_untouched(rng):
    d = _data(rng)
    before = d.values.copy()
    prepare(d, _cfg())
    np.testing.assert_array_equal(d.values, before)


# --------------------------------------------------------------------------------- windows
def test_observed_inputs_says_which_sensors_read_only_observed_steps(rng):
    """``distill.teacher_scope: observed-inputs``: a sensor's teacher forecast counts only in windows whose
    input steps of that sensor were all observed; one missing reading inside the input window is enough to
    leave it out, one in the horizon is not."""
    d = _data(rng, F=1, missing=0.0)
    d.values[20, 3, 0] = np.nan  # sensor 3 misses step 20
    d.mask[20, 3, 0] = False
    wd = prepare(d, _cfg())
    P = wd.P
    start = torch.tensor([20 - P + 1, 20, 20 - P, 21])  # step 20 last input, first input, first target, after
    seen = wd.observed_inputs(start)  # [B, 1, N, F_out]
    assert tuple(seen.shape) == (4, 1, wd.num_nodes, wd.out_features)
    assert seen[:, 0, 3, 0].tolist() == [False, False, True, True]
    assert seen[:, 0, [n for n in range(wd.num_nodes) if n != 3]].all()


@pytest.mark.parametrize("T,P,H,split", [(200, 4, 3, (0.7, 0.1, 0.2)), (97, 2, 5, (0.6, 0.2, 0.2)),
                                         (250, 12, 12, (0.7, 0.1, 0.2)), (50, 3, 1, (0.8, 0.0, 0.2))])
def test_window_counts_and_no_boundary_crossing(rng, T, P, H, split):
    wd = prepare(_data(rng, T=T, N=2, F=1), _cfg(P, H, split))
    assert sum(r[1] - r[0] for r in wd.ranges.values()) == T
    assert wd.splits == wd.ranges
    for name, (lo, hi) in wd.ranges.items():
        s = wd.starts[name]
        assert wd.num_windows(name) == len(s) == max(0, hi - lo - P - H + 1)
        assert np.all(s >= lo) and np.all(s + P + H <= hi)  # every [s, s + P + H) inside its split
    if split[1] == 0:
        assert wd.num_windows("val") == 0 and list(wd.iterate("val", 8)) == []


@pytest.mark.parametrize("kind,scope", [("zscore", "node"), ("zscore", "global"), ("minmax", "node")])
def test_batch_equals_hand_indexed_raw_slices(rng, kind, scope):
    d = _data(rng, T=150, N=4, F=3, missing=0.15, targets=["speed", "flow"])
    P, H = 5, 4
    wd = prepare(d, _cfg(P, H, scaler=kind, scaler_scope=scope))
    assert (wd.P, wd.H, wd.num_nodes, wd.in_features, wd.out_features) == (P, H, 4, 3, 2)
    starts = np.concatenate([wd.starts["train"][[0, 7, -1]], wd.starts["val"][:2], wd.starts["test"][-2:]])
    b = wd.batch(starts)
    B = len(starts)
    assert b.x.shape == (B, P, 4, 3) and b.x.dtype == torch.float32
    assert b.y.shape == b.mask.shape == (B, H, 4, 2) and b.y.dtype == torch.float32 and b.mask.dtype == torch.bool
    assert b.tod.shape == b.dow.shape == (B, P) and b.dow.dtype == torch.int64
    np.testing.assert_array_equal(b.start.numpy(), starts)

    filled = fill_inputs(d.values, d.mask, "ffill", period=168, train_end=wd.ranges["train"][1])
    z = wd.scaler.transform(filled)
    for i, s in enumerate(starts):
        raw_x, m_x = d.values[s:s + P], d.mask[s:s + P]
        x = b.x[i].numpy()
        np.testing.assert_allclose(x[m_x], wd.scaler.transform(raw_x)[m_x], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(x, z[s:s + P], rtol=1e-6, atol=1e-6)  # gaps: the imputed values
        raw_y, m_y = d.values[s + P:s + P + H, :, :2], d.mask[s + P:s + P + H, :, :2]
        np.testing.assert_array_equal(b.mask[i].numpy(), m_y)
        y = b.y[i].numpy()
        np.testing.assert_array_equal(y[m_y], raw_y[m_y])  # exactly the original observed values
        # and the scaled inputs at observed target steps invert to the raw values (float rounding only)
        z_y = wd.x_all[s + P:s + P + H, :, :2].numpy()
        np.testing.assert_allclose(wd.scaler.inverse(z_y, slice(0, 2))[m_y], raw_y[m_y], rtol=1e-4)
        np.testing.assert_array_equal(y[~m_y], 0.0)
        np.testing.assert_array_equal(b.tod[i].numpy(), wd.tod[s:s + P].numpy())
    assert torch.isfinite(b.x).all() and torch.isfinite(b.y).all()


def test_time_covariates_for_known_timestamps():
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-06 13:30", "2024-01-07 23:59", "2025-03-05 06:00"])
    tod, dow = time_covariates(idx)
    assert tod.dtype == np.float32 and dow.dtype == np.int64
    np.testing.assert_allclose(tod, [0.0, 810 / 1440, 1439 / 1440, 0.25], rtol=1e-6)
    np.testing.assert_array_equal(dow, [0, 5, 6, 2])  # Mon, Sat, Sun, Wed


def test_batch_time_covariates_follow_the_index(rng):
    d = _data(rng, T=300, N=2, F=1, freq="30min", start="2024-01-05 22:00")  # a Friday
    wd = prepare(d, _cfg(P=6, H=2))
    b = wd.batch([0, 4])
    np.testing.assert_allclose(b.tod[0].numpy(), [22 / 24, 22.5 / 24, 23 / 24, 23.5 / 24, 0.0, 0.5 / 24], rtol=1e-6)
    np.testing.assert_array_equal(b.dow[0].numpy(), [4, 4, 4, 4, 5, 5])
    assert wd.steps_per_day == 48
    assert (wd.tod.numpy() >= 0).all() and (wd.tod.numpy() < 1).all()


# ------------------------------------------------------------------------------- bad input
def test_too_short_series_says_how_many_steps_are_needed(rng):
    d = _data(rng, T=60, N=2, F=1)
    with pytest.raises(DataError) as e:
        prepare(d, _cfg(P=12, H=12))
    msg = str(e.value)
    assert "60 steps" in msg and "12 + horizon 12 = 24" in msg
    assert "train 42, val 6, test 12" in msg and "val, test too short" in msg
    assert "at least 239 steps" in msg
    prepare(_data(rng, T=239, N=2, F=1), _cfg(P=12, H=12))  # the suggested length works


def test_bad_split_in_config_is_config_error(rng):
    with pytest.raises(ConfigError, match="data.split"):
        prepare(_data(rng), _cfg(split=(0.7, 0.1, 0.1)))
    with pytest.raises(ConfigError, match="data.window"):
        prepare(_data(rng), _cfg(P=0))


def test_too_short_for_train_alone(rng):
    with pytest.raises(DataError, match="train too short"):
        prepare(_data(rng, T=10, N=1, F=1), _cfg(P=6, H=6, split=(1.0, 0.0, 0.0)))


def test_constant_and_all_missing_series_stay_finite(rng):
    d = _data(rng, T=120, N=4, F=2, missing=0.0)
    d.values[:, 0, 0] = 5.0  # a target stuck at one value: dropped like a dead sensor (data checks)
    d.values[:, 1, :] = np.nan  # a dead sensor
    d.mask[:, 1, :] = False
    d.values[:, :, 1] = 2.0  # constant covariate
    d.values[:, 1, :] = np.nan
    d.values[:, 2, 0] = np.where(np.arange(120) % 2, 7.0, 9.0)  # a target with two values: kept
    for scaler in ("zscore", "minmax"):
        for impute in ("ffill", "seasonal", "none"):
            wd = prepare(d, _cfg(scaler=scaler, impute=impute))
            assert wd.data.nodes == d.nodes[2:]  # the dead and the stuck sensor are dropped (issue 17)
            assert torch.isfinite(wd.x_all).all()
            for b in wd.iterate("test", 16):
                assert torch.isfinite(b.x).all() and torch.isfinite(b.y).all()
                np.testing.assert_allclose(b.x[:, :, :, 1].numpy(), b.x[0, 0, 0, 1].item())  # the covariate: one value


def test_batch_rejects_out_of_range_starts(rng):
    wd = prepare(_data(rng), _cfg())
    last = wd.num_steps - wd.P - wd.H
    wd.batch([0, last])
    with pytest.raises(DataError, match="window starts"):
        wd.batch([-1])  # would silently wrap around otherwise
    with pytest.raises(DataError, match="window starts"):
        wd.batch(torch.tensor([last + 1]))
    with pytest.raises(DataError, match="unknown split"):
        wd.num_windows("validation")
    with pytest.raises(ConfigError, match="batch_size"):
        next(wd.iterate("train", 0))


# --------------------------------------------------------------------------------- iterate
def test_iterate_order_is_fixed_by_the_seed(rng):
    wd = prepare(_data(rng), _cfg())

    def order(seed, **kw):
        g = torch.Generator().manual_seed(seed)
        return np.concatenate([b.start.numpy() for b in wd.iterate("train", 16, shuffle=True, generator=g, **kw)])

    a, b, c = order(3), order(3), order(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.sort(a), wd.starts["train"])  # a permutation: every window once
    plain = np.concatenate([b.start.numpy() for b in wd.iterate("train", 16)])
    np.testing.assert_array_equal(plain, wd.starts["train"])
    sizes = [len(b) for b in wd.iterate("train", 16, shuffle=True, generator=torch.Generator().manual_seed(0),
                                        drop_last=True)]
    assert sizes == [16] * (wd.num_windows("train") // 16)


def test_batch_to_device_and_data_to_device(rng):
    wd = prepare(_data(rng), _cfg())
    b = wd.batch(wd.starts["val"][:3]).to("cpu")
    assert isinstance(b, Batch) and b.x.device.type == "cpu"
    assert wd.to("cpu").batch([0]).x.device.type == "cpu"


# ----------------------------------------------------------------------------- fingerprint
def test_fingerprint_tracks_data_and_prepare_settings(rng):
    d = _data(rng)
    fp = prepare(d, _cfg()).fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert prepare(d, _cfg()).fingerprint() == fp
    renamed = STData(values=d.values, mask=d.mask, index=d.index, nodes=d.nodes, features=d.features,
                     targets=d.targets, name="other")
    assert prepare(renamed, _cfg()).fingerprint() == fp  # the name is not data
    assert prepare(d, _cfg(P=5)).fingerprint() != fp
    assert prepare(d, _cfg(scaler="minmax")).fingerprint() != fp
    assert prepare(d, _cfg(split=(0.6, 0.2, 0.2))).fingerprint() != fp
    v = d.values.copy()
    v[3, 0, 0] += 1.0
    changed = STData(values=v, mask=d.mask, index=d.index, nodes=d.nodes, features=d.features, targets=d.targets)
    assert prepare(changed, _cfg()).fingerprint() != fp
    shifted = STData(values=d.values, mask=d.mask, index=d.index + pd.Timedelta("1h"), nodes=d.nodes,
                     features=d.features, targets=d.targets)
    assert prepare(shifted, _cfg()).fingerprint() != fp


def test_zero_targets_stay_exactly_zero_with_a_large_center(rng):
    """Targets are the raw values bit for bit, zero counts next to a large mean included (MAPE masks |y| < 1e-4)."""
    v = rng.integers(0, 4000, (120, 3, 1)).astype(np.float32) + 0.37
    v[::3] = 0.0
    d = STData.from_values(v, pd.date_range("2024-01-01", periods=120, freq="1h"), ["a", "b", "c"], ["count"])
    wd = prepare(d, _cfg())
    b = wd.batch(wd.starts["test"])
    raw = np.stack([v[s + wd.P:s + wd.P + wd.H] for s in wd.starts["test"]])
    np.testing.assert_array_equal(b.y.numpy(), raw)
    assert (b.y.numpy()[raw == 0] == 0).all()


def test_day_of_week_is_used_only_when_training_holds_every_weekday():
    from stkd.data.windows import weekdays_covered

    six = pd.date_range("2024-01-01", periods=6 * 24, freq="h")  # Monday to Saturday: no Sunday
    assert not weekdays_covered(six)
    seven = pd.date_range("2024-01-01", periods=7 * 24, freq="h")  # every weekday once
    assert weekdays_covered(seven)
    assert not weekdays_covered(seven, times=2)
    assert weekdays_covered(pd.date_range("2024-01-01", periods=14 * 24, freq="h"), times=2)


def test_los_loop_models_get_no_day_of_week_embedding():
    """Los-loop trains on Thursday..Monday and is validated and tested on Tuesday and Wednesday: a
    day-of-week embedding would be untrained noise there (its test MAE was 4.94 vs 3.99 without)."""
    from stkd.config import DataConfig
    from stkd.data.windows import load_windowed
    from stkd.models.registry import build_model
    from stkd.steps import model_spec

    wd = load_windowed(DataConfig(source="builtin", name="los-loop"))
    assert not wd.day_of_week and not model_spec(wd).day_of_week
    stid = build_model("stid", model_spec(wd))
    assert stid.dow_emb is None and stid.hidden_dim == 16 * 3  # window, node, time of day
    gwnet = build_model("gwnet", model_spec(wd), {"residual_channels": 8, "dilation_channels": 8})
    assert gwnet.time_emb.dow is None
