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
    precision = parse_config(los_small_config()).train.precision
    assert f"training forward at {precision} (train.precision {precision})" in err


def test_a_run_records_where_each_model_trained_and_the_report_names_it(tmp_path, los_small_config):
    """metrics.json says which machine scored the models and each trained model's card where it trained (the
    same seed repeats a run only on the same kernels); the report says it in one line."""
    from stkd.io import read_json
    from stkd.machine import compute_facts, describe, same_kernels

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(los_small_config()))
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert same_kernels(metrics["scored_on"], compute_facts())
    trained = {n: m["trained_on"] for n, m in metrics["models"].items() if m["role"] != "baseline"}
    assert set(trained) == {"gwnet", "stid_kd", "stid_plain"}
    for name, machines in trained.items():
        assert len(machines) == 1 and same_kernels(machines[0], compute_facts())
        assert read_json(tmp_path / "run" / "models" / name / "model.json")["trained_on"] == machines
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"- **Machine**: trained and scored on {describe(trained['stid_plain'][0])}." in report


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


def test_with_workers_the_plan_times_steps_at_the_shared_threads_and_estimates_the_wall_time(los_small_config):
    """``train.workers: 2``: the two teachers train at once, then the two students; the plan times each model's
    steps at its share of the cores and its estimate is the longer of each pair, teachers then students."""
    import torch

    from stkd.plan import wall_seconds
    from stkd.processes import threads_per_worker

    raw = los_small_config()
    raw["teacher"] = [{"name": "linear", "seed": 1}, {"name": "mlp", "params": {"hidden": [8]}}, {"name": "linear"}]
    raw["train"] = {**raw["train"], "workers": 2}
    rows = training_plan(prepare_task(parse_config(raw)))
    assert [(r["role"], r["at_once"]) for r in rows] == [("teacher", 2)] * 3 + [("student", 2)] * 2
    assert {r["threads"] for r in rows} == {threads_per_worker(2, None)}
    t = [r["estimate_seconds"] for r in rows]
    # three teachers on two places: the third starts where the first of the two ends
    teachers = max(t[0] + t[2], t[1]) if t[0] <= t[1] else max(t[0], t[1] + t[2])
    assert wall_seconds(rows) == teachers + max(t[3], t[4])
    assert wall_seconds(rows) < sum(t)
    text = format_plan(rows)
    assert f"teachers 2 at once at {threads_per_worker(2, None)} thread(s) each; students 2 at once" in text
    raw["train"] = {**raw["train"], "workers": 1}
    rows = training_plan(prepare_task(parse_config(raw)))
    assert {(r["at_once"], r["threads"]) for r in rows} == {(1, torch.get_num_threads())}
    assert wall_seconds(rows) == sum(r["estimate_seconds"] for r in rows)
    assert "at once" not in format_plan(rows)
