"""The sensor outages of ``benchmarks/outages.py`` (evidence.py ``--outages``): they must take the asked share
of every sensor's training readings, leave validation and test whole, and read back through the ordinary
loader exactly as written."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from evidence_gaps import augment_gap, history_gap, scope_gap  # noqa: E402
from evidence_rows import SCOPE_LABEL, augment_label, scarcity  # noqa: E402
from outages import knock_out, outage_data  # noqa: E402


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_knock_out_takes_the_rate_of_every_sensors_training_readings_and_nothing_else(rate):
    T, N, F = 600, 7, 2
    mask = np.ones((T, N, F), dtype=bool)
    lo, hi = 0, 400
    out = knock_out(mask, lo, hi, rate, steps_per_hour=12, rng=np.random.default_rng(3))
    assert mask.all()  # the input is left alone
    assert out[hi:].all()  # validation and test keep every reading
    observed = out[lo:hi].mean(axis=0)  # [N, F]
    # at least the rate is out, and at most one outage (8 hours = 96 steps) more
    assert (observed <= 1 - rate).all()
    assert (observed >= 1 - rate - 96 / (hi - lo)).all()
    assert (out[:, :, 0] == out[:, :, 1]).all()  # an outage takes every feature of its sensor


def test_knock_out_makes_outages_of_one_to_eight_hours():
    mask = np.ones((2000, 1, 1), dtype=bool)
    out = knock_out(mask, 0, 2000, 0.3, steps_per_hour=12, rng=np.random.default_rng(0))
    dark = ~out[:, 0, 0]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], dark.astype(int), [0]])))
    runs = edges[1::2] - edges[::2]  # lengths of the dark stretches (overlapping outages join)
    assert runs.min() >= 12
    assert len(runs) >= 2


def test_knock_out_refuses_a_rate_outside_0_and_1():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        knock_out(np.ones((10, 1, 1), dtype=bool), 0, 10, 1.0, 12, np.random.default_rng(0))


def test_outage_data_reads_back_with_the_outages_and_the_settings_kept(tmp_path):
    from stkd.config import parse_config
    from stkd.data.loaders import load_data

    section = {"source": "builtin", "name": "synthetic-traffic", "simulator": {"nodes": 16, "days": 3},
               "window": {"input": 12, "horizon": 12}, "split": [0.6, 0.2, 0.2]}
    original = load_data(parse_config({"data": section}).data)
    data_section = outage_data(section, 0.4, tmp_path / "out")
    assert data_section["window"] == section["window"] and data_section["split"] == section["split"]
    again = outage_data(section, 0.4, tmp_path / "out")  # written once, then reused
    assert again == data_section
    read = load_data(parse_config({"data": data_section}).data)
    train = int(round(0.6 * len(original.index)))
    assert read.values.shape == original.values.shape
    assert (read.mask[train:] == original.mask[train:]).all()
    assert np.allclose(read.values[train:], original.values[train:], atol=1e-4, equal_nan=True)
    share_out = 1 - read.mask[:train].mean(axis=0)  # per sensor
    assert (share_out >= 0.4).all()


def test_an_outage_row_is_compared_with_its_row_with_every_reading():
    def row(student, plain, kd, outages=None):
        return {"student": student, "seed": 0, "plain_mae": plain, "kd_mae": kd, "teacher_mae": 3.0,
                "teacher_val": 2.9, "plain_val": 3.1, "outages": outages}

    full = [row("mlp", 4.0, 4.0)]
    out = [row("mlp, 50 % outages", 4.4, 4.3, 0.5)]
    assert scarcity(full[0]) is None
    text = history_gap(out, {"mlp": full, "mlp, 50 % outages": out})
    assert "With 50 % outages in the training part the plain student's test MAE is 4.400, against 4.000" in text
    assert "distillation closes 25 % of the student's gap" in text


def test_the_two_teacher_scopes_are_compared_on_the_seeds_both_rows_have():
    def row(student, seed, kd_val, kd):
        return {"student": student, "seed": seed, "kd_val": kd_val, "kd_mae": kd}

    everywhere = [row("mlp, 50 % outages", s, 3.6, 4.3) for s in (0, 1, 2)]
    observed = [row(f"mlp{SCOPE_LABEL}, 50 % outages", s, 3.5, 4.0 + s / 10) for s in (0, 1)]
    by = {"mlp, 50 % outages": everywhere, f"mlp{SCOPE_LABEL}, 50 % outages": observed}
    text = scope_gap(observed, by)
    assert "validation MAE is 3.500 against 3.600 counting it everywhere (lower on 2 of 2 seeds)" in text
    assert "test MAE 4.050 against 4.300 (-5.8 %, lower on 2 of 2; the 2 seeds both rows have" in text
    assert scope_gap(everywhere, by) == ""  # a row of the old scope is not compared with itself


def test_a_comparison_of_two_rows_says_when_one_recorded_machine_did_not_measure_them_all():
    def row(student, seed, machine):
        return {"student": student, "seed": seed, "kd_val": 3.5, "kd_mae": 4.0, "machine": machine}

    here, there = "2 CPU cores (x86_64, AVX512, AMX bf16), torch 2.13.0+cpu", "2 CPU cores (x86_64, AVX2), torch 2.13.0+cpu"
    observed, everywhere = f"mlp{SCOPE_LABEL}", "mlp"
    one = {everywhere: [row(everywhere, s, here) for s in (0, 1)], observed: [row(observed, s, here) for s in (0, 1)]}
    assert scope_gap(one[observed], one).endswith("the 2 seeds both rows have).")
    two = {**one, everywhere: [row(everywhere, 0, here), row(everywhere, 1, there)]}
    assert f"have; measured on 2 machines, {there} and {here}, whose CPU kernels" in scope_gap(two[observed], two)
    # a record without its machine (measured before they were recorded): no claim of one machine
    old = {**one, everywhere: [{k: v for k, v in r.items() if k != "machine"} for r in one[everywhere]]}
    assert "have; not all on one recorded machine, and other" in scope_gap(old[observed], old)
    # only the seeds both rows have count: a third seed elsewhere changes nothing
    extra = {**one, observed: [*one[observed], row(observed, 2, there)]}
    assert scope_gap(extra[observed], extra).endswith("the 2 seeds both rows have).")


def test_a_row_with_augmented_inputs_is_compared_with_the_same_row_without_them():
    augment = {"augment": ["mask", "mixup"], "augment_labels": "online", "augment_weight": 1.0}
    assert augment_label(augment) == "mask + mixup labelled online (weight 1)"
    base = [{"student": "stid, 30 epochs", "seed": s, "kd_val": 50.0, "kd_mae": 58.0, "augment": []} for s in range(3)]
    label = f"stid, 30 epochs, {augment_label(augment)}"
    rows = [{"student": label, "seed": s, "kd_val": 49.0, "kd_mae": 57.0 + s, **augment} for s in range(3)]
    by = {"stid, 30 epochs": base, label: rows}
    text = augment_gap(rows, by)
    assert text.startswith(" With the teacher's forecasts of mask + mixup labelled online (weight 1) inputs, the "
                           "distilled student's validation MAE is 49.000 against 50.000 without them")
    assert "49.000 against 50.000 without them (lower on 3 of 3 seeds)" in text
    assert "test MAE 58.000 against 58.000 (+0.0 %, lower on 1 of 3; the 3 seeds both rows have" in text
    assert augment_gap(base, by) == "" and augment_gap(rows, {label: rows}) == ""
    # a row whose students also read lags names them after the augmentation: its twin keeps the lags
    lagged = "stid, 30 epochs, reading lags 1D, 7D"
    lag_rows = [{**r, "student": f"stid, 30 epochs, {augment_label(augment)}, reading lags 1D, 7D"} for r in rows]
    text = augment_gap(lag_rows, {lagged: [{**b, "student": lagged} for b in base], lag_rows[0]["student"]: lag_rows})
    assert "validation MAE is 49.000 against 50.000 without them" in text


def test_a_row_whose_students_read_lags_is_compared_with_the_window_only_row_and_the_teacher():
    from evidence_gaps import lags_gap
    from evidence_rows import lags_label

    base = [{"student": "stid, 30 epochs", "seed": s, "plain_mae": 57.0, "teacher_mae": 48.0} for s in range(3)]
    label = "stid, 30 epochs" + lags_label(["1D", "7D"])
    assert label == "stid, 30 epochs, reading lags 1D, 7D"
    rows = [{"student": label, "seed": s, "plain_mae": 44.0 + s, "teacher_mae": 48.0, "student_lags": ["1D", "7D"]}
            for s in range(3)]
    by = {"stid, 30 epochs": base, label: rows}
    assert lags_gap(rows, by) == (" Reading the lags 1D, 7D the plain student's test MAE is 45.000, against 57.000 in "
                                  "the row `stid, 30 epochs` (-21.1 %) and 48.000 for the teacher (-6.2 %).")
    assert lags_gap(base, by) == "" and lags_gap(rows, {label: rows}) == ""
    # no window-only row: a row reading more lags is set against the same row reading fewer, not the reverse
    more = "stid, 30 epochs" + lags_label(["1D", "2D", "3D", "7D"])
    more_rows = [{"student": more, "seed": s, "plain_mae": 43.0, "teacher_mae": 48.0,
                  "student_lags": ["1D", "2D", "3D", "7D"]} for s in range(3)]
    by = {label: rows, more: more_rows}
    assert lags_gap(more_rows, by) == (" Reading the lags 1D, 2D, 3D, 7D the plain student's test MAE is 43.000, "
                                       "against 45.000 in the row `stid, 30 epochs, reading lags 1D, 7D` (-4.4 %) and "
                                       "48.000 for the teacher (-10.4 %).")
    assert lags_gap(rows, by) == ""


def test_a_gain_established_on_validation_only_is_said_to_disagree_with_test():
    from evidence_gaps import splits_disagree
    from stkd.paired import paired_gain

    plain = [10.0, 10.2, 9.9, 10.1, 10.05]
    better = paired_gain(plain, [p * 0.98 for p in plain])  # 2 % on every seed: established
    unclear = paired_gain(plain, [p * f for p, f in zip(plain, [0.99, 1.01, 1.0, 0.995, 1.005])])
    assert better["established"] and not unclear["established"]
    text = splits_disagree(unclear, better)
    assert text == (f" On validation the gain is +2.0 % (5 of 5 seeds: established better), on test "
                    f"{'+0.0' if abs(unclear['mean']) < 0.05 else format(unclear['mean'], '+.1f')} % (not established): "
                    "the two splits disagree.")
    assert splits_disagree(better, better) == "" and splits_disagree(unclear, unclear) == ""
    worse = paired_gain(plain, [p * 1.02 for p in plain])
    assert "(5 of 5 seeds: established better), on test -2.0 % (a loss)" in splits_disagree(worse, better)


def test_a_teacher_reading_other_lags_than_the_usual_one_marks_its_rows_and_folders():
    from evidence_rows import teacher_lags_folder, teacher_lags_label

    # the usual teacher of each data set: no mark, the folders of the committed rows
    assert teacher_lags_label("los-loop", None) == teacher_lags_label("los-loop", []) == ""
    assert teacher_lags_label("akl-pedestrians", ["1D", "7D"]) == teacher_lags_folder("akl-pedestrians", ["1D", "7D"]) == ""
    # any other teacher is named, and its folders stand apart from the usual teacher's cache
    assert teacher_lags_label("los-loop", ["1D"]) == ", privileged teacher (lags 1D)"
    assert teacher_lags_folder("los-loop", ["1D"]) == "-teacher-lags-1D"
    assert teacher_lags_label("akl-pedestrians", ["1D"]) == ", privileged teacher (lags 1D)"
    assert teacher_lags_label("akl-pedestrians", []) == ", window-only teacher"
    assert teacher_lags_folder("akl-pedestrians", None) == "-teacher-window-only"


def test_a_privileged_teacher_s_row_is_compared_with_the_usual_teacher_s_and_kept_out_of_the_single_teacher_bar():
    from evidence_compare import rows_by_student, teacher_bar
    from evidence_gaps import privileged_gap

    def rec(student: str, seed: int, t_val: float, t_mae: float, lags: list[str]) -> dict:
        return {"student": student, "seed": seed, "teacher_val": t_val, "teacher_mae": t_mae, "teacher_lags": lags,
                "plain_val": 3.0, "plain_mae": 3.4, "kd_val": 3.0, "kd_mae": 3.4, "teachers": ["gwnet"]}

    label = "stid-nb, privileged teacher (lags 1D)"
    usual = [rec("stid-nb", s, 2.9, 3.4, []) for s in range(3)]
    priv = [rec(label, s, 2.6 + 0.01 * s, 3.2, ["1D"]) for s in range(4)]  # seed 3: the other row lacks it
    result = {"dataset": "los-loop", "records": usual + priv}
    by = rows_by_student(result)
    assert privileged_gap(by[label], by, "los-loop") == (
        " This teacher's validation MAE is 2.610 against 2.900 for the usual teacher of the row `stid-nb` (-10.0 %), "
        "its test MAE 3.200 against 3.400 (-5.9 %); the plain students, trained alike in both rows, score 3.400 and "
        "3.400 (3 seeds both rows have). Its distilled student, against that row's: validation 3.000 against 3.000, "
        "+0.0 % (+0.00 to +0.00), lower on 0 of 3 seeds: not established (3 seeds, 5 needed); test 3.400 against 3.400, "
        "+0.0 % (+0.00 to +0.00), lower on 0 of 3 seeds: not established (3 seeds, 5 needed).")
    assert privileged_gap(by["stid-nb"], by, "los-loop") == "" and privileged_gap(by[label], {label: priv}, "los-loop") == ""
    # the single teacher's bar weighs the usual teacher only (the targets weigh the privileged one apart)
    bar = teacher_bar(result, by)
    assert bar["teacher_val"] == pytest.approx(2.9) and len(bar["records"]) == 3


def test_a_privileged_teacher_s_row_without_a_usual_teacher_row_is_compared_with_the_nearest_other_teacher():
    """No row of the same student with the usual teacher: the same row with the teacher whose lags share most of
    this one's (then the fewest of its own), never a row that differs in anything else."""
    from evidence_compare import rows_by_student
    from evidence_gaps import nearest_teacher_row, privileged_gap

    def rec(lags: list[str], seed: int, t_val: float, student_lags: str = "1D, 2D, 3D, 7D") -> dict:
        return {"student": f"stid, teachers stid-64, privileged teacher (lags {', '.join(lags)}), 30 epochs, reading "
                           f"lags {student_lags}", "seed": seed, "teacher_val": t_val, "teacher_mae": t_val + 1,
                "teacher_lags": lags, "plain_val": 41.7, "plain_mae": 43.4, "kd_val": 41.4, "kd_mae": 43.1,
                "teachers": ["stid-64"]}

    seven, six, far = ["1D", "2D", "3D", "7D", "14D"], ["1D", "2D", "7D", "14D"], ["1D", "28D"]
    records = ([rec(seven, s, 39.7) for s in range(5)] + [rec(six, s, 39.8) for s in range(5)]
               + [rec(far, s, 39.0) for s in range(5)] + [rec(six, s, 30.0, student_lags="1D, 7D") for s in range(5)])
    by = rows_by_student({"dataset": "akl-pedestrians", "records": records})
    label = records[0]["student"]
    assert nearest_teacher_row(by[label], by, "akl-pedestrians") is by[records[5]["student"]]  # 3 lags shared, not 1
    text = privileged_gap(by[label], by, "akl-pedestrians")
    assert text.startswith(" This teacher's validation MAE is 39.700 against 39.800 for the teacher reading lags 1D, "
                           "2D, 7D, 14D of the row `stid, teachers stid-64, privileged teacher (lags 1D, 2D, 7D, 14D), "
                           "30 epochs, reading lags 1D, 2D, 3D, 7D` (-0.3 %)")
    assert "30.000" not in text  # the row whose student reads other lags is another row
    alone = {label: by[label], records[-1]["student"]: by[records[-1]["student"]]}
    assert nearest_teacher_row(by[label], alone, "akl-pedestrians") is None and privileged_gap(by[label], alone,
                                                                                               "akl-pedestrians") == ""


