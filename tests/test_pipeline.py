"""End to end on a slice of Los-loop through the command line: ``stkd run`` -> metrics.json, report and
plots; ``stkd distill`` from the saved teacher reuses its soft-label cache; ``stkd evaluate`` repeats the
numbers; resume of a finished run; a teacher run from other data is refused."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stkd.cli import main
from stkd.config import load_config, parse_config, to_dict
from stkd.models.registry import build_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROLES = {"gwnet": "teacher", "stid_kd": "student_kd", "stid_plain": "student_plain",
         "last_value": "baseline", "seasonal_avg": "baseline", "ridge": "baseline"}


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, los_small_config):
    """One ``stkd run``; the metrics it wrote, read before any later test rewrites them."""
    root = tmp_path_factory.mktemp("e2e")
    raw = los_small_config()
    cfg_path = root / "los.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    run = root / "run"
    assert main(["run", "--config", str(cfg_path), "--out", str(run), "--quiet"]) == 0
    return {"root": root, "config": cfg_path, "raw": raw, "run": run,
            "metrics": json.loads((run / "metrics.json").read_text()),
            "files": _files(run)}


@pytest.fixture(scope="module")
def distilled(e2e):
    """``stkd distill`` of an MLP from the run's saved teacher."""
    run, out = e2e["run"], e2e["root"] / "mlp"
    cache_before = _files(run / "cache")
    rc = main(["distill", "--teacher-run", str(run), "--out", str(out), "--set", "student.name=mlp",
               "--set", "student.params.hidden=[16]", "--quiet"])
    assert rc == 0
    return {"out": out, "cache_before": cache_before, "metrics": json.loads((out / "metrics.json").read_text())}


def _check_block(block: dict, where: str) -> None:
    for key in ("mae", "rmse", "mape"):
        assert isinstance(block[key], float) and math.isfinite(block[key]), (where, key)
    assert 0 < block["mae"] <= block["rmse"], where
    assert 0 < block["mape"] < 1000, where


def test_metrics_json_has_the_design_schema_and_sane_values(e2e):
    m = e2e["metrics"]
    assert m["task"] == "forecast"
    assert m["dataset"] == {"name": m["dataset"]["name"], "nodes": 20, "steps": 576, "freq": "5min"}
    assert {k: v["role"] for k, v in m["models"].items()} == ROLES
    for name, entry in m["models"].items():
        test = entry["test"]
        _check_block(test, name)
        assert set(test["horizons"]) == {"3", "6", "12"}
        for h, block in test["horizons"].items():
            _check_block(block, f"{name}@{h}")
        assert entry["train_seconds"] is not None and entry["train_seconds"] >= 0
        for key in ("params", "latency_ms_batch1", "throughput_windows_per_s"):
            assert key in entry
        if name == "seasonal_avg":  # two days of data: 1.4 training days hold no two days, no two weeks
            assert entry["period"] == "none"
        if entry["role"] != "baseline":
            assert isinstance(entry["params"], int) and entry["params"] > 0
            assert 0 < entry["latency_ms_batch1"] < 10_000 and entry["throughput_windows_per_s"] > 0
            assert entry["train_seconds"] > 0
    models = m["models"]
    assert models["stid_kd"]["params"] == models["stid_plain"]["params"] < models["gwnet"]["params"]
    # how closely each student follows its one teacher: only students have it, measured against that teacher
    assert {n for n, e in models.items() if "to_teacher" in e} == {"stid_kd", "stid_plain"}
    pred = lambda name: np.load(e2e["run"] / "predictions" / f"{name}.npy")  # noqa: E731
    mask = np.load(e2e["run"] / "predictions" / "mask.npy").astype(bool)
    for student in ("stid_kd", "stid_plain"):
        assert models[student]["to_teacher"]["teacher"] == "gwnet"
        expected = float(np.abs(pred(student) - pred("gwnet"))[mask].mean())
        assert models[student]["to_teacher"]["value"] == pytest.approx(expected, rel=1e-4)
    # speeds in mph: any forecast is off by at most tens of mph on average
    assert all(e["test"]["mae"] < 40 for e in models.values())
    # the graph teacher reads the other sensors, the per-sensor STID its own; baselines say nothing
    assert {n: e.get("reads_other_nodes") for n, e in models.items() if e["role"] != "baseline"} == {
        "gwnet": True, "stid_kd": False, "stid_plain": False}


