"""``stkd run`` with ``task: classify``: labels -> event teacher(s) -> soft-label cache -> distilled and
plain event students -> persistence baseline -> metrics.json + report.md.

The same registry models serve, built with ``out_features = 1, out_classes = K`` so ``pred`` holds K
logits per (horizon step, node): ``[B, H, N, K]``. Losses (``stkd.distill.objective``):

- teacher and plain student: cross-entropy with class weights (``events.class_weights``), or focal loss
  (``events.focal_gamma > 0``), over known labels;
- distilled student: ``alpha * CE(s, y) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))``
  (``distill.alpha``, ``distill.temperature``; Hinton et al. 2015) with the teacher's logits read from
  the soft-label cache (``kind: classify``), or, with ``events.teacher_kind: forecast``, a forecasting
  teacher's cached forecasts turned into event probabilities (:mod:`stkd.events.soft`).

Checkpoints are chosen on validation F1 (binary: at the best threshold; K > 2: macro F1 at the
arg-max). The binary decision threshold is chosen on validation data (``metrics.best_threshold``) and
applied unchanged to the test split.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stkd.config import RunConfig, to_dict
from stkd.errors import ConfigError, DataError, STKDError
from stkd.events.labels import EventLabels, build_labels, check_train_labels, class_weights
from stkd.io import write_json, write_npy
from stkd import names

ROLE_ORDER = names.ROLE_ORDER
PERSISTENCE = "persistence"


# ------------------------------------------------------------------------------ the task
@dataclass
class Scored:
    """A model's test result: probabilities ``[W, H, N, K]`` and the metrics.json entry."""

    name: str
    role: str
    probs: np.ndarray
    entry: dict


