"""Event classification (``task: classify``): labels -> event teacher(s) -> soft labels -> distilled and
plain event students -> persistence baseline -> metrics.json + report.

The same registry models serve, built with ``out_features = 1, out_classes = K`` so ``pred`` holds K
logits per (horizon step, node): ``[B, H, N, K]``. Losses (:mod:`stkd.distill.objective`):

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

from stkd import names
from stkd.config import RunConfig
from stkd.distill.cache import CacheEntry, build_or_load
from stkd.distill.losses import ensemble_targets, inverse_error_weights
from stkd.distill.objective import build_event_objective
from stkd.errors import ConfigError, STKDError
from stkd.events.detection import detection_delays, flags_by_step, incident_steps
from stkd.events.labels import (
    EventLabels,
    build_labels,
    check_train_labels,
    class_weights,
)
from stkd.events.soft import event_probabilities, horizon_sigma, probabilities_to_logits
from stkd.io import write_json, write_npy
from stkd.metrics import best_threshold, class_agreement, classification_metrics, probability_gap
from stkd.models.base import ModelSpec, count_params
from stkd.progress import bar as progress_bar
from stkd.runs import Trained, load_trained
from stkd.steps import build_caches, eval_batch_size, inputs_entry, load_caches, model_spec, other_nodes_entry
from stkd.tasks.base import LossFn, Task, TeacherSignal, ensemble_entry, taught_by, to_teacher_entry
from stkd.tasks.forecast import ForecastTask

PERSISTENCE = "persistence"


@dataclass
class Scored:
    """A model's test result: probabilities ``[W, H, N, K]`` and the metrics.json entry."""

    name: str
    role: str
    probs: np.ndarray
    entry: dict


class EventSignal(TeacherSignal):
    """Event teachers' cached logits, or forecasting teachers' cached forecasts with their validation RMSE
    per horizon step (``sigma``), which :meth:`ClassifyTask.teacher_logits` turns into event logits."""

    def __init__(self, caches: list[CacheEntry], sigma: list[np.ndarray] | None, teachers: list[str],
                 weights: list[float] | None) -> None:
        super().__init__(teachers, weights)
        self.caches = caches
        self.sigma = sigma