def test_what_another_teacher_does_to_the_distilled_student_is_paired_by_seed_and_judged_by_the_gains_rule():
    from evidence_gaps import student_change

    def rec(seed: int, kd_val: float, kd_mae: float) -> dict:
        return {"seed": seed, "kd_val": kd_val, "kd_mae": kd_mae}

    other = [rec(s, 3.0 + 0.2 * s, 3.5 + 0.2 * s) for s in range(6)]  # a seed spread of several %
    # lower on validation by 10 % on every seed; on test by 1 % on two seeds and higher on the others
    rows = [rec(s, 0.9 * (3.0 + 0.2 * s), (3.5 + 0.2 * s) * (0.99 if s < 2 else 1.005)) for s in range(5)]
    text = student_change(rows, other, {0, 1, 2, 3, 4})  # seed 5: the other row's only
    assert text.startswith(" Its distilled student, against that row's: validation 3.060 against 3.400, +10.0 % "
                           "(+10.0 to +10.0), lower on 5 of 5 seeds: better; test ")
    assert "lower on 2 of 5 seeds: not established" in text
    assert student_change([{**rows[0], "kd_val": None}] + rows[1:], other, {0, 1, 2, 3, 4}) == ""  # no val score


def test_a_teacher_of_other_epochs_marks_its_rows_and_folders_and_is_compared_with_the_usual_one():
    from evidence_compare import rows_by_student, teacher_bar
    from evidence_gaps import teacher_epochs_gap
    from evidence_rows import USUAL_TEACHER_EPOCHS, teacher_epochs_folder
    from evidence_rows import teacher_epochs_label as label_of

    # the usual schedule (and the pinned preset's own, None): no mark, the folders of the committed rows
    assert label_of("los-loop", USUAL_TEACHER_EPOCHS["los-loop"]) == label_of("los-loop", None) == ""
    assert label_of("akl-pedestrians", None) == teacher_epochs_folder("los-loop", 40) == ""
    assert label_of("los-loop", 80) == ", teacher 80 epochs" and teacher_epochs_folder("los-loop", 80) == "-teacher-epochs-80"
    assert label_of("synthetic-traffic", 40) == ", teacher 40 epochs"  # its usual teacher trains 20

    def rec(student: str, seed: int, t_val: float, t_mae: float, epochs: int) -> dict:
        return {"student": student, "seed": seed, "teacher_val": t_val, "teacher_mae": t_mae, "teacher_epochs": epochs,
                "plain_val": 3.0, "plain_mae": 3.4 + 0.01 * seed, "kd_val": 3.0, "kd_mae": 3.4, "teachers": ["gwnet"]}

    longer = "stid-nb, privileged teacher (lags 1D), teacher 80 epochs"
    result = {"dataset": "los-loop", "records": [rec("stid-nb, privileged teacher (lags 1D)", s, 2.95, 3.39, 40)
                                                 for s in range(5)] + [rec(longer, s, 2.9, 3.3, 80) for s in range(2)]}
    by = rows_by_student(result)
    assert teacher_epochs_gap(by[longer], by, "los-loop") == (
        " This teacher's validation MAE is 2.900 against 2.950 for the teacher of 40 epochs of the row "
        "`stid-nb, privileged teacher (lags 1D)` (-1.7 %), its test MAE 3.300 against 3.390 (-2.7 %); the plain "
        "students, trained alike in both rows, score 3.405 and 3.405 (2 seeds both rows have)."
        " Its distilled student, against that row's: validation 3.000 against 3.000, +0.0 % (+0.00 to +0.00), lower "
        "on 0 of 2 seeds: not established (2 seeds, 5 needed); test 3.400 against 3.400, +0.0 % (+0.00 to +0.00), "
        "lower on 0 of 2 seeds: not established (2 seeds, 5 needed).")
    assert teacher_epochs_gap(by["stid-nb, privileged teacher (lags 1D)"], by, "los-loop") == ""
    # the single teacher's bar weighs the usual schedule only
    plain = {"dataset": "los-loop", "records": [rec("stid-nb", s, 2.99, 3.43, 40) for s in range(2)]
             + [rec("stid-nb, teacher 80 epochs", s, 2.5, 3.2, 80) for s in range(2)]}
    assert teacher_bar(plain, rows_by_student(plain))["teacher_val"] == pytest.approx(2.99)


