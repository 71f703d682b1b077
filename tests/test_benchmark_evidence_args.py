"""``benchmarks/evidence.py``'s arguments and folders: a schedule that would train no teacher of the row is
refused, so no row is labelled with a teacher schedule none of its teachers had; a students' folder saves a config
that a later row can reopen."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import pytest

from stkd.config import parse_config, to_dict
from stkd.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from evidence_gaps import copies_gap, loss_gap, min_epochs_gap, size_gap  # noqa: E402
from evidence_rows import STUDENTS, config, loss_label, student_config  # noqa: E402
from evidence_train import (  # noqa: E402
    check_record_settings,
    extra_teacher_config,
    lacking,
    stop_facts,
    students_folder_config,
    teacher_epochs_problem,
)


def test_teacher_epochs_without_the_main_teacher_or_a_copy_of_it_is_refused_with_the_reason():
    problem = teacher_epochs_problem(60, ["stid-64"], without_main=True)
    assert problem is not None
    assert "--teacher-epochs" in problem and "stid-64" in problem and "data set's schedule" in problem


def test_teacher_epochs_with_the_main_teacher_or_a_copy_of_its_model_is_allowed():
    assert teacher_epochs_problem(60, ["stid-64"], without_main=False) is None  # the main teacher trains for it
    assert teacher_epochs_problem(60, ["stid-64-nb", "gwnet:101"], without_main=True) is None  # so does its copy
    assert teacher_epochs_problem(None, ["stid-64"], without_main=True) is None


def test_a_students_folder_config_with_init_teacher_names_the_teachers_it_starts_from_and_validates():
    """The folder's saved config is loaded (and checked) when a later row reopens it: with the data set's own
    Graph WaveNet as first teacher beside ``init: teacher`` the check refused it, so the second row of a folder
    (other students) failed before training."""
    cfg = parse_config(config("akl-pedestrians", 0, True, ["1D", "7D"]))
    cfg.distill = dataclasses.replace(cfg.distill, init="teacher")
    with pytest.raises(ConfigError, match="distill.init: teacher"):
        parse_config(to_dict(cfg))  # what the folder saved before
    extra = parse_config(extra_teacher_config("akl-pedestrians", "stid-64", 0, True, ["1D", "7D"], None, None,
                                              None, None)).teacher
    saved = parse_config(to_dict(students_folder_config(cfg, extra)))
    assert [t.name for t in saved.teacher] == ["stid"] and saved.teacher[0].params["embed_dim"] == 64
    assert saved.student.inputs == cfg.student.inputs and saved.student.name == cfg.student.name
    assert saved.distill.init == "teacher"


def test_a_students_folder_config_without_init_teacher_is_left_as_it_is():
    cfg = parse_config(config("akl-pedestrians", 0, True, ["1D", "7D"]))
    assert students_folder_config(cfg, []) is cfg


@pytest.mark.parametrize("script", ["evidence.py", "headroom.py", "distill_gain.py"])
def test_every_student_lr_option_refuses_a_rate_that_is_not_above_zero(script, rate="0"):
    """The three scripts that train students at their own rate share one argument type (and one folder suffix,
    ``lr_slug``), so none of them starts a run at a rate the others would refuse."""
    import subprocess

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    done = subprocess.run([sys.executable, str(bench / script), "--student-lr", rate], capture_output=True, text=True,
                          cwd=bench.parent, timeout=120)
    assert done.returncode == 2 and "argument --student-lr: a learning rate above 0" in done.stderr


def test_a_learning_rate_names_its_folders_and_rows_alike():
    from evidence_rows import lr_label, lr_slug
    from evidence_train import learning_rate

    assert learning_rate("0.008") == 0.008
    for bad in ("0", "-0.008", "nan", "fast"):
        with pytest.raises(argparse.ArgumentTypeError, match="a learning rate above 0"):
            learning_rate(bad)
    assert lr_slug(0.008) == "-lr-0.008" and lr_label(0.008) == ", lr 0.008"
    assert lr_slug(None) == "" == lr_label(None)


def test_a_stored_record_of_another_patience_is_refused_not_reprinted_as_measured():
    """The row's name carries the students' epochs but not their patience: a record of 90 epochs with patience 18
    was taken for the 90 epochs with patience 30 asked, and the page printed the old numbers as measured."""
    cfg = parse_config(config("akl-pedestrians", 0, quick=True))
    cfg.train = dataclasses.replace(cfg.train, epochs=90, patience=30)
    old = {"student_epochs": 90, "student_patience": 18, "teacher_scope": cfg.distill.teacher_scope}
    with pytest.raises(SystemExit, match=r"patience 18, this command asks for 30.*--student-schedule 90 18"):
        check_record_settings(old, "akl-pedestrians", "stid, 90 epochs", 3, cfg, teacher_scope=None)
    with pytest.raises(SystemExit, match="64 student epochs"):
        check_record_settings({**old, "student_epochs": 64}, "akl-pedestrians", "stid", 3, cfg, teacher_scope=None)
    check_record_settings({**old, "student_patience": 30}, "akl-pedestrians", "stid, 90 epochs", 3, cfg, None)
    older = {"seed": 3, "teacher_scope": cfg.distill.teacher_scope}  # older than the schedule's fields: kept
    check_record_settings(older, "akl-pedestrians", "stid", 3, cfg, None)


def test_a_row_with_an_early_stop_floor_is_set_against_the_same_row_without_it():
    """``--student-min-epochs``: both students against the row without the floor, and how many of that row's
    students early stopping ended before it (only those can differ)."""
    base = "stid, 90 epochs, lr 0.008"
    floor = "stid, 90 epochs, early stop from epoch 60, lr 0.008"

    def rec(seed, label, kd_val, plain_val, **extra):
        return {"seed": seed, "student": label, "kd_val": kd_val, "kd_mae": kd_val + 2, "plain_val": plain_val,
                "plain_mae": plain_val + 2, "machine": "m", **extra}

    without = [rec(s, base, 42.5 if s == 3 else 41.2, 41.2, kd_stop={"epochs_run": 32 if s == 3 else 90},
                   plain_stop={"epochs_run": 90}) for s in range(5)]
    held = [rec(s, floor, 41.2, 41.2, student_min_epochs=60) for s in range(5)]
    by = {base: without, floor: held}
    text = min_epochs_gap(held, by)
    assert "With no early stop before epoch 60, the distilled student's validation MAE is 41.200 against 41.460 " \
           "without that floor (lower on 1 of 5 seeds)" in text
    assert "the plain student's validation MAE is 41.200 against 41.200 without it (lower on 0 of 5 seeds)" in text
    assert text.endswith("early stopping ended 1 of its 10 students before epoch 60.")
    assert min_epochs_gap(without, by) == ""  # the row without the floor has no sentence of its own
    older = [{k: v for k, v in r.items() if not k.endswith("_stop")} for r in without]
    assert "early stopping ended" not in min_epochs_gap(held, {base: older, floor: held})


def test_a_record_from_before_the_stop_facts_lacks_them_and_its_checkpoint_supplies_them(tmp_path):
    """``--distances-only`` completes older records: one measured before the stop facts were kept lacks them
    (not its distances), and the saved checkpoint's ``last.json`` gives epochs run, best epoch and early stop."""
    assert lacking({"seed": 0}) == ["distances", "stops"]
    assert lacking({"seed": 0, "kd_to_teacher": {}}) == ["stops"]
    assert lacking({"seed": 0, "kd_to_teacher": {}, "kd_stop": {}}) == []
    model_dir = tmp_path / "models" / "stid_kd"
    model_dir.mkdir(parents=True)
    (model_dir / "last.json").write_text('{"epoch": 31, "best_epoch": 14, "stopped_early": true}')
    assert stop_facts(tmp_path, "stid_kd") == {"epochs_run": 32, "best_epoch": 14, "stopped_early": True}


