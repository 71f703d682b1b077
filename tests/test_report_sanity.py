"""Report sanity: models that lose to a baseline are named with both MAEs, latencies come with their
spread and the machine's load, frequencies read in words."""

from __future__ import annotations

import copy
import json
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import numpy as np
import pytest

from stkd.report import (
    baseline_losses,
    freq_words,
    label_offsets,
    short_labels,
    speed_note,
    write_report,
)


def _make_run():
    spec = spec_from_file_location("report_fixture", Path(__file__).with_name("test_report.py"))
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_run


@pytest.mark.parametrize(("code", "words"), [("5min", "5 minutes"), ("h", "1 hour"), ("1h", "1 hour"),
                                             ("15min", "15 minutes"), ("D", "1 day"), ("30s", "30 seconds"),
                                             ("90min", "90 minutes"), ("7D", "1 week"), (None, "unknown frequency"),
                                             ("MS", "MS")])
def test_freq_words(code, words):
    assert freq_words(code) == words


def test_a_model_that_loses_to_a_baseline_is_named(tmp_path):
    root = tmp_path / "run"
    metrics = _make_run()(root)
    assert baseline_losses(metrics) == []
    text = write_report(root).read_text()
    assert "lose to a baseline" not in text
    worse = copy.deepcopy(metrics)
    worse["models"]["stid"]["test"]["mae"] = 99.5
    (root / "metrics.json").write_text(json.dumps(worse))
    best = min(worse["models"][b]["test"]["mae"] for b in ("last_value", "seasonal_avg"))
    assert baseline_losses(worse) == [("stid", 99.5, "last_value", best)]
    text = write_report(root).read_text()
    assert f"- `stid` MAE 99.500 is worse than baseline `last_value` MAE {best:.3f}." in text
    assert "lose to a baseline" in (root / "report.html").read_text()


def test_latency_spread_and_load_are_shown(tmp_path):
    root = tmp_path / "run"
    metrics = _make_run()(root)
    assert speed_note(metrics) is None  # an old metrics.json without the spread: no claim about it
    for m in metrics["models"].values():
        if m["latency_ms_batch1"] is not None:
            m.update(latency_ms_batch1_p10=m["latency_ms_batch1"] * 0.9, latency_ms_batch1_p90=m["latency_ms_batch1"] * 1.2,
                     load_avg_1m=3.5, cpus=2)
    (root / "metrics.json").write_text(json.dumps(metrics))
    text = write_report(root).read_text()
    assert "| 2.500 (2.250-3.000) |" in text  # gwnet: median (p10-p90)
    assert "1-minute load average while measuring: 3.50 on 2 CPUs (busier than its CPUs" in text
    for m in metrics["models"].values():  # measured in rounds (since 2026-12-07): p10 (median-p90)
        if m["latency_ms_batch1"] is not None:
            del m["latency_ms_batch1_p10"]
            m.update(latency_ms_batch1_median=m["latency_ms_batch1"] * 1.1, latency_rounds=10)
    (root / "metrics.json").write_text(json.dumps(metrics))
    text = write_report(root).read_text()
    assert "| 2.500 (2.750-3.000) |" in text
    assert "measured together in 10 rounds" in text and "the 10th percentile of a model's calls" in text


def test_map_labels_are_unique_and_readable():
    nodes = ["Queen Street / Victoria Street East", "Queen Street / Victoria Street West", "s1",
             "Albert Street near the Civic Theatre entrance A", "Albert Street near the Civic Theatre entrance B",
             "Long name X differs only here in the middle of it, yes", "Long name X differs only HERE in the middle of it, yes"]
    labels = short_labels(nodes)
    assert len(set(labels)) == len(nodes)
    assert labels[2] == "s1"
    assert all(len(lab) <= 26 for lab in labels)
    assert labels[0].endswith("East") and labels[1].endswith("West")
    assert labels[5].endswith("#5") and labels[6].endswith("#6")


def test_map_labels_point_inwards_and_neighbours_take_opposite_sides():
    lon = np.array([0.0, 0.01, 1.0, 0.5])
    lat = np.array([0.5, 0.505, 0.5, 1.0])
    (dx0, dy0, ha0, _), (_, dy1, _, _), (dx2, _, ha2, _), (_, dy3, _, va3) = label_offsets(lon, lat, [0, 1, 2, 3])
    assert ha0 == "left" and dx0 > 0 and ha2 == "right" and dx2 < 0  # the right-edge label is not cut off
    assert dy0 * dy1 < 0  # two close sensors: labels on opposite sides
    assert dy3 < 0 and va3 == "top"  # at the top edge the label goes below the dot


def test_sensor_map_with_long_ids_is_drawn(tmp_path):
    root = tmp_path / "run"
    _make_run()(root)
    data = json.loads((root / "data.json").read_text())
    data["nodes"] = [f"Queen Street / Victoria Street sensor number {i}" for i in range(len(data["nodes"]))]
    (root / "data.json").write_text(json.dumps(data))
    text = write_report(root).read_text()
    assert "![Sensor map](plots/sensor_map.png)" in text
    assert (root / "plots" / "sensor_map.png").stat().st_size > 10_000