def test_copies_of_the_main_teacher_join_its_count_and_train_on_its_schedule():
    """``--extra-teachers gwnet:101``: a copy of the main Graph WaveNet from another seed, on the main teacher's
    ``--teacher-epochs`` and inputs; the other extra teachers keep the data set's schedule, and the names of the
    ensembles measured before stay as they were (their records are matched by them)."""
    from evidence_train import ensemble_label, extra_teacher_config

    assert ensemble_label(["stid-64-nb", "gwnet:101", "gwnet:102"], False) == "3 gwnet + stid-64-nb"
    assert ensemble_label(["stid-nb:100", "stid-nb:101", "stid-nb:102", "stid-nb:103"], False) == "gwnet + 4 stid-nb"
    assert ensemble_label(["stid-64-nb"], True) == "stid-64-nb" and ensemble_label(["stid-32"], False) == "gwnet + stid"
    gw = extra_teacher_config("los-loop", "gwnet", 101, False, ["1D"], "bf16", 40, None, None)
    assert gw["teacher"] == [{"name": "gwnet", "epochs": 40, "inputs": {"lags": ["1D"]}}]
    assert gw["train"]["seed"] == 101 and gw["train"]["precision"] == "bf16"
    wide = extra_teacher_config("los-loop", "stid-64-nb", 0, False, None, None, 40, None, None)
    assert "epochs" not in wide["teacher"][0] and "inputs" not in wide["teacher"][0]


