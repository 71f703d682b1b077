"""A privileged teacher (a day of history and yesterday's values) distils into a student that reads
only its short window: the soft labels line up with the student's windows, and the run re-scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from stkd.cli import main
from stkd.distill.cache import CacheEntry


def _run(raw: dict, tmp_path, name: str = "run"):
    """``stkd run`` on the config ``raw`` (written as YAML beside the run): the run directory."""
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / name
    assert main(["run", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_a_teacher_with_a_longer_history_and_a_day_lag_teaches_a_plain_student(tmp_path):
    raw = {"data": {"source": "builtin", "name": "synthetic-traffic",
                    "simulator": {"nodes": 16, "days": 4, "seed": 2}},
           "teacher": {"name": "stid", "params": {"embed_dim": 8, "node_dim": 4, "tod_dim": 4},
                       "inputs": {"length": 36, "lags": ["1D"]}},
           "student": {"name": "mlp", "params": {"hidden": [16]}},
           "train": {"epochs": 2, "batch_size": 32, "max_batches": 3, "threads": 1},
           "eval": {"latency_repeats": 2, "baselines": ["last"]}}
    out = _run(raw, tmp_path)
    card = json.loads((out / "models" / "stid" / "model.json").read_text())
    assert card["spec"]["input_len"] == 36 and card["spec"]["in_features"] == 2
    assert card["inputs"]["view"] == {"length": 36, "lags": [288], "features": [0]}
    student = json.loads((out / "models" / "mlp_kd" / "model.json").read_text())
    assert student["spec"]["input_len"] == 12 and student["inputs"] is None
    entry = next((out / "cache").iterdir())
    cache = CacheEntry(entry, json.loads((entry / "meta.json").read_text()), built=False)
    summary = json.loads((out / "data.json").read_text())
    assert cache.all_pred("train").shape[0] == summary["windows"]["train"]  # one row per student window
    metrics = json.loads((out / "metrics.json").read_text())
    assert main(["evaluate", str(out), "--quiet"]) == 0  # the teacher is re-scored through its view
    again = json.loads((out / "metrics.json").read_text())
    assert again["models"]["stid"]["test"]["mae"] == pytest.approx(metrics["models"]["stid"]["test"]["mae"])
    assert np.isfinite(metrics["models"]["mlp_kd"]["test"]["mae"])
    report = (out / "report.md").read_text()  # the report says what the teacher reads and how the student could
    assert "- **Read by the teacher, not by the student**: `stid` also reads the same clock times 1D back" in report
    assert "`student.inputs: {lags: [1D]}`" in report


def test_a_privileged_teacher_is_not_served_and_says_what_to_serve(tmp_path):
    from stkd.deploy.loading import check_servable_inputs
    from stkd.errors import STKDError

    check_servable_inputs("mlp_kd", {"inputs": None, "role": "student_kd"})
    lags_only = {"lags": ["1D"], "view": {"length": 12, "lags": [288], "features": [0]}, "servable": True}
    check_servable_inputs("mlp_kd", {"inputs": lags_only, "role": "student_kd"})  # served from a day of history
    view = {"length": 36, "view": {"length": 36, "lags": [288], "features": [0]}, "servable": False}
    with pytest.raises(STKDError, match=r"lags \[288\].*teacher.inputs.*serve a student instead"):
        check_servable_inputs("gwnet", {"inputs": view, "role": "teacher"})
    with pytest.raises(STKDError, match=r"student.inputs.*train the student without student.inputs.length"):
        check_servable_inputs("mlp_kd", {"inputs": view, "role": "student_kd"})
    old_card = {"lags": ["1D"], "view": {"length": 12, "lags": [288], "features": [0]}}  # before the servable mark
    with pytest.raises(STKDError, match="its card predates the mark.*re-train the model to serve it"):
        check_servable_inputs("mlp_kd", {"inputs": old_card, "role": "student_kd"})


@pytest.mark.slow
def test_a_student_that_reads_lags_is_scored_and_served_and_one_with_a_longer_history_is_not(tmp_path, capsys):
    """A student may read what a privileged teacher reads (``student.inputs``): with lags it trains, is scored
    and is served from a history back to its lag; with a longer history the run says no student is served."""
    import stkd
    from stkd.errors import STKDError

    raw = {"data": {"source": "builtin", "name": "synthetic-traffic", "simulator": {"nodes": 16, "days": 4, "seed": 3}},
           "teacher": {"name": "stid", "params": {"embed_dim": 8, "node_dim": 4, "tod_dim": 4}},
           "student": {"name": "mlp", "params": {"hidden": [16]}, "inputs": {"lags": ["1D"]}},
           "train": {"epochs": 1, "batch_size": 32, "max_batches": 3, "threads": 1},
           "eval": {"latency_repeats": 2, "baselines": ["last"]}}
    out = _run(raw, tmp_path)
    metrics = json.loads((out / "metrics.json").read_text())["models"]
    assert metrics["mlp_kd"]["inputs"]["view"]["lags"] == [288] and metrics["mlp_kd"]["inputs"]["servable"]
    assert "inputs" not in metrics["stid"]  # the teacher reads the plain window
    served = stkd.load(out)
    assert served.role.startswith("student") and served.history_len == 12 + 288 - 12
    assert "served by default (stkd serve, export, predict; the better student on validation): mlp_" in \
        capsys.readouterr().out
    raw["student"]["inputs"] = {"length": 24}  # two hours of history: not what the serving path gives
    out = _run(raw, tmp_path, "run-long")
    printed = capsys.readouterr().out
    assert "served by default: none. mlp_kd, mlp_plain read other inputs than the run's window (length 24: " \
           "student.inputs)" in printed
    report = (out / "report.md").read_text()
    assert "- **Served by default**: none. `mlp_kd`, `mlp_plain` read other inputs than the run's window" in report
    with pytest.raises(STKDError, match="train the student without student.inputs.length and student.inputs.features"):
        stkd.load(out)
    assert stkd.load(out, "stid").num_nodes == 16  # the teacher, reading the plain window, still serves
