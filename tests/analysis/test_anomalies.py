"""Anomalies: a planted spike is found; clean data has none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stkd.analysis.anomalies import find_anomalies, robust_z
from stkd.analysis.trend import decompose_nodes


def _series(rng, T=24 * 21, noise=0.2):
    t = np.arange(T)
    return 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.01 * t + noise * rng.standard_normal(T)


def test_robust_z_by_hand():
    z = robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    # median 3, MAD 1 -> scale 1.4826
    assert z[2] == 0.0
    assert z[4] == pytest.approx(97 / 1.4826)
    assert np.all(robust_z(np.zeros(5)) == 0)


def test_planted_spike_is_found_with_time_node_value_and_expected(rng):
    T = 24 * 21
    x = np.stack([_series(rng), _series(rng), _series(rng)], axis=1)
    clean_value = x[300, 1]
    x[300, 1] += 12.0
    index = pd.date_range("2024-01-01", periods=T, freq="h")
    res = find_anomalies(decompose_nodes(x, 24), x, index, ["a", "b", "c"], threshold=5.0)
    assert res["total"] == 1 and res["nodes_with_anomalies"] == 1
    hit = res["listed"][0]
    assert hit["node"] == "b" and hit["time"] == str(index[300]) and hit["step"] == 300
    assert hit["value"] == pytest.approx(clean_value + 12.0)
    assert hit["expected"] == pytest.approx(clean_value, abs=1.0)
    assert hit["z"] > 20
    assert res["per_node"] == {"a": 0, "b": 1, "c": 0}


def test_clean_data_has_no_anomaly_above_threshold(rng):
    T = 24 * 60
    x = np.stack([_series(rng, T) for _ in range(4)], axis=1)
    index = pd.date_range("2024-01-01", periods=T, freq="h")
    res = find_anomalies(decompose_nodes(x, 24), x, index, list("abcd"), threshold=5.0)
    assert res["total"] == 0 and res["listed"] == []
    assert res["points_checked"] == 4 * T


def test_listing_is_capped_and_sorted_and_missing_points_never_listed(rng):
    T = 24 * 21
    x = _series(rng, T)[:, None].copy()
    for i, size in zip((100, 200, 300, 400), (8.0, 16.0, 12.0, 20.0)):
        x[i, 0] += size
    x[250, 0] = np.nan
    index = pd.date_range("2024-01-01", periods=T, freq="h")
    res = find_anomalies(decompose_nodes(x, 24), x, index, ["a"], threshold=5.0, max_listed=2)
    assert res["total"] == 4 and res["truncated"]
    assert [a["step"] for a in res["listed"]] == [400, 200]
    assert res["points_checked"] == T - 1
