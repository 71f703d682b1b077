"""The per-method table (``benchmarks/distill_gain.py``): methods named after the preset of 2026-12-05 run its
distillation (pinned: a name means one objective whatever the preset is today) with the one setting they name
changed, and the table says which student it ran and what that objective was."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import distill_gain  # noqa: E402
import evidence_rows  # noqa: E402


def _records(method: str, test_mae: float, distill: dict | None) -> list[dict]:
    return [{"method": method, "seed": s, "val_mae": test_mae - 1, "test_mae": test_mae + 0.1 * s,
             "teachers": [] if distill is None else ["stid"], "distill": distill, "command": "c"} for s in range(5)]


def test_a_preset_method_runs_the_pinned_objective_with_its_own_setting_changed():
    pinned = distill_gain.PRESET_DISTILL
    # the objective of 2026-12-05: the teacher's start and its forecasts of masked and mixed windows, online
    assert pinned["init"] == "teacher" and pinned["augment"] == ["mask", "mixup"] and pinned["augment_labels"] == "online"
    assert distill_gain.distill_overrides(distill_gain.METHODS["the 2026-12-05 preset's"][0]) == pinned
    from_seed = distill_gain.distill_overrides(distill_gain.METHODS["the 2026-12-05 preset's, from the seed's weights"][0])
    assert from_seed == pinned | {"init": "random"}
    hint = distill_gain.distill_overrides(distill_gain.METHODS["the 2026-12-05 preset's + feature (hint)"][0])
    assert hint == pinned | {"feature_weight": 0.1}
    # a method not named after the preset keeps its own settings alone
    assert distill_gain.distill_overrides(distill_gain.METHODS["response a=0.5"][0]) == {"alpha": 0.5}
    # today's preset does not change what the names mean
    from stkd import presets

    saved = dict(presets.DEFAULT_PRESET["distill"])
    try:
        presets.DEFAULT_PRESET["distill"].update(alpha=0.9, augment=["noise"])
        assert distill_gain.distill_overrides(distill_gain.METHODS["the 2026-12-05 preset's"][0]) == pinned
    finally:
        presets.DEFAULT_PRESET["distill"].clear()
        presets.DEFAULT_PRESET["distill"].update(saved)


def test_the_table_names_the_student_s_rate_and_the_preset_it_ran():
    preset = distill_gain.distill_overrides(distill_gain.METHODS["the 2026-12-05 preset's"][0])
    result = {"dataset": "akl-pedestrians", "student": "stid", "student_lags": ["1D", "7D"], "student_lr": 0.008,
              "teacher_fit": {"train": 40.0, "val": 41.0, "test": 42.0}, "command": "c", "machine": "m",
              "versions": {"stkd": "0", "commit": "x"}, "date": "d",
              "records": _records("plain (no teacher)", 44.0, None) + _records("the 2026-12-05 preset's", 43.0, preset)}
    text = distill_gain.render(result)
    assert "stid, reading lags 1D, 7D, lr 0.008 student, 5 seeds" in text
    assert ("The 2026-12-05 preset's distillation (the default preset's from 2026-12-05 to 2026-12-06): `alpha: 0.5`"
            in text and "`augment_labels: online`" in text)
    assert "| the 2026-12-05 preset's | 5 | 42.000 |" in text
    # without a preset method the table says nothing about the preset
    result["records"] = _records("plain (no teacher)", 44.0, None) + _records("response a=0.5", 43.0, {"alpha": 0.5})
    assert "preset's distillation" not in distill_gain.render(result)


def test_what_the_soft_labels_add_to_the_teacher_s_start_is_compared_with_that_start_alone():
    """A student started from the teacher's weights is set against the same start with the ground truth
    alone, paired by seed; a method that starts from the seed's weights is not."""
    start = _records(distill_gain.START_ALONE, 43.0, {"alpha": 1.0, "init": "teacher"})
    preset = _records("the 2026-12-05 preset's", 43.2, {"init": "teacher"})  # 0.2 higher on every seed
    from_seed = _records("the 2026-12-05 preset's, from the seed's weights", 42.0, {"init": "random"})
    by_method = distill_gain.records_by_method({"records": start + preset + from_seed})
    lines = distill_gain.beyond_the_start(by_method)
    assert len(lines) == 1 and "`the 2026-12-05 preset's`" in lines[0]
    assert "raises the error by 0.5 % on average" in lines[0] and "better on 0 of 5 seeds): a loss." in lines[0]
    assert lines[0].endswith("Validation MAE 42.200 against 42.000 (lower on 0 of 5 seeds).")
    assert distill_gain.starts_from_teacher("teacher's weights + response a=0.5")
    assert not distill_gain.starts_from_teacher("response a=0.5")
    # without the start alone there is nothing to set it against
    assert distill_gain.beyond_the_start(distill_gain.records_by_method({"records": preset})) == []