class ClassifyTask(Task):
    """Labels, class weights and the event models' losses, scores and evaluation of one run."""

    name = "classify"
    monitor = "neg_f1"
    channels_meaning = "classes"

    def __init__(self, cfg: RunConfig, wd, labels: EventLabels, train_counts: np.ndarray) -> None:
        super().__init__(cfg, wd)
        assert cfg.events is not None  # build() refuses a config without an events section
        self.e = cfg.events
        self.labels = labels
        self.K = labels.num_classes
        self.P, self.H = wd.P, wd.H
        self.train_counts = train_counts
        self.weights = class_weights(self.e.class_weights, train_counts)
        self.binary = self.K == 2

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, cfg: RunConfig, wd) -> "ClassifyTask":
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
        segments = [(int(r[0]), int(r[1])) for r in wd.ranges.values() if r[1] > r[0]]
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

    def spec(self) -> ModelSpec:
        return model_spec(self.wd, out_features=1, out_classes=self.K)

    def teacher_task(self) -> Task:
        """Forecasting teachers (``events.teacher_kind: forecast``) train as forecasters."""
        return ForecastTask(self.cfg, self.wd) if self.e.teacher_kind == "forecast" else self

    def summary_extra(self) -> dict:
        return {"events": {"rule": self.labels.rule, "classes": self.K, "class_names": self.labels.class_names}}

    def card_extra(self) -> dict:
        return {"task": "classify"}

    # ------------------------------------------------------------------ labels
    def window_labels(self, starts, nodes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, H, N]`` labels and mask of the windows starting at ``starts`` (``[B, H, K]`` for a batch
        on the node subset ``nodes``)."""
        y, m = self.labels.window(starts, self.P, self.H)
        if nodes is not None:
            idx = nodes.cpu()
            y, m = y[:, :, idx], m[:, :, idx]
        return y, m

    def split_labels(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        y, m = self.window_labels(self.wd.starts[split])
        return y.numpy(), m.numpy()

    def feature_index(self) -> int:
        name = self.e.target or self.wd.targets[0]
        return self.wd.targets.index(name)

    # ------------------------------------------------------------------ losses
    def objective(self, distill: bool):
        return build_event_objective(self.cfg.distill if distill else None, self.weights, self.e.focal_gamma)

    def hard_loss(self) -> LossFn:
        objective = self.objective(distill=False)

        def loss_fn(batch, out):
            y, m = self.window_labels(batch.start, batch.nodes)  # [B, H, N] (N = K on a node subset)
            dev = out["pred"].device
            return objective({"student_pred": out["pred"], "y": y.to(dev), "mask": m.to(dev)})

        return loss_fn

    def kd_loss(self, signal: TeacherSignal, student: nn.Module) -> tuple[LossFn, dict[str, nn.Module]]:
        """Hard labels plus the teachers' event logits of the training windows (read from their cache)."""
        assert isinstance(signal, EventSignal)
        objective = self.objective(distill=True)

        def loss_fn(batch, out):
            y, m = self.window_labels(batch.start)
            dev = out["pred"].device
            t = self.teacher_logits(signal, "train", batch.start.cpu().numpy()).to(dev)
            return objective({"student_pred": out["pred"], "y": y.to(dev), "mask": m.to(dev), "teacher_pred": t})

        return loss_fn, {}

    # ------------------------------------------------------------------ predictions and scores
    @torch.no_grad()
    def predict(self, model: nn.Module, split: str, batch_size: int, *, progress: bool = False,
                desc: str = "evaluate") -> np.ndarray:
        """Class probabilities ``[W, H, N, K]`` float32 of a model over a split (with ``progress``, a bar
        ``desc`` counting the windows)."""
        model.eval()
        device = next(model.parameters()).device
        out = np.empty((self.wd.num_windows(split), self.H, self.wd.num_nodes, self.K), dtype=np.float32)
        with progress_bar(desc=desc, total=len(out), unit="window", progress=progress) as bar:
            i = 0  # the first window of the batch
            for b in self.wd.iterate(split, batch_size):
                b = b.to(device)
                out[i:i + len(b)] = torch.softmax(model(b.x, b.tod, b.dow)["pred"].float(), dim=-1).cpu().numpy()
                bar.update(len(b))
                i += len(b)
        return out

    def teacher_logits(self, signal: EventSignal, split: str, starts, weights: list[float] | None = None,
                       only: list[int] | None = None) -> torch.Tensor:
        """Teacher logits ``[B, H, N, K]``: event teachers' (weighted) mean logits, or forecasting teachers'
        (weighted) mean event probabilities, as log-probabilities. ``only``: a subset of the teachers
        (their positions); ``weights`` default to the signal's."""
        idx = list(range(len(signal.caches))) if only is None else only
        w = signal.weights if weights is None and only is None else weights
        if signal.sigma is None:
            return ensemble_targets([signal.caches[i].pred(split, starts) for i in idx], w)
        f = self.feature_index()
        probs = ensemble_targets([event_probabilities(signal.caches[i].pred(split, starts)[..., f], signal.sigma[i],
                                                      self.e) for i in idx], w)
        return probabilities_to_logits(probs)

    def cache_probs(self, signal: EventSignal, split: str, only: list[int] | None = None,
                    batch_size: int = 512) -> np.ndarray:
        """The teachers' event probabilities ``[W, H, N, K]`` over a split (from their cache)."""
        starts = self.wd.starts[split]
        parts = [torch.softmax(self.teacher_logits(signal, split, starts[i:i + batch_size], only=only).float(),
                               -1).numpy() for i in range(0, len(starts), batch_size)]
        return np.concatenate(parts).astype(np.float32)

    def choose_threshold(self, probs_val: np.ndarray) -> float:
        """Binary decision threshold maximising ``events.threshold_metric`` on validation (0.5 if no val)."""
        if not self.binary:
            return 0.5
        y, m = self.split_labels("val")
        if probs_val.size == 0 or not m.any():
            return 0.5
        thr, _ = best_threshold(probs_val[..., 1], y, self.e.threshold_metric, mask=m)
        return thr

    def val_scores(self, probs_val: np.ndarray) -> dict:
        """Validation F1 (binary: at the best threshold) and cross-entropy; ``neg_f1`` for early stopping."""
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

    def validator(self, batch_size: int):
        def validate(model):
            return self.val_scores(self.predict(model, "val", batch_size))

        return validate

    def val_record(self, best_score: float) -> dict:
        return {"f1": -best_score if math.isfinite(best_score) else None}

    def decisions(self, probs: np.ndarray, threshold: float) -> np.ndarray:
        """Class decisions ``[W, H, N]``: ``p1 >= threshold`` (binary) or the arg-max."""
        return (probs[..., 1] >= threshold).astype(np.int64) if self.binary else probs.argmax(-1)

    def test_metrics(self, probs: np.ndarray, threshold: float) -> dict:
        """The ``test`` block: classification metrics pooled over horizons, and at 1 + eval.horizons."""
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

    # ------------------------------------------------------------------ teachers to students
    def check_teachers(self, teachers: list[Trained], teacher_run: Path) -> None:
        """Teachers saved in another run must match this task: the kind of teacher and the classes."""
        kinds = {t.kind for t in teachers}
        want = self.e.teacher_kind
        if kinds != {want}:
            raise STKDError(f"{teacher_run} holds {'/'.join(sorted(kinds))} teachers but this config has "
                            f"events.teacher_kind: {want}; use the same setting as the teacher run")
        if want == "classify":
            k = {int(t.model.spec.out_classes) for t in teachers}  # type: ignore[union-attr, arg-type]
            if k != {self.K}:
                raise STKDError(f"{teacher_run}'s teachers predict {sorted(k)} classes but these labels have "
                                f"{self.K}; use the same events rule as the teacher run")

    def teacher_signal(self, run_dir: Path, teachers: list[Trained], *, progress: bool = False) -> EventSignal:
        caches = build_caches(run_dir, teachers, self.wd, self.cfg, kind=self.e.teacher_kind, progress=progress)
        return self.with_start(self.signal_from(caches), teachers)

    def signal_from(self, caches: list[CacheEntry]) -> EventSignal:
        """The signal of these teachers' caches (a forecasting teacher's spread per horizon step from its
        validation errors), weighted by :meth:`teacher_weights`."""
        sigma = ([horizon_sigma(c, self.wd, self.feature_index()) for c in caches]
                 if self.e.teacher_kind == "forecast" else None)
        signal = EventSignal(caches, sigma, [c.meta["teacher"] for c in caches], None)
        signal.weights = self.teacher_weights(signal)
        return signal

    def teacher_weights(self, signal: EventSignal) -> list[float] | None:
        """``distill.ensemble: weighted``: each teacher weighted by 1 / its validation cross-entropy on
        the event labels (the event analogue of forecasting's 1 / validation MAE: a proper score, so a
        confident wrong teacher counts less). None (equal weights) for one teacher, ``mean``, or a run
        without labelled validation windows."""
        if len(signal.caches) < 2 or self.cfg.distill.ensemble != "weighted":
            return None
        losses = [self.val_scores(self.cache_probs(signal, "val", only=[i]))["loss"]
                  for i in range(len(signal.caches))]
        if not any(math.isfinite(v) for v in losses):
            warnings.warn("distill.ensemble: weighted needs labelled validation windows; none here, so the "
                          "teachers are averaged with equal weight", stacklevel=2)
            return None
        return inverse_error_weights(losses)

    # ------------------------------------------------------------------ evaluation
    def load_models(self, run_dir: Path, roles: tuple[str, ...]) -> list[Trained]:
        """Event models, and forecasting teachers (scored through their cache)."""
        return [t for t in load_trained(run_dir, self.wd, roles=roles) if t.kind == "classify" or t.role == "teacher"]

    def _scored(self, name: str, role: str, probs_val: np.ndarray, probs_test: np.ndarray, extra: dict,
                threshold: float | None = None) -> Scored:
        thr = self.choose_threshold(probs_val) if threshold is None else threshold
        test = self.test_metrics(probs_test, thr)
        det = self.detection(probs_test, thr)
        if det is not None:
            test["detection"] = det
        return Scored(name, role, probs_test, {"role": role, **extra, "threshold": thr if self.binary else None,
                                               "test": test})

    @staticmethod
    def threshold_of(scored: Scored) -> float:
        """The binary decision threshold a scored model was chosen on validation (``p >= it``); 0.5 with more
        classes, where the decision is the arg-max and the threshold is unused."""
        thr = scored.entry["threshold"]
        return 0.5 if thr is None else float(thr)

    def score(self, run_dir: Path, models: list[Trained], *, progress: bool = False,
              teachers_together: bool = True) -> dict:
        """Score every model and the persistence baseline on the test split; write predictions and metrics.json."""
        cfg, wd = self.cfg, self.wd
        bs = eval_batch_size(cfg)
        scored: list[Scored] = []
        for m in sorted(models, key=lambda x: names.ROLE_ORDER[x.role]):
            extra = {}
            mwd = wd.view(m.inputs)  # what this model reads (a privileged teacher reads more)
            if m.kind == "forecast":  # a forecaster scored through its event probabilities (from its cache)
                assert m.run_dir is not None  # a saved teacher: its cache lives in its run
                cache = build_or_load(m.run_dir, m.model, m.registry_name, mwd, with_hidden=False,  # type: ignore[arg-type]
                                      batch_size=bs, progress=progress, label=m.name)
                sigma = horizon_sigma(cache, wd, self.feature_index())
                one = EventSignal([cache], [sigma], [m.registry_name], None)
                pv, pt = self.cache_probs(one, "val"), self.cache_probs(one, "test")
                extra = {"teacher_kind": "forecast", "sigma_per_horizon": [float(v) for v in sigma]}
            else:
                mt = self.for_inputs(m.inputs)
                # val (the binary threshold is chosen on it), then test
                pv, pt = (mt.predict(m.model, split, bs, progress=progress, desc=f"evaluate {m.name} ({split})")
                          for split in ("val", "test"))
            entry = {"model": m.registry_name, "params": count_params(m.model),
                     "train_seconds": m.train_seconds, "trained_on": m.trained_on,
                     "val_f1": m.val.get("f1"), **inputs_entry(m.inputs, mwd),
                     **other_nodes_entry(m.model), **extra}
            scored.append(self._scored(m.name, m.role, pv, pt, entry))
        speeds = self.speeds(models, bs, progress=progress)
        for s in scored:
            s.entry.update(speeds[s.name])
        teachers = [m for m in models if m.role == "teacher"]
        if teachers_together and len(teachers) >= 2:  # what the distilled student learns from, beside each teacher
            caches = load_caches(teachers[0].run_dir or Path(run_dir), teachers, wd, cfg, kind=self.e.teacher_kind,
                                 progress=progress)
            signal = self.signal_from(caches)
            scored.append(self._scored(names.TEACHER_ENSEMBLE, "teacher_ensemble", self.cache_probs(signal, "val"),
                                       self.cache_probs(signal, "test"), ensemble_entry(teachers, signal.weights)))
        if teachers and teachers_together:  # how closely each student follows what it learned from (ensemble or teacher)
            y, mask = self.split_labels("test")
            ref = next(s for s in scored if s.name == taught_by(teachers))
            for s in scored:
                if s.role in names.STUDENT_ROLES:
                    s.entry.update(to_teacher_entry(
                        teachers, "agreement",
                        class_agreement(s.probs, self.threshold_of(s), ref.probs, self.threshold_of(ref), y, mask),
                        probability_gap=probability_gap(s.probs, ref.probs, y, mask)))
        t0 = time.perf_counter()
        pv, pt = self.persistence_probs("val"), self.persistence_probs("test")
        fit_s = time.perf_counter() - t0
        scored.append(self._scored(PERSISTENCE, "baseline", pv, pt,
                                   {"model": "persistence (event now = event next)", "params": None,
                                    "latency_ms_batch1": None, "throughput_windows_per_s": None,
                                    "train_seconds": fit_s}, threshold=0.5))

        pred_dir = Path(run_dir) / "predictions"
        y, mask = self.split_labels("test")
        write_npy(pred_dir / "labels.npy", y.astype(np.int16))
        write_npy(pred_dir / "label_mask.npy", mask)
        write_npy(pred_dir / "starts.npy", np.asarray(wd.starts["test"], dtype=np.int64))
        for s in scored:  # binary: P(event) [W, H, N]; K > 2: [W, H, N, K]
            write_npy(pred_dir / f"{s.name}.npy", s.probs[..., 1] if self.binary else s.probs)
        lo, hi = wd.ranges["test"]
        metrics = {
            **self.metrics_header(),
            "events": {"rule": self.labels.rule, "classes": self.K, "class_names": self.labels.class_names,
                       "within": self.e.within, "teacher_kind": self.e.teacher_kind,
                       "class_weights": self.weights, "focal_gamma": self.e.focal_gamma,
                       "train_class_counts": [int(c) for c in self.train_counts],
                       "test_class_counts": [int(c) for c in self.labels.class_counts(lo, hi)],
                       "threshold_metric": self.e.threshold_metric},
            "models": {s.name: s.entry for s in scored},
        }
        write_json(Path(run_dir) / "metrics.json", metrics)
        return metrics