def test_run_directory_holds_report_plots_config_and_models(e2e):
    run = e2e["run"]
    report = (run / "report.md").read_text()
    for name in ROLES:
        assert name in report
    # the graph teacher's edge from the other sensors, which this student cannot read: named, with what to do
    assert ("- **Read by the teacher, not by the student: the other sensors**: `gwnet` forecasts each sensor from "
            "the others too, while `stid_kd` reads its own sensor only") in report
    assert "`student.params: {neighbours: 4}` gives `stid_kd`" in report
    plots = sorted((run / "plots").glob("*.png"))
    assert {p.name for p in plots} >= {"error_by_horizon.png", "forecast_vs_truth.png", "sensor_map.png",
                                       "training_curves.png", "distillation_gain.png"}
    for p in plots:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 2000, p.name
    cfg = load_config(run / "config.yaml")
    assert to_dict(cfg) == to_dict(parse_config(e2e["raw"]))
    for name in ("gwnet", "stid_kd", "stid_plain"):
        mdir = run / "models" / name
        assert {"model.safetensors", "model.json", "log.csv"} <= {p.name for p in mdir.iterdir()}
        assert not list(mdir.glob("*.pt")) and not list(mdir.glob("*.pth")) and not list(mdir.glob("*.pkl"))
        lines = (mdir / "log.csv").read_text().strip().splitlines()
        assert len(lines) == 1 + 2  # header + one row per epoch
    assert len(list((run / "cache").iterdir())) == 1


def test_distill_reuses_the_teachers_cache_and_trains_no_teacher(e2e, distilled):
    run, out = e2e["run"], distilled["out"]
    assert sorted(p.name for p in (out / "models").iterdir()) == ["mlp_kd", "mlp_plain"]
    assert not (out / "cache").exists()
    assert _files(run / "cache") == distilled["cache_before"]  # no new key, nothing rewritten
    models_now = {k: v for k, v in _files(run).items() if k.startswith("models")}
    assert models_now == {k: v for k, v in e2e["files"].items() if k.startswith("models")}  # teacher untouched
    m = distilled["metrics"]
    assert {k: v["role"] for k, v in m["models"].items()} == {
        "gwnet": "teacher", "mlp_kd": "student_kd", "mlp_plain": "student_plain",
        "last_value": "baseline", "seasonal_avg": "baseline", "ridge": "baseline"}
    # the same teacher on the same data scores the same
    for key in ("mae", "rmse", "mape"):
        assert m["models"]["gwnet"]["test"][key] == pytest.approx(e2e["metrics"]["models"]["gwnet"]["test"][key],
                                                                  rel=1e-6)
    card = json.loads((out / "models" / "mlp_kd" / "model.json").read_text())
    assert card["hparams"]["hidden"] == [16] and card["teachers"] == ["gwnet"]
    assert card["teacher_weights"] is None  # one teacher: no ensemble weights
    assert (out / "report.md").is_file()


def test_weighted_ensemble_weights_teachers_by_inverse_validation_mae(los_small_config, tmp_path):
    from stkd.pipeline import prepare_task
    from stkd.runs import Trained
    from stkd.steps import model_spec

    raw = los_small_config()
    weighted = parse_config({**raw, "distill": {**raw.get("distill", {}), "ensemble": "weighted"}})
    task = prepare_task(weighted)
    model = build_model("linear", model_spec(task.wd))
    teachers = [Trained("linear_1", "teacher", model, "linear", None, {"mae": 2.0}),
                Trained("linear_2", "teacher", model, "linear", None, {"mae": 4.0})]
    assert task.teacher_signal(tmp_path, teachers).weights == pytest.approx([2 / 3, 1 / 3])
    assert task.teacher_signal(tmp_path, teachers[:1]).weights is None
    mean = prepare_task(parse_config({**raw, "distill": {"ensemble": "mean"}}))
    assert mean.teacher_signal(tmp_path, teachers).weights is None


