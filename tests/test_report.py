"""Tests of stkd.report: a fake run directory in, report.md and valid PNG plots out."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from stkd.errors import STKDError
from stkd.report import (
    format_horizon_table,
    format_table,
    student_summary,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ["error_by_horizon.png", "forecast_vs_truth.png", "sensor_map.png", "training_curves.png",
         "distillation_gain.png"]
# name -> (role, params, prediction noise std, latency ms, throughput, train seconds)
MODELS = {
    "gwnet": ("teacher", 301_234, 1.0, 2.5, 4_000.0, 120.0),
    "stid_kd": ("student_kd", 12_345, 1.2, 0.1, 90_000.0, 30.0),
    "stid": ("student_plain", 12_345, 1.6, 0.1, 90_000.0, 25.0),
    "last_value": ("baseline", 0, 2.5, None, None, None),
    "seasonal_avg": ("baseline", 0, 3.0, None, None, None),
}
N, P, H, T = 6, 12, 12, 900


def _masked(pred: np.ndarray, y: np.ndarray, m: np.ndarray) -> dict[str, float]:
    """Masked MAE, RMSE and MAPE (%) over all entries."""
    e = (pred - y)[m]
    return {"mae": float(np.abs(e).mean()), "rmse": float(np.sqrt((e ** 2).mean())),
            "mape": float(100 * np.abs(e / y[m]).mean())}


def make_run(root: Path, coords: bool = True) -> dict:
    """Write a small, self-consistent run directory under ``root``; return its metrics dict."""
    rng = np.random.default_rng(0)
    t = np.arange(T)
    amp = np.linspace(2, 12, N)  # node 5 varies most
    series = (60 - amp[None, :] * (1 + np.sin(2 * np.pi * t[:, None] / 288))).astype(np.float32)  # (T, N)
    lo, hi = 720, T
    starts = np.arange(lo, hi - P - H + 1, dtype=np.int64)
    idx = starts[:, None] + P + np.arange(H)[None, :]  # (W, H)
    truth = series[idx][..., None]  # (W, H, N, 1)
    mask = np.ones_like(truth, dtype=bool)
    missing = (idx >= 780) & (idx < 800)  # a 20-step outage at every node
    mask[missing] = False
    truth[~mask] = 0.0
    (root / "predictions").mkdir(parents=True)
    models = {}
    for name, (role, params, noise, lat, thr, secs) in MODELS.items():
        scale = noise * np.linspace(0.6, 1.4, H)[None, :, None, None]
        pred = (truth + scale * rng.standard_normal(truth.shape)).astype(np.float32)
        pred[~mask] = series[idx][..., None][~mask]
        np.save(root / "predictions" / f"{name}.npy", pred)
        test = _masked(pred, truth, mask)
        test["horizons"] = {str(h): _masked(pred[:, h - 1], truth[:, h - 1], mask[:, h - 1]) for h in (3, 6, 12)}
        test["per_step"] = [_masked(pred[:, h], truth[:, h], mask[:, h]) for h in range(H)]
        test["per_node_mae"] = [_masked(pred[:, :, n], truth[:, :, n], mask[:, :, n])["mae"] for n in range(N)]
        models[name] = {"role": role, "params": params, "test": test, "latency_ms_batch1": lat,
                        "throughput_windows_per_s": thr, "train_seconds": secs}
        if role != "baseline":
            d = root / "models" / name
            d.mkdir(parents=True)
            ep = np.arange(1, 16)
            rows = [f"{e},{noise * 3 / e:.4f},{noise * (2 + 4 / e):.4f},{noise * (3 + 4 / e):.4f},0.001,1.5"
                    for e in ep]
            (d / "log.csv").write_text("epoch,train_loss,val_mae,val_rmse,lr,seconds\n" + "\n".join(rows) + "\n")
    for fname, arr in (("truth", truth), ("mask", mask), ("starts", starts)):
        np.save(root / "predictions" / f"{fname}.npy", arr)
    metrics = {"dataset": {"name": "fake-loop", "nodes": N, "steps": T, "freq": "5min"}, "task": "forecast",
               "models": models}
    (root / "metrics.json").write_text(json.dumps(metrics))
    data = {"name": "fake-loop", "nodes": [f"s{i:03d}" for i in range(N)],
            "coords": [[34.0 + 0.01 * i, -118.3 + 0.02 * (i % 3)] for i in range(N)] if coords else None,
            "freq": "5min", "start": "2024-03-01T00:00:00", "steps": T, "targets": ["speed"],
            "input_len": P, "horizon": H, "splits": {"train": [0, 630], "val": [630, 720], "test": [720, T]}}
    (root / "data.json").write_text(json.dumps(data))
    (root / "config.yaml").write_text("data: {}\n")
    return metrics


def _assert_png(path: Path) -> None:
    """``path`` is a PNG file of non-trivial size."""
    assert path.is_file(), path
    blob = path.read_bytes()
    assert blob[:8] == PNG_MAGIC, path
    assert len(blob) > 10_000, (path, len(blob))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict, str]:
    """One fake run with its report written once (drawing plots is the slow part): (root, metrics, text)."""
    root = tmp_path_factory.mktemp("report") / "run"
    metrics = make_run(root)
    path = write_report(root)
    assert path == root / "report.md"
    return root, metrics, path.read_text()


def test_report_lists_models_numbers_and_plots(report):
    root, metrics, text = report
    for name in MODELS:
        assert f"| {name} |" in text
    t = metrics["models"]["gwnet"]["test"]
    assert f"{t['mae']:.3f}" in text and f"{t['rmse']:.3f}" in text and f"{t['mape']:.2f}%" in text
    assert f"{t['horizons']['12']['mae']:.3f}" in text
    assert "301,234" in text and "12,345" in text
    assert "fake-loop" in text and "every 5 minutes" in text and "900" in text
    for fname in PLOTS:
        _assert_png(root / "plots" / fname)
        assert f"](plots/{fname})" in text
    assert not list((root / "plots").glob("*.tmp")) and not list(root.glob("*.tmp"))


def test_table_order_and_na(report):
    metrics = copy.deepcopy(report[1])
    metrics["models"]["stid"]["test"]["mae"] = float("nan")
    table = format_table(metrics)
    names = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert names == ["gwnet", "stid_kd", "stid", "last_value", "seasonal_avg"]
    assert "MAE @3" in table and "MAE @6" in table and "MAE @12" in table
    stid_row = next(line for line in table.splitlines() if line.startswith("| stid |"))
    assert "n/a" in stid_row
    baseline_row = next(line for line in table.splitlines() if line.startswith("| last_value |"))
    assert baseline_row.count("n/a") == 3  # latency, throughput, train time
    assert "RMSE @6" in format_horizon_table(metrics)


def test_kept_summary_numbers(report):
    _, metrics, text = report
    m = metrics["models"]
    ratio = m["stid_kd"]["test"]["mae"] / m["gwnet"]["test"]["mae"]
    gain = 100 * (m["stid"]["test"]["mae"] - m["stid_kd"]["test"]["mae"]) / m["stid"]["test"]["mae"]
    s = student_summary(metrics)
    assert (s["teacher"], s["student_kd"], s["student_plain"]) == ("gwnet", "stid_kd", "stid")
    assert s["taught_by"] == "gwnet" and s["teacher_ensemble"] is None  # one teacher: what the student learned from
    assert math.isclose(s["ratio_to_teacher"], ratio) and math.isclose(s["gain_vs_plain_pct"], gain)
    assert math.isclose(s["param_ratio"], 301_234 / 12_345) and math.isclose(s["latency_speedup"], 25.0)
    kept = text.split("## What the student kept")[1].split("## Plots")[0]
    assert f"{ratio:.2f} x" in kept
    assert f"{gain:+.1f} %" in kept
    assert f"{301_234 / 12_345:.1f} x" in kept and "25.0 x" in kept


def test_rerun_regenerates_and_skips_missing_pieces(report, tmp_path):
    """A second call on a reported run, after coords, the plain student and the teacher's predictions went away."""
    src, metrics, _ = report
    root = tmp_path / "run"
    shutil.copytree(src, root)
    assert (root / "plots" / "sensor_map.png").is_file()
    data = json.loads((root / "data.json").read_text())
    data["coords"] = None
    (root / "data.json").write_text(json.dumps(data))
    metrics = copy.deepcopy(metrics)
    del metrics["models"]["stid"]
    metrics["models"]["stid_kd"]["test"]["rmse"] = float("nan")
    (root / "metrics.json").write_text(json.dumps(metrics))
    (root / "predictions" / "gwnet.npy").unlink()
    text = write_report(root).read_text()
    assert "Skipped: the data set has no coordinates" in text
    assert "| stid |" not in text and "No plain student" in text
    assert "no predictions for gwnet" in text
    assert "n/a" in text.split("| stid_kd |")[1].splitlines()[0]
    # plots that can no longer be drawn are removed, the others are redrawn
    assert not (root / "plots" / "sensor_map.png").exists()
    assert not (root / "plots" / "distillation_gain.png").exists()
    for fname in ("error_by_horizon.png", "forecast_vs_truth.png", "training_curves.png"):
        _assert_png(root / "plots" / fname)
        assert f"](plots/{fname})" in text


