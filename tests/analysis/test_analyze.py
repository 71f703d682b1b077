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


def test_mstl_with_every_detected_period_in_the_json_and_the_report(small_stdata, tmp_path):
    """small_stdata has a daily and a weekly cycle: both are detected, both get a component, and each
    component's strength is reported per node, the periods in words."""
    out = tmp_path / "r"
    res = analyze(small_stdata, out, permutations=0, lisa_permutations=0, plots=False)
    stl = json.loads((out / "analysis.json").read_text())["stl"]
    assert stl["method"] == "MSTL"
    assert [(p["steps"], p["name"]) for p in stl["periods"]] == [(24, "1 day"), (168, "1 week")]
    assert set(stl["per_node"]) == {f"s{j}" for j in range(6)}
    for node in ("s0", "s1", "s3", "s5"):  # no spike, no gap: clean cycles
        v = stl["per_node"][node]
        assert v["periods"] == ["1 day", "1 week"]
        assert v["strength"]["1 day"] > 0.95 and v["strength"]["1 week"] > 0.9
    assert stl["median_strength"]["1 week"] > 0.9 and 0 <= stl["median_strength"]["trend"] <= 1
    md = (out / "analysis.md").read_text()
    assert "MSTL decomposition with the periods 1 day (24 steps) and 1 week (168 steps)" in md
    assert "| node | trend | 1 day | 1 week |" in md
    assert any(h.startswith("Seasonal strength (MSTL, median over 6 nodes): 1 day 1.00, 1 week 0.99")
               for h in res["headline"])


def test_stl_with_one_period_and_a_clear_reason_without_any(tmp_path, rng):
    T = 24 * 10  # ten days: the weekly cycle does not fit twice, the daily one does
    t = np.arange(T)
    x = (5 + np.sin(2 * np.pi * t / 24))[:, None] + 0.1 * rng.standard_normal((T, 2))
    data = STData.from_values(x.astype(np.float32), pd.date_range("2020-01-01", periods=T, freq="h"),
                              ["a", "b"], ["y"])
    stl = analyze(data, tmp_path / "r", permutations=0, lisa_permutations=0, plots=False)["stl"]
    assert stl["method"] == "STL" and [p["name"] for p in stl["periods"]] == ["1 day"]
    assert "STL decomposition with a period of 1 day (24 steps)" in (tmp_path / "r" / "analysis.md").read_text()
    short = STData.from_values(x[:30].astype(np.float32), pd.date_range("2020-01-01", periods=30, freq="h"),
                               ["a", "b"], ["y"])
    res = analyze(short, tmp_path / "s", permutations=0, lisa_permutations=0, plots=False)
    assert res["stl"]["method"] is None and "fits twice" in res["stl"]["reason"]
    assert any("trend decomposition, trend slopes and anomalies skipped" in n for n in res["notes"])
    assert "Not computed: no daily or weekly cycle fits twice" in (tmp_path / "s" / "analysis.md").read_text()


def test_progress_draws_a_bar_per_long_section_and_nothing_when_off(small_stdata, tmp_path, capsys):
    sections: list[str] = []
    analyze(small_stdata, tmp_path / "on", permutations=19, lisa_permutations=99, plots=False,
            progress=sections.append)
    err = capsys.readouterr().err
    for desc in ("periodicity", "trend (MSTL)", "anomalies", "moran's i", "local moran's i", "lags"):
        assert f"\r{desc}: " in err, desc
    assert "sensor/s]" in err and "pair/s]" in err  # counted per sensor (per pair for the lags)
    assert sections[:3] == ["missing", "periodicity", "trend"]
    analyze(small_stdata, tmp_path / "off", permutations=19, lisa_permutations=99, plots=False)
    assert capsys.readouterr().err == ""