class EventTask:
    """Labels, class weights and the event-model helpers of one run (everything but the training loop)."""

    def __init__(self, cfg: RunConfig, wd, labels: EventLabels, train_counts: np.ndarray):
        self.cfg = cfg
        self.e = cfg.events
        self.wd = wd
        self.labels = labels
        self.K = labels.num_classes
        self.P, self.H = wd.P, wd.H
        self.train_counts = train_counts
        self.weights = class_weights(self.e.class_weights, train_counts)
        self.binary = self.K == 2

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, cfg: RunConfig, wd) -> "EventTask":
        """Derive the labels and check them (bad input fails here, before anything is trained)."""
        e = cfg.events
        if e is None:
            raise ConfigError("events: task classify needs an events section; see docs/events.md")
        if e.teacher_kind == "forecast":
            name = e.target or wd.targets[0]
            if name not in wd.targets:
                raise ConfigError(f"events.target: {name!r} is an input covariate, not a forecast target "
                                  f"({', '.join(wd.targets)}); teacher_kind forecast needs a target the teacher "
                                  "forecasts")
        segments = [tuple(map(int, r)) for r in wd.ranges.values() if r[1] > r[0]]
        labels = build_labels(e, wd.data, segments=segments, data_cfg=cfg.data)
        counts = check_train_labels(labels, wd)
        for split in ("val", "test"):  # not fatal (nothing is trained on them) but the numbers mean little
            st = wd.starts[split]
            if len(st):
                c = labels.class_counts(int(st.min()) + wd.P, int(st.max()) + wd.P + wd.H)
                if (c[1:] == 0).all():
                    warnings.warn(f"events: the {split} split holds no event label (class counts {c.tolist()}); "
                                  f"{'thresholds and checkpoints' if split == 'val' else 'test F1'} will be "
                                  "meaningless; use a longer series or another data.split", stacklevel=2)
        return cls(cfg, wd, labels, counts)

    def spec(self):
        from stkd.models.base import ModelSpec

        wd = self.wd
        return ModelSpec(num_nodes=wd.num_nodes, input_len=wd.P, horizon=wd.H, in_features=wd.in_features,
                         out_features=1, steps_per_day=wd.steps_per_day, adjacency=wd.data.adjacency,
                         out_classes=self.K)

    def build_model(self, name: str, params: dict) -> nn.Module:
        """A registry model with a K-class head; one batch is run through it to catch shape errors now.

        The weights are initialised from ``train.seed`` (as in forecasting): the distilled and the plain
        student start from the same weights, whatever was trained before them.
        """
        from stkd.models.registry import build_model
        from stkd.train import set_seed

        set_seed(self.cfg.train.seed)
        model = build_model(name, self.spec(), params)
        b = self.wd.batch(self.wd.starts["train"][:2])
        model.eval()  # no dropout draws: the check leaves the random state as the seed set it
        with torch.no_grad():
            out = model(b.x, b.tod, b.dow)["pred"]
        model.train()
        want = (len(b), self.H, self.wd.num_nodes, self.K)
        if tuple(out.shape) != want:
            raise ConfigError(f"model {name!r} produces {tuple(out.shape)} but the event task needs {want} "
                              "([batch, horizon, nodes, classes]); check its hyper-parameters")
        return model

    def check_models(self, teachers: bool = True, student: bool = True) -> None:
        """Build every configured model once (forecasting teachers as forecasters) before any training."""
        from stkd.pipeline import check_models

        if teachers and self.e.teacher_kind == "forecast":
            check_models(self.cfg, self.wd, teachers=True, student=False)
        elif teachers:
            for t in self.cfg.teacher:
                self.build_model(t.name, t.params)
        if student:
            self.build_model(self.cfg.student.name, self.cfg.student.params)

    def window_labels(self, starts) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, H, N]`` labels and mask of the windows starting at ``starts``."""
        return self.labels.window(starts, self.P, self.H)

    def split_labels(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        y, m = self.window_labels(self.wd.starts[split])
        return y.numpy(), m.numpy()

    # ------------------------------------------------------------------ losses
    def objective(self, distill: bool):
        from stkd.distill.objective import build_event_objective

        return build_event_objective(self.cfg.distill if distill else None, self.weights, self.e.focal_gamma)

    def hard_loss_fn(self):
        objective = self.objective(distill=False)

        def loss_fn(batch, out):
            y, m = self.window_labels(batch.start)
            dev = out["pred"].device
            return objective({"student_pred": out["pred"], "y": y.to(dev), "mask": m.to(dev)})

        return loss_fn

    def kd_loss_fn(self, teacher_logits):
        """``teacher_logits(split, starts) -> [B, H, N, K]`` (from the soft-label cache)."""
        objective = self.objective(distill=True)

        def loss_fn(batch, out):
            y, m = self.window_labels(batch.start)
            dev = out["pred"].device
            t = teacher_logits("train", batch.start.cpu().numpy()).to(dev)
            return objective({"student_pred": out["pred"], "y": y.to(dev), "mask": m.to(dev), "teacher_pred": t})

        return loss_fn

    # ------------------------------------------------------------------ predictions and scores
    @torch.no_grad()
    def predict(self, model: nn.Module, split: str, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``[W, H, N, K]`` float32 of a model over a split."""
        model.eval()
        device = next(model.parameters()).device
        starts = self.wd.starts[split]
        out = np.empty((len(starts), self.H, self.wd.num_nodes, self.K), dtype=np.float32)
        for i in range(0, len(starts), batch_size):
            b = self.wd.batch(starts[i:i + batch_size]).to(device)
            out[i:i + len(b)] = torch.softmax(model(b.x, b.tod, b.dow)["pred"].float(), dim=-1).cpu().numpy()
        return out

    def from_cache(self, caches: list, sigma: list | None, split: str, starts,
                   weights: list[float] | None = None) -> torch.Tensor:
        """Teacher logits ``[B, H, N, K]``: event teachers' (weighted) mean logits, or forecasting teachers'
        (weighted) mean event probabilities, as log-probabilities. ``weights``: one per teacher, or None
        for equal weights."""
        from stkd.distill.losses import ensemble_targets
        from stkd.events.soft import event_probabilities, probabilities_to_logits

        if sigma is None:
            return ensemble_targets([c.pred(split, starts) for c in caches], weights)
        f = self.feature_index()
        probs = ensemble_targets([event_probabilities(c.pred(split, starts)[..., f], s, self.e)
                                  for c, s in zip(caches, sigma)], weights)
        return probabilities_to_logits(probs)

    def teacher_weights(self, caches: list, sigma: list | None) -> list[float] | None:
        """``distill.ensemble: weighted``: each teacher weighted by 1 / its validation cross-entropy on
        the event labels (the event analogue of forecasting's 1 / validation MAE: a proper score, so a
        confident wrong teacher counts less). None (equal weights) for one teacher, ``mean``, or a run
        without labelled validation windows."""
        from stkd.distill.losses import inverse_error_weights

        if len(caches) < 2 or self.cfg.distill.ensemble != "weighted":
            return None
        losses = [self.val_scores(self.cache_probs([c], None if sigma is None else [sigma[i]], "val"))["loss"]
                  for i, c in enumerate(caches)]
        if not any(math.isfinite(v) for v in losses):
            warnings.warn("distill.ensemble: weighted needs labelled validation windows; none here, so the "
                          "teachers are averaged with equal weight", stacklevel=2)
            return None
        return inverse_error_weights(losses)

    def cache_probs(self, caches, sigma, split: str, batch_size: int = 512) -> np.ndarray:
        starts = self.wd.starts[split]
        parts = [torch.softmax(self.from_cache(caches, sigma, split, starts[i:i + batch_size]).float(), -1).numpy()
                 for i in range(0, len(starts), batch_size)]
        return np.concatenate(parts).astype(np.float32)

    def feature_index(self) -> int:
        name = self.e.target or self.wd.targets[0]
        return self.wd.targets.index(name)

    def choose_threshold(self, probs_val: np.ndarray) -> float:
        """Binary decision threshold maximising ``events.threshold_metric`` on validation (0.5 if no val)."""
        from stkd.metrics import best_threshold

        if not self.binary:
            return 0.5
        y, m = self.split_labels("val")
        if probs_val.size == 0 or not m.any():
            return 0.5
        thr, _ = best_threshold(probs_val[..., 1], y, self.e.threshold_metric, mask=m)
        return thr

    def val_scores(self, probs_val: np.ndarray) -> dict:
        """Validation F1 (binary: at the best threshold) and cross-entropy; ``neg_f1`` for early stopping."""
        from stkd.metrics import best_threshold, classification_metrics

        y, m = self.split_labels("val")
        if not m.any():
            return {"neg_f1": math.nan, "f1": math.nan, "loss": math.nan}
        p_true = np.take_along_axis(probs_val, y[..., None], axis=-1)[..., 0][m]
        loss = float(-np.log(np.clip(p_true, 1e-12, 1.0)).mean())
        if self.binary:
            _, f1 = best_threshold(probs_val[..., 1], y, "f1", mask=m)
        else:
            f1 = classification_metrics(probs_val, y, mask=m)["f1"]
        return {"neg_f1": -f1, "f1": f1, "loss": loss}

    def validator(self, batch_size: int = 256):
        def validate(model):
            return self.val_scores(self.predict(model, "val", batch_size))

        return validate

    def decisions(self, probs: np.ndarray, threshold: float) -> np.ndarray:
        """Class decisions ``[W, H, N]``: ``p1 >= threshold`` (binary) or the arg-max."""
        return (probs[..., 1] >= threshold).astype(np.int64) if self.binary else probs.argmax(-1)

    def test_metrics(self, probs: np.ndarray, threshold: float) -> dict:
        """The ``test`` block: classification metrics pooled over horizons, and at 1 + eval.horizons."""
        from stkd.metrics import classification_metrics

        y, m = self.split_labels("test")
        p = probs if not self.binary else probs[..., 1]
        out = classification_metrics(p, y, threshold=threshold, mask=m)
        keep = ("accuracy", "precision", "recall", "f1", "f1_macro", "auroc", "average_precision", "ece", "n")
        out["horizons"] = {}
        for h in sorted({1, *self.cfg.eval.horizons}):
            hm = classification_metrics(p[:, h - 1], y[:, h - 1], threshold=threshold, mask=m[:, h - 1])
            out["horizons"][str(h)] = {k: hm[k] for k in keep}
        out["positive_share"] = float(((y > 0) & m).sum() / max(int(m.sum()), 1))
        return out

    def detection(self, probs: np.ndarray, threshold: float) -> dict | None:
        """Incident detection on the test split (data with events, binary tasks), else None."""
        from stkd.events.detection import detection_delays, flags_by_step, incident_steps

        ev = self.wd.data.events
        if ev is None or len(ev) == 0 or not self.binary:
            return None
        a, b, n = incident_steps(ev, self.wd.index, self.wd.nodes)
        h = self.e.detection_horizon
        flags, covered = flags_by_step(self.decisions(probs, threshold), self.wd.starts["test"], self.P, h,
                                       self.wd.num_steps)
        minutes = self.wd.data.freq.total_seconds() / 60.0
        out = detection_delays(flags, covered, a, b, n, minutes)
        out["horizon"] = h
        return out

    def persistence_probs(self, split: str) -> np.ndarray:
        """"Event now = event next": the state at the last input step, one-hot, repeated over the horizon."""
        now = self.labels.now(self.wd.starts[split], self.P)  # (W, N)
        onehot = np.eye(self.K, dtype=np.float32)[now]  # (W, N, K)
        return np.repeat(onehot[:, None], self.H, axis=1)


