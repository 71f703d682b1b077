"""`stkd data export`: the CSV form of a data set reads back as exactly the same arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stkd.cli import main
from stkd.config import DataConfig, load_config
from stkd.data.container import STData
from stkd.data.export import export_data
from stkd.data.loaders import load_data
from stkd.errors import STKDError


def _dense(a):
    return None if a is None else (a.toarray() if sp.issparse(a) else np.asarray(a))


def assert_same_data(a: STData, b: STData) -> None:
    assert a.nodes == b.nodes and a.features == b.features and a.targets == b.targets
    np.testing.assert_array_equal(a.index.as_unit("ns").asi8, b.index.as_unit("ns").asi8)  # the same instants
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.values[a.mask], b.values[b.mask])  # bit-exact float32
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(_dense(a.adjacency), _dense(b.adjacency))


def test_export_of_the_builtin_los_loop_reads_back_exactly(tmp_path, capsys):
    assert main(["data", "export", "los-loop", "--out", str(tmp_path / "csv")]) == 0
    assert "config.yaml" in capsys.readouterr().out
    files = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert files == ["adjacency.csv", "config.yaml", "locations.csv", "los-loop.csv"]
    original = load_data(DataConfig(source="builtin", name="los-loop"))
    back = load_data(load_config(tmp_path / "csv" / "config.yaml").data, base_dir=tmp_path / "csv")
    assert back.name == "los-loop"
    assert_same_data(original, back)


def test_long_export_keeps_covariates_and_missing_values(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(30, 3, 2)).astype(np.float32)
    values[[2, 5, 9], [0, 1, 2], 0] = np.nan  # missing readings stay missing
    index = pd.date_range("2024-03-01", periods=30, freq="15min", tz="Pacific/Auckland")
    data = STData.from_values(values, index, ["a", "b", "c"], ["flow", "temp"], ["flow"],
                              coords=np.array([[-36.8, 174.7], [-36.9, 174.8], [-37.0, 174.9]]), name="my data")
    with pytest.raises(STKDError, match="2 features .* --format long"):
        export_data(data, tmp_path / "wide")
    export_data(data, tmp_path / "long", "long")
    cfg = load_config(tmp_path / "long" / "config.yaml")
    assert cfg.data.source == "csv-long" and cfg.data.covariates == ["temp"] and cfg.data.path == "my_data.csv"
    assert_same_data(data, load_data(cfg.data, base_dir=tmp_path / "long"))


def test_export_never_overwrites_a_users_folder_unless_asked(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    data = STData.from_values(np.ones((20, 2), np.float32), pd.date_range("2024-01-01", periods=20, freq="h"),
                              ["x", "y"], ["v"])
    with pytest.raises(STKDError, match="not empty; pass --overwrite"):
        export_data(data, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    export_data(data, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me" and (out / "data.csv").is_file()
