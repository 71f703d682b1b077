"""Report sanity: models that lose to a baseline are named with both MAEs, latencies come with their
spread and the machine's load, frequencies read in words."""

from __future__ import annotations

import copy
import json
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import pytest

from stkd.report import baseline_losses, freq_words, speed_note, write_report


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