def test_a_row_with_another_alpha_is_compared_with_the_same_row_with_the_usual_one():
    from evidence_gaps import alpha_gap

    def rows(label, kd, alpha):
        return [{"seed": s, "student": label, "kd_val": kd - 0.4, "kd_mae": kd, "alpha": alpha} for s in range(5)]

    usual = rows("stid-nb, teachers 3 gwnet + stid-64-nb", 3.40, 0.5)
    teacher_only = rows("stid-nb, teachers 3 gwnet + stid-64-nb, alpha 0", 3.366, 0.0)
    by_student = {usual[0]["student"]: usual, teacher_only[0]["student"]: teacher_only}
    text = alpha_gap(teacher_only, by_student)
    assert text.startswith(" With alpha 0, the distilled student's validation MAE is 2.966 against 3.000 with "
                           "alpha 0.5") and "(-1.0 %, lower on 5 of 5; the 5 seeds both rows have" in text
    assert alpha_gap(usual, by_student) == ""


def test_a_row_on_its_own_schedule_is_compared_with_the_same_row_on_the_usual_one_whatever_follows_the_mark():
    from evidence_gaps import schedule_gap

    def rows(label, epochs, plain, kd):
        return [{"seed": s, "student": label, "student_epochs": epochs, "student_patience": 25 if epochs == 150 else 15,
                 "plain_mae": plain, "kd_mae": kd} for s in range(5)]

    base = rows("stid-nb, teachers 3 gwnet, alpha 0", 80, 3.43, 3.43)
    longer = rows("stid-nb, teachers 3 gwnet, 150 epochs, alpha 0", 150, 3.40, 3.36)
    by_student = {base[0]["student"]: base, longer[0]["student"]: longer}
    text = schedule_gap(longer, by_student)
    assert text.startswith(" With 150 epochs (patience 25) the plain student's test MAE is 3.400, against 3.430 with "
                           "the 80 epochs of the row `stid-nb, teachers 3 gwnet, alpha 0` (-0.9 %)")
    assert "the distilled student's 3.360 against 3.430 (-2.0 %)" in text
    assert schedule_gap(base, by_student) == ""