# ------------------------------------------------------------------------------ steps
@dataclass
class EventModel:
    name: str
    role: str
    model: nn.Module
    registry_name: str
    train_seconds: float | None
    val: dict
    kind: str = "classify"  # classify | forecast (a forecasting teacher)
    cache: object = None  # forecasting teacher: its soft-label cache entry
    sigma: np.ndarray | None = None  # forecasting teacher: validation RMSE per horizon step


def _unique_names(names: list[str]) -> list[str]:
    return [n if names.count(n) == 1 else f"{n}_{i + 1}" for i, n in enumerate(names)]


def _fit(task: EventTask, model, loss_fn, mdir: Path, epochs, resume, desc, progress):
    from stkd.train import fit

    return fit(model, task.wd, loss_fn, task.validator(), task.cfg.train, mdir, epochs=epochs, resume=resume,
               monitor="neg_f1", desc=desc, progress=progress)


def train_event_teachers(task: EventTask, run_dir: Path, *, resume=False, progress=True) -> list[EventModel]:
    """Event teachers trained on the labels (teacher_kind classify)."""
    from stkd.checkpoint import save_model

    cfg = task.cfg
    out = []
    for tcfg, label in zip(cfg.teacher, _unique_names([t.name for t in cfg.teacher])):
        model = task.build_model(tcfg.name, tcfg.params)
        mdir = run_dir / "models" / label
        res = _fit(task, model, task.hard_loss_fn(), mdir, tcfg.epochs, resume, f"event teacher {label}", progress)
        save_model(mdir, model, tcfg.name, task.spec(), "teacher",
                   {"task": "classify", "train_seconds": res.train_seconds, "best_epoch": res.best_epoch,
                    "val_f1": -res.best_score if math.isfinite(res.best_score) else None})
        out.append(EventModel(label, "teacher", model, tcfg.name, res.train_seconds,
                              {"f1": -res.best_score if math.isfinite(res.best_score) else None}))
    return out


