"""The event pipeline: its KD loss is event_kd_loss, bad input fails before training, and an
end-to-end ``stkd run`` with ``task: classify`` on the simulator."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stkd.cli import main
from stkd.config import ModelConfig, parse_config
from stkd.distill.losses import event_kd_loss
from stkd.errors import DataError
from stkd.metrics import classification_metrics
from stkd.pipeline import evaluate_run, prepare_task, run, saved_teachers
from stkd.steps import check_fits
from stkd.tasks.classify import ClassifyTask, EventSignal

SIM = {"source": "builtin", "name": "synthetic-traffic",
       "simulator": {"nodes": 16, "days": 3, "incidents_per_day": 40, "seed": 1}}
TINY_GWNET = {"name": "gwnet", "params": {"residual_channels": 8, "dilation_channels": 8, "skip_channels": 16,
                                          "end_channels": 16, "blocks": 2, "layers": 3}}
TINY_MLP = {"name": "mlp", "params": {"hidden": [16]}}


def config(events: dict, **over) -> dict:
    raw = {"task": "classify", "data": SIM, "teacher": TINY_GWNET, "student": TINY_MLP,
           "train": {"epochs": 1, "batch_size": 32, "max_batches": 4, "threads": 1},
           "distill": {"alpha": 0.3, "temperature": 3.0}, "eval": {"latency_repeats": 2, "horizons": [3, 12]},
           "events": events}
    raw.update(over)
    return raw


@pytest.fixture(autouse=True)
def _restore_threads():
    """train.threads: 1 (tiny models; no oversubscription on a busy runner) must not leak into other tests."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def incident_task():
    cfg = parse_config(config({"rule": "given", "source": "simulator", "focal_gamma": 1.5}))
    return prepare_task(cfg)


class _Fixed:
    """A soft-label cache stand-in that returns the same teacher tensor for any windows."""

    def __init__(self, teacher):
        self.teacher = teacher

    def pred(self, split, starts):
        return self.teacher


def test_pipeline_kd_loss_equals_event_kd_loss(incident_task):
    task = incident_task
    starts = task.wd.starts["train"][:8]
    batch = task.wd.batch(starts)
    g = torch.Generator().manual_seed(0)
    shape = (len(starts), task.H, task.wd.num_nodes, task.K)
    student = torch.randn(shape, generator=g, dtype=torch.float64)
    teacher = torch.randn(shape, generator=g, dtype=torch.float64)
    kd, _ = task.kd_loss(EventSignal([_Fixed(teacher)], None, ["t"], None), None)
    loss, terms = kd(batch, {"pred": student})
    y, m = task.window_labels(starts)
    expected = event_kd_loss(student, y, m, teacher, alpha=0.3, temperature=3.0,
                             class_weights=task.weights, focal_gamma=1.5)
    assert float(loss) == pytest.approx(float(expected), rel=1e-10)
    assert set(terms) == {"hard", "soft"}
    hard, _ = task.hard_loss()(batch, {"pred": student})
    assert float(hard) == pytest.approx(float(event_kd_loss(student, y, m, teacher, 1.0, 3.0, task.weights, 1.5)))
    assert task.weights[1] > task.weights[0]  # auto: the rare event weighs more


def test_model_head_has_k_classes(incident_task):
    model = check_fits(incident_task, ModelConfig(name="mlp", params={"hidden": [8]}), "student")
    b = incident_task.wd.batch(incident_task.wd.starts["val"][:3])
    assert tuple(model(b.x, b.tod, b.dow)["pred"].shape) == (3, incident_task.H, 16, 2)
    probs = incident_task.predict(model, "val", 256)
    assert probs.shape == (len(incident_task.wd.starts["val"]), incident_task.H, 16, 2)


def test_persistence_repeats_the_last_input_state(incident_task):
    task = incident_task
    p = task.persistence_probs("test")
    now = task.labels.state[task.wd.starts["test"] + task.P - 1]  # (W, N)
    assert (p[:, -1, :, 1] == now).all() and (p[:, 0] == p[:, -1]).all()


@pytest.mark.parametrize("events, match", [
    ({"rule": "threshold", "target": "flow", "value": 40}, "events.target: 'flow' is not a column"),
    ({"rule": "threshold", "op": "<", "value": 0.5}, "no positive"),
    ({"rule": "threshold", "op": "<", "value": 500}, "no negative"),
])
def test_bad_rules_fail_before_anything_is_written(tmp_path, events, match):
    cfg = parse_config(config(events))
    out = tmp_path / "run"
    with pytest.raises((DataError, ValueError), match=match):
        run(cfg, out, progress=False)
    assert not out.exists()


