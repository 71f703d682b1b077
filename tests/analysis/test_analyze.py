"""``analyze()`` and ``stkd analyze`` end to end: files written, numbers sane, user files never clobbered."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stkd.analysis import analyze, headline
from stkd.data.container import STData
from stkd.errors import STKDError


def test_analyze_writes_markdown_json_and_plots(small_stdata, tmp_path):
    out = tmp_path / "report"
    res = analyze(small_stdata, out, nodes=["s2"], max_pairs=10, seed=0, permutations=19, lisa_permutations=99)
    md = (out / "analysis.md").read_text()
    text = (out / "analysis.json").read_text()
    assert "NaN" not in text and "Infinity" not in text  # NaN -> null: every JSON reader can parse it
    numbers = json.loads(text)
    for key in ("dataset", "missing", "periodicity", "stl", "trend", "anomalies", "spatial", "lags", "plots",
                "headline", "notes", "timing_seconds"):
        assert key in numbers
    assert numbers["periodicity"]["cycles"]["daily"]["nodes_found"] == 6
    assert numbers["periodicity"]["cycles"]["weekly"]["nodes_found"] >= 5
    spike = [a for a in numbers["anomalies"]["listed"] if a["node"] == "s2"]
    assert spike and spike[0]["time"] == str(small_stdata.index[400])
    assert numbers["trend"]["per_node"]["s0"]["slope_per_day"] == pytest.approx(0.24, rel=0.1)
    for name in ("missing.png", "periodicity.png", "stl_s2.png", "trend_slopes.png", "morans_i.png",
                 "lisa_map.png", "lag_map.png", "lag_hist.png"):
        p = out / "plots" / name
        assert p.is_file() and p.stat().st_size > 5000, name
        assert f"](plots/{name})" in md
    assert md.startswith("# Spatio-temporal analysis: toy")
    assert "## Periodicity" in md and "## Anomalies" in md
    assert res["headline"] == headline(res) and any("Daily cycle" in h for h in res["headline"])
    assert not [p for p in out.rglob("*.tmp")]


def test_analyze_refuses_a_non_empty_directory_unless_overwrite(small_stdata, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(STKDError, match="not empty"):
        analyze(small_stdata, out, permutations=0, lisa_permutations=0, plots=False)
    assert not (out / "analysis.md").exists()
    analyze(small_stdata, out, permutations=0, lisa_permutations=0, overwrite=True, plots=False)
    assert (out / "analysis.md").is_file() and (out / "notes.txt").read_text() == "my notes"
    (tmp_path / "empty").mkdir()
    analyze(small_stdata, tmp_path / "empty", permutations=0, lisa_permutations=0, plots=False)  # empty is fine


def test_unknown_node_or_feature_is_a_clear_error(small_stdata, tmp_path):
    from stkd.errors import ConfigError

    with pytest.raises(ConfigError, match="node 'nope'"):
        analyze(small_stdata, tmp_path / "a", nodes="s1,nope")
    with pytest.raises(ConfigError, match="feature 'speed'"):
        analyze(small_stdata, tmp_path / "b", feature="speed")


def test_without_graph_or_coords_the_spatial_sections_are_skipped(tmp_path, rng):
    T = 24 * 14
    t = np.arange(T)
    x = np.sin(2 * np.pi * t / 24)[:, None] + 0.1 * rng.standard_normal((T, 3))
    data = STData.from_values(x.astype(np.float32), pd.date_range("2024-01-01", periods=T, freq="h"),
                              ["a", "b", "c"], ["y"])
    res = analyze(data, tmp_path / "r", permutations=0, lisa_permutations=0, plots=False)
    assert res["lags"] is None and "global_moran" not in res["spatial"]
    assert any("spatial analyses skipped" in n for n in res["notes"])
    assert "Skipped" in (tmp_path / "r" / "analysis.md").read_text()


def test_long_series_are_budgeted_and_say_so(tmp_path, rng):
    T = 24 * 7 * 30
    t = np.arange(T)
    x = (5 + np.sin(2 * np.pi * t / 24))[:, None] + 0.1 * rng.standard_normal((T, 2))
    data = STData.from_values(x.astype(np.float32), pd.date_range("2020-01-01", periods=T, freq="h"),
                              ["a", "b"], ["y"])
    res = analyze(data, tmp_path / "r", permutations=0, lisa_permutations=0, stl_budget=4000, plots=False)
    assert res["trend"]["method"] == "daily_means"
    assert res["stl"]["steps_decomposed"] == 2000
    assert any("long series" in n for n in res["notes"])


def test_los_loop_end_to_end_through_the_cli(los_loop_dir, tmp_path, capsys):
    """The CSV loader path: a config file, 20 detectors, the daily period found."""
    pytest.importorskip("stkd.data.loaders")
    from stkd.cli import main

    nodes = pd.read_csv(los_loop_dir / "los_speed.csv", nrows=0).columns[:20].tolist()
    cfg = tmp_path / "los.yaml"
    cfg.write_text(
        "data:\n"
        "  source: csv-wide\n"
        f"  path: {los_loop_dir / 'los_speed.csv'}\n"
        "  start: '2012-03-01'\n"
        "  freq: 5min\n"
        f"  locations: {los_loop_dir / 'graph_sensor_locations.csv'}\n"
        f"  adjacency: {los_loop_dir / 'los_adj.csv'}\n"
        f"  nodes: [{', '.join(repr(n) for n in nodes)}]\n")
    out = tmp_path / "los"
    assert main(["analyze", str(cfg), "--out", str(out), "--max-pairs", "20", "--no-plots", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Daily cycle (24 h, 288 steps): found in" in printed and str(out / "analysis.md") in printed
    numbers = json.loads((out / "analysis.json").read_text())
    daily = numbers["periodicity"]["cycles"]["daily"]
    assert daily["steps"] == 288 and daily["nodes_found"] >= 16
    assert not numbers["periodicity"]["cycles"]["weekly"]["testable"]
    assert numbers["spatial"]["global_moran"]["mean"] > 0
    # a second run into the same directory is refused with a one-line error (exit status 2)
    assert main(["analyze", str(cfg), "--out", str(out), "--no-plots", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_cli_help_has_an_example(capsys):
    from stkd.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["analyze", "--help"])
    text = capsys.readouterr().out
    assert "stkd analyze akl-pedestrians --out" in text and "--nodes" in text and "--overwrite" in text