def train_event_student(task: EventTask, run_dir: Path, teacher_logits=None, *, resume=False,
                        progress=True, teachers: list[str] | None = None,
                        teacher_weights: list[float] | None = None) -> EventModel:
    """The configured student with the KD loss (``teacher_logits`` given) or cross-entropy only."""
    from stkd.checkpoint import save_model

    s = task.cfg.student
    kd = teacher_logits is not None
    label = f"{s.name}_{'kd' if kd else 'plain'}"
    model = task.build_model(s.name, s.params)
    mdir = run_dir / "models" / label
    loss_fn = task.kd_loss_fn(teacher_logits) if kd else task.hard_loss_fn()
    res = _fit(task, model, loss_fn, mdir, s.epochs, resume, f"event student {label}", progress)
    role = "student_kd" if kd else "student_plain"
    val_f1 = -res.best_score if math.isfinite(res.best_score) else None
    save_model(mdir, model, s.name, task.spec(), role,
               {"task": "classify", "train_seconds": res.train_seconds, "best_epoch": res.best_epoch,
                "val_f1": val_f1, "distill": to_dict(task.cfg.distill) if kd else None,
                "teachers": teachers if kd else None, "teacher_weights": teacher_weights if kd else None})
    return EventModel(label, role, model, s.name, res.train_seconds, {"f1": val_f1})


def _score(task: EventTask, name: str, role: str, probs_val: np.ndarray, probs_test: np.ndarray,
           extra: dict, threshold: float | None = None) -> Scored:
    thr = task.choose_threshold(probs_val) if threshold is None else threshold
    test = task.test_metrics(probs_test, thr)
    det = task.detection(probs_test, thr)
    if det is not None:
        test["detection"] = det
    return Scored(name, role, probs_test, {"role": role, **extra, "threshold": thr if task.binary else None,
                                           "test": test})