def test_a_row_whose_student_reads_the_calendar_is_compared_with_the_same_row_without_it():
    from evidence_gaps import CALENDAR_SUFFIX, calendar_gap
    from evidence_rows import STUDENTS

    # every calendar student's label is its twin's plus the mark, and the two differ only by the calendar
    marked = [s for s in STUDENTS if s.endswith(CALENDAR_SUFFIX)]
    assert marked
    for label in marked:
        model, params = STUDENTS[label]
        twin_model, twin_params = STUDENTS[label.removesuffix(CALENDAR_SUFFIX)]
        assert params.get("calendar") and model == twin_model
        assert {k: v for k, v in params.items() if k != "calendar"} == twin_params
    tail = ", teachers gwnet + stid-64-nb, privileged teacher (lags 1D)"
    base = [{"student": "mlp-nb-id" + tail, "seed": s, "plain_mae": 4.0, "kd_mae": 3.9} for s in range(4)]
    rows = [{"student": "mlp-nb-id-cal" + tail, "seed": s, "plain_mae": 3.6, "kd_mae": 3.4 + 0.1 * s}
            for s in range(1, 5)]
    by = {"mlp-nb-id" + tail: base, "mlp-nb-id-cal" + tail: rows}
    assert calendar_gap(rows, by) == (
        f" With the calendar the plain student's test MAE is 3.600, against 4.000 in the row `mlp-nb-id{tail}` "
        "(-10.0 %), and the distilled student's 3.600 against 3.900 (-7.7 %; the 3 seeds both rows have).")
    assert calendar_gap(base, by) == ""  # no calendar
    assert calendar_gap(rows, {"mlp-nb-id-cal" + tail: rows}) == ""  # no twin measured
    bare = [{**r, "student": "mlp-nb-id-cal"} for r in rows]  # a label without marks has its twin too
    assert "in the row `mlp-nb-id`" in calendar_gap(bare, {"mlp-nb-id": [{**b, "student": "mlp-nb-id"} for b in base]})