def test_classify_table_and_report(tmp_path):
    models = {
        "gwnet": {"role": "teacher", "params": 100_000, "test": {"accuracy": 0.91, "precision": 0.8, "recall": 0.7,
                                                                  "f1": 0.75, "auroc": 0.93, "ap": 0.6},
                  "latency_ms_batch1": 2.0, "throughput_windows_per_s": 500.0, "train_seconds": 10.0},
        "mlp_kd": {"role": "student_kd", "params": 5_000, "test": {"accuracy": 0.9, "precision": 0.78, "recall": 0.69,
                                                                   "f1": 0.72, "auroc": float("nan")},
                   "latency_ms_batch1": 0.2, "throughput_windows_per_s": 9000.0, "train_seconds": 3.0},
    }
    metrics = {"dataset": {"name": "events", "nodes": 3, "steps": 100, "freq": "1h"}, "task": "classify",
               "models": models}
    table = format_table(metrics)
    header = table.splitlines()[0]
    for col in ("accuracy", "precision", "recall", "F1", "AUROC", "AP"):
        assert col in header
    assert "MAE" not in header and "0.930" in table and "n/a" in table
    root = tmp_path / "run"
    root.mkdir()
    (root / "metrics.json").write_text(json.dumps(metrics))
    text = write_report(root).read_text()
    assert "| mlp_kd |" in text and "0.96 x" in text  # F1 0.72 / 0.75
    assert not (root / "plots" / "error_by_horizon.png").exists()