def test_the_student_without_dropout_is_the_data_sets_own_stid_with_dropout_off():
    """``stid-nodrop``: on the Auckland counts the preset's student (its params, not the ``stid-32`` size that
    ``stid`` means elsewhere) with dropout 0; on Los-loop that data set's ``stid`` with dropout 0."""
    akl = parse_config(config("akl-pedestrians", 0, True))
    own, nodrop = (student_config("akl-pedestrians", label, akl) for label in ("stid", "stid-nodrop"))
    assert nodrop.name == own.name == "stid"
    assert nodrop.params == {**own.params, "dropout": 0.0} and "dropout" not in own.params
    loop = parse_config(config("los-loop", 0, True))
    assert student_config("los-loop", "stid-nodrop", loop).params == {
        **student_config("los-loop", "stid", loop).params, "dropout": 0.0}
    for label in ("stid-nb", "stid-8", "stid-nb-32"):  # every STID student has its twin without dropout
        assert student_config("los-loop", label + "-nodrop", loop).params == {
            **student_config("los-loop", label, loop).params, "dropout": 0.0}
    assert "mlp-nodrop" not in STUDENTS  # the MLP has no dropout by default


def test_a_row_without_dropout_is_set_against_the_same_row_with_it():
    def rec(seed, label, plain, kd, machine="m"):
        return {"seed": seed, "student": label, "plain_mae": plain, "kd_mae": kd, "teacher_mae": 40.0,
                "params": {"student": 18844}, "machine": machine}

    base = "stid, teachers stid-64, lr 0.008"
    nodrop = "stid-nodrop, teachers stid-64, lr 0.008"
    by = {base: [rec(s, base, 44.0, 43.0) for s in range(5)], nodrop: [rec(s, nodrop, 43.0, 42.0) for s in range(5)]}
    text = size_gap(by[nodrop], by)
    assert text.startswith(f" Without dropout, against the row `{base}` with it (the same 18,844 parameters): "
                           "plain 43.000 against 44.000 (-2.3 %), distilled 42.000 against 43.000 (-2.3 %)")
    assert "keeps 33 % of the teacher's edge against 25 %" in text
    assert text.endswith("(the 5 seeds both rows have).")  # one machine measured both rows
    by[nodrop] = [rec(s, nodrop, 43.0, 42.0, machine="n") for s in range(5)]
    assert "measured on 2 machines, m and n" in size_gap(by[nodrop], by)  # other kernels round otherwise
    assert size_gap(by[base], by) == ""  # the row with dropout has no such sentence