def _same_numbers(a: dict, b: dict) -> None:
    assert set(a["models"]) == set(b["models"])
    for name in a["models"]:
        ta, tb = a["models"][name]["test"], b["models"][name]["test"]
        for key in ("mae", "rmse", "mape"):
            assert tb[key] == pytest.approx(ta[key], rel=1e-5), (name, key)
            for h in ("3", "6", "12"):
                assert tb["horizons"][h][key] == pytest.approx(ta["horizons"][h][key], rel=1e-5), (name, h, key)
        assert b["models"][name]["params"] == a["models"][name]["params"]


def _no_report(monkeypatch):
    """Skip the plots where a test does not look at them (they take most of a small run's time)."""
    import stkd.report

    monkeypatch.setattr(stkd.report, "write_report", lambda run_dir, *a, **k: Path(run_dir) / "report.md")


def test_evaluate_rewrites_the_same_numbers(e2e, distilled, capsys, monkeypatch):
    run = e2e["run"]
    os.remove(run / "metrics.json")
    os.remove(run / "report.md")
    assert main(["evaluate", str(run)]) == 0
    assert "report:" in capsys.readouterr().out
    _same_numbers(e2e["metrics"], json.loads((run / "metrics.json").read_text()))
    assert (run / "report.md").is_file()
    # a distilled run's evaluation still scores the teacher it was distilled from
    _no_report(monkeypatch)
    assert main(["evaluate", str(distilled["out"])]) == 0
    _same_numbers(distilled["metrics"], json.loads((distilled["out"] / "metrics.json").read_text()))


def test_resume_of_a_finished_run_trains_nothing(e2e, monkeypatch, capsys):
    _no_report(monkeypatch)
    run = e2e["run"]
    logs = {p: p.read_text() for p in (run / "models").glob("*/log.csv")}
    weights = {p: p.read_bytes() for p in (run / "models").glob("*/model.safetensors")}
    written = {p: p.stat().st_mtime_ns for p in (run / "models").glob("*/*") if p.is_file()}
    capsys.readouterr()
    assert main(["run", "--config", str(e2e["config"]), "--out", str(run), "--resume", "--quiet"]) == 0
    # the printed result names the student that serve / export / predict use: the better one on validation
    students = {n: m["val_mae"] for n, m in e2e["metrics"]["models"].items() if m["role"].startswith("student")}
    best = min(students, key=lambda n: (students[n], n != "stid_kd"))
    assert f"served by default (stkd serve, export, predict; the better student on validation): {best}\n" in \
        capsys.readouterr().out
    assert {p: p.read_text() for p in logs} == logs
    assert {p: p.read_bytes() for p in weights} == weights
    # a finished model's files are not even rewritten: their times still say when each model was trained
    assert {p: p.stat().st_mtime_ns for p in written} == written
    _same_numbers(e2e["metrics"], json.loads((run / "metrics.json").read_text()))
    assert len(list((run / "cache").iterdir())) == 1


