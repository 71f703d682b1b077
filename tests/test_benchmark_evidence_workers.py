"""``benchmarks/evidence.py --workers 2``: a row's distilled and plain student train at once, each in a process of
its own that rebuilds the row from a JSON job. The students trained from those jobs are the ones the row would
have trained in turn (same weights, same scores), and the row reads them back instead of training them again."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import evidence_rows  # noqa: E402
from evidence_train import row_settings, run_seed, side_by_side_jobs, train_row_student  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: a small simulated network in place of the benchmark's 200 sensors over 14 days (both the row in turn and the jobs)
TINY = {"data": {"source": "builtin", "name": "synthetic-traffic", "simulator": {"nodes": 16, "days": 3, "seed": 3}},
        "train": {"epochs": 30, "patience": 8, "max_batches": 100}}


def test_students_trained_from_their_jobs_are_the_ones_the_row_trains_in_turn(tmp_path, monkeypatch):
    monkeypatch.setitem(evidence_rows.DATASETS, "synthetic-traffic", TINY)
    row = {"teacher_seed": 0, "student_lr": 0.004}
    [in_turn] = run_seed("synthetic-traffic", 1, ["linear"], tmp_path / "in-turn", True, {}, workers=1, **row)
    assert in_turn["student"] == "linear, lr 0.004" and in_turn["workers"] == 1  # the row's name carries its rate

    # what the parent sends each process, through JSON as a fresh interpreter reads it
    jobs = json.loads(json.dumps(side_by_side_jobs("synthetic-traffic", 1, tmp_path / "apart", True, row, "linear")))
    assert [j["kd"] for j in jobs] == [True, False]
    for job in jobs:
        train_row_student(job, slot=0)  # at this process's one thread, as the row in turn trained here
    cards = sorted((tmp_path / "apart").glob("synthetic-traffic/seed-1*/models/linear_*/model.json"))
    assert [c.parent.name for c in cards] == ["linear_kd", "linear_plain"]
    written = [c.stat().st_mtime_ns for c in cards]

    [apart] = run_seed("synthetic-traffic", 1, ["linear"], tmp_path / "apart", True, {}, workers=1, **row)
    assert [c.stat().st_mtime_ns for c in cards] == written  # read back, not trained again
    for key in ("kd_mae", "plain_mae", "kd_val", "plain_val", "teacher_mae"):
        assert apart[key] == in_turn[key], key
    assert apart["kd_mae"] != apart["plain_mae"]  # the distilled job did learn from the teacher
    assert apart["student_lr"] == in_turn["student_lr"] == 0.004  # the row's own settings reached the process


def test_a_process_finds_the_student_trainer_by_the_scripts_module_name():
    """The script runs as ``__main__``; a fresh process imports ``evidence_train`` by name (``sys.path`` is passed on)."""
    target = importlib.import_module("evidence_train").train_row_student
    assert target.__module__ == "evidence_train" and target.__qualname__ == "train_row_student"


def test_a_rows_settings_take_row_setups_defaults_and_refuse_a_key_it_does_not_know():
    r = row_settings({"teacher_seed": 0, "alpha": 0.3})
    assert (r.teacher_seed, r.alpha, r.without_main, r.student_lags, r.extra_epochs) == (0, 0.3, False, None, None)
    with pytest.raises(TypeError, match="not a row setting: workers"):
        row_settings({"teacher_seed": 0, "workers": 2})
