"""The targets block (``benchmarks/targets.py``): each target's line follows the result files it reads, so a
row that meets a target turns it to "met", and only established gains are listed as where distillation pays."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import targets  # noqa: E402


def _record(seed: int, student: str, plain: float, kd: float, **extra) -> dict:
    return {"seed": seed, "student": student, "teacher": "gwnet", "teacher_mae": 3.0, "teacher_val": 2.7,
            "plain_mae": plain, "kd_mae": kd, "plain_val": 3.0, "kd_val": 3.0, "last_value_mae": 4.4,
            "command": "python benchmarks/evidence.py", **extra}


def _evidence(dataset: str, records: list[dict]) -> dict:
    return {"section": f"evidence-{dataset}", "kind": "evidence", "dataset": dataset, "records": records,
            "command": "python benchmarks/evidence.py"}


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(targets, "RESULTS", tmp_path)

    def write(section: str, blob: dict) -> None:
        (tmp_path / f"{section}.json").write_text(json.dumps(blob))

    return write


def _lines(sources: list[str]) -> dict[str, dict]:
    lines, _ = targets.assess({"command": "python benchmarks/targets.py", "sources": sources})
    return {x["target"]: x for x in lines}


def test_a_row_that_meets_the_ratio_target_turns_its_line_to_met_and_is_listed_as_a_gain(results):
    gaining = [_record(s, "stid-nb", 3.40 + 0.01 * s, 3.10 + 0.01 * s) for s in range(5)]  # -8.8 %, every seed
    flat = [_record(s, "mlp", 3.90 + 0.01 * s, 3.90 + 0.01 * s + (0.002 if s % 2 else -0.002)) for s in range(5)]
    results("evidence-los-loop", _evidence("los-loop", gaining + flat))
    got = _lines(["evidence-los-loop"])
    stid, mlp = got["Los-loop: distilled / plain, stid students"], got["Los-loop: distilled / plain, mlp students"]
    assert stid["met"] and stid["measured"].startswith("0.91") and "`stid-nb`" in stid["where"]
    assert not mlp["met"]
    near = got["Los-loop: distilled / teacher, stid students"]
    # 3.12 against the teacher's 3.0: past 1.03; untaught, the student was 3.42
    assert near["measured"] == ("1.040 (its plain student 1.140; validation 1.111, the only row measured on "
                                "validation)") and not near["met"]
    gains, losses = targets.gains_and_losses(targets.assess({"command": "c", "sources": ["evidence-los-loop"]})[1])
    assert [g for g, _ in gains] == ["evidence-los-loop, row `stid-nb`: +8.8 % (5/5 seeds)"] and not losses


def test_a_ratio_target_is_judged_on_the_row_chosen_on_validation_not_the_lowest_on_test(results):
    # ``lucky`` meets the target on test but gains little on validation; ``steady`` is lower on validation
    lucky = [_record(s, "stid-nb, teachers a", 3.40 + 0.01 * s, 3.10 + 0.01 * s, plain_val=3.0, kd_val=2.97)
             for s in range(5)]
    steady = [_record(s, "stid-nb, teachers b", 3.40 + 0.01 * s, 3.30 + 0.01 * s, plain_val=3.0, kd_val=2.85)
              for s in range(5)]
    results("evidence-los-loop", _evidence("los-loop", lucky + steady))
    stid = _lines(["evidence-los-loop"])["Los-loop: distilled / plain, stid students"]
    assert "`stid-nb, teachers b`" in stid["where"] and not stid["met"]
    assert stid["measured"].startswith("0.971 ") and "validation 0.950, the lowest of the 2 rows" in stid["measured"]
    assert "the lowest on test, 0.912, is the row `stid-nb, teachers a` (validation 0.990), not counted" in stid["measured"]
    # the same rows with the validation the other way round: the lucky row is chosen, and meets the target
    for r in lucky:
        r["kd_val"] = 2.7
    results("evidence-los-loop", _evidence("los-loop", lucky + steady))
    stid = _lines(["evidence-los-loop"])["Los-loop: distilled / plain, stid students"]
    assert "`stid-nb, teachers a`" in stid["where"] and stid["met"] and "not counted" not in stid["measured"]


def test_the_distilled_against_teacher_target_is_judged_on_the_row_closest_to_its_teacher_on_validation(results):
    # ``lucky`` is closest to its teacher on test (3.05 / 3.0) but not on validation (2.9 / 2.7); ``steady`` is
    # further on test (3.08) and closer on validation (2.75 / 2.7)
    lucky = [_record(s, "stid-nb, teachers a", 3.40, 3.05, kd_val=2.9) for s in range(5)]
    steady = [_record(s, "stid-nb, teachers b", 3.40, 3.08, kd_val=2.75) for s in range(5)]
    results("evidence-los-loop", _evidence("los-loop", lucky + steady))
    near = _lines(["evidence-los-loop"])["Los-loop: distilled / teacher, stid students"]
    assert "`stid-nb, teachers b`" in near["where"] and near["met"]
    assert near["measured"].startswith("1.027 (its plain student 1.133; validation 1.019, the lowest of the 2 rows")
    assert "the lowest on test, 1.017, is the row `stid-nb, teachers a` (validation 1.074), not counted" in near["measured"]
    # an ensemble's own validation MAE counts where recorded: the teacher ahead on validation moves the choice
    for r in steady:
        r["ensemble_val"] = 2.5
    results("evidence-los-loop", _evidence("los-loop", lucky + steady))
    near = _lines(["evidence-los-loop"])["Los-loop: distilled / teacher, stid students"]
    assert "`stid-nb, teachers a`" in near["where"] and "not counted" not in near["measured"]


def test_rows_without_validation_are_chosen_only_where_no_row_has_it():
    rows = {"a": {"val_ratio": None, "ratio": 0.90}, "b": {"val_ratio": 0.99, "ratio": 0.98},
            "c": {"val_ratio": 0.97, "ratio": 0.99}}
    assert targets.chosen_on_validation(rows) == "c"
    assert targets.chosen_on_validation({"a": rows["a"], "d": {"val_ratio": None, "ratio": 0.95}}) == "a"
    assert targets.chosen_on_validation({"b": rows["b"], "e": {"val_ratio": 0.99, "ratio": 0.97}}) == "e"  # a tie


def _gain_record(method: str, seed: int, test_mae: float) -> dict:
    return {"method": method, "seed": seed, "val_mae": test_mae - 0.4, "test_mae": test_mae,
            "teachers": [] if method.startswith("plain") else ["gwnet"], "command": "python benchmarks/distill_gain.py"}


PRESET_LAGS = targets.default_student_lags("akl-pedestrians")  # what the Auckland default's student reads
PRESET_LR = targets.default_student_lr("akl-pedestrians")  # and the learning rate it trains at
LAGGED = f"reading lags {', '.join(PRESET_LAGS)}"  # how an evidence row names such a student


def test_the_auckland_default_s_student_reads_the_preset_s_lags_and_los_loop_s_its_window_only():
    from stkd.presets import default_preset_dict

    assert PRESET_LAGS == default_preset_dict()["student"]["inputs"]["lags"] == ["1D", "2D", "3D", "7D"]
    assert targets.default_student_lags("los-loop") == []


def test_a_method_of_the_per_method_table_counts_like_an_evidence_row(results):
    flat = [_record(s, f"stid, {LAGGED}", 45.0 + s, 45.1 + s, student_lags=PRESET_LAGS, student_lr=PRESET_LR)
            for s in range(5)]
    results("evidence-akl-pedestrians", _evidence("akl-pedestrians", flat))
    plain = [_gain_record("plain (no teacher)", s, 45.0 + 0.1 * s) for s in range(5)]
    bounded = [_gain_record("teacher-bounded", s, 42.6 + 0.1 * s) for s in range(5)]  # -5.3 %, every seed
    worse = [_gain_record("response a=0.3", s, 46.0 + 0.1 * s) for s in range(5)]
    section = f"distill-gain-akl-pedestrians-stid-lags-{'-'.join(PRESET_LAGS)}"
    results(section, {"section": section, "kind": "distill_gain", "dataset": "akl-pedestrians", "student": "stid",
                      "student_lags": PRESET_LAGS, "student_lr": PRESET_LR,
                      "teacher_fit": {"train": 40.0, "val": 40.5, "test": 42.7},
                      "records": plain + bounded + worse})
    sources = ["evidence-akl-pedestrians", section]
    line = _lines(sources)["Auckland default: distilled / plain, stid students"]
    assert line["met"] and line["measured"].startswith("0.947 (+5.3 %")
    assert line["where"] == f"{section}, method `teacher-bounded`"
    gains, losses = targets.gains_and_losses(targets.assess({"command": "c", "sources": sources})[1])
    assert [g for g, _ in gains] == [f"{section}, method `teacher-bounded`: +5.3 % (5/5 seeds)"]
    # the method that made the student worse on every seed is listed apart, as a loss
    assert [g for g, _ in losses] == [f"{section}, method `response a=0.3`: -2.2 % (0/5 seeds)"]
    # without the per-method table the evidence row is the best, and it meets nothing
    only = _lines(["evidence-akl-pedestrians"])["Auckland default: distilled / plain, stid students"]
    assert not only["met"] and only["where"] == f"row `stid, {LAGGED}`"


def test_a_student_that_reads_other_inputs_than_the_default_s_lists_its_gains_but_meets_no_same_data_target(results):
    """On the Auckland counts the default's student reads the preset's lags: the window-only STID (the default
    until 2026-12-04) and its per-method table are another student there."""
    lagged = [_record(s, f"stid, {LAGGED}", 45.0 + s, 45.1 + s, student_lags=PRESET_LAGS, student_lr=PRESET_LR)
              for s in range(5)]
    window_only = [_record(s, "stid", 57.0 + s, 53.0 + s) for s in range(5)]  # -6.8 %, every seed
    # the same student at the rate every model had until 2026-12-06 (no student_lr: train.lr): another training
    earlier_lr = [_record(s, f"stid, 30 epochs, {LAGGED}", 47.0 + s, 44.0 + s, student_lags=PRESET_LAGS)
                  for s in range(5)]
    results("evidence-akl-pedestrians", _evidence("akl-pedestrians", lagged + window_only + earlier_lr))
    plain = [_gain_record("plain (no teacher)", s, 57.0 + 0.1 * s) for s in range(5)]
    bounded = [_gain_record("teacher-bounded", s, 54.0 + 0.1 * s) for s in range(5)]  # -5.2 %, every seed
    section = "distill-gain-akl-pedestrians-stid"
    results(section, {"section": section, "kind": "distill_gain", "dataset": "akl-pedestrians", "student": "stid",
                      "records": plain + bounded})
    sources = ["evidence-akl-pedestrians", section]
    line = _lines(sources)["Auckland default: distilled / plain, stid students"]
    assert not line["met"] and line["where"] == f"row `stid, {LAGGED}`"
    gains, _ = targets.gains_and_losses(targets.assess({"command": "c", "sources": sources})[1])
    assert PRESET_LR is not None and PRESET_LR != 0.002
    assert sorted(g for g, _ in gains) == [f"{section}, method `teacher-bounded`: +5.2 % (5/5 seeds)",
                                           f"evidence-akl-pedestrians, row `stid, 30 epochs, {LAGGED}`: "
                                           "+6.1 % (5/5 seeds)",
                                           "evidence-akl-pedestrians, row `stid`: +6.8 % (5/5 seeds)"]


def test_rows_with_less_data_do_not_count_for_the_same_data_targets(results):
    short = [_record(s, "stid-nb, 1d of history", 4.1, 3.5, history="1d") for s in range(5)]
    short += [_record(s, "stid-nb, reading lags 1D", 4.1, 3.5, student_lags=["1D"]) for s in range(5)]  # another student
    whole = [_record(s, "stid-nb", 3.4 + 0.01 * s, 3.41 + 0.01 * s) for s in range(5)]
    results("evidence-los-loop", _evidence("los-loop", short + whole))
    line = _lines(["evidence-los-loop"])["Los-loop: distilled / plain, stid students"]
    assert not line["met"] and "`stid-nb`" in line["where"] and "1d" not in line["where"] and "1D" not in line["where"]


def test_the_teacher_bar_takes_the_best_teacher_and_the_best_plain_student_on_validation(results):
    recs = [_record(s, "stid-nb", 3.4, 3.4) for s in range(3)]
    ens = [_record(s, "stid-nb, teachers gwnet + 4 stid-nb", 3.4, 3.4, ensemble_mae=3.2, ensemble_val=2.5,
                   teachers=["gwnet", "stid-nb"]) for s in range(3)]
    alone = [_record(s, "stid-nb, teachers stid-32", 3.4, 3.4, teacher_val=2.6, teachers=["stid"], teacher_mae=1.0)
             for s in range(3)]  # an extra teacher alone: a teacher for the best-teacher line, not the single one
    results("evidence-los-loop", _evidence("los-loop", recs + ens + alone))
    results("recipe-los-loop", {"kind": "recipe", "runs": [
        {"variant": "stid-long", "val_mae": 2.9, "test_mae": 3.5},
        {"variant": "stid-32-yesterday", "val_mae": 3.0, "test_mae": 3.45}], "baselines": {"last": {"test": 4.4}}})
    got = _lines(["recipe-los-loop", "evidence-los-loop"])
    bar = got["Los-loop: the best teacher against the best plain student (validation MAE)"]
    # the ensemble (2.5) against the recipe's stid-long (2.9): 13.8 % below
    assert bar["met"] and bar["measured"].startswith("13.8 % below") and "ensemble" in bar["where"]
    assert got["Los-loop: plain STID, seed 0 (test MAE)"]["measured"] == "3.500"
    assert got["Los-loop: the teacher against the last value (test MAE)"]["measured"].startswith("0.68x")
    # an extra teacher that taught alone and is the best on validation is the best teacher
    better = [r | {"teacher_val": 2.0} for r in alone]
    results("evidence-los-loop", _evidence("los-loop", recs + ens + better))
    bar = _lines(["recipe-los-loop", "evidence-los-loop"])[
        "Los-loop: the best teacher against the best plain student (validation MAE)"]
    assert bar["measured"].startswith("31.0 % below (2.000 against 2.900)")
    assert bar["where"].startswith("the teacher of the row `stid-nb, teachers stid-32`")


@pytest.mark.parametrize("label, extra", [("stid-nb, privileged teacher (lags 1D)", {"teacher_lags": ["1D"]}),
                                          ("stid-nb, teacher 80 epochs", {"teacher_epochs": 80})])
def test_a_teacher_of_other_inputs_or_epochs_counts_as_a_teacher_for_the_best_teacher_line(results, label, extra):
    recs = [_record(s, "stid-nb", 3.4, 3.4, teacher_epochs=40) for s in range(3)]
    priv = [_record(s, label, 3.4, 3.4, teacher_val=2.4, **extra) for s in range(3)]
    results("evidence-los-loop", _evidence("los-loop", recs + priv))
    results("recipe-los-loop", {"kind": "recipe", "runs": [{"variant": "stid-long", "val_mae": 2.9, "test_mae": 3.5}],
                                "baselines": {"last": {"test": 4.4}}})
    got = _lines(["recipe-los-loop", "evidence-los-loop"])
    bar = got["Los-loop: the best teacher against the best plain student (validation MAE)"]
    assert bar["measured"].startswith("17.2 % below (2.400 against 2.900)") and bar["met"]
    assert bar["where"].startswith(f"the teacher of the row `{label}`")
    # the single teacher's lines still read the usual teacher only (teacher_val 2.7 in _record)
    results("evidence-los-loop", _evidence("los-loop", recs))
    alone = _lines(["recipe-los-loop", "evidence-los-loop"])[
        "Los-loop: the best teacher against the best plain student (validation MAE)"]
    assert alone["measured"].startswith("6.9 % below (2.700 against 2.900)")


def test_the_room_a_teacher_leaves_says_when_the_target_asks_a_student_to_beat_its_teacher(results):
    """teacher / plain is the distilled / plain of a student that took all of its teacher's edge: above the
    target, the target asks the student to beat its teacher; below it, the teacher leaves room."""
    close = [_record(s, "stid-nb", 3.10, 3.08, teacher_mae=3.0) for s in range(5)]  # teacher/plain 0.968 > 0.95
    far = [_record(s, "mlp", 4.00, 3.96, teacher_mae=3.0) for s in range(5)]  # 0.750: room enough
    results("evidence-los-loop", _evidence("los-loop", close + far))
    room = targets.assess_blobs(targets.source_blobs({"command": "c", "sources": ["evidence-los-loop"]}))[2]
    stid, mlp = room
    assert stid.startswith("- Los-loop, stid students:") and "reach 0.968 of its plain self" in stid
    # 0.95 * 3.10 = 2.945: 1.8 % below the teacher's 3.0
    assert "above the 0.95 asked" in stid and "1.8 % better than its teacher" in stid
    assert "reach 0.750" in mlp and "below the 0.95 asked" in mlp and "reached 0.990 at best" in mlp
    text = targets.render({"command": "c", "sources": ["evidence-los-loop"]})
    assert stid in text and mlp in text


def test_the_room_is_also_given_for_teachers_that_read_no_history_the_student_does_not(results):
    """A privileged teacher's edge may be lags the student never reads; the bound is given again among teachers
    whose lags the student reads too, so the part a student could compute from its own past stands apart."""
    # the default student on Los-loop reads its window only (the targets count that student)
    privileged = [_record(s, "stid-nb, privileged teacher (lags 1D, 14D)", 3.40, 3.38, teacher_mae=3.0,
                          teacher_lags=["1D", "14D"]) for s in range(5)]  # 0.882
    same = [_record(s, "stid-nb, teachers stid-64-nb", 3.40, 3.39, teacher_mae=3.3, teacher_lags=[])
            for s in range(5)]  # 0.971: above the 0.95 asked
    results("evidence-los-loop", _evidence("los-loop", privileged + same))
    (stid,) = targets.assess_blobs(targets.source_blobs({"command": "c", "sources": ["evidence-los-loop"]}))[2]
    assert "reach 0.882 of its plain self at best (row `stid-nb, privileged teacher (lags 1D, 14D)`" in stid
    assert ("Among teachers that read no lag the student did not" in stid and "would allow 0.971 (row "
            "`stid-nb, teachers stid-64-nb`: teacher 3.300, plain 3.400), above the 0.95 asked." in stid)

    results("evidence-los-loop", _evidence("los-loop", same))  # the best teacher is itself one of them
    (stid,) = targets.assess_blobs(targets.source_blobs({"command": "c", "sources": ["evidence-los-loop"]}))[2]
    assert stid.endswith("That teacher read no lag the student did not.") and "Among" not in stid


def test_the_teacher_lead_of_the_default_run_is_set_beside_the_preset_s_other_outcomes(results):
    """One run meeting the "teacher clearly ahead" target is met; the kernels benchmark's runs that ended with
    other numbers (another seed, other kernels, fp32) are set beside it, each outcome once."""
    def models(teacher, kd, plain):
        return {"stid": {"role": "teacher", "test": {"mae": teacher}},
                "stid_kd": {"role": "student_kd", "test": {"mae": kd}},
                "stid_plain": {"role": "student_plain", "test": {"mae": plain}},
                "last_value": {"role": "baseline", "test": {"mae": 99.0}}}

    def arm(label, teacher, kd, plain):
        return {"arm": label, "models": {n: {"role": v["role"], "test_mae": v["test"]["mae"]}
                                         for n, v in models(teacher, kd, plain).items() if v["role"] != "baseline"}}

    results("default-run", {"kind": "default_run", "wall_seconds": 170.0, "metrics": {"models": models(42.7, 44.6, 45.0)}})
    target = "Default run: the teacher ahead of the plain student (test MAE)"
    alone = _lines(["default-run"])[target]
    assert alone["met"] and alone["where"] == "the default run" and alone["measured"].startswith("5.1 % below")
    results("kernels", {"kind": "kernels", "arms": [
        arm("this machine", 42.7, 44.6, 45.0), arm("this machine, again", 42.7, 44.6, 45.0),
        arm("this machine, seed 1", 42.6, 44.2, 44.7), arm("this machine, fp32", 42.9, 44.6, 44.9),
        arm("AVX2 only", 42.9, 44.6, 44.9), arm("AMX capped away, bf16 forced", 42.0, 44.5, 45.0)]})
    both = _lines(["default-run", "kernels"])[target]
    assert both["met"]  # the default run's own line decides
    assert ("the 3 other outcomes of the preset in `kernels.json` (another seed, other kernels, fp32): 4.5 % to "
            "6.7 % below, at least 5 % in 1 of 3") in both["where"]
    # a preset whose distilled student changed since the kernels benchmark: the same teacher and plain student
    # are still the default run's own outcome, not another
    results("default-run", {"kind": "default_run", "wall_seconds": 170.0, "metrics": {"models": models(42.7, 43.8, 45.0)}})
    assert "the 3 other outcomes" in _lines(["default-run", "kernels"])[target]["where"]
    # a preset whose plain student changed (e.g. its learning rate): no kernels run repeats the default run, so the
    # kernels file ran an earlier preset and none of its outcomes is counted as this one's
    results("default-run", {"kind": "default_run", "wall_seconds": 170.0, "metrics": {"models": models(42.7, 43.6, 43.9)}})
    later = _lines(["default-run", "kernels"])[target]
    assert "other outcomes" not in later["where"] and "ran the preset of an earlier commit" in later["where"]
    assert not later["met"] and later["measured"].startswith("2.7 % below")


def test_the_block_and_the_headline_list_the_comparisons_where_distillation_is_established_worse(results):
    worse = [_record(s, "stid-nb", 3.40 + 0.01 * s, 3.50 + 0.01 * s) for s in range(5)]  # +2.9 % error, every seed
    noisy = [_record(s, "mlp", 3.90, 3.90 + (0.05 if s % 2 else -0.05)) for s in range(5)]  # not established
    results("evidence-los-loop", _evidence("los-loop", worse + noisy))
    result = {"command": "python benchmarks/targets.py", "sources": ["evidence-los-loop"]}
    block = targets.render(result)
    assert "No comparison on the page establishes distillation better than the same student alone." in block
    assert ("Where distillation is established worse than the same student alone (1 comparisons of the page):\n\n"
            "- evidence-los-loop, row `stid-nb`: -2.9 % (0/5 seeds)") in block
    assert "row `mlp`" not in block.split("established worse")[1]
    assert ", and worse in 1 (" in targets.headline(result)