def evaluate_events(task: EventTask, run_dir: Path, models: list[EventModel]) -> dict:
    """Score every model and the persistence baseline on the test split; write predictions and metrics.json."""
    from stkd.evaluate import measure_speed
    from stkd.models.base import count_params

    cfg, wd = task.cfg, task.wd
    scored: list[Scored] = []
    for m in sorted(models, key=lambda x: ROLE_ORDER[x.role]):
        if m.kind == "forecast":  # a forecaster scored through its event probabilities
            pv = task.cache_probs([m.cache], [m.sigma], "val")
            pt = task.cache_probs([m.cache], [m.sigma], "test")
        else:
            pv, pt = task.predict(m.model, "val"), task.predict(m.model, "test")
        speed = measure_speed(m.model.cpu(), wd, repeats=cfg.eval.latency_repeats)  # CPU latency, as reported
        extra = {"model": m.registry_name, "params": count_params(m.model), **speed,
                 "train_seconds": m.train_seconds, "val_f1": m.val.get("f1")}
        if m.kind == "forecast":
            extra["teacher_kind"] = "forecast"
            extra["sigma_per_horizon"] = [float(v) for v in m.sigma]
        scored.append(_score(task, m.name, m.role, pv, pt, extra))
    t0 = time.perf_counter()
    pv, pt = task.persistence_probs("val"), task.persistence_probs("test")
    fit_s = time.perf_counter() - t0
    scored.append(_score(task, PERSISTENCE, "baseline", pv, pt,
                         {"model": "persistence (event now = event next)", "params": None,
                          "latency_ms_batch1": None, "throughput_windows_per_s": None, "train_seconds": fit_s},
                         threshold=0.5))

    pred_dir = run_dir / "predictions"
    y, m = task.split_labels("test")
    write_npy(pred_dir / "labels.npy", y.astype(np.int16))
    write_npy(pred_dir / "label_mask.npy", m)
    write_npy(pred_dir / "starts.npy", np.asarray(wd.starts["test"], dtype=np.int64))
    for s in scored:  # binary: P(event) [W, H, N]; K > 2: [W, H, N, K]
        write_npy(pred_dir / f"{s.name}.npy", s.probs[..., 1] if task.binary else s.probs)
    data = wd.data
    lo, hi = wd.ranges["test"]
    metrics = {
        "dataset": {"name": data.name, "nodes": data.num_nodes, "steps": data.num_steps, "freq": data.freq_str},
        "task": "classify",
        "events": {"rule": task.labels.rule, "classes": task.K, "class_names": task.labels.class_names,
                   "within": task.e.within, "teacher_kind": task.e.teacher_kind,
                   "class_weights": task.weights, "focal_gamma": task.e.focal_gamma,
                   "train_class_counts": [int(c) for c in task.train_counts],
                   "test_class_counts": [int(c) for c in task.labels.class_counts(lo, hi)],
                   "threshold_metric": task.e.threshold_metric},
        "models": {s.name: s.entry for s in scored},
    }
    write_json(run_dir / "metrics.json", metrics)
    return metrics


# ------------------------------------------------------------------------------ entry point
def _forecast_teachers(task: EventTask, run_dir: Path, *, resume, progress):
    """Forecasting teachers (teacher_kind forecast): trained as forecasters, cached, with val RMSE per step."""
    from stkd.events.soft import horizon_sigma
    from stkd.pipeline import build_caches, train_teachers

    cfg = task.cfg
    teachers = train_teachers(cfg, task.wd, run_dir, resume=resume, progress=progress)
    caches = build_caches(run_dir, teachers, task.wd, cfg)
    sigma = [horizon_sigma(c, task.wd, task.feature_index()) for c in caches]
    models = [EventModel(t.name, "teacher", t.model, t.registry_name, t.train_seconds, {"mae": t.val_mae},
                         kind="forecast", cache=c, sigma=sg) for t, c, sg in zip(teachers, caches, sigma)]
    return models, caches, sigma