def test_missing_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(STKDError, match="metrics.json"):
        write_report(tmp_path)


def test_the_table_says_which_seasonal_period_a_baseline_used():
    metrics = {"task": "forecast", "models": {
        "seasonal_avg": {"role": "baseline", "period": "1 day", "params": None,
                         "test": {"mae": 7.6, "rmse": 12.7, "mape": 27.0, "horizons": {}}}}}
    row = [line for line in format_table(metrics).splitlines() if line.startswith("| seasonal_avg")][0]
    assert "baseline, period 1 day" in row


def test_the_served_student_is_the_better_one_on_validation_the_distilled_on_a_tie():
    from stkd.report.tables import _summary_lines, served_student

    def models(kd: float | None, plain: float | None, key: str = "val_mae") -> dict:
        out = {"gwnet": {"role": "teacher", "val_mae": 0.1}, "last_value": {"role": "baseline"}}
        for name, role, v in (("stid_kd", "student_kd", kd), ("stid_plain", "student_plain", plain)):
            out[name] = {"role": role, "test": {"mae": 1.0}, **({key: v} if v is not None else {})}
        return out

    assert served_student(models(2.0, 2.1)) == "stid_kd"
    assert served_student(models(2.1, 2.0)) == "stid_plain"  # distillation did not help on validation
    assert served_student(models(2.0, 2.0)) == "stid_kd"  # a tie: the distilled student
    assert served_student(models(0.6, 0.7, "val_f1")) == "stid_plain"  # F1: higher is better
    assert served_student(models(2.0, None)) is None  # a student without a score: the role order decides
    assert served_student(models(float("nan"), 2.0)) is None
    line = next(x for x in _summary_lines({"task": "forecast", "models": models(2.1, 2.0)}) if "Served" in x)
    assert "`stid_plain`, validation MAE 2.000 against `stid_kd` 2.100" in line and "did not help" in line
    line = next(x for x in _summary_lines({"task": "forecast", "models": models(2.0, 2.1)}) if "Served" in x)
    assert "`stid_kd`, validation MAE 2.000 against `stid_plain` 2.100" in line and "did not help" not in line


