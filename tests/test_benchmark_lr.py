"""``benchmarks/evidence.py``'s rows at other learning rates of the students (``--student-lr``): each student is
set at the rate where its mean validation MAE is lowest, and the gain is computed between those two."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from evidence_gaps import lr_family, lr_gap  # noqa: E402
from evidence_rows import lr_label  # noqa: E402

BASE = "stid, teachers stid-64, 30 epochs"


def _rows(label: str, lr: float | None, plain_val: float, kd_val: float, plain: list[float], kd: list[float]):
    return [{"seed": s, "student": label, "student_lr": lr, "plain_val": plain_val + s, "kd_val": kd_val + s,
             "plain_mae": p, "kd_mae": k, "teacher_mae": 42.0} for s, (p, k) in enumerate(zip(plain, kd))]


def _by_student():
    # the data set's rate (no student_lr: older records) and two others; the plain student is best at 0.008, the
    # distilled one at the data set's 0.002
    return {BASE: _rows(BASE, None, 44.0, 41.0, [45.0, 45.2, 44.8], [44.0, 44.1, 43.9]),
            BASE + lr_label(0.008): _rows(BASE + lr_label(0.008), 0.008, 42.0, 41.5, [44.0, 44.2, 43.8],
                                          [43.0, 43.1, 42.9]),
            BASE + lr_label(0.016): _rows(BASE + lr_label(0.016), 0.016, 43.0, 42.0, [44.5, 44.6, 44.4],
                                          [43.5, 43.6, 43.4]),
            "mlp, 30 epochs": _rows("mlp, 30 epochs", None, 50.0, 49.0, [51.0] * 3, [50.0] * 3)}


def test_a_family_holds_the_rows_that_differ_by_the_rate_alone_lowest_first():
    by = _by_student()
    family = lr_family(by[BASE + lr_label(0.016)], by, "akl-pedestrians")
    assert list(family) == [0.002, 0.008, 0.016]  # the data set's rate for the record without one
    assert family[0.008] is by[BASE + lr_label(0.008)]
    assert lr_family(by["mlp, 30 epochs"], by, "akl-pedestrians") == {}  # measured at one rate only


def test_each_student_at_its_own_best_rate_on_validation():
    by = _by_student()
    text = lr_gap(by[BASE], by, "akl-pedestrians")
    assert "the plain student does best at 0.008, the distilled one at 0.002" in text
    # plain at 0.008 (44.0, 44.2, 43.8) against distilled at 0.002 (44.0, 44.1, 43.9): no gain to establish
    assert "not established" in text and "+0.0 %" in text
    # at the shared rate the same row would have shown a clear gain: the sentence is not that one
    assert "lowers the error" not in text


def test_the_sentence_goes_with_the_data_sets_rate_only():
    by = _by_student()
    assert lr_gap(by[BASE + lr_label(0.008)], by, "akl-pedestrians") == ""
    assert lr_gap(by["mlp, 30 epochs"], by, "akl-pedestrians") == ""


def test_the_comparisons_count_a_family_once_with_each_student_at_its_best_rate():
    from evidence_compare import row_comparisons

    by = _by_student()
    comparisons = row_comparisons({"dataset": "akl-pedestrians"}, by)
    fair = BASE + ", each student at its best learning rate (plain 0.008, distilled 0.002)"
    assert set(comparisons) == {fair, "mlp, 30 epochs"}
    base, row = comparisons[fair]
    assert base == BASE
    assert row["plain"] == pytest.approx(44.0) and row["kd"] == pytest.approx(44.0)  # 0.008's plain, 0.002's kd
    assert not row["gain"]["established"]
    assert row["val_vs_teacher"] is None  # these records keep no teacher validation MAE
    for rows in by.values():
        for r in rows:
            r["teacher_val"] = 40.0
    row = row_comparisons({"dataset": "akl-pedestrians"}, by)[fair][1]
    # the distilled student at 0.002 (validation 41, 42, 43) against the teacher's 40 on validation
    assert row["val_vs_teacher"] == pytest.approx(42.0 / 40.0) and row["vs_teacher"] == pytest.approx(44.0 / 42.0)


def test_the_teacher_s_validation_mae_is_the_ensemble_s_where_recorded_and_none_where_a_seed_lacks_it():
    from evidence_gaps import teacher_val_mean

    rows = [{"seed": 0, "teacher_val": 3.0}, {"seed": 1, "teacher_val": 3.2, "ensemble_val": 2.8}]
    assert teacher_val_mean(rows) == pytest.approx(2.9)
    assert teacher_val_mean(rows, seeds={0}) == pytest.approx(3.0)
    assert teacher_val_mean([*rows, {"seed": 2}]) is None  # an older record: no row judged on part of its seeds


def test_a_row_holding_the_same_plain_student_is_set_against_that_student_at_its_best_rate():
    """Rows that differ in their teacher alone hold the same plain student (the same test MAE per seed): where
    another row measured it at other rates, this row's distilled student (measured at one rate) is set against
    the plain student at its best rate, in the sentence and in the comparisons."""
    from evidence_compare import row_comparisons

    by = _by_student()
    other = "stid, teachers 4 stid-64, 30 epochs"
    by[other] = [{**r, "student": other, "kd_mae": r["kd_mae"] - 0.5, "kd_val": r["kd_val"] - 0.5}
                 for r in by[BASE]]  # the same plain student, a better distilled one
    text = lr_gap(by[other], by, "akl-pedestrians")
    assert f"Its plain student is the row `{BASE}`'s" in text and "it does best at 0.008" in text
    assert "the distilled student here was measured at 0.002 only" in text
    comparisons = row_comparisons({"dataset": "akl-pedestrians"}, by)
    fair = other + ", each student at its best learning rate (plain 0.008, distilled 0.002)"
    _, row = comparisons[fair]
    assert row["plain"] == pytest.approx(44.0) and row["kd"] == pytest.approx(43.5)
    assert other not in comparisons  # not also at its own shared rate
    # a row whose plain student differs keeps its own comparison
    lone = "stid, teachers gwnet, 30 epochs"
    by[lone] = [{**r, "student": lone, "plain_mae": r["plain_mae"] + 1.0} for r in by[BASE]]
    assert lr_gap(by[lone], by, "akl-pedestrians") == ""
    assert lone in row_comparisons({"dataset": "akl-pedestrians"}, by)


def test_a_row_measured_with_and_without_dropout_counts_once_each_student_as_validation_chose():
    """On a small data set dropping dropout weakens the plain student while the teacher regularises the distilled
    one: the comparison sets each student the way its validation MAE is lower, not the two without dropout."""
    from evidence_compare import row_comparisons

    kept = "stid-nb, teachers stid-64-nb"
    dropped = "stid-nb-nodrop, teachers stid-64-nb"
    by = {kept: _rows(kept, None, 3.03, 2.99, [3.44, 3.45, 3.44], [3.41, 3.41, 3.42]),
          dropped: _rows(dropped, None, 3.09, 3.00, [3.50, 3.51, 3.49], [3.40, 3.41, 3.41]),
          "mlp, 30 epochs": _rows("mlp, 30 epochs", None, 50.0, 49.0, [51.0] * 3, [50.0] * 3)}
    comparisons = row_comparisons({"dataset": "los-loop"}, by)
    fair = kept + ", each student with or without dropout as validation chose (plain with, distilled with)"
    assert set(comparisons) == {fair, "mlp, 30 epochs"}  # the row without dropout is not counted alone
    base, row = comparisons[fair]
    assert base == kept
    assert row["plain"] == pytest.approx(3.4433, abs=1e-3) and row["kd"] == pytest.approx(3.4133, abs=1e-3)
    # where validation prefers the distilled student without dropout, that one is set against the plain with it
    by[dropped] = _rows(dropped, None, 3.09, 2.90, [3.50, 3.51, 3.49], [3.30, 3.31, 3.31])
    (label, (_, row)), = ((k, v) for k, v in row_comparisons({"dataset": "los-loop"}, by).items() if k != "mlp, 30 epochs")
    assert label.endswith("(plain with, distilled without)") and row["kd"] == pytest.approx(3.3067, abs=1e-3)
    by[dropped] = by[dropped][:0]  # no shared seed: each row stands alone
    assert kept in row_comparisons({"dataset": "los-loop"}, {k: v for k, v in by.items() if v})


def test_a_family_without_the_data_sets_rate_is_spoken_for_by_its_lowest_rate_and_counted_once():
    """A student added after the data set's students moved to their own rate is measured at other rates only: its
    lowest rate's row carries the sentence, and the comparisons count the family once, named without a rate."""
    from evidence_compare import row_comparisons

    nodrop = "stid-nodrop, teachers stid-64, 60 epochs"
    by = {nodrop + lr_label(lr): _rows(nodrop + lr_label(lr), lr, pv, kv, plain, kd)
          for lr, pv, kv, plain, kd in ((0.004, 41.3, 40.8, [43.6] * 3, [43.0] * 3),
                                        (0.008, 41.0, 40.7, [43.4] * 3, [43.0] * 3),
                                        (0.016, 41.6, 41.1, [43.8] * 3, [43.4] * 3))}
    low, mid = (by[nodrop + lr_label(lr)] for lr in (0.004, 0.008))
    text = lr_gap(low, by, "akl-pedestrians")
    assert "the plain student does best at 0.008, the distilled one at 0.008" in text
    assert "0.004: plain 42.300, distilled 41.800" in text  # means over seeds 0-2 of 41.3 + seed
    assert lr_gap(mid, by, "akl-pedestrians") == ""  # the lowest rate speaks for the family
    comparisons = row_comparisons({"dataset": "akl-pedestrians"}, by)
    assert list(comparisons) == [nodrop + ", each student at its best learning rate (plain 0.008, distilled 0.008)"]
    _, row = next(iter(comparisons.values()))
    assert row["plain"] == pytest.approx(43.4) and row["kd"] == pytest.approx(43.0)  # both at 0.008, not 0.004's gap