def _start(cfg: RunConfig, out: Path, *, overwrite: bool, resume: bool, check_teachers: bool = True,
           check_student: bool = True, task: "EventTask | None" = None, teacher_run: Path | None = None):
    """Labels and models are checked before the run directory is touched; then config and data summary
    (with the labels' rule and classes), and the teacher link of a distilled run."""
    from stkd.pipeline import load_prepared, open_run_dir

    if task is None:
        _, wd = load_prepared(cfg)
        task = EventTask.build(cfg, wd)  # bad labels fail here, before anything is written or trained
    task.check_models(teachers=check_teachers, student=check_student)  # and bad model names or parameters
    events = {"rule": task.labels.rule, "classes": task.K, "class_names": task.labels.class_names}
    run_dir = open_run_dir(cfg, task.wd, out, overwrite=overwrite, resume=resume, summary_extra={"events": events},
                           teacher_run=teacher_run)
    return task, run_dir


def _train_teachers(task: EventTask, run_dir: Path, *, resume: bool, progress: bool):
    """Event teachers (or forecasting teachers) trained, with their soft-label caches and sigmas."""
    from stkd.distill.cache import build_or_load

    if task.cfg.events.teacher_kind == "forecast":
        return _forecast_teachers(task, run_dir, resume=resume, progress=progress)
    from stkd.distributed import rank0_first

    teachers = train_event_teachers(task, run_dir, resume=resume, progress=progress)
    caches = rank0_first(lambda: [build_or_load(run_dir, t.model, t.registry_name, task.wd, with_hidden=False,
                                                kind="classify") for t in teachers])
    return teachers, caches, None


def _train_students(task: EventTask, run_dir: Path, teachers: list[EventModel], caches, sigma, *,
                    resume: bool, progress: bool, plain: bool = True) -> list[EventModel]:
    """The distilled student (from the teachers' cached outputs) and (``plain``) the same student without them."""

    weights = task.teacher_weights(caches, sigma)

    def teacher_logits(split, starts):
        return task.from_cache(caches, sigma, split, starts, weights)

    kd = train_event_student(task, run_dir, teacher_logits, resume=resume, progress=progress,
                             teachers=[c.meta["teacher"] for c in caches], teacher_weights=weights)
    if not plain:
        return [kd]
    return [kd, train_event_student(task, run_dir, resume=resume, progress=progress)]


def run_classify(cfg: RunConfig, out: Path, *, overwrite: bool = False, resume: bool = False,
                 progress: bool = True) -> dict:
    """The whole event job; returns metrics.json's content and writes report.md beside it."""
    task, run_dir = _start(cfg, out, overwrite=overwrite, resume=resume)
    teachers, caches, sigma = _train_teachers(task, run_dir, resume=resume, progress=progress)
    students = _train_students(task, run_dir, teachers, caches, sigma, resume=resume, progress=progress)
    return _finish(task, run_dir, [*teachers, *students])


def _finish(task: EventTask, run_dir: Path, models: list[EventModel]) -> dict:
    """Score and report on rank 0 (the others have nothing to write); returns metrics.json's content."""
    from stkd.pipeline import report_on_rank0

    return report_on_rank0(run_dir, lambda: evaluate_events(task, run_dir, models))


def train_classify(cfg: RunConfig, out: Path, *, overwrite: bool = False, resume: bool = False,
                   progress: bool = True) -> Path:
    """``stkd train`` of an event task: the teacher(s) and their soft-label cache, no student."""
    task, run_dir = _start(cfg, out, overwrite=overwrite, resume=resume, check_student=False)
    _train_teachers(task, run_dir, resume=resume, progress=progress)
    return run_dir


def _saved_event_models(task: EventTask, run_dir: Path, roles=("teacher", "student_kd", "student_plain"),
                        classify_caches: bool = False):
    """Every saved model of an event run rebuilt: event models, and forecasting teachers with their cache
    (read from, or written to, ``run_dir/cache``; they are scored through it) and validation RMSE per
    horizon step. ``classify_caches``: event teachers get their logits cache too (to distil from)."""
    from stkd.checkpoint import read_model_card
    from stkd.distill.cache import build_or_load
    from stkd.events.soft import horizon_sigma
    from stkd.pipeline import load_trained

    wd, models = task.wd, []
    for t in load_trained(run_dir, wd, roles=roles):
        card = read_model_card(Path(run_dir) / "models" / t.name)
        if card.get("task") == "classify":
            cache = (build_or_load(run_dir, t.model, t.registry_name, wd, with_hidden=False, kind="classify")
                     if classify_caches and t.role == "teacher" else None)
            models.append(EventModel(t.name, t.role, t.model, t.registry_name, t.train_seconds,
                                     {"f1": card.get("val_f1")}, cache=cache))
        elif t.role == "teacher":  # a forecasting teacher (teacher_kind forecast)
            cache = build_or_load(run_dir, t.model, t.registry_name, wd, with_hidden=False)
            models.append(EventModel(t.name, t.role, t.model, t.registry_name, t.train_seconds,
                                     {"mae": t.val_mae}, kind="forecast", cache=cache,
                                     sigma=horizon_sigma(cache, wd, task.feature_index())))
    return models