def test_only_a_student_the_serving_path_can_feed_is_served_and_the_run_says_when_none_is():
    from stkd.report.tables import _summary_lines, served_student

    lags = {"lags": [], "length": 24, "features": None, "view": {"length": 24, "lags": [], "features": [0]},
            "servable": False}  # two hours of history: the serving path gives the run's window only
    models = {"gwnet": {"role": "teacher", "val_mae": 0.1},
              "stid_kd": {"role": "student_kd", "val_mae": 1.5, "test": {"mae": 1.0}, "inputs": lags},
              "stid_plain": {"role": "student_plain", "val_mae": 2.0, "test": {"mae": 1.1}}}
    assert served_student(models) == "stid_plain"  # the better one on validation reads lags: not served
    line = next(x for x in _summary_lines({"task": "forecast", "models": models}) if "Served" in x)
    assert line.endswith("`stid_plain`, validation MAE 2.000.")  # no "did not help": stid_kd was not in the race
    models["stid_plain"]["inputs"] = lags
    assert served_student(models) is None
    line = next(x for x in _summary_lines({"task": "forecast", "models": models}) if "Served" in x)
    assert line.startswith("- **Served by default**: none. `stid_kd`, `stid_plain` read other inputs than the "
                           "run's window (length 24: `student.inputs`)")


def test_the_report_says_which_lags_the_teacher_reads_and_the_student_does_not():
    from stkd.report.tables import _summary_lines

    def card(lags):
        return {"lags": lags, "length": None, "features": None, "servable": True,
                "view": {"length": 12, "lags": [24 * len(lags)], "features": [0]}}

    models = {"gwnet": {"role": "teacher", "val_mae": 40.0, "test": {"mae": 48.0}, "inputs": card(["1D", "7D"])},
              "stid_kd": {"role": "student_kd", "val_mae": 53.0, "test": {"mae": 58.0}},
              "stid_plain": {"role": "student_plain", "val_mae": 52.0, "test": {"mae": 57.0}}}
    lines = _summary_lines({"task": "forecast", "models": models})
    line = next(x for x in lines if "Read by the teacher" in x)
    assert "`gwnet` also reads the same clock times 1D, 7D back" in line and "`stid_kd`'s inputs" in line
    assert "`student.inputs: {lags: [1D, 7D]}`" in line
    models["stid_kd"]["inputs"] = models["stid_plain"]["inputs"] = card(["1D"])  # the student reads one of them
    line = next(x for x in _summary_lines({"task": "forecast", "models": models}) if "Read by the teacher" in x)
    assert "same clock times 7D back" in line and "1D, 7D back" not in line and "{lags: [1D, 7D]}" in line
    models["stid_kd"]["inputs"] = models["stid_plain"]["inputs"] = card(["1D", "7D"])
    assert not any("Read by the teacher" in x for x in _summary_lines({"task": "forecast", "models": models}))
    del models["gwnet"]["inputs"]  # a teacher of the window only: nothing to say
    assert not any("Read by the teacher" in x for x in _summary_lines({"task": "forecast", "models": models}))


def test_the_report_says_when_the_teacher_reads_other_sensors_and_the_student_does_not():
    from stkd.report.tables import _summary_lines

    def line(models):
        found = [x for x in _summary_lines({"task": "forecast", "models": models}) if "the other sensors" in x]
        assert len(found) <= 1
        return found[0] if found else None

    models = {"gwnet": {"role": "teacher", "model": "gwnet", "reads_other_nodes": True, "test": {"mae": 48.0}},
              "stid_kd": {"role": "student_kd", "model": "stid", "reads_other_nodes": False, "test": {"mae": 58.0}},
              "stid_plain": {"role": "student_plain", "model": "stid", "reads_other_nodes": False,
                             "test": {"mae": 57.0}}}
    said = line(models)
    assert said is not None and "`gwnet` forecasts each sensor from the others too" in said
    assert "`student.params: {neighbours: 4}` gives `stid_kd`" in said
    models["stid_kd"] |= {"model": "linear"}  # a student that cannot read them: the ones that can are named
    said = line(models)
    assert said is not None and "`linear` cannot read other sensors; the mlp and stid students can" in said
    models["stid_kd"]["reads_other_nodes"] = True  # a student that reads its neighbours: nothing to say
    assert line(models) is None
    models["stid_kd"]["reads_other_nodes"] = False
    models["gwnet"]["reads_other_nodes"] = False  # a per-sensor teacher: nothing to say
    assert line(models) is None
    models["gwnet"]["reads_other_nodes"] = True
    del models["stid_kd"]["reads_other_nodes"]  # a run scored before entries said: no guess
    assert line(models) is None