def test_a_row_of_another_student_size_is_compared_with_the_data_sets_own_student():
    from evidence_gaps import size_gap, sized_base
    from evidence_rows import STUDENTS

    sized = {label: sized_base(label) for label in STUDENTS if sized_base(label)}
    assert set(sized) == {"stid-8", "stid-32", "stid-48", "stid-nb-8", "stid-nb-32", "mlp-id-cal-16", "mlp-id-cal-256",
                          "mlp-id-cal-512", "mlp-nb-id-cal-16", "mlp-nb-id-cal-256"}
    for label, base in sized.items():  # a sized label is its base's model at another width
        assert STUDENTS[label][0] == STUDENTS[base][0]
    assert sized_base("stid-64") is None and sized_base("mlp-nb") is None  # no such student; no width
    tail = ", teachers stid-64, 30 epochs"

    def rows(label: str, params: int, plain: float, kd: float, seeds: range) -> list[dict]:
        return [{"student": label + tail, "seed": s, "plain_mae": plain, "kd_mae": kd, "teacher_mae": 40.0,
                 "params": {"teacher": 500_000, "student": params}, "machine": "m"} for s in seeds]

    base = rows("stid", 20_000, 44.0, 43.0, range(5))
    small = rows("stid-8", 5_000, 50.0, 45.0, range(1, 6))
    by = {"stid" + tail: base, "stid-8" + tail: small}
    assert size_gap(small, by) == (
        f" This student has 5,000 parameters against 20,000 in the row `stid{tail}` (0.25x): plain 50.000 against "
        "44.000 (+13.6 %), distilled 45.000 against 43.000 (+4.7 %); distillation's gain is +10.0 % against +2.3 %, "
        "and the distilled student keeps 50 % of the teacher's edge against 25 % (the 4 seeds both rows have).")
    assert size_gap(base, by) == ""  # the data set's own student
    assert size_gap(small, {"stid-8" + tail: small}) == ""  # its base row not measured
    same = rows("stid-32", 20_000, 44.0, 43.0, range(5))  # where stid is stid-32's size (Los-loop): nothing to say
    assert size_gap(same, {**by, "stid-32" + tail: same}) == ""
    above = rows("stid-32", 80_000, 39.0, 39.5, range(5))  # a student as good as its teacher has no edge to keep
    assert "has no edge of the teacher to keep" in size_gap(above, {**by, "stid-32" + tail: above})


