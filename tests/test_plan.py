"""The plan printed before training names every model, its epochs and which setting gave them."""

from __future__ import annotations

import yaml

from stkd.cli import main
from stkd.config import parse_config
from stkd.pipeline import prepare_task
from stkd.plan import format_plan, training_plan


def test_the_plan_says_which_epochs_won_and_estimates_the_time(los_small_config):
    raw = los_small_config()
    raw["teacher"] = {**raw["teacher"], "epochs": 3}
    raw["train"] = {**raw["train"], "epochs": 1}
    rows = training_plan(prepare_task(parse_config(raw)))
    assert [r["role"] for r in rows] == ["teacher", "student", "student"]
    assert rows[0]["epochs"] == 3 and "its own epochs (3; train.epochs is 1)" in rows[0]["epochs_from"]
    assert rows[1]["epochs"] == 1 and rows[1]["epochs_from"] == "train.epochs"
    assert all(r["batches_per_epoch"] == 2 and r["estimate_seconds"] > 0 for r in rows)  # max_batches 2
    text = format_plan(rows)
    assert text.startswith("plan: 3 model(s)") and "stid (distilled)" in text and "stid (alone)" in text


def test_stkd_run_prints_the_plan_before_training(tmp_path, los_small_config, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(los_small_config()))
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "plan: 3 model(s)" in err and err.index("plan:") < err.index("teacher gwnet")


def test_the_plan_counts_the_augmented_inputs_of_the_distilled_student(los_small_config):
    """With teacher-labelled augmented inputs the distilled student's step runs it twice (clean and augmented
    windows) and, labelled online, every teacher once more: its estimate says so; the plain one's does not."""
    raw = los_small_config()
    raw["distill"] = {**raw.get("distill", {}), "augment": ["mask"], "augment_weight": 1.0, "augment_labels": "online"}
    teacher, distilled, alone = training_plan(prepare_task(parse_config(raw)))
    assert (distilled["model"], alone["model"]) == ("stid (distilled)", "stid (alone)")
    assert distilled["step_seconds"] > 2 * alone["step_seconds"]  # 2 student passes + the teacher's forward
    assert distilled["estimate_seconds"] > alone["estimate_seconds"]
    raw["distill"]["augment_weight"] = 0.0
    raw["distill"]["augment"] = []
    _, distilled, alone = training_plan(prepare_task(parse_config(raw)))
    assert distilled["step_seconds"] == alone["step_seconds"]  # without augmented inputs: the same step