def _teachers_of(task: EventTask, teacher_run: Path, classify_caches: bool = False) -> list[EventModel]:
    """The teachers saved in another run, checked to match this task (same data, same labels' kind)."""
    from stkd.pipeline import check_same_data, require_teachers

    check_same_data(teacher_run, task.wd)
    teachers = require_teachers(_saved_event_models(task, Path(teacher_run), roles=("teacher",),
                                                    classify_caches=classify_caches), teacher_run)
    kinds = {t.kind for t in teachers}
    want = task.cfg.events.teacher_kind
    if kinds != {want}:
        raise STKDError(f"{teacher_run} holds {'/'.join(sorted(kinds))} teachers but this config has "
                        f"events.teacher_kind: {want}; use the same setting as the teacher run")
    if want == "classify":
        k = {int(t.model.spec.out_classes) for t in teachers}
        if k != {task.K}:
            raise STKDError(f"{teacher_run}'s teachers predict {sorted(k)} classes but these labels have {task.K}; "
                            "use the same events rule as the teacher run")
    return teachers


def distill_classify_from(cfg: RunConfig, teacher_run: Path, out: Path, *, overwrite: bool = False,
                          resume: bool = False, progress: bool = True, plain: bool = True) -> dict:
    """``stkd distill`` of an event task: the configured student from the teachers saved in ``teacher_run``
    (and, with ``plain``, the same student without distillation, for the side-by-side table)."""
    from stkd.distributed import rank0_first
    from stkd.pipeline import load_prepared, require_run_dir

    teacher_run = require_run_dir(teacher_run)
    _, wd = load_prepared(cfg)
    task = EventTask.build(cfg, wd)
    # wrong teachers fail before anything is written; a missing cache is built once, by rank 0
    teachers = rank0_first(lambda: _teachers_of(task, teacher_run, classify_caches=True))
    if Path(out).resolve() == Path(teacher_run).resolve():  # students added to the teacher run
        run_dir = Path(out)
        task.check_models(teachers=False)
    else:
        task, run_dir = _start(cfg, out, overwrite=overwrite, resume=resume, check_teachers=False, task=task,
                               teacher_run=teacher_run)
    caches = [t.cache for t in teachers]
    sigma = [t.sigma for t in teachers] if teachers[0].kind == "forecast" else None
    students = _train_students(task, run_dir, teachers, caches, sigma, resume=resume, progress=progress,
                               plain=plain)
    return _finish(task, run_dir, [*teachers, *students])


def evaluate_classify_run(cfg: RunConfig, run_dir: Path) -> dict:
    """``stkd evaluate`` of an event run: rebuild every saved model, re-score, rewrite metrics.json and report
    (the teachers of a run made by ``stkd distill`` are read from their own run)."""
    from stkd.pipeline import check_same_data, linked_teacher_run, load_prepared
    from stkd.report import write_report

    _, wd = load_prepared(cfg)
    check_same_data(run_dir, wd)
    task = EventTask.build(cfg, wd)
    models = _saved_event_models(task, Path(run_dir))
    teacher_run = None if any(m.role == "teacher" for m in models) else linked_teacher_run(run_dir)
    if teacher_run is not None:
        models = _teachers_of(task, teacher_run) + models
    if not models:
        raise STKDError(f"{run_dir} holds no trained event models")
    metrics = evaluate_events(task, run_dir, models)
    write_report(run_dir)
    return metrics


def check_events(cfg: RunConfig) -> EventTask:
    """Load the data and build and check the labels only (for tests and a dry run)."""
    from stkd.pipeline import load_prepared

    if cfg.events is None:
        raise DataError("no events section")
    _, wd = load_prepared(cfg)
    return EventTask.build(cfg, wd)
