"""The default-run section's sentence on the plan: its estimate beside the models' training time, and where the
models trained side by side (``train.workers``) the estimate of the training's wall time."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import default_run  # noqa: E402


def _result(at_once: int) -> dict:
    plan = [{"role": "teacher", "estimate_seconds": 100.0, "at_once": at_once, "threads": 3 - at_once},
            {"role": "teacher", "estimate_seconds": 120.0, "at_once": at_once, "threads": 3 - at_once},
            {"role": "student", "estimate_seconds": 40.0, "at_once": at_once, "threads": 3 - at_once},
            {"role": "student", "estimate_seconds": 30.0, "at_once": at_once, "threads": 3 - at_once}]
    models = {"t1": {"role": "teacher", "train_seconds": 110.0}, "t2": {"role": "teacher", "train_seconds": 130.0},
              "s_kd": {"role": "student_kd", "train_seconds": 50.0},
              "s_plain": {"role": "student_plain", "train_seconds": 30.0},
              "last_value": {"role": "baseline", "train_seconds": 0.0}}
    return {"plan": plan, "metrics": {"models": models}}


def test_one_at_a_time_the_sums_are_the_whole_story():
    line = default_run.plan_line(_result(1))
    assert line == ("The plan printed before training estimated 4 min 50 s of training; the 4 models trained for "
                    "5 min 20 s (the estimate is 0.91x the time taken).\n\n")


def test_side_by_side_it_adds_the_wall_time_estimate():
    line = default_run.plan_line(_result(2))
    assert "estimated 4 min 50 s of training; the 4 models trained for 5 min 20 s (the estimate is 0.91x" in line
    # the longer teacher (120 s), then the longer student (40 s)
    assert line.endswith("the teachers 2 at once at 1 thread(s) each and the students 2 at once at 1 thread(s) each "
                         "(`train.workers`), the plan's estimate of the training's wall time was 2 min 40 s.\n\n")


def test_a_plan_recorded_before_workers_reads_as_one_at_a_time():
    result = _result(1)
    for row in result["plan"]:
        del row["at_once"], row["threads"]
    assert "wall time" not in default_run.plan_line(result)


def test_the_run_one_at_a_time_is_set_beside_it_from_its_numbers():
    result = _result(2)
    result["wall_seconds"], result["metrics"]["models"]["t1"]["test"] = 240.0, {"mae": 40.5}
    for name, mae in (("t2", 40.8), ("s_kd", 42.7), ("s_plain", 43.3)):
        result["metrics"]["models"][name]["test"] = {"mae": mae}
    result["one_at_a_time"] = {"wall_seconds": 300.0, "load_before": 0.5, "models": {
        "t1": {"role": "teacher", "train_seconds": 100.0, "test_mae": 40.5},
        "t2": {"role": "teacher", "train_seconds": 98.0, "test_mae": 40.8},
        "s_kd": {"role": "student_kd", "train_seconds": 33.0, "test_mae": 42.674},
        "s_plain": {"role": "student_plain", "train_seconds": 37.0, "test_mae": 43.3}}}
    line = default_run.one_at_a_time_line(result)
    assert "**5 min 0 s** at load average 0.5 (the teachers 100 and 98 s, the students 33 and 37 s; side by side " \
           "above: 110 and 130 s and 50 and 30 s). Side by side took 0.80x its wall time" in line
    assert line.endswith("the same test MAE to the last digit for `t1`, `t2` and `s_plain`; another for `s_kd` "
                         "42.674 against 42.700.\n\n")
    assert default_run.one_at_a_time_line(_result(2)) == ""  # not asked for