def test_a_row_under_another_loss_is_set_against_the_same_row_under_the_data_sets_own_for_both_students():
    """``--loss``: the loss is both students' (the plain one's train.loss, both terms of the distilled one's), so
    the sentence moves each against the row without the mark; records from before the option name no loss."""
    def rec(seed, label, plain_val, kd_val, **extra):
        return {"seed": seed, "student": label, "plain_val": plain_val, "plain_mae": plain_val + 2,
                "kd_val": kd_val, "kd_mae": kd_val + 2, "machine": "m", **extra}

    base = "stid-nodrop, teachers stid-64, lr 0.008, started from the teacher"
    l1 = base.replace(", started", loss_label("l1") + ", started")
    assert l1 == "stid-nodrop, teachers stid-64, lr 0.008, loss l1, started from the teacher"
    by = {base: [rec(s, base, 41.0, 40.8) for s in range(5)],
          l1: [rec(s, l1, 40.9 if s else 41.1, 40.7, loss="l1") for s in range(5)]}
    text = loss_gap(by[l1], by)
    assert text.startswith(" With the l1 loss, the plain student's validation MAE is 40.940 against 41.000 with "
                           "huber (lower on 4 of 5 seeds)")
    assert "With the l1 loss, the distilled student's validation MAE is 40.700 against 40.800 with huber (lower on " \
           "5 of 5 seeds)" in text
    assert loss_gap(by[base], by) == ""  # the row under the data set's loss has no such sentence
    assert loss_label(None) == ""


def test_a_row_taught_by_copies_of_one_teacher_is_set_against_the_row_taught_by_the_first_alone():
    def rec(seed, label, kd_val):
        return {"seed": seed, "student": label, "kd_val": kd_val, "kd_mae": kd_val + 2, "machine": "m"}

    one = "stid-nodrop, teachers stid-64, 60 epochs, lr 0.008"
    four = "stid-nodrop, teachers 4 stid-64, 60 epochs, lr 0.008"
    mixed = "stid-nb, teachers 3 gwnet + stid-64-nb, 60 epochs"
    by = {one: [rec(s, one, 40.8) for s in range(5)], four: [rec(s, four, 40.6 if s else 40.9) for s in range(5)],
          mixed: [rec(s, mixed, 3.0) for s in range(5)]}
    text = copies_gap(by[four], by)
    assert text.startswith(" Taught by 4 copies of stid-64 (seeds apart), the distilled student's validation MAE is "
                           "40.660 against 40.800 by the first alone (lower on 4 of 5 seeds)")
    assert copies_gap(by[one], by) == ""  # one teacher: no copies
    assert copies_gap(by[mixed], by) == ""  # an ensemble of different teachers is not copies of one


