"""Garbage in is refused or reported, not trained into confident numbers with exit status 0 (issue 17,
item 7): all-NaN targets, nodes that never report, extreme outliers, empty val/test parts and negative
adjacency weights."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import yaml

from stkd.cli import main
from stkd.config import DataConfig, GraphConfig, parse_config
from stkd.data.windows import load_windowed
from stkd.errors import ConfigError, DataError

T, NODES = 24 * 14, ["a", "b", "c", "d"]


def _wide(tmp_path, change=None, name="wide.csv"):
    """A wide hourly CSV of 4 nodes over two weeks (a daily profile plus noise); ``change(frame)`` edits it."""
    rng = np.random.default_rng(0)
    idx = pd.date_range("2024-01-01", periods=T, freq="h")
    base = 50 + 20 * np.sin(np.arange(T) * 2 * np.pi / 24)
    frame = pd.DataFrame({n: base + rng.normal(0, 2, T) for n in NODES}, index=idx)
    frame.index.name = "timestamp"
    if change:
        change(frame)
    path = tmp_path / name
    frame.to_csv(path)
    return path


def _cfg(path, **kw) -> DataConfig:
    return DataConfig(source="csv-wide", path=str(path), graph=GraphConfig(method="none"), **kw)


def _all_nan(f):
    for n in NODES:
        f[n] = np.nan


def test_all_nan_target_is_refused_naming_the_target(tmp_path):
    path = _wide(tmp_path, _all_nan)
    with pytest.raises(DataError, match=r"target 'value' has no observed value in the train part"):
        load_windowed(_cfg(path))


def test_a_node_that_never_reports_in_training_is_dropped_with_a_warning(tmp_path, caplog):
    cut = int(T * 0.7)
    path = _wide(tmp_path, lambda f: f.__setitem__("c", np.where(np.arange(T) < cut, np.nan, f["c"])))
    with caplog.at_level(logging.WARNING):
        wd = load_windowed(_cfg(path))
    assert wd.data.nodes == ["a", "b", "d"] and wd.num_nodes == 3
    assert "dropped 1 node(s) with no observed target in the train part" in caplog.text and "'c'" in caplog.text


def test_a_node_stuck_at_one_value_in_training_is_dropped_naming_the_value(tmp_path, caplog):
    """A counter that reads 0 for the whole train part and real counts later (installed late, the held-out
    Auckland years' '107 Quay Street'): its scaler has no spread, so its later readings would enter the models
    far outside anything they saw."""
    cut = int(T * 0.7)
    path = _wide(tmp_path, lambda f: f.__setitem__("b", np.where(np.arange(T) < cut, 0.0, 500 + f["b"])))
    with caplog.at_level(logging.WARNING):
        wd = load_windowed(_cfg(path))
    assert wd.data.nodes == ["a", "c", "d"] and wd.num_nodes == 3
    assert "dropped 1 node(s) whose target keeps one value in the train part" in caplog.text
    assert "'b' (always 0)" in caplog.text


def test_a_node_that_varies_only_after_the_train_part_is_dropped_but_one_that_varies_in_it_is_kept(tmp_path):
    cut = int(T * 0.7)
    # 'b' keeps 7 until the last train step, which reads 8: it varies in the train part and stays
    path = _wide(tmp_path, lambda f: f.__setitem__("b", np.where(np.arange(T) < cut - 1, 7.0, 8.0)))
    assert load_windowed(_cfg(path)).data.nodes == NODES


def test_every_node_stuck_in_training_is_refused(tmp_path):
    def flat(f):
        for n in NODES:
            f[n] = 3.0
    with pytest.raises(DataError, match=r"every node's target keeps one value in the train part"):
        load_windowed(_cfg(_wide(tmp_path, flat)))


def test_nodes_that_report_keep_the_data_as_it_was(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        wd = load_windowed(_cfg(_wide(tmp_path)))
    assert wd.data.nodes == NODES and "dropped" not in caplog.text


def _spike(f):
    f.iloc[T // 2, 1] = 1e30  # node b, half-way


def test_data_inspect_reports_an_extreme_value_with_node_and_time(tmp_path, capsys):
    path = _wide(tmp_path, _spike)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "csv-wide", "path": str(path), "graph": {"method": "none"}}}))
    assert main(["data", "inspect", str(cfg)]) == 0
    out = capsys.readouterr().out
    when = str(pd.Timestamp("2024-01-01") + pd.Timedelta(hours=T // 2))
    assert "value: 1 value(s)" in out and f"b at {when}: 1e+30" in out and "data.clip_outliers" in out, out
    assert main(["data", "inspect", str(cfg), "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["outliers"]["features"][0]["count"] == 1


def _silent_c_stuck_b(f):
    cut = int(T * 0.7)
    f["c"] = np.where(np.arange(T) < cut, np.nan, f["c"])
    f["b"] = np.where(np.arange(T) < cut, 0.0, 500 + f["b"])


def test_data_inspect_names_the_nodes_training_would_drop_before_it_trains(tmp_path, capsys):
    import json

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "csv-wide", "path": str(_wide(tmp_path, _silent_c_stuck_b)),
                                            "graph": {"method": "none"}}}))
    assert main(["data", "inspect", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "nodes         4" in out  # the data as read; training keeps 2 of them
    assert f"dropped       2 node(s) before training (train part: the first {int(T * 0.7)} steps):" in out, out
    assert "  no observed target: 'c'" in out and "  the target keeps one value: 'b' (always 0)" in out
    assert main(["data", "inspect", str(cfg), "--json"]) == 0
    dropped = json.loads(capsys.readouterr().out)["dropped_nodes"]
    assert dropped["silent"] == [{"node": "c"}] and dropped["stuck"] == [{"node": "b", "value": 0.0}]
    # the nodes inspect names are the ones training drops
    assert load_windowed(_cfg(_wide(tmp_path, _silent_c_stuck_b, name="again.csv"))).data.nodes == ["a", "d"]


def test_data_inspect_says_none_would_be_dropped_or_why_it_cannot_tell(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    raw = {"data": {"source": "csv-wide", "path": str(_wide(tmp_path)), "graph": {"method": "none"}}}
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["data", "inspect", str(cfg)]) == 0
    assert "dropped       none before training" in capsys.readouterr().out
    raw["data"]["window"] = {"input": 300, "horizon": 12}  # longer than the train part: no split for training
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["data", "inspect", str(cfg)]) == 0  # the description still prints
    out = capsys.readouterr().out
    assert "nodes         4" in out and "dropped       unknown: the data cannot be split for training (" in out


def test_clip_outliers_clips_inputs_and_targets_to_the_train_bound(tmp_path):
    path = _wide(tmp_path, _spike)
    plain = load_windowed(_cfg(path))
    clipped = load_windowed(_cfg(path, clip_outliers=5.0))
    assert np.nanmax(plain.data.values) == np.float32(1e30)  # the source stays as read without the key
    assert np.nanmax(clipped.data.values) < 200 and np.isfinite(clipped.x_all.numpy()).all()
    assert plain.fingerprint() != clipped.fingerprint()
    np.testing.assert_array_equal(np.delete(clipped.data.values.ravel(), T // 2 * 4 + 1),
                                  np.delete(plain.data.values.ravel(), T // 2 * 4 + 1))


@pytest.mark.parametrize("k", [0, -1, float("nan")])
def test_clip_outliers_must_be_positive(k):
    with pytest.raises(ConfigError, match="data.clip_outliers"):
        parse_config({"data": {"clip_outliers": k}})


def test_a_negative_adjacency_weight_is_refused_naming_the_file_and_cell(tmp_path):
    adj = np.eye(4, dtype=np.float32)
    adj[1, 2] = -0.5
    apath = tmp_path / "adj.csv"
    pd.DataFrame(adj, columns=NODES).to_csv(apath, index=False)
    cfg = DataConfig(source="csv-wide", path=str(_wide(tmp_path)), adjacency=str(apath))
    with pytest.raises(DataError, match=r"adj\.csv: weight at row 2, column 3 is -0\.5; adjacency weights must be >= 0"):
        load_windowed(cfg)


@pytest.mark.parametrize("split, part", [([1.0, 0.0, 0.0], "val"), ([0.8, 0.2, 0.0], "test"),
                                         ([0.8, 0.0, 0.2], "val")])
def test_run_refuses_an_empty_val_or_test_part(tmp_path, los_small_config, capsys, split, part):
    raw = los_small_config()
    raw["data"]["split"] = split
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    rc = main(["run", "--config", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"data.split: the {part} part is empty" in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()