def test_a_row_on_its_own_schedule_is_compared_with_the_same_row_on_another_schedule_of_its_own():
    from evidence_gaps import schedule_gap

    def rows(label, epochs, plain, kd):
        return [{"seed": s, "student": label, "student_epochs": epochs, "student_patience": 30 if epochs == 150 else 6,
                 "plain_mae": plain, "kd_mae": kd, "plain_val": plain - 2, "kd_val": kd - 2, "machine": "AMX"}
                for s in range(5)]

    short = rows("stid, teachers stid-64, 30 epochs, lr 0.008, started from the teacher", 30, 43.4, 43.2)
    longer = rows("stid, teachers stid-64, 150 epochs, lr 0.008, started from the teacher", 150, 42.9, 43.0)
    other = rows("stid, teachers stid-64, 30 epochs, lr 0.004, started from the teacher", 30, 44.0, 43.0)  # another rate
    by_student = {r[0]["student"]: r for r in (short, longer, other)}
    text = schedule_gap(longer, by_student)
    assert text.startswith(" With 150 epochs (patience 30) the plain student's test MAE is 42.900, against 43.400 with "
                           "the 30 epochs of the row `stid, teachers stid-64, 30 epochs, lr 0.008, started from the teacher`")
    assert "the distilled student's 43.000 against 43.200" in text
    # the student trained alone for longer against the one distilled on the shorter schedule
    assert text.endswith(" Trained alone for 150 epochs, the student's validation MAE is 40.900 against 41.200 distilled "
                         "for 30 (lower on 5 of 5 seeds), its test MAE 42.900 against 43.200.")
    assert schedule_gap(short, by_student).startswith(" With 30 epochs (patience 6)")  # and the other way round
    # rows measured on two machines say so, in both comparisons (other kernels: other numbers, teacher included)
    elsewhere = [{**r, "machine": "no AMX"} for r in longer]
    text = schedule_gap(elsewhere, {**by_student, longer[0]["student"]: elsewhere})
    assert text.count("measured on 2 machines, AMX and no AMX, whose CPU kernels round differently") == 2


