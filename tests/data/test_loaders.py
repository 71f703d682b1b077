"""Loaders: every format read from a file the test writes (Los-loop read in place), and every bad input
the issue lists, each asserting that the message names the file, column, row or key."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stkd.config import DataConfig, GraphConfig
from stkd.data.container import STData
from stkd.data.loaders import load_data, select
from stkd.data.readers.long import read_long
from stkd.data.readers.metr_la import read_metr_la_h5
from stkd.data.readers.pems import read_pems_npz
from stkd.data.readers.pickles import read_dcrnn_pickle
from stkd.data.readers.side_files import read_adjacency, read_distances, read_locations
from stkd.data.readers.wide import read_csv_wide
from stkd.errors import ConfigError, DataError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_contract(d: STData) -> None:
    """The container contract every loader must meet."""
    assert d.values.dtype == np.float32 and d.values.ndim == 3
    assert d.mask.dtype == np.bool_ and d.mask.shape == d.values.shape
    assert np.array_equal(d.mask, ~np.isnan(d.values))
    assert d.index.is_monotonic_increasing and d.index.is_unique
    if d.num_steps > 2:
        assert len(set(np.diff(d.index.asi8))) == 1


# ============================================================================ Los-loop (csv-wide)
def test_los_loop_wide_with_locations_and_adjacency(los_loop_dir):
    cfg = DataConfig(source="csv-wide", path="los_speed.csv", start="2012-03-01 00:00", freq="5min",
                     target=["speed"], locations="graph_sensor_locations.csv", adjacency="los_adj.csv")
    d = load_data(cfg, base_dir=los_loop_dir)
    assert_contract(d)
    assert (d.num_steps, d.num_nodes, d.num_features) == (2016, 207, 1)
    assert d.features == ["speed"] and d.name == "los_speed" and d.freq_str == "5min"
    assert d.index[0] == pd.Timestamp("2012-03-01") and d.index[-1] == pd.Timestamp("2012-03-07 23:55")
    raw = pd.read_csv(los_loop_dir / "los_speed.csv")
    assert d.nodes == list(raw.columns)
    np.testing.assert_allclose(d.values[:, :, 0], raw.to_numpy(np.float32))
    locs = pd.read_csv(los_loop_dir / "graph_sensor_locations.csv")
    np.testing.assert_allclose(d.coords, locs[["latitude", "longitude"]].to_numpy())
    adj = np.loadtxt(los_loop_dir / "los_adj.csv", delimiter=",")
    a = d.adjacency.toarray()
    assert sp.issparse(d.adjacency) and a.dtype == np.float32
    np.testing.assert_allclose(a, np.maximum(adj, adj.T), rtol=1e-6)  # graph.symmetric (default) applied
    assert set(d.meta) >= {"source", "path"}


def test_los_loop_selection_and_knn_graph(los_loop_dir):
    nodes = ["767541", "773869", "717447"]
    cfg = DataConfig(source="csv-wide", path=str(los_loop_dir / "los_speed.csv"), start="2012-03-01",
                     freq="5min", locations=str(los_loop_dir / "graph_sensor_locations.csv"),
                     nodes=nodes, time_range=["2012-03-02", "2012-03-03"], graph=GraphConfig(method="knn", k=2))
    d = load_data(cfg)
    assert d.nodes == nodes and d.num_steps == 2 * 288
    assert d.index[0] == pd.Timestamp("2012-03-02") and d.index[-1] == pd.Timestamp("2012-03-03 23:55")
    assert d.adjacency.shape == (3, 3) and d.adjacency.nnz > 0
    raw = pd.read_csv(los_loop_dir / "los_speed.csv")
    np.testing.assert_allclose(d.values[0, :, 0], raw.loc[288, nodes].to_numpy(np.float32))


def test_los_loop_without_start_is_a_config_error(los_loop_dir):
    with pytest.raises(ConfigError, match=r"los_speed\.csv.*no timestamp column.*data\.start"):
        read_csv_wide(los_loop_dir / "los_speed.csv", freq="5min")


def test_select_errors_name_the_unknown_nodes_and_the_empty_range(los_loop_dir):
    d = read_csv_wide(los_loop_dir / "los_speed.csv", start="2012-03-01", freq="5min")
    with pytest.raises(ConfigError, match=r"data\.nodes: unknown node id\(s\) \['nope'\]"):
        select(d, nodes=["773869", "nope"])
    with pytest.raises(DataError, match=r"time_range.*keeps no step; the data spans 2012-03-01"):
        select(d, time_range=["2013-01-01", "2013-02-01"])
    with pytest.raises(ConfigError, match=r"time_range: start 2012-03-05 is after end 2012-03-02"):
        select(d, time_range=["2012-03-05", "2012-03-02"])


def test_graph_none_drops_the_adjacency(los_loop_dir):
    cfg = DataConfig(source="csv-wide", path="los_speed.csv", start="2012-03-01", freq="5min",
                     adjacency="los_adj.csv", graph=GraphConfig(method="none"))
    assert load_data(cfg, base_dir=los_loop_dir).adjacency is None


# ============================================================================ csv-wide with timestamps
def test_wide_with_timestamp_column_and_gap(tmp_path):
    p = write(tmp_path / "w.csv", "time,a,b\n2020-01-01 00:00,1,2\n2020-01-01 00:05,3,NA\n"
                                  "2020-01-01 00:15,5,\n")
    d = read_csv_wide(p)
    assert_contract(d)
    assert d.nodes == ["a", "b"] and d.num_steps == 4 and d.freq_str == "5min"
    np.testing.assert_array_equal(d.mask[:, :, 0], [[1, 1], [1, 0], [0, 0], [1, 0]])
    assert d.values[3, 0, 0] == 5.0


def test_wide_auto_detects_an_unnamed_index_column(tmp_path):
    idx = pd.date_range("2021-05-01", periods=4, freq="1h")
    pd.DataFrame({"s1": [1.0, 2, 3, 4], "s2": [5.0, 6, 7, 8]}, index=idx).to_csv(tmp_path / "w.csv")
    d = read_csv_wide(tmp_path / "w.csv")
    assert d.nodes == ["s1", "s2"] and d.freq_str == "h" and d.index[0] == idx[0]


def test_wide_non_monotonic_timestamps_name_the_row(tmp_path):
    p = write(tmp_path / "w.csv", "time,a\n2020-01-01 00:00,1\n2020-01-01 00:10,2\n2020-01-01 00:05,3\n")
    with pytest.raises(DataError, match=r"w\.csv: column 'time', row 3 \(line 4\): timestamp 2020-01-01 00:05:00 "
                                        r"comes before.*must be in time order"):
        read_csv_wide(p)
    with pytest.raises(DataError, match="row 3 \\(line 4\\)"):  # a duplicates policy does not excuse disorder
        read_csv_wide(p, duplicates="mean")


def test_wide_duplicate_timestamps_error_then_mean_first_last(tmp_path):
    p = write(tmp_path / "w.csv", "time,a,b\n2020-01-01 00:00,1,10\n2020-01-01 00:05,2,\n"
                                  "2020-01-01 00:05,4,40\n2020-01-01 00:10,5,50\n")
    with pytest.raises(DataError, match=r"w\.csv: row 2 \(line 3\), row 3 \(line 4\) repeat timestamp "
                                        r"2020-01-01 00:05:00.*data\.duplicates"):
        read_csv_wide(p)
    d = read_csv_wide(p, duplicates="mean")
    assert d.num_steps == 3
    np.testing.assert_allclose(d.values[1, :, 0], [3.0, 40.0])  # mean of the observed values only
    np.testing.assert_allclose(read_csv_wide(p, duplicates="first").values[1, 0, 0], 2.0)
    assert np.isnan(read_csv_wide(p, duplicates="first").values[1, 1, 0])  # the first row as a whole
    np.testing.assert_allclose(read_csv_wide(p, duplicates="last").values[1, :, 0], [4.0, 40.0])


def test_wide_irregular_steps_without_freq_then_with_freq(tmp_path):
    p = write(tmp_path / "w.csv", "time,a\n2020-01-01 00:00,1\n2020-01-01 00:05,2\n2020-01-01 00:10,3\n"
                                  "2020-01-01 00:17,4\n2020-01-01 00:20,5\n")
    with pytest.raises(DataError, match=r"irregular time steps: row 4 \(line 5\) has timestamp 2020-01-01 00:17:00"
                                        r".*most common step is 0 days 00:05:00; set data\.freq"):
        read_csv_wide(p)
    d = read_csv_wide(p, freq="5min")  # an explicit step bins readings into the step that holds them
    assert d.num_steps == 5
    np.testing.assert_allclose(d.values[:, 0, 0], [1, 2, 3, 4, 5])


def test_wide_non_numeric_cell_names_file_column_row_value(tmp_path):
    p = write(tmp_path / "w.csv", "a,b\n1,2\n3,oops\n5,6\n")
    with pytest.raises(DataError, match=r"w\.csv: column 'b', row 2 \(line 3\): 'oops' is not a number"):
        read_csv_wide(p, start="2020-01-01", freq="1h")


def test_wide_null_value_is_missing(tmp_path):
    p = write(tmp_path / "w.csv", "a,b\n0,2\n3,0\n")
    d = read_csv_wide(p, start="2020-01-01", freq="1h", null_value=0.0)
    assert d.mask[:, :, 0].tolist() == [[False, True], [True, False]]


def test_wide_all_missing_node_is_allowed(tmp_path):
    p = write(tmp_path / "w.csv", "a,b\n1,\n2,\n3,NA\n")
    d = read_csv_wide(p, start="2020-01-01", freq="1h")
    assert not d.mask[:, 1].any() and d.mask[:, 0].all()


def test_empty_truncated_and_header_only_files(tmp_path):
    empty = write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty \(expected a wide CSV"):
        read_csv_wide(empty, start="2020-01-01", freq="1h")
    header_only = write(tmp_path / "head.csv", "a,b\n")
    with pytest.raises(DataError, match=r"head\.csv: the file has a header but no data rows"):
        read_csv_wide(header_only, start="2020-01-01", freq="1h")
    cut = write(tmp_path / "cut.csv", "a,b,c\n1,2,3\n4,5,6\n7,8")
    with pytest.raises(DataError, match=r"cut\.csv: line 4 \(row 3\) has 2 field\(s\) but the header has 3; "
                                        r"the file looks truncated"):
        read_csv_wide(cut, start="2020-01-01", freq="1h")
    long_row = write(tmp_path / "long.csv", "a,b\n1,2\n3,4,5\n6,7\n")
    with pytest.raises(DataError, match=r"long\.csv: line 3 \(row 2\) has 3 field\(s\).*a row is malformed"):
        read_csv_wide(long_row, start="2020-01-01", freq="1h")
    with pytest.raises(DataError, match=r"missing\.csv: no such file"):
        read_csv_wide(tmp_path / "missing.csv", start="2020-01-01", freq="1h")


def test_truncated_los_loop_copy_is_caught(los_loop_dir, tmp_path):
    raw = (los_loop_dir / "los_speed.csv").read_bytes()
    cut = tmp_path / "los_cut.csv"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"los_cut\.csv: line \d+ \(row \d+\) has \d+ field\(s\) but the header "
                                        r"has 207; the file looks truncated"):
        read_csv_wide(cut, start="2012-03-01", freq="5min")


def test_duplicate_header_names_are_an_error(tmp_path):
    p = write(tmp_path / "w.csv", "a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match=r"column name 'a' appears twice in the header \(columns 1 and 3\)"):
        read_csv_wide(p, start="2020-01-01", freq="1h")


# ============================================================================ csv-long / parquet-long
LONG = """timestamp,station,PM2.5,TEMP,wind
2020-01-01 01:00,B,12,3.5,NW
2020-01-01 00:00,A,10,3.0,N
2020-01-01 00:00,B,11,,NE
2020-01-01 02:00,A,NA,4.0,
2020-01-01 03:00,A,13,4.5,N
"""


def long_kw(**kw):
    base = dict(time_column="timestamp", node_column="station", target=["PM2.5"], covariates=["TEMP", "wind"],
                encode=["wind"])
    base.update(kw)
    return base


def test_csv_long_pivot_encode_and_missing(tmp_path):
    d = read_long(write(tmp_path / "rec.csv", LONG), **long_kw())
    assert_contract(d)
    assert d.nodes == ["B", "A"]  # order of first appearance
    assert d.features == ["PM2.5", "TEMP", "wind=N", "wind=NE", "wind=NW"] and d.targets == ["PM2.5"]
    assert d.num_steps == 4 and d.freq_str == "h"
    b, a = 0, 1
    np.testing.assert_allclose(d.values[0, a], [10, 3.0, 1, 0, 0])
    np.testing.assert_allclose(d.values[1, b], [12, 3.5, 0, 0, 1])
    assert np.isnan(d.values[0, b, 1])  # blank TEMP is missing
    assert not d.mask[2, a, 0]  # NA target is missing
    assert not d.mask[2, a, 2:].any()  # a blank category is missing in every one-hot column
    assert not d.mask[2, b].any() and not d.mask[3, b].any()  # no record for B: missing grid points


def test_parquet_long_matches_csv(tmp_path):
    df = pd.read_csv(write(tmp_path / "rec.csv", LONG))
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df.to_parquet(tmp_path / "rec.parquet")
    a = read_long(tmp_path / "rec.csv", **long_kw())
    b = read_long(tmp_path / "rec.parquet", **long_kw())
    assert b.nodes == a.nodes and b.features == a.features and b.meta["source"] == "parquet-long"
    np.testing.assert_array_equal(a.values, b.values)
    assert a.index.equals(b.index)


def test_several_targets_and_config_dispatch(tmp_path):
    write(tmp_path / "rec.csv", LONG)
    cfg = DataConfig(source="csv-long", path="rec.csv", time_column="timestamp", node_column="station",
                     target=["PM2.5", "TEMP"], graph=GraphConfig(method="none"))
    d = load_data(cfg, base_dir=tmp_path)
    assert d.targets == ["PM2.5", "TEMP"] and d.features == ["PM2.5", "TEMP"] and d.name == "rec"


def test_long_non_numeric_cell_names_file_column_row_value(tmp_path):
    p = write(tmp_path / "rec.csv", LONG.replace("4.5,N", "warm,N"))
    with pytest.raises(DataError, match=r"rec\.csv: column 'TEMP', row 5 \(line 6\): 'warm' is not a number.*"
                                        r"list it in data\.encode"):
        read_long(p, **long_kw())
    with pytest.raises(DataError, match=r"column 'wind', row 1 \(line 2\): 'NW' is not a number"):
        read_long(write(tmp_path / "r2.csv", LONG), **long_kw(encode=[]))


def test_parquet_non_numeric_cell_and_truncated_file(tmp_path):
    df = pd.read_csv(write(tmp_path / "rec.csv", LONG))
    df["PM2.5"] = df["PM2.5"].astype("string")
    df.loc[3, "PM2.5"] = "n/d"
    df.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: column 'PM2\.5', row 4: 'n/d' is not a number"):
        read_long(tmp_path / "bad.parquet", **long_kw())
    raw = (tmp_path / "bad.parquet").read_bytes()
    (tmp_path / "half.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"half\.parquet: not a readable parquet file.*truncated"):
        read_long(tmp_path / "half.parquet", **long_kw())
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.parquet: the file is empty"):
        read_long(tmp_path / "empty.parquet", **long_kw())


def test_long_duplicates_error_then_mean(tmp_path):
    p = write(tmp_path / "rec.csv", LONG + "2020-01-01 00:00,A,20,5.0,N\n")
    with pytest.raises(DataError, match=r"rec\.csv: row 2 \(line 3\), row 6 \(line 7\) repeat timestamp "
                                        r"2020-01-01 00:00:00 for node 'A'"):
        read_long(p, **long_kw())
    d = read_long(p, **long_kw(duplicates="mean"))
    np.testing.assert_allclose(d.values[0, d.nodes.index("A"), :2], [15.0, 4.0])


def test_long_irregular_steps_without_freq(tmp_path):
    p = write(tmp_path / "rec.csv", "t,n,v\n2020-01-01 00:00,A,1\n2020-01-01 01:00,A,2\n"
                                    "2020-01-01 02:00,A,3\n2020-01-01 02:30,B,4\n")
    with pytest.raises(DataError, match=r"irregular time steps: row 4 \(line 5\) has timestamp 2020-01-01 02:30:00"):
        read_long(p, time_column="t", node_column="n", target=["v"])
    d = read_long(p, time_column="t", node_column="n", target=["v"], freq="30min")
    assert d.num_steps == 6 and d.values[5, 1, 0] == 4


def test_long_bad_timestamp_and_missing_columns(tmp_path):
    p = write(tmp_path / "rec.csv", "t,n,v\n2020-01-01 00:00,A,1\nyesterday,A,2\n")
    with pytest.raises(DataError, match=r"rec\.csv: column 't', row 2 \(line 3\): 'yesterday' is not a timestamp"):
        read_long(p, time_column="t", node_column="n", target=["v"])
    with pytest.raises(DataError, match=r"rec\.csv: no column\(s\) \['speed'\]; the header has \['t', 'n', 'v'\]"):
        read_long(p, time_column="t", node_column="n", target=["speed"])
    with pytest.raises(ConfigError, match=r"data\.time_column and data\.node_column"):
        read_long(p, time_column=None, node_column="n", target=["v"])


def test_long_utc_offsets_across_dst_become_a_regular_utc_grid(tmp_path):
    p = write(tmp_path / "tz.csv", "t,n,v\n2024-04-07T01:00+13:00,A,1\n2024-04-07T02:00+13:00,A,2\n"
                                   "2024-04-07T02:00+12:00,A,3\n2024-04-07T03:00+12:00,A,4\n")
    d = read_long(p, time_column="t", node_column="n", target=["v"])
    assert str(d.index.tz) == "UTC" and d.index[0] == pd.Timestamp("2024-04-06 12:00", tz="UTC")
    np.testing.assert_allclose(d.values[:, 0, 0], [1, 2, 3, 4])  # the repeated local 2:00 is two real hours


def test_long_blank_node_id_names_the_row(tmp_path):
    p = write(tmp_path / "rec.csv", "t,n,v\n2020-01-01 00:00,A,1\n2020-01-01 01:00,,2\n")
    with pytest.raises(DataError, match=r"column 'n', row 2 \(line 3\): the node id is blank"):
        read_long(p, time_column="t", node_column="n", target=["v"])


def test_long_empty_and_truncated_csv(tmp_path):
    with pytest.raises(DataError, match=r"e\.csv: the file is empty \(expected a long csv file"):
        read_long(write(tmp_path / "e.csv", ""), **long_kw())
    cut = LONG[: LONG.index("4.5") - 3]  # cut inside the last record
    with pytest.raises(DataError, match=r"cut\.csv: line 6 \(row 5\) has 3 field\(s\) but the header has 5; "
                                        r"the file looks truncated"):
        read_long(write(tmp_path / "cut.csv", cut), **long_kw())


def test_long_quoted_fields_keep_line_numbers(tmp_path):
    p = write(tmp_path / "q.csv", 't,n,v\n2020-01-01 00:00,"A, north",1\n2020-01-01 01:00,"A, north",x\n')
    with pytest.raises(DataError, match=r"column 'v', row 2 \(line 3\): 'x' is not a number"):
        read_long(p, time_column="t", node_column="n", target=["v"])


# ============================================================================ metr-la h5 + DCRNN pickle
def write_metr(tmp_path: Path, ids=("773869", "767541", "767542"), order=None, T=6):
    idx = pd.date_range("2012-03-01", periods=T, freq="5min")
    vals = np.arange(T * len(ids), dtype=np.float64).reshape(T, len(ids)) + 50.0
    vals[2, 1] = 0.0  # METR-LA writes 0 for a failed reading
    pd.DataFrame(vals, index=idx, columns=list(ids)).to_hdf(tmp_path / "metr-la.h5", key="df")
    pkl_ids = list(order or ids)
    adj = np.eye(len(pkl_ids), dtype=np.float32)
    adj[0, 1] = 0.5  # an edge pkl_ids[0] -> pkl_ids[1]
    with open(tmp_path / "adj_mx.pkl", "wb") as f:
        pickle.dump([pkl_ids, {s: i for i, s in enumerate(pkl_ids)}, adj], f, protocol=2)
    return vals


def test_metr_la_h5_with_reordered_pickle(tmp_path):
    vals = write_metr(tmp_path, order=["767542", "773869", "767541"])
    d = read_metr_la_h5(tmp_path / "metr-la.h5", adjacency=tmp_path / "adj_mx.pkl", null_value=0.0)
    assert_contract(d)
    assert d.nodes == ["773869", "767541", "767542"] and d.features == ["speed"] and d.freq_str == "5min"
    assert not d.mask[2, 1, 0] and d.mask.sum() == vals.size - 1
    a = d.adjacency.toarray()
    assert a[2, 0] == 0.5 and a.sum() == 3.5  # 767542 -> 773869 moved to the data's order


def test_metr_la_through_load_data(tmp_path):
    write_metr(tmp_path)
    cfg = DataConfig(source="metr-la-h5", path="metr-la.h5", adjacency="adj_mx.pkl", null_value=0.0,
                     graph=GraphConfig(method="file", symmetric=False))
    d = load_data(cfg, base_dir=tmp_path)
    assert d.name == "metr-la" and d.adjacency.toarray()[0, 1] == 0.5 and d.adjacency.toarray()[1, 0] == 0


def test_dcrnn_pickle_protocol_5_and_python2_style(tmp_path):
    adj = np.random.default_rng(0).random((2, 2)).astype(np.float32)
    for proto in (2, 5):
        with open(tmp_path / f"p{proto}.pkl", "wb") as f:
            pickle.dump((["1", "2"], {"1": 0, "2": 1}, adj), f, protocol=proto)
        ids, mapping, a = read_dcrnn_pickle(tmp_path / f"p{proto}.pkl")
        assert ids == ["1", "2"] and mapping == {"1": 0, "2": 1}
        np.testing.assert_array_equal(a, adj)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "adj_mx.pkl", "wb") as f:
        pickle.dump([["a"], {"a": 0}, _Evil()], f, protocol=2)
    with pytest.raises(DataError, match=r"adj_mx\.pkl: the pickle asks for (posix|os|nt)\.system.*refusing"):
        read_dcrnn_pickle(tmp_path / "adj_mx.pkl")
    assert not (tmp_path / "pwned_by_pickle").exists()


def test_hdf5_with_pickled_objects_is_refused(tmp_path):
    idx = pd.date_range("2012-03-01", periods=3, freq="5min")
    with pytest.warns(Warning):  # pandas warns that it pickles the object column
        pd.DataFrame({"a": [1, "x", None]}, index=idx).to_hdf(tmp_path / "obj.h5", key="df")
    with pytest.raises(DataError, match=r"obj\.h5 \(node /df/block0_values\): stores pickled Python objects"):
        read_metr_la_h5(tmp_path / "obj.h5")


@pytest.mark.filterwarnings("ignore:Could not decode freq")
def test_hdf5_with_a_malicious_attribute_is_refused(tmp_path, monkeypatch):
    import tables

    monkeypatch.chdir(tmp_path)
    write_metr(tmp_path)
    with tables.open_file(str(tmp_path / "metr-la.h5"), mode="a") as f:
        f.get_node("/df/axis1")._v_attrs.freq = _Evil()  # PyTables pickles it; touching the node unpickles it
    with pytest.raises(DataError, match=r"metr-la\.h5: the pickle asks for (posix|os|nt)\.system.*refusing"):
        read_metr_la_h5(tmp_path / "metr-la.h5")
    assert not (tmp_path / "pwned_by_pickle").exists()
    import tables.attributeset

    assert tables.attributeset.pickle is pickle  # the guard is lifted afterwards


def test_metr_la_pickle_ids_must_match(tmp_path):
    write_metr(tmp_path, order=["773869", "767541", "999999"])
    with pytest.raises(DataError, match=r"adj_mx\.pkl: the pickle's sensor ids differ.*'999999'.*'767542'"):
        read_metr_la_h5(tmp_path / "metr-la.h5", adjacency=tmp_path / "adj_mx.pkl")


def test_metr_la_truncated_files(tmp_path):
    write_metr(tmp_path)
    raw = (tmp_path / "metr-la.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.h5: not a readable HDF5 file.*truncated"):
        read_metr_la_h5(tmp_path / "cut.h5")
    raw = (tmp_path / "adj_mx.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.pkl: not a readable pickle.*truncated"):
        read_dcrnn_pickle(tmp_path / "cut.pkl")


def test_metr_la_duplicate_and_unsorted_index(tmp_path):
    idx = pd.DatetimeIndex(["2012-03-01 00:00", "2012-03-01 00:05", "2012-03-01 00:05", "2012-03-01 00:10"])
    pd.DataFrame({"1": [1.0, 2, 3, 4]}, index=idx).to_hdf(tmp_path / "dup.h5", key="df")
    with pytest.raises(DataError, match=r"dup\.h5: row 2, row 3 repeat timestamp 2012-03-01 00:05:00"):
        read_metr_la_h5(tmp_path / "dup.h5")
    assert read_metr_la_h5(tmp_path / "dup.h5", duplicates="mean").values[1, 0, 0] == 2.5


# ============================================================================ pems npz + distances
def write_pems(tmp_path: Path, name="PEMS04", T=12, N=4, F=3):
    rng = np.random.default_rng(1)
    data = rng.integers(1, 300, size=(T, N, F)).astype(np.float64)
    data[3, 2, 0] = 0
    np.savez(tmp_path / f"{name}.npz", data=data)
    write(tmp_path / f"{name}.csv", "from,to,cost\n0,1,100.5\n1,2,200.0\n2,3,150.0\n0,3,400.0\n")
    return data


def test_pems_npz_known_start_and_channels(tmp_path):
    data = write_pems(tmp_path)
    d = read_pems_npz(tmp_path / "PEMS04.npz", null_value=0.0)
    assert_contract(d)
    assert d.index[0] == pd.Timestamp("2018-01-01") and d.freq_str == "5min"
    assert d.nodes == ["0", "1", "2", "3"] and d.features == ["flow"] and d.targets == ["flow"]
    assert not d.mask[3, 2, 0]
    np.testing.assert_allclose(d.values[0, :, 0], data[0, :, 0])
    d = read_pems_npz(tmp_path / "PEMS04.npz", target=["speed"], covariates=["flow"], start="2020-02-01")
    assert d.features == ["speed", "flow"] and d.index[0] == pd.Timestamp("2020-02-01")
    np.testing.assert_allclose(d.values[..., 0], data[..., 2])


def test_pems_unknown_file_needs_start_and_bad_files(tmp_path):
    write_pems(tmp_path, name="myroads")
    with pytest.raises(ConfigError, match=r"myroads\.npz: a PEMS npz file has no timestamps; set data\.start"):
        read_pems_npz(tmp_path / "myroads.npz")
    np.savez(tmp_path / "wrong.npz", x=np.zeros((3, 2, 1)))
    with pytest.raises(DataError, match=r"wrong\.npz: no array 'data' \(arrays: \['x'\]\)"):
        read_pems_npz(tmp_path / "wrong.npz", start="2020-01-01")
    raw = (tmp_path / "myroads.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.npz: not a readable npz file.*truncated"):
        read_pems_npz(tmp_path / "cut.npz", start="2020-01-01")


def test_pems_distances_make_a_gaussian_graph(tmp_path):
    write_pems(tmp_path)
    graph = GraphConfig(method="gaussian", sigma=200.0, threshold=0.0, symmetric=False)
    d = load_data(DataConfig(source="pems-npz", path="PEMS04.npz", distances="PEMS04.csv", graph=graph), tmp_path)
    a = d.adjacency.toarray()
    assert a.shape == (4, 4) and a[1, 0] == 0  # directed: 0 -> 1 only
    np.testing.assert_allclose([a[0, 1], a[1, 2], a[0, 3]], np.exp(-np.square([100.5, 200.0, 400.0]) / 200.0**2),
                               rtol=1e-5)
    sub = load_data(DataConfig(source="pems-npz", path="PEMS04.npz", distances="PEMS04.csv", nodes=["2", "1"],
                               graph=graph), tmp_path)
    assert sub.nodes == ["2", "1"]
    np.testing.assert_allclose(sub.adjacency.toarray(), [[0, 0], [a[1, 2], 0]], rtol=1e-6)


def test_distances_file_checks(tmp_path):
    write(tmp_path / "d.csv", "from,to,cost\n0,1,10\n0,9,5\n")
    df = read_distances(tmp_path / "d.csv")
    assert list(df.columns) == ["from", "to", "cost"] and df["from"].tolist() == ["0", "0"]
    write_pems(tmp_path)
    cfg = DataConfig(source="pems-npz", path="PEMS04.npz", distances="d.csv", graph=GraphConfig(method="gaussian"))
    with pytest.raises(DataError, match=r"d\.csv: .*not nodes of the data set: \['9'\]"):
        load_data(cfg, base_dir=tmp_path)
    with pytest.raises(DataError, match=r"e\.csv: the file is empty"):
        read_distances(write(tmp_path / "e.csv", ""))


# ============================================================================ locations
def test_locations_common_names_and_order(tmp_path):
    p = write(tmp_path / "loc.csv", "Station,LAT,Lng\nB,-36.85,174.76\nA,-36.84,174.77\n")
    np.testing.assert_allclose(read_locations(p, ["A", "B"]), [[-36.84, 174.77], [-36.85, 174.76]])


def test_location_node_missing_either_way(tmp_path):
    p = write(tmp_path / "loc.csv", "index,sensor_id,latitude,longitude\n0,1,34.1,-118.2\n1,2,34.2,-118.3\n"
                                    "2,3,34.3,-118.4\n")
    with pytest.raises(DataError, match=r"loc\.csv: 1 node\(s\) in the locations file are not in the data: \['3'\]"):
        read_locations(p, ["1", "2"])
    with pytest.raises(DataError, match=r"loc\.csv: 1 data node\(s\) have no location: \['4'\]"):
        read_locations(p, ["1", "2", "3", "4"])


def test_location_bad_values(tmp_path):
    p = write(tmp_path / "loc.csv", "node,lat,lon\na,34.1,-118.2\nb,134.2,-118.3\n")
    with pytest.raises(DataError, match=r"loc\.csv: column 'lat', row 2 \(line 3\) \(node 'b'\): 134\.2 is not a "
                                        r"coordinate"):
        read_locations(p, ["a", "b"])
    p = write(tmp_path / "loc2.csv", "name,x,y\na,1,2\n")
    with pytest.raises(DataError, match=r"loc2\.csv: columns \['name', 'x', 'y'\]; expected a locations CSV"):
        read_locations(p, ["a"])


def test_los_loop_locations_against_wrong_nodes(los_loop_dir):
    with pytest.raises(DataError, match=r"graph_sensor_locations\.csv: 207 node\(s\) in the locations file are "
                                        r"not in the data"):
        read_locations(los_loop_dir / "graph_sensor_locations.csv", ["x", "y"])


# ============================================================================ adjacency files
def test_adjacency_formats(tmp_path):
    m = np.array([[0, 1, 0], [0.5, 0, 2], [0, 0, 0]], dtype=np.float32)
    nodes = ["a", "b", "c"]
    np.save(tmp_path / "a.npy", m)
    sp.save_npz(tmp_path / "s.npz", sp.csr_matrix(m))
    np.savez(tmp_path / "d.npz", adj=m)
    np.savetxt(tmp_path / "a.csv", m, delimiter=",")
    write(tmp_path / "h.csv", "a,b,c\n0,1,0\n0.5,0,2\n0,0,0\n")
    write(tmp_path / "hi.csv", ",a,b,c\na,0,1,0\nb,0.5,0,2\nc,0,0,0\n")
    for f in ("a.npy", "s.npz", "d.npz", "a.csv", "h.csv", "hi.csv"):
        a = read_adjacency(tmp_path / f, nodes)
        assert isinstance(a, sp.csr_array) and a.dtype == np.float32, f
        np.testing.assert_array_equal(a.toarray(), m, err_msg=f)


def test_adjacency_size_mismatch_names_file_shape_and_n(tmp_path, los_loop_dir):
    with pytest.raises(DataError, match=r"los_adj\.csv: the adjacency has shape \(207, 207\), but the data has "
                                        r"N = 3 nodes"):
        read_adjacency(los_loop_dir / "los_adj.csv", ["a", "b", "c"])
    np.save(tmp_path / "a.npy", np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"a\.npy: the adjacency has shape \(2, 3\).*N = 2"):
        read_adjacency(tmp_path / "a.npy", ["a", "b"])


def test_adjacency_header_order_mismatch(tmp_path):
    write(tmp_path / "h.csv", "a,c,b\n0,1,0\n0,0,2\n0,0,0\n")
    with pytest.raises(DataError, match=r"h\.csv: the header's node order differs from the data's: position 2 is "
                                        r"'c', the data has 'b'"):
        read_adjacency(tmp_path / "h.csv", ["a", "b", "c"])
    write(tmp_path / "x.csv", "a,b,z\n0,1,0\n0,0,2\n0,0,0\n")
    with pytest.raises(DataError, match=r"x\.csv: the header's node ids differ.*\['z'\] not in the data"):
        read_adjacency(tmp_path / "x.csv", ["a", "b", "c"])


def test_adjacency_bad_cells_and_truncation(tmp_path):
    write(tmp_path / "b.csv", "0,1\n0,x\n")
    with pytest.raises(DataError, match=r"b\.csv: column 2, row 2 \(line 2\): 'x' is not a number"):
        read_adjacency(tmp_path / "b.csv", ["a", "b"])
    write(tmp_path / "t.csv", "0,1,0\n1,0,1\n0,1\n")
    with pytest.raises(DataError, match=r"t\.csv: line 3 has 2 field\(s\), the first row has 3"):
        read_adjacency(tmp_path / "t.csv", ["a", "b", "c"])
    np.save(tmp_path / "n.npy", np.array([[0, np.nan], [1, 0]]))
    with pytest.raises(DataError, match=r"n\.npy: weight at row 1, column 2 is nan"):
        read_adjacency(tmp_path / "n.npy", ["a", "b"])


# ============================================================================ config-level errors
def test_load_data_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.path: source 'csv-wide' needs a path"):
        load_data(DataConfig(source="csv-wide"))
    write(tmp_path / "w.csv", "a\n1\n2\n")
    with pytest.raises(ConfigError, match=r"data\.freq: '5 parsecs' is not a fixed frequency"):
        load_data(DataConfig(source="csv-wide", path="w.csv", start="2020-01-01", freq="5 parsecs"), tmp_path)
    with pytest.raises(ConfigError, match=r"data\.duplicates: 'sum' is not one of"):
        load_data(DataConfig(source="csv-wide", path="w.csv", start="2020-01-01", freq="1h", duplicates="sum"),
                  tmp_path)
    with pytest.raises(ConfigError, match=r"data\.encode: 'TEMP' is not one of data\.covariates"):
        read_long(write(tmp_path / "rec.csv", LONG), **long_kw(covariates=["wind"], encode=["TEMP"]))


def test_builtin_synthetic_traffic_dispatch():
    from stkd.config import SimulatorConfig

    cfg = DataConfig(source="builtin", name="synthetic-traffic", simulator=SimulatorConfig(nodes=16, days=1, freq="1h"),
                     time_range=["2024-01-01 06:00", "2024-01-01 11:00"])
    d = load_data(cfg)
    assert d.name == "synthetic-traffic" and d.num_nodes == 16 and d.num_steps == 6
    assert d.adjacency is not None and d.coords.shape == (16, 2)
