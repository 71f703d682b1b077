"""Scalers: statistics from observed values only, no division by zero, exact JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stkd.data import scalers
from stkd.data.scalers import Scaler, observed_stats
from stkd.errors import ConfigError, DataError, STKDError


def _data(rng, T=60, N=5, F=2, missing=0.2):
    v = rng.normal(40.0, 7.0, (T, N, F)).astype(np.float32)
    m = rng.random(v.shape) > missing
    v[~m] = np.nan
    return v, m


def test_zscore_node_matches_nan_statistics(rng):
    v, m = _data(rng)
    sc = Scaler("zscore", "node").fit(v, m)
    assert sc.center.shape == (5, 2) and sc.center.dtype == np.float32
    np.testing.assert_allclose(sc.center, np.nanmean(v.astype(np.float64), axis=0), rtol=1e-6)
    np.testing.assert_allclose(sc.scale, np.nanstd(v.astype(np.float64), axis=0), rtol=1e-6)


def test_zscore_global_pools_nodes(rng):
    v, m = _data(rng)
    sc = Scaler("zscore", "global").fit(v, m)
    flat = v.astype(np.float64).reshape(-1, 2)
    assert sc.center.shape == (1, 2)
    np.testing.assert_allclose(sc.center[0], np.nanmean(flat, axis=0), rtol=1e-6)
    np.testing.assert_allclose(sc.scale[0], np.nanstd(flat, axis=0), rtol=1e-6)


def test_minmax_maps_train_range_to_unit_interval(rng):
    v, m = _data(rng)
    sc = Scaler("minmax", "node").fit(v, m)
    z = sc.transform(v)
    assert np.nanmin(z, axis=0) == pytest.approx(np.zeros((5, 2)), abs=1e-6)
    assert np.nanmax(z, axis=0) == pytest.approx(np.ones((5, 2)), abs=1e-6)


def test_mask_decides_not_the_value(rng):
    """A sentinel under mask False (e.g. 0 for a dead sensor) must not move the statistics."""
    v, m = _data(rng, missing=0.3)
    clean = Scaler().fit(v, m)
    v2 = np.where(m, v, np.float32(-9999.0))
    dirty = Scaler().fit(v2, m)
    np.testing.assert_array_equal(clean.center, dirty.center)
    np.testing.assert_array_equal(clean.scale, dirty.scale)


def test_chunked_accumulation_is_exact_for_large_mean(monkeypatch, rng):
    """Chan's merge over many small chunks agrees with the two-pass result where sum-of-squares fails."""
    v = (1e6 + rng.normal(0, 0.5, (200, 3, 1))).astype(np.float32)
    m = rng.random(v.shape) > 0.1
    monkeypatch.setattr(scalers, "_CHUNK_ELEMS", 7)  # 2 rows per chunk
    st = observed_stats(v, m)
    ref = np.where(m, v, np.nan).astype(np.float64)
    np.testing.assert_allclose(st["mean"], np.nanmean(ref, axis=0), rtol=1e-12)
    np.testing.assert_allclose(st["m2"] / st["count"], np.nanvar(ref, axis=0), rtol=1e-9)
    np.testing.assert_array_equal(st["count"], m.sum(0))


def test_constant_series_gets_scale_one(rng):
    v, m = _data(rng, missing=0.0)
    v[:, 2, 0] = 3.25  # constant node
    v[:, :, 1] = 7.0  # constant feature everywhere
    for kind in ("zscore", "minmax"):
        for scope in ("node", "global"):
            sc = Scaler(kind, scope).fit(v, m)
            z = sc.transform(v)
            assert np.isfinite(z).all()
            assert (sc.scale > 0).all()
    sc = Scaler("zscore", "node").fit(v, m)
    assert sc.scale[2, 0] == 1.0 and sc.center[2, 0] == 3.25
    np.testing.assert_array_equal(sc.transform(v)[:, 2, 0], 0.0)