def test_the_held_out_years_have_a_table_of_their_own():
    from types import SimpleNamespace

    def data(time_range, name="akl-pedestrians", source="builtin"):
        return SimpleNamespace(source=source, name=name, time_range=time_range)

    assert distill_gain.dataset_name(data(["2023-01-01", "2025-12-31 23:00"])) == "akl-pedestrians"
    assert distill_gain.dataset_name(data(["2020-01-01", "2022-12-31 23:00"])) == "akl-pedestrians-2020-2022"
    assert distill_gain.dataset_name(data(["2019-01-01", "2019-12-31 23:00"])) == "akl-pedestrians-2019"
    assert distill_gain.dataset_name(data(None, name="los-loop")) == "los-loop"
    assert distill_gain.dataset_name(data(None, name=None, source="csv")) == "data"


def test_a_finished_student_trained_with_other_settings_is_refused_not_rescored(tmp_path):
    import json

    import pytest

    folder = tmp_path / "stid_kd"
    folder.mkdir()
    (folder / "last.json").write_text(json.dumps({"finished": True}))
    trained = {"alpha": 0.0, "augment": [], "init": "random"}
    (folder / "model.json").write_text(json.dumps({"distill": trained}))
    now = trained | {"augment": ["mask", "mixup"]}
    with pytest.raises(SystemExit, match=r"other distill settings.*augment: \[\] there, \['mask', 'mixup'\] now"):
        distill_gain.finished_student(folder, wd=None, distill=now)
    with pytest.raises(SystemExit, match="distill None there"):  # a plain student where the method distils
        (folder / "model.json").write_text(json.dumps({"distill": None}))
        distill_gain.finished_student(folder, wd=None, distill=now)
    # the same settings (and a setting the card predates) are no difference; an unfinished training is retrained
    assert distill_gain.settings_changed(trained, trained | {"period_weight": 0.0}) == ""
    (folder / "last.json").write_text(json.dumps({"finished": False}))
    assert distill_gain.finished_student(folder, wd=None, distill=now) is None


def test_what_the_augmented_windows_add_is_the_preset_of_12_05_against_the_same_without_them():
    with_them, without = distill_gain.WITHOUT_AUGMENT
    # the pair differs in the augmented windows alone (the preset's Huber loss comes from the teacher run's config)
    pinned = {k: v for k, v in distill_gain.distill_overrides(distill_gain.METHODS[with_them][0]).items()
              if not k.startswith("augment") and k != "loss"}
    assert pinned == distill_gain.distill_overrides(distill_gain.METHODS[without][0])
    records = (_records(without, 43.0, {"alpha": 0.5, "init": "teacher"})
               + _records(with_them, 42.8, distill_gain.PRESET_DISTILL))
    (line,) = distill_gain.augmented_windows(distill_gain.records_by_method({"records": records}))
    assert f"(`{without}`, today's preset's)" in line and "lowers the error by 0.5 %" in line
    assert "better on 5 of 5 seeds" in line and "lower on 5 of 5 seeds" in line
    # where one of the two never ran there is nothing to say
    assert distill_gain.augmented_windows(distill_gain.records_by_method({"records": records[:5]})) == []


def test_today_s_objective_with_one_term_added_keeps_the_start_and_the_weight_of_the_truth():
    """The terms asked of today's student are added to the preset's distillation since 2026-12-06 (the start
    from the teacher's weights, alpha 0.5), each with the weight the older tables gave it."""
    start = distill_gain.distill_overrides(distill_gain.METHODS[distill_gain.START_METHOD][0])
    assert start == {"alpha": 0.5, "init": "teacher"}
    for suffix, term in distill_gain.ADDED_TERMS.items():
        assert distill_gain.distill_overrides(distill_gain.METHODS[distill_gain.START_METHOD + suffix][0]) == start | term
        # the same term on the older objectives means the same weight
        assert distill_gain.distill_overrides(distill_gain.METHODS[distill_gain.PRESET_METHOD + suffix][0]) == \
            distill_gain.PRESET_DISTILL | term
    assert distill_gain.starts_from_teacher(distill_gain.START_METHOD + " + feature (hint)")


def test_a_student_schedule_of_its_own_names_its_file_and_its_table():
    assert evidence_rows.schedule_slug(None, None) == ""
    assert evidence_rows.schedule_slug((60, 12), 40) == "-epochs-60-patience-12-min-epochs-40"
    assert evidence_rows.schedule_slug([30, 6], None) == "-epochs-30-patience-6"
    result = {"dataset": "akl-pedestrians", "student": "stid-nodrop", "student_lags": ["1D"], "student_lr": 0.008,
              "student_schedule": [60, 12], "student_min_epochs": 40, "command": "c", "machine": "m",
              "versions": {"stkd": "0", "commit": "x"}, "date": "d",
              "records": _records("plain (no teacher)", 44.0, None)}
    assert ("stid-nodrop, reading lags 1D, lr 0.008, 60 epochs (patience 12), early stop from epoch 40 student"
            in distill_gain.render(result))
    del result["student_schedule"], result["student_min_epochs"]  # a table of the teacher run's schedule
    assert "stid-nodrop, reading lags 1D, lr 0.008 student" in distill_gain.render(result)


