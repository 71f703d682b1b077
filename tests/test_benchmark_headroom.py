"""The learning-curve extrapolation of ``benchmarks/headroom.py``: the headroom it reports is arithmetic on
three measured errors, so it is checked on curves whose answer is known."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import headroom  # noqa: E402
from headroom import SHARES, beyond_data, block_starts, by_row, measured_gains, power_law  # noqa: E402


@pytest.mark.parametrize("a, b, c", [(3.0, 2.0, 0.5), (1.5, 0.4, 1.0), (40.0, 25.0, 0.3)])
def test_power_law_recovers_the_floor_and_exponent_of_an_exact_curve(a, b, c):
    n = [share * 1000 for share in SHARES]  # a quarter, a half and all of the data
    errors = [a + b * size**-c for size in n]
    fit = power_law(n, errors)
    assert fit is not None
    assert fit["c"] == pytest.approx(c)
    assert fit["floor"] == pytest.approx(a)
    assert fit["reducible"] == pytest.approx(b * n[-1] ** -c)


@pytest.mark.parametrize("errors", [
    [3.0, 3.1, 3.2],  # more data, more error
    [3.2, 3.1, 3.1],  # flat at the end
    [3.3, 3.2, 3.0],  # falling faster as data grows: no power law with c > 0
])
def test_power_law_refuses_curves_it_cannot_extrapolate(errors):
    assert power_law([250, 500, 1000], errors) is None


@pytest.mark.parametrize("a, b, c", [(3.0, 2.0, 0.5), (1.5, 0.4, 1.0), (40.0, 25.0, 2.5)])
def test_power_law_fits_unevenly_spaced_sizes(a, b, c):
    n = [292, 555, 1388]  # windows of blocks thinned 1 in 4 and 1 in 2, and of the whole period
    fit = power_law(n, [a + b * size**-c for size in n])
    assert fit is not None
    assert fit["c"] == pytest.approx(c, rel=1e-6)
    assert fit["floor"] == pytest.approx(a, rel=1e-6)


def test_power_law_refuses_a_curve_straight_in_log_n():
    # a drop proportional to the step in log n is the limit c -> 0: no positive exponent fits
    n = [292, 555, 1388]
    errors = [5.0 - 0.3 * math.log(size) for size in n]
    assert power_law(n, errors) is None
    assert power_law(n, [errors[0] + 1e-3, *errors[1:]]) is not None  # a little more curvature: it fits


def test_block_starts_keep_windows_wholly_inside_every_kth_block():
    lo, span, block = 10, 4, 8
    starts = np.arange(lo, lo + 40 - span + 1)  # every window of a 40-step period from step 10
    kept = block_starts(starts, lo, span, block, every=2)
    # blocks [10, 18), [26, 34), [42, 50) are kept (the 1st, 3rd and 5th); a window fits where it starts at
    # most 4 steps in
    assert kept.tolist() == [10, 11, 12, 13, 14, 26, 27, 28, 29, 30, 42, 43, 44, 45, 46]
    assert block_starts(starts, lo, span, block, every=1).tolist() == starts.tolist()


def test_whole_period_records_join_every_curve_of_their_student():
    base = {"student": "mlp", "epochs": 80, "patience": 15, "seed": 0}
    records = [base | {"share": 1.0}, base | {"share": 0.5}, base | {"share": 0.25},
               base | {"share": 0.5, "layout": "blocks", "block": "8h"},
               base | {"share": 0.25, "layout": "blocks", "block": "8h"}]
    rows = by_row(records)
    assert sorted(rows) == ["mlp, 80 epochs (patience 15)", "mlp, 80 epochs (patience 15), blocks of 8h"]
    for shares in rows.values():
        assert sorted(shares) == [0.25, 0.5, 1.0]
        assert shares[1.0] == [records[0]]
    assert rows["mlp, 80 epochs (patience 15), blocks of 8h"][0.5] == [records[3]]


def test_a_lag_reading_student_has_curves_of_its_own():
    base = {"student": "stid", "epochs": 30, "patience": 6, "seed": 0, "share": 1.0}
    rows = by_row([base, base | {"student_lags": ["1D", "7D"]}, base | {"student_lags": []}])
    assert sorted(rows) == ["stid, 30 epochs (patience 6)", "stid, 30 epochs (patience 6), reading lags 1D, 7D"]
    assert len(rows["stid, 30 epochs (patience 6)"][1.0]) == 2  # no lags and an empty list are the same student


def test_measured_gains_are_those_of_this_very_student_on_the_whole_period(tmp_path, monkeypatch):
    """Every evidence row of the same model, lags and epochs with all the data counts, the main teacher's row
    first; rows of another student, other lags, another schedule, less data or an earlier rule do not."""
    import json

    def rec(label, plain, kd, **extra):
        return {"student": label, "plain_mae": plain, "kd_mae": kd, "student_epochs": 30, "seed": 0,
                "teacher_mae": 35.0, **extra}

    lags = {"student_lags": ["1D", "7D"]}
    records = [rec("stid, teachers stid-32, 30 epochs, reading lags 1D, 7D", 40.0, 39.6, seed=2, **lags),  # +1.0 %
               rec("stid, 30 epochs, reading lags 1D, 7D", 40.0, 41.0, **lags),  # -2.5 %, the main teacher
               rec("stid, 30 epochs, reading lags 1D, 7D", 50.0, 51.0, seed=1, **lags),  # -2.0 %: mean -2.25 %
               rec("stid, 30 epochs", 50.0, 45.0),  # no lags: another student
               rec("stid, teachers stid-32, 60 epochs, reading lags 1D", 40.0, 30.0, student_lags=["1D"]),
               rec("stid, teachers stid-32, 30 epochs, reading lags 1D, 7D, 7d of history", 40.0, 30.0, history="7d",
                   **lags),
               rec("stid, 30 epochs, 50 % outages, reading lags 1D, 7D", 40.0, 30.0, outages=0.5, **lags),
               rec("stid, teachers gwnet + stid, 30 epochs, reading lags 1D, 7D", 40.0, 30.0, earlier_rule=True,
                   **lags),
               rec("mlp, 30 epochs, reading lags 1D, 7D", 40.0, 30.0, **lags),
               rec("stid, teachers 4 stid-32, 30 epochs, reading lags 1D, 7D", 40.0, 40.0, student_epochs=60, **lags)]
    (tmp_path / "evidence-akl-pedestrians.json").write_text(json.dumps({"dataset": "akl-pedestrians",
                                                                       "records": records}))
    monkeypatch.setattr(headroom, "RESULTS", tmp_path)
    gains = measured_gains("akl-pedestrians", "stid", 30, ["1D", "7D"])
    assert list(gains) == ["stid, 30 epochs, reading lags 1D, 7D", "stid, teachers stid-32, 30 epochs, reading lags 1D, 7D"]
    assert gains["stid, 30 epochs, reading lags 1D, 7D"] == pytest.approx(-2.25)
    assert gains["stid, teachers stid-32, 30 epochs, reading lags 1D, 7D"] == pytest.approx(1.0)
    assert measured_gains("akl-pedestrians", "stid", 30) == {"stid, 30 epochs": pytest.approx(10.0)}
    assert measured_gains("los-loop", "stid", 30) == {}  # no evidence file
    # the row measured again with both students at another learning rate, where the plain one does better on
    # validation: it counts once, each student at its own best rate
    records += [rec("stid, teachers stid-32, 30 epochs, lr 0.008, reading lags 1D, 7D", 39.7, 39.5, student_lr=0.008,
                    plain_val=37.0, kd_val=37.5, seed=2, **lags)]
    records[0].update(plain_val=38.0, kd_val=37.4)
    (tmp_path / "evidence-akl-pedestrians.json").write_text(json.dumps({"dataset": "akl-pedestrians",
                                                                       "records": records}))
    gains = measured_gains("akl-pedestrians", "stid", 30, ["1D", "7D"])
    fair = ("stid, teachers stid-32, 30 epochs, reading lags 1D, 7D, each student at its best learning rate "
            "(plain 0.008, distilled 0.002)")
    assert set(gains) == {"stid, 30 epochs, reading lags 1D, 7D", fair}
    assert gains[fair] == pytest.approx(100 * (39.7 - 39.6) / 39.7)  # plain at 0.008 against distilled at 0.002
    # a curve of students at their own rate (--student-lr) reads the rows at that rate alone
    at_rate = measured_gains("akl-pedestrians", "stid", 30, ["1D", "7D"], lr=0.008)
    assert at_rate == {"stid, teachers stid-32, 30 epochs, lr 0.008, reading lags 1D, 7D":
                       pytest.approx(100 * (39.7 - 39.5) / 39.7)}
    assert measured_gains("akl-pedestrians", "stid", 30, ["1D", "7D"], lr=0.004) == {}


def test_a_student_at_its_own_rate_has_curves_of_its_own():
    base = {"student": "stid", "epochs": 30, "patience": 6, "share": 1.0, "seed": 0, "student_lags": ["1D", "7D"]}
    rows = by_row([base, base | {"student_lr": 0.008}, base | {"student_lr": None}])
    assert sorted(rows) == ["stid, 30 epochs (patience 6), reading lags 1D, 7D",
                            "stid, 30 epochs (patience 6), reading lags 1D, 7D, lr 0.008"]
    assert len(rows["stid, 30 epochs (patience 6), reading lags 1D, 7D"][1.0]) == 2


def test_a_gain_beyond_what_doubling_the_data_gave_is_said_only_when_it_is():
    flat = {"test": [46.4, 44.68, 44.73]}  # the last doubling raised the error by 0.1 %
    assert "more than the last doubling of the training windows gave (-0.1 %)" in beyond_data(flat, 0.6)
    assert beyond_data(flat, -0.5) == ""  # a loss is never "more"
    steep = {"test": [4.6, 4.0, 3.6]}  # the last doubling gave 11.1 %
    assert beyond_data(steep, 0.6) == "" and beyond_data(steep, 12.0) != ""


def test_a_gain_beyond_the_extrapolated_headroom_is_said_as_such(monkeypatch):
    """A row that gains more than the power law leaves (0.25 % here) is not said to realise "280 %" of it."""
    windows = {0.25: 4580, 0.5: 9183, 1.0: 18390}
    shares = {s: [{"student": "stid", "epochs": 30, "patience": 6, "share": s, "seed": 0, "train_windows": n,
                   "test_mae": 43.0 + 2000 / n, "day_of_week": True, "layout": "last" if s < 1 else None}]
              for s, n in windows.items()}
    head = 100 * (2000 / 18390) / (43.0 + 2000 / 18390)
    monkeypatch.setattr(headroom, "measured_gains", lambda *a: {"stid, teachers stid-64": 0.7})
    text = headroom.verdict("akl-pedestrians", "stid", shares)
    assert f"{head:.1f} % below the whole period's" in text
    assert f"The best row gains more than that headroom (+0.7 % against {head:.1f} %)." in text
    assert "realises" not in text
    monkeypatch.setattr(headroom, "measured_gains", lambda *a: {"stid, teachers stid-64": 0.2})
    assert f"The best row realises {100 * 0.2 / head:.0f} % of that headroom." in headroom.verdict(
        "akl-pedestrians", "stid", shares)
    assert headroom.percent(0.0374) == "0.037" and headroom.percent(0.25) == "0.2"


def test_a_floor_of_early_stopping_makes_curves_and_gains_of_its_own(tmp_path, monkeypatch):
    """A curve whose students could not stop early before an epoch (``--min-epochs``) is another training: a row
    of its own, and only the evidence rows with the same floor count as its distillation gains."""
    import json

    base = {"student": "stid-nodrop", "epochs": 60, "patience": 12, "share": 1.0, "seed": 0}
    rows = by_row([base, base | {"min_epochs": 40}, base | {"min_epochs": None}])
    assert sorted(rows) == ["stid-nodrop, 60 epochs (patience 12)",
                            "stid-nodrop, 60 epochs (patience 12), early stop from epoch 40"]
    assert len(rows["stid-nodrop, 60 epochs (patience 12)"][1.0]) == 2
    rec = {"plain_mae": 40.0, "student_epochs": 60, "seed": 0, "teacher_mae": 35.0}
    records = [rec | {"student": "stid-nodrop, 60 epochs, early stop from epoch 40", "kd_mae": 39.6,
                      "student_min_epochs": 40},
               rec | {"student": "stid-nodrop, 60 epochs", "kd_mae": 39.0, "student_min_epochs": 0}]
    (tmp_path / "evidence-akl-pedestrians.json").write_text(json.dumps({"dataset": "akl-pedestrians",
                                                                       "records": records}))
    monkeypatch.setattr(headroom, "RESULTS", tmp_path)
    assert measured_gains("akl-pedestrians", "stid-nodrop", 60, min_epochs=40) == {
        "stid-nodrop, 60 epochs, early stop from epoch 40": pytest.approx(1.0)}
    assert measured_gains("akl-pedestrians", "stid-nodrop", 60) == {"stid-nodrop, 60 epochs": pytest.approx(2.5)}


def test_the_floor_of_early_stopping_is_an_epoch_of_the_students_own_schedule():
    from evidence_rows import min_epochs_problem

    flags = ("--min-epochs", "--schedule")
    assert min_epochs_problem(None, None, flags) is None
    assert min_epochs_problem(40, (60, 12), flags) is None
    assert min_epochs_problem(40, None, flags) == "--min-epochs needs --schedule (the floor is of the students' own schedule)"
    assert "1 to its EPOCHS, 30" in min_epochs_problem(40, [30, 6], flags)
    assert min_epochs_problem(0, (60, 12)).startswith("--student-min-epochs: an epoch")


def test_a_students_record_from_its_job_is_the_one_it_gets_in_turn(tmp_path, monkeypatch, one_torch_thread):
    """``--workers 2``: each (student, share, seed) trains in a process of its own from a JSON job and writes its
    record for the parent; the student and its scores are the ones the curve gets trained in turn."""
    import json

    import evidence_rows

    tiny = {"data": {"source": "builtin", "name": "synthetic-traffic", "simulator": {"nodes": 16, "days": 3, "seed": 3}},
            "train": {"epochs": 30, "patience": 8, "max_batches": 100}}
    monkeypatch.setitem(evidence_rows.DATASETS, "synthetic-traffic", tiny)
    args = {"dataset": "synthetic-traffic", "student": "linear", "share": 0.5, "seed": 1, "quick": True,
            "history": "1d", "schedule": (30, 6), "block": None, "lags": None, "lr": 0.004, "min_epochs": None}
    in_turn = headroom.run_one(runs=tmp_path / "in-turn", **args)
    job = json.loads(json.dumps({**args, "runs": str(tmp_path / "apart"), "record": str(tmp_path / "r.json"),
                                 "workers": 2}))  # as a fresh interpreter reads it
    headroom.headroom_job(job, slot=0)
    apart = json.loads((tmp_path / "r.json").read_text())
    assert apart["workers"] == 2 and apart["schedule"] == [30, 6] and apart["student_lr"] == 0.004
    for key in ("val_mae", "test_mae", "train_windows", "best_epoch", "history", "share"):
        assert apart[key] == in_turn[key], key