def test_all_missing_node_falls_back_to_global_and_feature_to_zero_one(rng):
    v, m = _data(rng, missing=0.0)
    m[:, 1, 0] = False  # node 1 never observed in feature 0
    v[:, 1, 0] = np.nan
    m[:, :, 1] = False  # feature 1 never observed anywhere
    v[:, :, 1] = np.nan
    sc = Scaler("zscore", "node").fit(v, m)
    glob = Scaler("zscore", "global").fit(v, m)
    assert sc.center[1, 0] == glob.center[0, 0] and sc.scale[1, 0] == glob.scale[0, 0]
    np.testing.assert_array_equal(sc.center[:, 1], 0.0)
    np.testing.assert_array_equal(sc.scale[:, 1], 1.0)
    assert np.isfinite(sc.center).all() and np.isfinite(sc.scale).all()
    mm = Scaler("minmax", "node").fit(v, m)
    assert np.isfinite(mm.center).all() and (mm.scale > 0).all()


def test_inverse_round_trip_numpy_and_torch(rng):
    v, m = _data(rng, missing=0.0)
    sc = Scaler().fit(v, m)
    z = sc.transform(v)
    assert z.dtype == np.float32
    back = sc.inverse(z)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, v, rtol=1e-5)
    zt = torch.from_numpy(z)
    bt = sc.inverse(zt)
    assert bt.dtype == torch.float32
    np.testing.assert_allclose(bt.numpy(), v, rtol=1e-5)
    np.testing.assert_allclose(sc.transform(torch.from_numpy(v)).numpy(), z, rtol=1e-6)


def test_inverse_of_target_slice_broadcasts_over_leading_dims(rng):
    v, m = _data(rng, N=4, F=3, missing=0.0)
    sc = Scaler().fit(v, m)
    pred = rng.normal(size=(2, 5, 4, 1)).astype(np.float32)  # [B, H, N, F_out]
    out = sc.inverse(pred, feature_slice=slice(0, 1))
    np.testing.assert_allclose(out, pred * sc.scale[:, :1] + sc.center[:, :1], rtol=1e-6)
    out_t = sc.inverse(torch.from_numpy(pred), feature_slice=slice(0, 1))
    np.testing.assert_allclose(out_t.numpy(), out, rtol=1e-6)
    with pytest.raises(DataError):
        sc.inverse(pred)  # 1 feature given, scaler has 3: refuse rather than broadcast wrongly


def test_transform_in_place(rng):
    v, m = _data(rng, missing=0.0)
    sc = Scaler().fit(v, m)
    expected = sc.transform(v)
    x = v.copy()
    out = sc.transform(x, out=x)
    assert out is x
    np.testing.assert_array_equal(x, expected)


def test_state_round_trips_through_json_exactly(rng):
    v, m = _data(rng)
    for kind, scope in [("zscore", "node"), ("minmax", "global")]:
        sc = Scaler(kind, scope).fit(v, m)
        state = json.loads(json.dumps(sc.state_dict()))
        sc2 = Scaler.from_state(state)
        assert (sc2.kind, sc2.scope) == (kind, scope)
        np.testing.assert_array_equal(sc2.center, sc.center)
        np.testing.assert_array_equal(sc2.scale, sc.scale)
        np.testing.assert_array_equal(sc2.transform(v), sc.transform(v))


def test_bad_use_raises_specific_errors(rng):
    with pytest.raises(ConfigError, match="data.scaler"):
        Scaler("robust")
    with pytest.raises(ConfigError, match="data.scaler_scope"):
        Scaler("zscore", "sensor")
    with pytest.raises(STKDError, match="fit"):
        Scaler().transform(np.zeros((2, 3, 1), np.float32))
    with pytest.raises(DataError):
        Scaler().fit(np.zeros((4, 3), np.float32), np.ones((4, 3), bool))
    with pytest.raises(DataError, match="scaler state"):
        Scaler.from_state({"kind": "zscore", "scope": "node", "center": [[0.0]]})