def test_without_validation_scores_the_default_model_is_a_student_the_serving_path_can_feed(tmp_path):
    import json

    from stkd.deploy.loading import choose_model

    lags = {"length": 24, "view": {"length": 24, "lags": [], "features": [0]}, "servable": False}
    for name, card in {"gwnet": {"role": "teacher"}, "stid_kd": {"role": "student_kd", "inputs": lags},
                       "stid_plain": {"role": "student_plain", "inputs": None}}.items():
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "model.json").write_text(json.dumps({"name": "stid", **card}))
        (tmp_path / "models" / name / "model.safetensors").write_bytes(b"")
    assert choose_model(tmp_path)[0] == "stid_plain"  # no val scores: role order, the servable student first
    card = json.loads((tmp_path / "models" / "stid_plain" / "model.json").read_text())
    (tmp_path / "models" / "stid_plain" / "model.json").write_text(json.dumps({**card, "inputs": lags}))
    assert choose_model(tmp_path)[0] == "stid_kd"  # no student to feed: the distilled one, which load refuses


def test_the_report_says_how_closely_the_student_follows_its_teacher():
    """From the students' ``to_teacher``: how far each is from the teacher, how much nearer distillation brought
    the distilled one, and the teacher's edge as a share of the plain student's distance; agreement for events;
    nothing where the run has no such number."""
    from stkd.report.tables import following_line

    def entry(role: str, mae: float, to: float | None, metric: str = "mae") -> dict:
        out = {"role": role, "test": {"mae": mae}}
        return out if to is None else {**out, "to_teacher": {"teacher": "gwnet", "metric": metric, "value": to}}

    models = {"gwnet": entry("teacher", 3.0, None), "stid_kd": entry("student_kd", 3.36, 0.6),
              "stid": entry("student_plain", 3.4, 0.8)}
    assert following_line(models, "stid_kd", "stid") == (
        "- **How closely it follows the teacher** (`gwnet`, test): `stid_kd`'s forecasts differ from the teacher's "
        "by 0.600 (mean absolute difference), `stid`'s by 0.800: distillation brought the student 25.0 % nearer. "
        "The teacher's MAE is below `stid`'s by 0.400, 50 % of their difference: a student that came all the way "
        "would gain that edge, one that comes a share of the way gains at least that share of it.")
    models["stid_kd"]["to_teacher"]["value"] = 0.9  # further away; a teacher behind the student has no edge
    models["gwnet"]["test"]["mae"] = 3.5
    assert following_line(models, "stid_kd", "stid") == (
        "- **How closely it follows the teacher** (`gwnet`, test): `stid_kd`'s forecasts differ from the teacher's "
        "by 0.900 (mean absolute difference), `stid`'s by 0.800: distillation brought the student 12.5 % further "
        "away.")
    assert following_line(models, "stid_kd", None).endswith("by 0.900 (mean absolute difference).")
    events = {"kd": entry("student_kd", 0.0, 0.95, "agreement"), "plain": entry("student_plain", 0.0, 0.9, "agreement")}
    assert following_line(events, "kd", "plain") == (
        "- **How closely it follows the teacher** (`gwnet`, test): `kd` decides its class on 95.0 % of the scored "
        "targets, `plain` on 90.0 %: +5.0 points with distillation.")
    events["kd"]["to_teacher"]["value"] = 0.8999  # a change that rounds to nothing is said as +0.0, not -0.0
    assert following_line(events, "kd", "plain").endswith("`plain` on 90.0 %: +0.0 points with distillation.")
    events["kd"]["to_teacher"]["value"] = 0.95
    events["kd"]["to_teacher"]["probability_gap"] = 0.05  # and how near its probabilities came (what was taught)
    events["plain"]["to_teacher"]["probability_gap"] = 0.08
    assert following_line(events, "kd", "plain") == (
        "- **How closely it follows the teacher** (`gwnet`, test): `kd` decides its class on 95.0 % of the scored "
        "targets, `plain` on 90.0 %: +5.0 points with distillation. Its probabilities differ from the teacher's by "
        "0.050 (mean total variation: what it was taught, whatever threshold each decides at), `plain`'s by 0.080: "
        "distillation brought them 37.5 % nearer.")
    assert following_line(events, "kd", None).endswith("by 0.050 (mean total variation: what it was taught, whatever "
                                                      "threshold each decides at).")
    assert following_line({"kd": entry("student_kd", 3.0, None)}, "kd", None) is None  # a run scored before it



