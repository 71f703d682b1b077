"""The students' distances to their teacher (``benchmarks/fidelity.py``): a row's sentence is computed from its
seeds' distances, and a row without them says nothing of them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from evidence_compare import row_summary  # noqa: E402
from fidelity import fidelity_gap  # noqa: E402


def _row(seed: int, kd: tuple[float, float], plain: tuple[float, float]) -> dict:
    return {"seed": seed, "kd_to_teacher": {"train": kd[0], "test": kd[1]},
            "plain_to_teacher": {"train": plain[0], "test": plain[1]}}


def test_the_sentence_gives_the_approach_on_each_split_and_the_share_that_holds_on_test():
    # seeds' means: distilled 1.5 / 2.7, plain 2.0 / 3.0: 25 % nearer where taught, 10 % on test, 40 % of it kept
    rows = [_row(0, (1.4, 2.6), (2.0, 2.9)), _row(1, (1.6, 2.8), (2.0, 3.1))]
    text = fidelity_gap(rows, plain=4.0, teacher=None)
    assert "distilled student is 1.500 on the training windows and 2.700 on test" in text
    assert "the plain student 2.000 and 3.000" in text
    assert "25.0 % nearer where it was taught and 10.0 % nearer on test" in text
    assert "its approach on test is 40 % of that on the windows it was taught" in text


def test_a_student_that_moved_away_from_its_teacher_is_said_to_and_gets_no_share():
    text = fidelity_gap([_row(0, (2.2, 3.3), (2.0, 3.0))], plain=4.0, teacher=None)
    assert "10.0 % further where it was taught and 10.0 % further on test" in text and "its approach" not in text


def test_a_row_whose_seeds_lack_the_distances_gets_no_sentence():
    rows = [_row(0, (1.4, 2.6), (2.0, 2.9)), {"seed": 1}]
    assert fidelity_gap(rows, 4.0, 3.7) == "" and fidelity_gap([], 4.0, 3.7) == ""


def test_the_teacher_s_edge_is_given_as_a_share_of_how_much_the_plain_student_differs_from_it():
    def gap(rows: list[dict]) -> str:  # as the evidence page calls it: the row's plain student and teacher
        row = row_summary({"dataset": "los-loop"}, rows)
        return fidelity_gap(rows, row["plain"], row["teacher"])

    rows = [{**_row(0, (1.4, 2.6), (2.0, 3.0)), "plain_mae": 4.0, "kd_mae": 3.9, "teacher_mae": 3.7},
            {**_row(1, (1.6, 2.8), (2.0, 3.0)), "plain_mae": 4.0, "kd_mae": 3.9, "teacher_mae": 3.7}]
    text = gap(rows)
    assert "differ from the teacher's by 3.000 while the teacher's MAE is 0.300 lower: its edge is 10 %" in text
    assert text.endswith("outweigh those where the student is by that share).")
    ensemble = [{**r, "ensemble_mae": 2.0} for r in rows]  # an ensemble's own forecast is what was taught
    assert "its edge is 67 % of their difference (" in gap(ensemble)
    behind = [{**r, "teacher_mae": 4.2} for r in rows]
    assert "edge" not in gap(behind)


def test_the_test_distance_measured_in_the_evaluation_pass_is_the_one_the_benchmark_would_measure(finished_run):
    """``to_teacher`` with the run's metrics.json reads each student's test distance from it (measured while the
    student was scored) and measures only the training windows; without it, both. The two agree."""
    import json

    import pytest
    import yaml

    from fidelity import to_teacher
    from stkd.config import parse_config
    from stkd.pipeline import prepare_task
    from stkd.runs import load_trained

    cfg_path, run = finished_run
    task = prepare_task(parse_config(yaml.safe_load(cfg_path.read_text())))
    models = {t.name: t for t in load_trained(run, task.wd)}
    signal = task.teacher_signal(run, [t for t in models.values() if t.role == "teacher"])
    kd, plain = models["stid_kd"], models["stid_plain"]
    measured = json.loads((run / "metrics.json").read_text())["models"]
    streamed = to_teacher(signal, task.wd, kd, plain)
    read = to_teacher(signal, task.wd, kd, plain, measured)
    for key, name in (("kd_to_teacher", "stid_kd"), ("plain_to_teacher", "stid_plain")):
        assert read[key]["test"] == measured[name]["to_teacher"]["value"]
        assert read[key]["test"] == pytest.approx(streamed[key]["test"], rel=1e-5)
        assert read[key]["train"] == streamed[key]["train"] > 0
    # a student without a measured distance (an older metrics.json) is measured on test too
    older = {n: {k: v for k, v in e.items() if k != "to_teacher"} for n, e in measured.items()}
    assert to_teacher(signal, task.wd, kd, plain, older) == streamed