def test_extra_teachers_of_a_schedule_of_their_own_train_for_it_and_keep_folders_and_rows_of_their_own():
    """``--extra-teacher-epochs``: every extra teacher trains for those epochs (a copy of the main teacher's model
    too), its folder and its students' rows are marked, and the usual schedule leaves no mark."""
    from evidence_rows import extra_epochs_folder, extra_epochs_label

    raw = extra_teacher_config("akl-pedestrians", "stid-64", 0, False, ["1D", "7D"], None, None, None, None, 20)
    assert raw["teacher"][0]["epochs"] == 20
    usual = extra_teacher_config("akl-pedestrians", "stid-64", 0, False, ["1D", "7D"], None, None, None, None)
    assert "epochs" not in usual["teacher"][0]  # the data set's schedule
    copy_of_main = extra_teacher_config("akl-pedestrians", "gwnet", 0, False, None, None, 40, None, None, 20)
    assert copy_of_main["teacher"][0]["epochs"] == 20
    assert extra_epochs_label(20) == ", extra teachers 20 epochs" and extra_epochs_label(None) == ""
    assert extra_epochs_folder(20) == "-extra-epochs-20" and extra_epochs_folder(None) == ""


@pytest.mark.parametrize("extra, said", [
    (["--extra-teacher-epochs", "20"], "needs --extra-teachers"),
    (["--teacher-seed", "0", "--extra-teachers", "stid-64", "--extra-teacher-epochs", "0"], "at least 1"),
    (["--teacher-seed", "0", "--extra-teachers", "stid-64", "--extra-teacher-epochs", "20", "--teacher-epochs", "30"],
     "give one"),
])
def test_extra_teacher_epochs_are_refused_without_extra_teachers_or_beside_teacher_epochs(extra, said):
    import subprocess

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "evidence.py"
    done = subprocess.run([sys.executable, str(script), *extra], capture_output=True, text=True)
    assert done.returncode == 2 and said in done.stderr


def test_a_students_folder_config_of_copies_from_other_seeds_names_each_copys_seed_and_validates():
    """``--extra-teachers stid-64 stid-64:101 ... --student-init teacher``: the copies differ by the seed they trained
    from only; without it in the folder's config, opening the folder again (a student's process of its own,
    ``--resume``) was refused as one model twice."""
    from evidence_train import seeded_teachers

    cfg = parse_config(config("akl-pedestrians", 0, True, ["1D", "7D"]))
    cfg.distill = dataclasses.replace(cfg.distill, init="teacher")
    copies = [parse_config(extra_teacher_config("akl-pedestrians", "stid-64", seed, True, ["1D", "7D"], None, None,
                                                None, None)) for seed in (0, 101)]
    with pytest.raises(ConfigError, match="same settings and seed"):
        parse_config(to_dict(students_folder_config(cfg, [t for c in copies for t in c.teacher])))
    saved = parse_config(to_dict(students_folder_config(cfg, [t for c in copies for t in seeded_teachers(c)])))
    assert [t.seed for t in saved.teacher] == [0, 101]
    assert seeded_teachers(copies[1])[0].params == copies[1].teacher[0].params  # only the seed is added


def test_the_rows_whose_student_reads_every_lag_of_its_teachers_are_named_as_such():
    """A row marked ``privileged teacher (lags ...)`` whose student reads those lags too is said to be taught by
    teachers that know no input the student lacks; a student reading fewer lags, or none, is not."""
    from evidence import same_lag_rows

    def rec(student, teacher_lags, student_lags):
        return {"student": student, "teacher_lags": teacher_lags, "student_lags": student_lags}

    records = [rec("same", ["1D", "7D"], ["7D", "1D"]), rec("same", ["1D", "7D"], ["1D", "7D"]),
               rec("more", ["1D"], ["1D", "7D"]), rec("fewer", ["1D", "14D"], ["1D"]), rec("none", ["1D"], None),
               rec("window", None, ["1D"])]
    assert same_lag_rows(records) == ["more", "same"]