def test_bad_model_fails_before_anything_is_written(tmp_path):
    cfg = parse_config(config({"rule": "given", "source": "simulator"}, student={"name": "mlp", "params": {"widht": 3}}))
    with pytest.raises(ValueError, match="widht"):
        run(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_bad_event_file_fails_before_training(tmp_path):
    f = tmp_path / "events.csv"
    f.write_text("timestamp,node,label\n2024-01-01 08:00,S99999,1\n")
    cfg = parse_config(config({"rule": "given", "source": "file", "path": str(f)}))
    with pytest.raises(DataError, match="unknown node id.*S99999"):
        run(cfg, tmp_path / "run", progress=False)
    f.write_text("timestamp,node,label\n2030-01-01 08:00,S00001,1\n")
    with pytest.raises(DataError, match="outside the data's time range"):
        run(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


CLASSIFY_KEYS = ("accuracy", "precision", "recall", "f1", "f1_macro", "auroc", "average_precision", "ece")


def _check_run(out: Path, detection: bool) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "classify"
    roles = {m["role"] for m in metrics["models"].values()}
    assert roles == {"teacher", "student_kd", "student_plain", "baseline"}
    assert "persistence" in metrics["models"]
    for name, m in metrics["models"].items():
        test = m["test"]
        for key in CLASSIFY_KEYS:
            assert test[key] is not None and 0.0 <= test[key] <= 1.0, (name, key, test[key])
        cm = test["confusion_matrix"]
        assert len(cm) == 2 and sum(map(sum, cm)) == test["n"]
        assert set(test["horizons"]) == {"1", "3", "12"}
        assert 0.0 <= m["threshold"] <= 1.0
        if detection:
            d = test["detection"]
            assert d["incidents"] > 0 and 0.0 <= d["share_detected"] <= 1.0
        if m["role"] != "baseline":
            assert m["params"] > 0 and m["latency_ms_batch1"] > 0
    report = (out / "report.md").read_text()
    assert "![Precision-recall](plots/precision_recall.png)" in report
    assert (out / "plots" / "precision_recall.png").stat().st_size > 1000
    assert (out / "plots" / "confusion_matrix.png").is_file() and (out / "plots" / "calibration.png").is_file()
    assert "| persistence | baseline |" in report
    return metrics


@pytest.mark.slow
def test_stkd_run_classify_on_simulator_incidents(tmp_path, capsys):
    path = tmp_path / "events.yaml"
    path.write_text(yaml.safe_dump(config({"rule": "given", "source": "simulator"})))
    out = tmp_path / "run"
    assert main(["run", "--config", str(path), "--out", str(out), "--quiet"]) == 0
    metrics = _check_run(out, detection=True)
    assert "Incident detection" in (out / "report.md").read_text()
    assert metrics["events"]["train_class_counts"][1] > 0
    caches = list((out / "cache").glob("*/meta.json"))
    assert len(caches) == 1 and json.loads(caches[0].read_text())["kind"] == "classify"
    assert "| mlp_kd | distilled student |" in capsys.readouterr().out
    _check_serving(out, metrics)


def _check_serving(out: Path, metrics: dict) -> None:
    """The event run's student predicts probabilities, exports to ONNX (parity checked by the export) and
    serves them with the alarms of its validation-chosen threshold."""
    import warnings

    import numpy as np

    import stkd
    from stkd.data.windows import load_windowed
    from stkd.deploy.export import export_model
    from stkd.deploy.serve import create_app
    from stkd.runs import load_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's deprecation note about httpx
        from fastapi.testclient import TestClient

    from stkd.report.tables import served_student

    served = served_student(metrics["models"])  # the student with the better validation F1
    assert served in ("mlp_kd", "mlp_plain")
    threshold = metrics["models"][served]["threshold"]
    report = export_model(out, "onnx", out / "exported", windows=8)
    assert report["passed"] and report["max_abs_diff"] <= 1e-4
    cfg, _ = load_run(out)
    wd = load_windowed(cfg.data)
    data = wd.data
    s = int(wd.starts["test"][0])
    window, times = data.values[s:s + wd.P], data.index[s:s + wd.P]
    for predictor in (stkd.load(out), stkd.load(out / "exported")):
        assert predictor.name == served
        fc = predictor.predict(window, times, as_frame=False)
        assert fc.values.shape == (1, wd.H, wd.num_nodes, 1, 2) and fc.threshold == threshold
        np.testing.assert_allclose(fc.values.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(fc.alarms(), fc.values[:, :, :, 0, 1] >= threshold)
    client = TestClient(create_app(out / "exported", "onnx", state_path=False))
    values = {n: [None if np.isnan(x) else float(x) for x in window[:, i, 0]] for i, n in enumerate(data.nodes)}
    body = client.post("/predict", json={"end": str(times[-1]), "values": values}).json()
    assert body["classes"] == 2 and body["threshold"] == threshold
    for n in data.nodes:
        probs = np.array(body["values"][n])  # [H, 2]
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        assert body["alarms"][n] == (probs[:, 1] >= threshold).tolist()


@pytest.mark.slow
def test_stkd_run_classify_from_a_forecasting_teacher(tmp_path):
    events = {"rule": "threshold", "op": "<", "value": 45, "within": 3, "teacher_kind": "forecast",
              "class_weights": "none"}
    cfg = parse_config(config(events, teacher={"name": "mlp", "params": {"hidden": [16]}}))
    out = tmp_path / "run"
    metrics = run(cfg, out, progress=False)
    _check_run(out, detection=True)
    teacher = metrics["models"]["mlp"]
    assert teacher["teacher_kind"] == "forecast" and len(teacher["sigma_per_horizon"]) == 12
    assert all(s > 0 and math.isfinite(s) for s in teacher["sigma_per_horizon"])
    caches = list((out / "cache").glob("*/meta.json"))
    assert [json.loads(c.read_text())["kind"] for c in caches] == ["forecast"]
    # `stkd evaluate` rebuilds the saved models (the forecaster through its cache) and scores the same
    again = evaluate_run(out)
    for name, m in metrics["models"].items():
        assert again["models"][name]["test"]["f1"] == pytest.approx(m["test"]["f1"])
        assert again["models"][name]["threshold"] == pytest.approx(m["threshold"])



@pytest.mark.slow
def test_train_then_distill_then_evaluate_an_event_task(tmp_path):
    """``stkd train`` writes the event teacher and its cache; ``stkd distill`` trains the students from it
    into another run without retraining the teacher (its files untouched), and scores the teacher too;
    ``stkd evaluate`` of the distilled run finds the teacher through the link and repeats the numbers."""
    cfg_path = tmp_path / "events.yaml"
    cfg_path.write_text(yaml.safe_dump(config({"rule": "given", "source": "simulator"})))
    teacher_run, student_run = tmp_path / "t", tmp_path / "s"
    assert main(["train", "--config", str(cfg_path), "--out", str(teacher_run), "--quiet"]) == 0
    assert (teacher_run / "models" / "gwnet" / "model.safetensors").is_file()
    assert not list((teacher_run / "models").glob("mlp_*"))
    cache = list((teacher_run / "cache").glob("*/meta.json"))
    assert [json.loads(c.read_text())["kind"] for c in cache] == ["classify"]
    before = {p: p.stat().st_mtime_ns for p in teacher_run.rglob("*") if p.is_file()}
    assert main(["distill", "--config", str(cfg_path), "--teacher-run", str(teacher_run),
                 "--out", str(student_run), "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in teacher_run.rglob("*") if p.is_file()} == before
    metrics = _check_run(student_run, detection=True)
    assert metrics["models"]["gwnet"]["role"] == "teacher"
    again = evaluate_run(student_run)
    for name, m in metrics["models"].items():
        assert again["models"][name]["test"]["f1"] == pytest.approx(m["test"]["f1"])
    # a forecasting-teacher config cannot distil from event teachers
    other = config({"rule": "given", "source": "simulator", "teacher_kind": "forecast"})
    cfg_path.write_text(yaml.safe_dump(other))
    assert main(["distill", "--config", str(cfg_path), "--teacher-run", str(teacher_run),
                 "--out", str(tmp_path / "bad"), "--quiet"]) != 0
    assert not (tmp_path / "bad").exists()


def test_bands_task_scores_k_classes():
    cfg = parse_config(config({"rule": "bands", "target": "speed", "edges": [30, 50], "within": 2}))
    task = prepare_task(cfg)
    assert task.K == 3 and not task.binary and len(task.weights) == 3
    probs = task.persistence_probs("test")
    test = task.test_metrics(probs, 0.5)
    assert len(test["confusion_matrix"]) == 3 and len(test["per_class"]["f1"]) == 3
    assert 0 <= test["f1"] <= 1 and "threshold" not in test
    assert task.detection(probs, 0.5) is None  # incident scoring is for two-class tasks
    assert task.choose_threshold(probs) == 0.5


def test_students_start_from_the_seeded_weights_whatever_ran_before(incident_task):
    """The distilled and the plain student start from the same weights (``train.seed``), so the
    comparison is the loss alone, and a teacher trained before them does not move the plain student."""
    s = incident_task.cfg.student
    seed = incident_task.cfg.train.seed
    first = check_fits(incident_task, s, "student", seed=seed).state_dict()
    torch.randn(1000)  # what training a teacher would do to the global random state
    second = check_fits(incident_task, s, "student", seed=seed).state_dict()
    assert first.keys() == second.keys()
    for k in first:
        assert torch.equal(first[k], second[k]), k


class _LogitsCache:
    """A soft-label cache stand-in: fixed logits ``[W, H, N, K]`` per split, looked up by window start."""

    def __init__(self, task: ClassifyTask, logits_of):
        self.starts = {s: np.asarray(task.wd.starts[s]) for s in ("train", "val")}
        self.logits = {s: logits_of(s) for s in ("train", "val")}

    def pred(self, split, starts):
        return self.logits[split][np.searchsorted(self.starts[split], np.asarray(starts))]


def _weighted_task(ensemble: str) -> ClassifyTask:
    cfg = parse_config(config({"rule": "given", "source": "simulator"},
                              distill={"alpha": 0.3, "temperature": 3.0, "ensemble": ensemble}))
    return prepare_task(cfg)


def _signal(*caches):
    return EventSignal(list(caches), None, [f"t{i}" for i in range(len(caches))], None)


def test_weighted_ensemble_weights_teachers_by_inverse_validation_cross_entropy(monkeypatch):
    task = _weighted_task("weighted")

    def sure(split):  # +-2 logits on the true class: p(true) = 1 / (1 + e^-4) everywhere
        y, _ = task.split_labels(split)
        return torch.as_tensor(4.0 * (np.eye(2)[y] - 0.5), dtype=torch.float32)

    def unsure(split):  # equal logits: p(true) = 1/2
        return torch.zeros_like(sure(split))

    good, flat = _LogitsCache(task, sure), _LogitsCache(task, unsure)
    ce_good, ce_flat = math.log1p(math.exp(-4.0)), math.log(2.0)
    w = task.teacher_weights(_signal(good, flat))
    expected = [(1 / ce_good) / (1 / ce_good + 1 / ce_flat), (1 / ce_flat) / (1 / ce_good + 1 / ce_flat)]
    assert w == pytest.approx(expected, rel=1e-4) and w[0] > 0.9
    starts = task.wd.starts["train"][:5]
    mixed = task.teacher_logits(_signal(good, flat), "train", starts, weights=w)
    torch.testing.assert_close(mixed, w[0] * good.pred("train", starts) + w[1] * flat.pred("train", starts))
    assert task.teacher_weights(_signal(good)) is None  # one teacher: nothing to weigh
    assert _weighted_task("mean").teacher_weights(_signal(good, flat)) is None
    y, m = task.split_labels("val")
    monkeypatch.setattr(task, "split_labels", lambda split: (y, np.zeros_like(m)))
    with pytest.warns(UserWarning, match="equal weight"):
        assert task.teacher_weights(_signal(good, flat)) is None


@pytest.mark.slow
def test_run_with_two_weighted_teachers_records_their_weights(tmp_path):
    two = [{"name": "mlp", "params": {"hidden": [16]}}, {"name": "linear"}]
    cfg = parse_config(config({"rule": "given", "source": "simulator"}, teacher=two,
                              distill={"alpha": 0.3, "temperature": 3.0, "ensemble": "weighted"}))
    out = tmp_path / "run"
    run(cfg, out, progress=False)
    card = json.loads((out / "models" / "mlp_kd" / "model.json").read_text())
    assert card["teachers"] == ["mlp", "linear"]
    w = card["teacher_weights"]
    assert len(w) == 2 and all(v > 0 for v in w) and sum(w) == pytest.approx(1.0)
    # the weights are the teachers' inverse validation cross-entropy, recomputed from their saved caches
    task = prepare_task(cfg)
    signal = task.teacher_signal(out, saved_teachers(task, out))  # in the config's order
    assert signal.teachers == card["teachers"] and signal.weights == pytest.approx(w)
    assert json.loads((out / "models" / "mlp_plain" / "model.json").read_text())["teacher_weights"] is None
    # the report's ensemble row: the teachers' weighted mean logits (as distilled), from their saved test
    # probabilities, scored
    metrics = json.loads((out / "metrics.json").read_text())
    row = metrics["models"]["teachers_ensemble"]
    assert row["role"] == "teacher_ensemble" and row["members"] == ["mlp", "linear"]
    assert row["weights"] == pytest.approx(w)
    probs = [np.load(out / "predictions" / f"{n}.npy").astype(np.float64) for n in ("mlp", "linear")]  # [W, H, N]
    logit = sum(wi * np.log(p / (1 - p)) for wi, p in zip(w, probs, strict=True))
    mixed = 1 / (1 + np.exp(-logit))
    np.testing.assert_allclose(np.load(out / "predictions" / "teachers_ensemble.npy"), mixed, atol=1e-4)
    y, m = task.split_labels("test")
    mine = classification_metrics(np.stack([1 - mixed, mixed], -1), y, row["threshold"], mask=m)
    assert row["test"]["f1"] == pytest.approx(mine["f1"], abs=1e-6)
    assert "the teachers' ensemble" in (out / "report.md").read_text()
    # each student's agreement with the ensemble's decisions (each at its own validation threshold), from the
    # saved test probabilities, where a label is scored
    decide = lambda name: np.load(out / "predictions" / f"{name}.npy") >= metrics["models"][name]["threshold"]  # noqa: E731
    for student in ("mlp_kd", "mlp_plain"):
        follows = metrics["models"][student]["to_teacher"]
        assert follows["teacher"] == "teachers_ensemble" and follows["metric"] == "agreement"
        assert follows["value"] == pytest.approx(float((decide(student) == decide("teachers_ensemble"))[m].mean()))
        # and how far its probability of an event is from the ensemble's (binary: the total variation is |p - q|)
        gap = np.abs(np.load(out / "predictions" / f"{student}.npy").astype(np.float64) - mixed)[m].mean()
        assert follows["probability_gap"] == pytest.approx(float(gap), abs=1e-4)
    assert "**How closely it follows the teacher** (`teachers_ensemble`, test): `mlp_kd` decides its class on" in (
        out / "report.md").read_text()


def test_resuming_an_event_run_with_other_data_is_refused_before_anything_is_written(tmp_path, incident_task):
    """Event runs open their folder through the same step as forecast runs: ``--resume`` with other data
    stops on every rank and leaves the run as it was."""
    from stkd.errors import STKDError
    from stkd.pipeline import _open

    out = tmp_path / "run"
    _open(incident_task, out, overwrite=False, resume=False)
    summary = json.loads((out / "data.json").read_text())
    assert summary["events"]["classes"] == 2 and summary["fingerprint"] == incident_task.wd.fingerprint()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other_sim = {**SIM, "simulator": {**SIM["simulator"], "seed": 2}}
    other = parse_config(config({"rule": "given", "source": "simulator", "focal_gamma": 1.5}, data=other_sim))
    with pytest.raises(STKDError, match="different data"):
        run(other, out, resume=True, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # the same data resumes (nothing trained yet, so this only reopens the folder)
    _open(incident_task, out, overwrite=False, resume=True)
    assert (out / "config.yaml").is_file()


def test_event_models_trained_side_by_side_are_those_trained_in_turn(tmp_path):
    """``train.workers: 2`` with ``task: classify``: the two teachers (forecasters of the teachers' task) and then
    the two event students train in processes of their own, and every number is the in-turn run's."""
    teachers = [TINY_GWNET, {"name": "mlp", "params": {"hidden": [8]}}]
    raw = config({"rule": "given", "source": "simulator"}, teacher=teachers)
    one = run(parse_config(raw), tmp_path / "one", progress=False)
    raw["train"] = {**raw["train"], "workers": 2}
    two = run(parse_config(raw), tmp_path / "two", progress=False)
    roles = {m["role"] for m in two["models"].values()}
    assert {"teacher", "student_kd", "student_plain"} <= roles
    for name, row in one["models"].items():
        assert two["models"][name]["test"] == row["test"], name