def test_an_early_stop_floor_needs_a_schedule_it_lies_within():
    import subprocess

    script = Path(distill_gain.__file__)
    for extra, said in ((["--student-min-epochs", "40"], "needs --student-schedule"),
                        (["--student-schedule", "30", "6", "--student-min-epochs", "40"], "1 to its EPOCHS, 30")):
        done = subprocess.run([sys.executable, str(script), *extra], capture_output=True, text=True)
        assert done.returncode == 2 and said in done.stderr


def test_each_added_term_is_set_against_today_s_objective_alone():
    start = distill_gain.distill_overrides(distill_gain.METHODS[distill_gain.START_METHOD][0])
    hint = distill_gain.START_METHOD + " + feature (hint)"
    records = (_records(distill_gain.START_METHOD, 43.0, start)
               + _records(hint, 42.5, start | {"feature_weight": 0.1}))
    lines = distill_gain.added_terms(distill_gain.records_by_method({"records": records}))
    assert len(lines) == 1 and lines[0].startswith(f"- Against today's objective alone (`{distill_gain.START_METHOD}`)")
    assert "adding feature (hint) lowers the error" in lines[0] and "better on 5 of 5 seeds" in lines[0]
    assert "Validation MAE 41.500 against 42.000 (lower on 5 of 5 seeds)" in lines[0]
    # a table without today's objective says nothing of the terms
    only_hint = distill_gain.records_by_method({"records": _records(hint, 42.5, start)})
    assert distill_gain.added_terms(only_hint) == []


def test_students_trained_from_their_jobs_are_the_ones_the_table_trains_in_turn(tmp_path, monkeypatch, one_torch_thread):
    """``--workers 2``: each (method, seed) trains in a process of its own from a JSON job; the table then reads
    those students back, and they are the ones it would have trained in turn (same scores)."""
    import json

    from evidence_train import run_seed

    tiny = {"data": {"source": "builtin", "name": "synthetic-traffic", "simulator": {"nodes": 16, "days": 3, "seed": 3}},
            "train": {"epochs": 30, "patience": 8, "max_batches": 100}}
    monkeypatch.setitem(evidence_rows.DATASETS, "synthetic-traffic", tiny)
    run_seed("synthetic-traffic", 0, ["linear"], tmp_path / "evidence", True, {}, workers=1, teacher_seed=0)
    [teacher_run] = (tmp_path / "evidence").glob("synthetic-traffic/teacher-seed-0")
    methods = [distill_gain.PLAIN, "response a=0.5"]

    def table(out: Path) -> list[dict]:
        records, _ = distill_gain.run(teacher_run, out, [1], "cpu", "linear", True, [], lambda *a: None, methods)
        return records

    in_turn = table(tmp_path / "in-turn")
    jobs = [{"teacher_run": str(teacher_run), "out": str(tmp_path / "apart"), "student": "linear", "method": m,
             "seed": 1, "device": "cpu", "quick": True, "lags": None, "lr": None, "schedule": None, "min_epochs": None}
            for m in methods]
    for job in json.loads(json.dumps(jobs)):  # what the parent sends each process, as a fresh interpreter reads it
        distill_gain.train_method_student(job, slot=0)
    cards = sorted((tmp_path / "apart").glob("*/seed-1/models/linear_*/model.json"))
    assert [c.parent.name for c in cards] == ["linear_plain", "linear_kd"]  # plain (no teacher), then a=0.5
    written = [c.stat().st_mtime_ns for c in cards]
    apart = table(tmp_path / "apart")
    assert [c.stat().st_mtime_ns for c in cards] == written  # read back, not trained again
    assert [(r["method"], r["val_mae"], r["test_mae"]) for r in apart] == \
        [(r["method"], r["val_mae"], r["test_mae"]) for r in in_turn]
    assert apart[0]["test_mae"] != apart[1]["test_mae"]  # the distilled job did learn from the teacher
    # with --workers 2 and every student finished, no job is sent and each is read back once to be scored
    again, _ = distill_gain.run(teacher_run, tmp_path / "apart", [1], "cpu", "linear", True, [], lambda *a: None,
                                methods, workers=2)
    assert [c.stat().st_mtime_ns for c in cards] == written
    assert [(r["method"], r["test_mae"], r["workers"]) for r in again] == [(r["method"], r["test_mae"], 2) for r in apart]


def test_a_process_finds_the_method_trainer_by_the_scripts_module_name():
    import importlib

    target = importlib.import_module("distill_gain").train_method_student
    assert target.__module__ == "distill_gain" and target.__qualname__ == "train_method_student"