def test_a_one_seed_gain_that_rounds_to_zero_is_said_as_plus_zero_not_minus_zero():
    from stkd.report.tables import _summary_lines

    def model(role: str, mae: float) -> dict:
        return {"role": role, "params": 10, "test": {"mae": mae}, "val_mae": mae}

    metrics = {"task": "forecast", "models": {"gwnet": model("teacher", 2.9), "stid_kd": model("student_kd", 3.0012),
                                              "stid_plain": model("student_plain", 3.0)}}
    gain = next(x for x in _summary_lines(metrics) if x.startswith("- **Gain from distillation**"))
    assert "**+0.0 %** (better with distillation from this one seed" in gain  # -0.04 % is no loss
    metrics["models"]["stid_kd"]["test"]["mae"] = 3.03  # -1.0 %: a loss, said as one
    gain = next(x for x in _summary_lines(metrics) if x.startswith("- **Gain from distillation**"))
    assert "**-1.0 %** (worse with distillation from this one seed" in gain


def test_the_machine_line_names_one_machine_or_each_models_where_they_differ():
    from stkd.report import machine_note

    here = {"cores": 2, "arch": "x86_64", "cpu_kernels": "AVX512", "amx_bf16": True, "kernel_caps": {},
            "threads": 2, "torch": "2.13.0+cpu", "gpu": None}
    metrics = {"scored_on": here, "models": {
        "gwnet": {"role": "teacher", "trained_on": [{**here, "cores": 16, "precision": "bf16"}]},
        "stid_kd": {"role": "student_kd", "trained_on": [{**here, "precision": "bf16"}]},
        "last_value": {"role": "baseline"}}}
    one = machine_note(metrics)
    assert one.startswith("- **Machine**: trained and scored on 2 CPU cores (x86_64, AVX512, AMX bf16), 2 torch "
                          "threads, torch 2.13.0+cpu, training forward at bf16.")
    other = copy.deepcopy(metrics)
    other["models"]["gwnet"]["trained_on"] = [{**here, "cpu_kernels": "AVX2", "amx_bf16": False,
                                               "precision": "fp32"}, {**here, "precision": "bf16"}]
    both = machine_note(other)
    assert "Not one machine and precision" in both and "`gwnet` trained on 2 CPU cores (x86_64, AVX2), 2 torch threads" in both
    assert ", then on 2 CPU cores (x86_64, AVX512, AMX bf16)" in both and "`stid_kd` trained on" in both
    assert machine_note({"models": {"stid": {"role": "student_kd"}}}) is None  # written before machines were kept
    # trained side by side at 1 thread each, scored at 2: one place of training, named once for the models
    apart = copy.deepcopy(metrics)
    for name in ("gwnet", "stid_kd"):
        apart["models"][name]["trained_on"] = [{**here, "threads": 1, "precision": "fp32"}]
    line = machine_note(apart)
    assert line == ("- **Machine**: scored on 2 CPU cores (x86_64, AVX512, AMX bf16), 2 torch threads, torch "
                    "2.13.0+cpu; `gwnet` and `stid_kd` trained on 2 CPU cores (x86_64, AVX512, AMX bf16), 1 torch "
                    "thread, torch 2.13.0+cpu, training forward at fp32. The same seed repeats each model's numbers "
                    "where torch runs the kernels and threads it trained with; another kind of CPU may round "
                    "differently.")