def test_extra_teachers_of_their_own_schedule_are_compared_with_the_same_teacher_on_the_usual_one():
    from evidence_compare import rows_by_student
    from evidence_gaps import teacher_epochs_gap

    def rec(student: str, seed: int, t_val: float, extra: int | None) -> dict:
        return {"student": student, "seed": seed, "teacher_val": t_val, "teacher_mae": t_val + 1, "teacher_epochs": None,
                "extra_teacher_epochs": extra, "plain_val": 41.0, "plain_mae": 43.4, "kd_val": 40.8, "kd_mae": 43.0,
                "teachers": ["stid"]}

    usual = "stid-nodrop, teachers stid-64, 60 epochs"
    shorter = "stid-nodrop, teachers stid-64, extra teachers 20 epochs, 60 epochs"
    result = {"dataset": "akl-pedestrians", "records": [rec(usual, s, 39.75, None) for s in range(5)]
              + [rec(shorter, s, 39.74, 20) for s in range(5)]}
    by = rows_by_student(result)
    text = teacher_epochs_gap(by[shorter], by, "akl-pedestrians")
    assert text.startswith(" This teacher's validation MAE is 39.740 against 39.750 for the teacher of the data set's "
                           f"schedule of the row `{usual}` (-0.0 %)")
    assert "score 43.400 and 43.400 (5 seeds both rows have)" in text
    assert teacher_epochs_gap(by[usual], by, "akl-pedestrians") == ""  # the usual schedule has nothing to set against
