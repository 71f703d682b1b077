"""Chronological splits and window starts: the ranges tile the series, no window crosses a boundary."""

from __future__ import annotations

import numpy as np
import pytest

from stkd.data.splits import num_windows, split_ranges, window_starts
from stkd.errors import ConfigError, DataError


def test_default_split_is_chronological_70_10_20():
    assert split_ranges(100, [0.7, 0.1, 0.2]) == {"train": (0, 70), "val": (70, 80), "test": (80, 100)}


@pytest.mark.parametrize("T", [0, 1, 7, 13, 99, 1001, 34272])
@pytest.mark.parametrize("ratios", [(0.7, 0.1, 0.2), (0.6, 0.2, 0.2), (1 / 3, 1 / 3, 1 / 3), (0.8, 0.0, 0.2)])
def test_ranges_tile_the_series(T, ratios):
    r = split_ranges(T, ratios)
    assert r["train"][0] == 0 and r["test"][1] == T
    assert r["train"][1] == r["val"][0] and r["val"][1] == r["test"][0]
    assert all(lo <= hi for lo, hi in r.values())
    for (lo, hi), share in zip(r.values(), ratios):
        assert abs((hi - lo) - share * T) <= 1.0  # each split within one step of its share


def test_zero_shares_give_empty_ranges():
    r = split_ranges(50, [1.0, 0.0, 0.0])
    assert r == {"train": (0, 50), "val": (50, 50), "test": (50, 50)}


@pytest.mark.parametrize("bad", [[0.7, 0.1, 0.1], [0.7, 0.4, -0.1], [0.5, 0.5], [0.0, 0.5, 0.5],
                                 [float("nan"), 0.5, 0.5], ["a", 0.5, 0.5]])
def test_bad_ratios_are_config_errors(bad):
    with pytest.raises(ConfigError, match="data.split"):
        split_ranges(100, bad)


def test_ratio_error_names_the_sum():
    with pytest.raises(ConfigError, match=r"sum 0\.9"):
        split_ranges(100, [0.7, 0.1, 0.1])


def test_negative_length_is_data_error():
    with pytest.raises(DataError):
        split_ranges(-1, [0.7, 0.1, 0.2])


@pytest.mark.parametrize("lo,hi,P,H", [(0, 70, 12, 12), (70, 80, 3, 2), (5, 29, 12, 12), (5, 28, 12, 12), (0, 0, 1, 1)])
def test_window_starts_count_and_bounds(lo, hi, P, H):
    s = window_starts(lo, hi, P, H)
    assert s.dtype == np.int64
    assert len(s) == max(0, hi - lo - P - H + 1) == num_windows(lo, hi, P, H)
    if len(s):
        assert s[0] == lo and s[-1] + P + H == hi  # the last window ends exactly at the boundary
        assert np.all(np.diff(s) == 1)


def test_window_starts_validates_lengths():
    with pytest.raises(ConfigError, match="data.window"):
        window_starts(0, 10, 0, 3)
    with pytest.raises(DataError):
        window_starts(10, 5, 1, 1)
