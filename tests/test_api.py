"""The Python API (``stkd.run``, ``stkd.from_frame``, ``Result``): frames in, a run folder that re-runs
and re-evaluates on its own, forecasts out. Real data (a slice of Los-loop), a real run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

import stkd
from stkd.api import write_data
from stkd.cli import main
from stkd.config import DataConfig, GraphConfig
from stkd.data.builtin import load_los_loop
from stkd.data.loaders import load_data, select
from stkd.errors import ConfigError, DataError, STKDError


@pytest.fixture(scope="module")
def los20():
    d = load_los_loop()
    return select(d, d.nodes[:20], ["2012-03-01 00:00", "2012-03-02 23:55"])


def _wide(d) -> pd.DataFrame:
    return pd.DataFrame(np.where(d.mask[:, :, 0], d.values[:, :, 0], np.nan), index=d.index, columns=d.nodes)


def test_import_stkd_stays_light():
    out = subprocess.run([sys.executable, "-c", "import sys, stkd; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
    assert subprocess.run([sys.executable, "-c", "import stkd; assert callable(stkd.run)"], check=False).returncode == 0


def test_from_frame_wide_keeps_values_missing_coords_and_graph(los20):
    d = los20
    df = _wide(d)
    df.iloc[3, 2] = np.nan
    coords = pd.DataFrame({"node": d.nodes[::-1], "latitude": d.coords[::-1, 0], "longitude": d.coords[::-1, 1]})
    adj = pd.DataFrame(d.adjacency.toarray()[::-1, ::-1], index=d.nodes[::-1], columns=d.nodes[::-1])
    got = stkd.from_frame(df, target="speed", coords=coords, adjacency=adj, name="mine")
    assert got.nodes == d.nodes and got.targets == ["speed"] and got.name == "mine"
    assert got.index.equals(d.index) and got.freq_str == "5min"
    assert not got.mask[3, 2, 0] and np.isnan(got.values[3, 2, 0])
    keep = got.mask[:, :, 0]
    np.testing.assert_allclose(got.values[keep, 0], df.to_numpy()[keep])
    np.testing.assert_allclose(got.coords, d.coords)
    np.testing.assert_allclose(got.adjacency.toarray(), d.adjacency.toarray())


def test_from_frame_long_with_covariate():
    t = pd.date_range("2024-01-01", periods=30, freq="h")
    recs = pd.DataFrame({"ts": np.repeat(t, 2), "station": np.tile(["b", "a"], 30),
                         "pm": np.arange(60.0), "temp": np.arange(60.0) / 10})
    d = stkd.from_frame(recs.sample(frac=1, random_state=0), time_column="ts", node_column="station",
                        target="pm", covariates=["temp"])
    assert d.values.shape == (30, 2, 2) and d.features == ["pm", "temp"] and d.freq_str == "h"
    assert set(d.nodes) == {"a", "b"}
    b = d.nodes.index("b")
    np.testing.assert_allclose(d.values[:, b, 0], np.arange(0.0, 60.0, 2))


def test_from_frame_errors_name_the_problem():
    t = pd.date_range("2024-01-01", periods=5, freq="h")
    recs = pd.DataFrame({"ts": t, "station": "a", "pm": 1.0})
    with pytest.raises(DataError, match=r"no column\(s\) \['temp'\]"):
        stkd.from_frame(recs, time_column="ts", node_column="station", target="pm", covariates=["temp"])
    with pytest.raises(DataError, match="DatetimeIndex"):
        stkd.from_frame(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"coords: expected \[N, 2\] = \[1, 2\]"):
        stkd.from_frame(recs, time_column="ts", node_column="station", target="pm", coords=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"adjacency: expected \[N, N\] = \[1, 1\]"):
        stkd.from_frame(recs, time_column="ts", node_column="station", target="pm", adjacency=np.eye(2))
    with pytest.raises(ConfigError, match="time_column"):
        stkd.from_frame(recs, node_column="station")


def test_write_data_reads_back_identically(tmp_path, los20):
    keys = write_data(los20, tmp_path)
    back = load_data(DataConfig(**keys, graph=GraphConfig(method="file")))
    assert back.nodes == los20.nodes and back.index.equals(los20.index) and back.features == los20.features
    np.testing.assert_array_equal(back.mask, los20.mask)
    np.testing.assert_array_equal(back.values[back.mask], los20.values[los20.mask])
    np.testing.assert_allclose(back.coords, los20.coords)
    np.testing.assert_allclose(back.adjacency.toarray(), los20.adjacency.toarray(), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_run_from_a_frame_then_evaluate_and_predict(tmp_path, los20, los_small_config):
    raw = los_small_config()
    del raw["data"]
    raw["eval"]["baselines"] = ["last"]
    out = tmp_path / "run"
    res = stkd.run(raw, out=out, data=stkd.from_frame(_wide(los20), target="speed", coords=los20.coords,
                                                      adjacency=los20.adjacency, name="los20"))
    assert isinstance(res, stkd.Result)
    assert set(res.models) == {"gwnet", "stid_kd", "stid_plain", "last_value"}
    assert res.metrics["dataset"]["nodes"] == 20
    kd = res.models["stid_kd"]
    assert kd["latency_ms_batch1"] <= kd["latency_ms_batch1_median"] <= kd["latency_ms_batch1_p90"]  # p10, p50, p90
    assert kd["load_avg_1m"] >= 0 and kd["cpus"] >= 1
    assert "1-minute load average while measuring" in res.report_path.read_text()
    for name in res.models:  # data.clip auto: speeds are never negative, nor are their forecasts
        assert (np.load(out / "predictions" / f"{name}.npy") >= 0).all(), name
    assert json.loads((out / "data.json").read_text())["scaler"]["lower"] == [0.0]
    assert "stid_kd" in res.table and res.table.startswith("|")
    assert res.report_path.is_file() and res.table in res.report_path.read_text()
    saved = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert saved["source"] == "parquet-long" and saved["path"] == str((out / "data" / "records.parquet").resolve())
    # the run folder alone re-evaluates to the same numbers
    assert main(["evaluate", str(out), "--quiet"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["models"]["stid_kd"]["test"]["mae"] == pytest.approx(res.models["stid_kd"]["test"]["mae"], rel=1e-6)
    recent = _wide(los20).iloc[-12:]
    fc = res.predict(recent)
    assert set(fc["node"]) == set(los20.nodes) and fc["horizon"].max() == 12
    assert fc.equals(stkd.load(out).predict(recent))
    assert res.load("gwnet").predict(recent)["value"].notna().all()
    with pytest.raises(STKDError, match="already exists"):
        stkd.run(raw, out=out, data=los20)