def test_distill_refuses_a_teacher_run_from_other_data(e2e, capsys):
    for override in ("data.nodes=[773869,767541,767542]",
                     "data.time_range=['2012-03-02 00:00','2012-03-03 23:55']"):
        out = e2e["root"] / "other"
        rc = main(["distill", "--teacher-run", str(e2e["run"]), "--config", str(e2e["config"]),
                   "--set", override, "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert "different data" in err and str(e2e["run"]) in err
        assert not out.exists()


def test_resume_with_other_data_is_refused_and_leaves_the_run_alone(e2e, capsys):
    run = e2e["run"]
    before = _files(run)
    rc = main(["run", "--config", str(e2e["config"]), "--set", "data.nodes=[773869,767541,767542]",
               "--out", str(run), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "different data" in err, err
    assert _files(run) == before


def test_run_with_node_subsets_trains_the_teacher_and_refuses_a_per_node_teacher(tmp_path):
    """``train.node_subset`` end to end on the simulator: the gwnet teacher (no adaptive graph) trains on
    sub-graphs and the report covers every sensor; staeformer is refused before a run directory exists."""
    raw = {"data": {"source": "builtin", "name": "synthetic-traffic", "simulator": {"nodes": 40, "days": 3}},
           "teacher": [{"name": "gwnet", "params": {"adaptive": False, "residual_channels": 8,
                                                    "dilation_channels": 8, "skip_channels": 16,
                                                    "end_channels": 16}}],
           "student": {"name": "linear"}, "eval": {"baselines": ["last"], "latency_repeats": 2},
           "train": {"epochs": 1, "max_batches": 3, "batch_size": 8, "node_subset": 15}}
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    assert main(["run", "--config", str(cfg_path), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert math.isfinite(metrics["models"]["gwnet"]["test"]["mae"])
    raw["teacher"] = [{"name": "staeformer"}]
    cfg_path.write_text(yaml.safe_dump(raw))
    assert main(["run", "--config", str(cfg_path), "--out", str(tmp_path / "bad"), "--quiet"]) != 0
    assert not (tmp_path / "bad").exists()


def test_the_signal_scores_the_cached_teacher_like_the_evaluation_does(los_small_config, tmp_path):
    """``ForecastSignal.mae`` reads the cache: on the test split it equals the teacher's evaluated MAE, and
    on the training split it is the distance of the soft labels the student learns from to the truth."""
    from stkd.evaluate import evaluate_forecaster, model_forecaster
    from stkd.pipeline import prepare_task
    from stkd.runs import Trained
    from stkd.steps import model_spec

    task = prepare_task(parse_config(los_small_config()))
    torch.manual_seed(0)
    model = build_model("linear", model_spec(task.wd))
    signal = task.teacher_signal(tmp_path, [Trained("linear", "teacher", model, "linear", None, {"mae": 1.0})])
    for split in ("train", "test"):
        evaluated = evaluate_forecaster(model_forecaster(model, task.wd), task.wd, split, [3]).metrics["mae"]
        assert signal.mae(task.wd, split) == pytest.approx(evaluated, rel=1e-5)
    assert signal.mae(task.wd, "train") != pytest.approx(signal.mae(task.wd, "test"), rel=1e-3)


def test_the_signal_measures_how_far_a_model_is_from_the_cached_teacher(los_small_config, tmp_path):
    """``ForecastSignal.distance``: the teacher itself is at 0 from its cache; another model, also one that
    reads a longer window (a view of the data), is at the mean absolute difference of the two forecasts where a
    target was observed, computed here apart from the forecasts the evaluation keeps."""
    import numpy as np

    from stkd.config import InputsConfig
    from stkd.evaluate import evaluate_forecaster, model_forecaster
    from stkd.pipeline import prepare_task
    from stkd.runs import Trained
    from stkd.steps import model_spec

    task = prepare_task(parse_config(los_small_config()))
    torch.manual_seed(0)
    teacher = build_model("linear", model_spec(task.wd))
    signal = task.teacher_signal(tmp_path, [Trained("linear", "teacher", teacher, "linear", None, {"mae": 1.0})])
    assert signal.distance(model_forecaster(teacher, task.wd), task.wd, "test") < 1e-3 * signal.mae(task.wd, "test")
    view = task.wd.view(InputsConfig(length=task.wd.P * 2))
    other = build_model("linear", model_spec(view))
    for split in ("train", "test"):
        t = evaluate_forecaster(model_forecaster(teacher, task.wd), task.wd, split, [])
        o = evaluate_forecaster(model_forecaster(other, view), view, split, [])
        assert (t.starts == o.starts).all()
        expected = float(np.abs(o.pred - t.pred)[t.mask].mean())
        assert signal.distance(model_forecaster(other, view), view, split) == pytest.approx(expected, rel=1e-4)


def test_copies_of_one_teacher_need_their_own_seed(los_small_config):
    """Two teachers with the same settings would train to the same weights (the ensemble would hold one
    model twice): the config is refused with the fix; a seed per copy makes them two teachers."""
    from stkd.errors import ConfigError

    with pytest.raises(ConfigError, match=r"teachers 1 and 2 \(linear\).*its own seed"):
        parse_config({**los_small_config(), "teacher": [{"name": "linear"}, {"name": "linear"}]})
    with pytest.raises(ConfigError, match=r"linear\.seed: must be an integer"):
        parse_config({**los_small_config(), "teacher": [{"name": "linear", "seed": -1}]})
    cfg = parse_config({**los_small_config(), "teacher": [{"name": "linear", "seed": 1}, {"name": "linear", "seed": 2}]})
    assert [t.seed for t in cfg.teacher] == [1, 2]
    # a copy without a seed of its own trains from train.seed: the same weights as a copy seeded alike
    raw = {**los_small_config(), "teacher": [{"name": "linear"}, {"name": "linear", "seed": 101}]}
    assert parse_config(raw).teacher[1].seed == 101  # train.seed 0 and 101: two teachers
    with pytest.raises(ConfigError, match=r"teachers 1 and 2 \(linear\) have the same settings and seed \(101"):
        parse_config({**raw, "train": {**raw["train"], "seed": 101}})


def test_a_model_seed_replaces_the_run_seed_for_that_model_only(los_small_config, tmp_path):
    """``teacher: [{name: linear, seed: S}]`` trains exactly as the run seed S would (weights and batch
    order); copies with other seeds end with other weights, so an ensemble of one architecture averages
    different models."""
    from stkd.pipeline import prepare_task, train_teachers

    def weights(teacher: list[dict], run_seed: int, out: Path) -> list[dict]:
        raw = {**los_small_config(), "teacher": teacher, "train": {**los_small_config()["train"], "seed": run_seed}}
        trained = train_teachers(prepare_task(parse_config(raw)), out, progress=False)
        return [t.model.state_dict() for t in trained]

    copies = weights([{"name": "linear", "seed": 5}, {"name": "linear", "seed": 6}], 0, tmp_path / "copies")
    [as_run_seed] = weights([{"name": "linear"}], 5, tmp_path / "run-seed")
    assert all(torch.equal(copies[0][k], as_run_seed[k]) for k in as_run_seed)
    assert not all(torch.equal(copies[0][k], copies[1][k]) for k in copies[0])


def test_a_model_lr_replaces_the_run_lr_for_that_model_only(los_small_config, tmp_path):
    """``student: {lr: X}`` trains the student exactly as ``train.lr: X`` would, while the teachers keep
    ``train.lr`` (the log's first epoch records each model's rate); a rate that is not a finite positive
    number is refused with the key."""
    from stkd.errors import ConfigError
    from stkd.pipeline import prepare_task, train_student, train_teachers

    def first_lr(mdir: Path) -> float:
        with open(mdir / "log.csv") as f:
            rows = list(csv.DictReader(f))
        return float(next(r for r in rows if r["epoch"] == "1")["lr"])

    base = los_small_config()
    raw = {**base, "teacher": [{"name": "linear"}], "student": {"name": "linear", "lr": 0.01},
           "train": {**base["train"], "lr": 0.001, "scheduler": "none"}}
    task = prepare_task(parse_config(raw))
    train_teachers(task, tmp_path / "own", progress=False)
    own = train_student(task, tmp_path / "own", progress=False)
    assert first_lr(tmp_path / "own" / "models" / "linear") == pytest.approx(0.001)
    assert first_lr(tmp_path / "own" / "models" / own.name) == pytest.approx(0.01)
    as_run = {**raw, "student": {"name": "linear"}, "train": {**raw["train"], "lr": 0.01}}
    same = train_student(prepare_task(parse_config(as_run)), tmp_path / "run-lr", progress=False)
    assert all(torch.equal(own.model.state_dict()[k], v) for k, v in same.model.state_dict().items())
    for bad in (0, -1e-3, float("inf")):
        with pytest.raises(ConfigError, match=r"linear\.lr: must be a finite number > 0"):
            parse_config({**raw, "student": {"name": "linear", "lr": bad}})
    with pytest.raises(ConfigError, match=r"student\.lr: expected a number"):
        parse_config({**raw, "student": {"name": "linear", "lr": "fast"}})


def test_a_run_with_several_teachers_scores_their_ensemble(los_small_config, tmp_path):
    """With several teachers the table has a row for what the distilled student learns from: their
    weighted mean forecast, scored like any model (the report compares the student with it too), and
    ``stkd evaluate`` scores it again to the same numbers."""
    from stkd.metrics import forecast_metrics
    from stkd.pipeline import evaluate_run, run

    raw = {**los_small_config(), "teacher": [{"name": "linear", "seed": 1}, {"name": "mlp", "params": {"hidden": [8]}}],
           "student": {"name": "linear"}, "distill": {"ensemble": "weighted"}}
    out = tmp_path / "run"
    metrics = run(parse_config(raw), out, progress=False)
    row = metrics["models"]["teachers_ensemble"]
    card = json.loads((out / "models" / "linear_kd" / "model.json").read_text())
    assert row["role"] == "teacher_ensemble" and row["members"] == ["linear", "mlp"]
    assert row["weights"] == pytest.approx(card["teacher_weights"]) and row["weights"][0] != pytest.approx(0.5)
    assert row["params"] == metrics["models"]["linear"]["params"] + metrics["models"]["mlp"]["params"]
    pred = lambda name: np.load(out / "predictions" / f"{name}.npy")  # noqa: E731  [W, H, N, F] original units
    mixed = row["weights"][0] * pred("linear") + row["weights"][1] * pred("mlp")
    np.testing.assert_allclose(pred("teachers_ensemble"), mixed, rtol=1e-5, atol=1e-4)
    mine = forecast_metrics(mixed, pred("truth"), pred("mask"))
    assert row["test"]["mae"] == pytest.approx(mine["mae"], rel=1e-5)
    assert row["test"]["horizons"]["3"]["rmse"] == pytest.approx(mine["horizons"]["3"]["rmse"], rel=1e-5)
    assert mine["mae"] != pytest.approx(metrics["models"]["linear"]["test"]["mae"], rel=1e-3)  # not one teacher
    report = (out / "report.md").read_text()
    assert "vs the teachers' ensemble" in report and "teachers_ensemble" in report
    from stkd.report import student_summary
    assert student_summary(metrics)["taught_by"] == "teachers_ensemble"  # what the distilled student learned from
    # each student's distance to the ensemble's forecast, from the saved test predictions, where a target is scored
    for student in ("linear_kd", "linear_plain"):
        follows = metrics["models"][student]["to_teacher"]
        assert follows["teacher"] == "teachers_ensemble" and follows["metric"] == "mae"
        expected = float(np.abs(pred(student) - mixed)[pred("mask").astype(bool)].mean())
        assert follows["value"] == pytest.approx(expected, rel=1e-4)
    assert "**How closely it follows the teacher** (`teachers_ensemble`, test): `linear_kd`'s forecasts" in report
    again = evaluate_run(out, progress=False)
    _same_numbers(metrics, again)
    assert again["models"]["linear_kd"]["to_teacher"]["value"] == pytest.approx(
        metrics["models"]["linear_kd"]["to_teacher"]["value"], rel=1e-5)


def test_a_teacher_lag_that_no_training_window_can_see_stops_the_run_before_its_folder_is_made(los_small_config,
                                                                                              tmp_path):
    """Two days of Los-loop: a 2-day lag reaches before the data from every training window, so ``stkd run``
    refuses it, naming the teacher, the lag and the share, before anything is written."""
    from stkd.errors import ConfigError
    from stkd.pipeline import check_models, prepare_task

    raw = los_small_config()
    raw["teacher"]["inputs"] = {"lags": ["2D"]}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"teacher 'gwnet' inputs.lags: the longest lag, 576 steps \(2 days "
                                          r"00:00:00\), reaches before the data's first step from 100 % of the"):
        check_models(prepare_task(parse_config(raw)))
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) != 0
    assert not (tmp_path / "run").exists()


def test_models_trained_side_by_side_are_the_models_trained_one_after_the_other(los_small_config, tmp_path,
                                                                                monkeypatch):
    """``train.workers: 2`` trains the two teachers at once, then the two students, each in a process of its own:
    at the same threads every model and every number is the one of the run that trains them in turn, and
    ``stkd distill`` from that run's teachers trains its students side by side too."""
    import stkd.pipeline
    from stkd.pipeline import distill_from, run

    started: list[tuple[list[str], int]] = []  # each call's models and how many at once, then the real thing

    def spy(target, jobs, *, limit, **kw):
        started.append(([a["job"]["label"] for a in jobs], limit))
        return run_processes(target, jobs, limit=limit, **kw)

    from stkd.processes import run_processes
    monkeypatch.setattr(stkd.pipeline, "run_processes", spy)

    raw = {**los_small_config(), "teacher": [{"name": "linear", "seed": 1}, {"name": "mlp", "params": {"hidden": [8]}}],
           "distill": {"ensemble": "weighted"}}
    raw["train"] = {**raw["train"], "threads": 1}
    apart = {**raw, "train": {**raw["train"], "workers": 2}}
    one = run(parse_config(raw), tmp_path / "one", progress=False)
    assert started == []  # train.workers 1: in this process
    two = run(parse_config(apart), tmp_path / "two", progress=False)
    assert started == [(["linear", "mlp"], 2), (["stid_kd", "stid_plain"], 2)]
    assert set(two["models"]) == set(one["models"]) >= {"linear", "mlp", "teachers_ensemble", "stid_kd", "stid_plain"}
    for name, row in one["models"].items():
        assert two["models"][name]["test"] == row["test"], name  # exactly: the same weights
    for label in ("linear", "mlp", "stid_kd", "stid_plain"):
        cards = [json.loads((tmp_path / r / "models" / label / "model.json").read_text()) for r in ("one", "two")]
        assert cards[1]["val_mae"] == cards[0]["val_mae"] and cards[1]["best_epoch"] == cards[0]["best_epoch"]
        assert [m["threads"] for m in cards[1]["trained_on"]] == [1]
    assert json.loads((tmp_path / "two" / "models" / "stid_kd" / "model.json").read_text())["teacher_weights"] == \
        json.loads((tmp_path / "one" / "models" / "stid_kd" / "model.json").read_text())["teacher_weights"]
    weights = tmp_path / "two" / "models" / "mlp" / "best.safetensors"
    saved = weights.stat().st_mtime_ns
    again = run(parse_config(apart), tmp_path / "two", resume=True, progress=False)  # finished: nothing trains
    assert weights.stat().st_mtime_ns == saved and again["models"]["stid_kd"]["test"] == one["models"]["stid_kd"]["test"]
    students = distill_from(parse_config(apart), tmp_path / "two", tmp_path / "students", progress=False)
    assert started[-1] == (["stid_kd", "stid_plain"], 2)
    for name in ("stid_kd", "stid_plain"):
        assert students["models"][name]["test"] == one["models"][name]["test"], name


def test_train_workers_must_be_positive(los_small_config):
    from stkd.errors import ConfigError

    raw = los_small_config()
    with pytest.raises(ConfigError, match=r"train\.workers: must be >= 1 \(1: one model at a time\), got 0"):
        parse_config({**raw, "train": {**raw["train"], "workers": 0}})


def test_models_side_by_side_must_fit_in_their_share_of_the_memory(los_small_config, monkeypatch):
    """With ``train.workers: 2`` two teachers train at once, each process with its own copy of the data: a teacher
    that fits the machine alone but not in half of it is refused before anything is written, naming the way
    out."""
    import stkd.memory
    from stkd.memory import MemoryLimitError, estimate_memory
    from stkd.pipeline import check_models, prepare_task
    from stkd.steps import eval_batch_size

    raw = {**los_small_config(), "teacher": [{"name": "gwnet", "params": los_small_config()["teacher"]["params"]},
                                             {"name": "gwnet", "seed": 7,
                                              "params": los_small_config()["teacher"]["params"]}]}
    task = prepare_task(parse_config(raw))
    cfg = task.cfg
    need = estimate_memory("gwnet", task.teacher_task().spec(), cfg.teacher[0].params,
                           batch_size=cfg.train.batch_size, eval_batch_size=eval_batch_size(cfg)).total_bytes
    monkeypatch.setattr(stkd.memory, "available_bytes", lambda: int(1.5 * need))  # a machine of 1.5x its need
    check_models(task)  # one at a time: it fits
    apart = prepare_task(parse_config({**raw, "train": {**raw["train"], "workers": 2}}))
    with pytest.raises(MemoryLimitError, match=r"for each of the 2 models that train at once, each process with its "
                                               r"own data; try fewer at once \(train\.workers: 1"):
        check_models(apart)
