"""Forecasting: models predict every target ``H`` steps ahead; errors are measured in original units.

- Teachers and plain students minimise a masked loss (``train.loss``) in original units, like the
  metrics; checkpoints are chosen on validation MAE.
- The distilled student minimises the objective of :func:`stkd.distill.objective.build_forecast_objective`
  against the teachers' cached forecasts (a validation-weighted ensemble with ``distill.ensemble:
  weighted``), plus hint and relation terms on their cached hidden features when configured.
- Evaluation: MAE/RMSE/MAPE per horizon step and averaged, masked, after inverse scaling; batch-1
  latency and throughput; the baselines of ``eval.baselines``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from stkd import names
from stkd.baselines import build_baseline
from stkd.data.windows import Batch, WindowedData
from stkd.distill.augment import Draw, draw
from stkd.distill.cache import CacheEntry
from stkd.distill.losses import ensemble_targets, inverse_error_weights, masked_loss
from stkd.distill.objective import build_forecast_objective
from stkd.errors import ConfigError
from stkd.evaluate import (
    evaluate_forecaster,
    iterate_eval,
    model_forecaster,
    to_original_units,
)
from stkd.io import write_json, write_npy
from stkd.metrics import ForecastAccumulator
from stkd.models.base import ModelSpec, count_params
from stkd.runs import Trained, load_trained
from stkd.steps import build_caches, eval_batch_size, inputs_entry, load_caches, model_spec, other_nodes_entry
from stkd.tasks.base import LossFn, Task, TeacherSignal, ensemble_entry, to_teacher_entry


class ForecastSignal(TeacherSignal):
    """The teachers' cached forecasts (original units) and, for feature distillation, hidden features; with
    ``distill.augment_labels: online`` also the teachers themselves, each with its view of the data."""

    def __init__(self, caches: list[CacheEntry], teachers: list[str], weights: list[float] | None,
                 online: list[tuple[nn.Module, WindowedData]] | None = None) -> None:
        super().__init__(teachers, weights)
        self.caches = caches
        self.online = online

    @torch.no_grad()
    def relabel(self, draw: Draw, batch: Batch) -> torch.Tensor:
        """``[B, H, N, F_out]``: the teachers' (weighted) mean forecast, in original units, of the batch's
        windows changed by ``draw``, each teacher reading its own view of the windows changed alike: the
        target of the very input the student sees (consistent teaching)."""
        if not self.online:
            raise ValueError("relabel needs the teachers themselves (distill.augment_labels: online)")
        if batch.nodes is not None:
            raise ValueError("relabel needs batches of every node (the teachers forecast the whole graph)")
        preds = []
        for model, view in self.online:
            b = batch if view.view_spec is None else view.batch(batch.start)
            model.eval().to(b.x.device)
            out = model(draw.inputs(b.x, live=view.live_channels), b.tod, b.dow)["pred"]  # [B, H, N, F_out] scaled
            preds.append(to_original_units(view, out).float())
        return ensemble_targets(preds, self.weights)

    def forecaster(self, split: str):
        """``batch -> [B, H, N, F_out]``: the teachers' (weighted) mean forecast of the batch's windows of
        ``split``, in original units, read from their caches: the soft labels a distilled student learns from."""
        def cached(batch):
            starts = batch.start.cpu().numpy()
            return ensemble_targets([c.pred(split, starts) for c in self.caches], self.weights)

        return cached

    @torch.no_grad()
    def distance(self, forecast_fn, wd, split: str, batch_size: int = 256) -> float:
        """How far ``forecast_fn(batch) -> [B, H, N, F_out]`` (original units) is from the teachers' (weighted)
        cached forecast of the same windows of ``split``: their mean absolute difference where the metrics score
        (a reading at the target), in original units. ``wd``: the data ``forecast_fn`` reads (a view of the
        student's inputs; its windows are the teachers' windows). A distilled student near its teacher on the
        training windows and far on test fitted what it was taught and did not carry it to new windows; one
        far on both did not follow its teacher even there (its inputs, its capacity or its training fell short)."""
        follow, distance = self.following(forecast_fn, wd, split)
        for batch in iterate_eval(wd, split, batch_size):
            follow(batch)
        return distance()

    def following(self, forecast_fn, wd, split: str) -> tuple[Callable, Callable[[], float]]:
        """``forecast_fn`` that also accumulates, batch by batch, how far each forecast is from the teachers'
        cached forecast of the same windows of ``split``, and the function that reads that distance
        (:meth:`distance`'s measure) over the batches seen: pass the first wherever the split is streamed anyway
        (the evaluation), then call the second."""
        teacher = self.forecaster(split)
        acc = ForecastAccumulator(wd.H, wd.num_nodes)

        def follow(batch):
            pred = forecast_fn(batch)
            acc.update(pred.float(), teacher(batch).float(), batch.mask)
            return pred

        return follow, lambda: float(acc.compute([])["mae"])

    def mae(self, wd, split: str, batch_size: int = 256) -> float:
        """The (ensemble) teacher's MAE on ``split`` from the cache, scored as the evaluation scores a model:
        on ``train`` it is how far the soft labels the student learns from are from the ground truth. A
        teacher that fits its training windows far better than new ones hands the student little beyond
        the ground truth itself."""
        return evaluate_forecaster(self.forecaster(split), wd, split, [wd.H], batch_size, keep_bytes=0).metrics["mae"]


class ForecastTask(Task):
    name = "forecast"
    monitor = "mae"
    channels_meaning = "targets"

    def spec(self) -> ModelSpec:
        return model_spec(self.wd)

    # ---------------------------------------------------------------- losses and validation
    def hard_loss(self) -> LossFn:
        """Masked ``train.loss`` in original units (like the metrics)."""
        wd, kind = self.wd, self.cfg.train.loss

        def loss_fn(batch, out):
            pred = to_original_units(wd, out["pred"], batch.nodes)  # [B, H, N, F_out] (N = K on a node subset)
            loss = masked_loss(pred, batch.y, batch.mask, kind=kind)
            return loss, {"hard": float(loss.detach())}

        return loss_fn

    def kd_loss(self, signal: TeacherSignal, student: nn.Module) -> tuple[LossFn, dict[str, nn.Module]]:
        """The distillation objective over named outputs: response (+ hint, + relation) terms."""
        assert isinstance(signal, ForecastSignal)
        cfg, wd = self.cfg, self.wd
        d = cfg.distill
        caches, weights = signal.caches, signal.weights
        extra: dict[str, nn.Module] = {}
        projection = None
        if d.feature_weight > 0:
            projection = nn.Linear(student.hidden_dim, caches[0].meta["hidden_dim"])  # type: ignore[arg-type]
            extra["projection"] = projection
        objective = build_forecast_objective(d, cfg.train.loss, projection=projection)
        need_hidden = d.feature_weight > 0 or d.relation_weight > 0
        gen = torch.Generator().manual_seed(cfg.train.seed)
        aug_gen = torch.Generator().manual_seed(cfg.train.seed + 1)  # its own stream: other terms' draws stay put
        n, relation_nodes = wd.num_nodes, 512
        lo, hi = wd.ranges["train"]  # where nothing of the training part is missing the scope changes nothing
        scoped = d.teacher_scope == "observed-inputs" and not bool(wd.mask_all[lo:hi].all())
        online = d.augment_weight > 0 and d.augment_labels == "online"

        def loss_fn(batch, out):
            starts = batch.start.cpu().numpy()  # training windows only: the cache's other rows are never read
            teacher = ensemble_targets([c.pred("train", starts) for c in caches], weights).to(batch.y.device)
            named = {"student_pred": to_original_units(wd, out["pred"]), "y": batch.y, "mask": batch.mask,
                     "teacher_pred": teacher}
            if scoped:
                named["teacher_mask"] = wd.observed_inputs(batch.start)  # elsewhere it forecast from imputations
            if d.augment_weight > 0:  # one augmentation per batch, in turn: unlabelled inputs the teacher labels
                kind = d.augment[int(torch.randint(0, len(d.augment), (1,), generator=aug_gen))]
                change = draw(kind, batch.x, aug_gen, noise_std=d.noise_std, mask_share=d.mask_share,
                              mixup_alpha=d.mixup_alpha, max_shift=d.max_shift)
                x_aug = change.inputs(batch.x)  # [B, P, N, F]
                named["augment_pred"] = to_original_units(wd, student(x_aug, batch.tod, batch.dow)["pred"])
                named["augment_target"] = (signal.relabel(change, batch) if online
                                           else change.targets(teacher))
            if need_hidden:
                named["student_hidden"] = out["hidden"]
                named["teacher_hidden"] = caches[0].hidden("train", starts).to(batch.y.device)
                if n > relation_nodes:
                    named["node_idx"] = torch.randperm(n, generator=gen)[:relation_nodes].to(batch.y.device)
            return objective(named)

        return loss_fn, extra

    def validator(self, batch_size: int):
        """Validation MAE/RMSE in original units on observed targets (lower is better)."""
        wd = self.wd

        def validate(model):
            preds = evaluate_forecaster(model_forecaster(model, wd), wd, "val", horizons=[], batch_size=batch_size,
                                        keep_bytes=0)
            return {"mae": preds.metrics["mae"], "rmse": preds.metrics["rmse"]}

        return validate

    def val_record(self, best_score: float) -> dict:
        return {"mae": best_score}

    # ---------------------------------------------------------------- teachers to students
    def teacher_signal(self, run_dir: Path, teachers: list[Trained], *, progress: bool = False) -> ForecastSignal:
        d = self.cfg.distill
        with_hidden = d.feature_weight > 0 or d.relation_weight > 0
        caches = build_caches(run_dir, teachers, self.wd, self.cfg, with_hidden=with_hidden, progress=progress)
        return self.with_start(self.signal_from(caches, teachers), teachers)

    def signal_from(self, caches: list[CacheEntry], teachers: list[Trained]) -> ForecastSignal:
        """The signal of these teachers' caches; with ``distill.ensemble: weighted`` each teacher weighted
        by 1 / its validation MAE (None: equal weights)."""
        d = self.cfg.distill
        weights = None
        if len(teachers) >= 2 and d.ensemble == "weighted":
            weights = inverse_error_weights([float("nan") if t.val_mae is None else t.val_mae for t in teachers])
        online = self.online_teachers(teachers) if d.augment_weight > 0 and d.augment_labels == "online" else None
        return ForecastSignal(caches, [c.meta["teacher"] for c in caches], weights, online)

    def online_teachers(self, teachers: list[Trained]) -> list[tuple[nn.Module, WindowedData]]:
        """Each teacher with its view of the data, to forecast augmented inputs during training. Noise is
        drawn for the student's window, so it can change a teacher's input alike only where the teacher
        reads that same window: a privileged teacher with noise is refused."""
        out = []
        for t in teachers:
            view = self.wd.view(t.inputs, where=f"teacher {t.name} inputs")
            if "noise" in self.cfg.distill.augment and view is not self.wd:
                raise ConfigError(f"distill.augment: noise with augment_labels: online needs teachers that read the "
                                  f"student's window, but teacher {t.name!r} reads {view.view_key()} (its inputs); "
                                  "use mask, mixup or shift, which change every view alike, or augment_labels: cached")
            out.append((t.model, view))
        return out

    # ---------------------------------------------------------------- evaluation
    def load_models(self, run_dir: Path, roles: tuple[str, ...]) -> list[Trained]:
        return load_trained(run_dir, self.wd, roles=roles)

    def score(self, run_dir: Path, models: list[Trained], *, progress: bool = False,
              teachers_together: bool = True) -> dict:
        """Score every model and baseline on the test split; write predictions and metrics.json."""
        cfg, wd = self.cfg, self.wd
        horizons = cfg.eval.horizons
        eval_bs = eval_batch_size(cfg)
        entries: dict[str, dict] = {}
        pred_dir = Path(run_dir) / "predictions"
        first = True

        def record(name, role, preds, extra):
            nonlocal first
            if first:
                write_npy(pred_dir / "truth.npy", preds.truth)
                write_npy(pred_dir / "mask.npy", preds.mask)
                write_npy(pred_dir / "starts.npy", preds.starts)
                first = False
            write_npy(pred_dir / f"{name}.npy", preds.pred)
            entries[name] = {"role": role, **extra, "test": preds.metrics}

        teachers = [m for m in models if m.role == "teacher"]
        follows = teachers_together and any(m.role in names.STUDENT_ROLES for m in models)
        ensemble = teachers_together and len(teachers) >= 2
        signal = None
        if teachers and (follows or ensemble):  # the teachers' forecasts, as the students learn them
            caches = load_caches(teachers[0].run_dir or Path(run_dir), teachers, wd, cfg, progress=progress)
            signal = self.signal_from(caches, teachers)
        for m in sorted(models, key=lambda t: names.ROLE_ORDER[t.role]):
            mwd = wd.view(m.inputs)  # what this model reads (a privileged teacher reads more)
            forecast, distance = model_forecaster(m.model, mwd), None
            if signal is not None and follows and m.role in names.STUDENT_ROLES:
                # how closely the student follows its teachers, measured in the same pass over the test split
                forecast, distance = signal.following(forecast, mwd, "test")
            preds = evaluate_forecaster(forecast, mwd, "test", horizons, batch_size=eval_bs,
                                        progress=progress, desc=f"evaluate {m.name}")
            record(m.name, m.role, preds, {"model": m.registry_name, "params": count_params(m.model),
                                           "train_seconds": m.train_seconds, "trained_on": m.trained_on,
                                           "val_mae": m.val_mae,
                                           **inputs_entry(m.inputs, mwd), **other_nodes_entry(m.model),
                                           **({} if distance is None else to_teacher_entry(teachers, "mae", distance()))})
        for name, speed in self.speeds(models, eval_bs, progress=progress).items():
            entries[name].update(speed)
        if signal is not None and ensemble:  # what the distilled student learns from, beside each teacher
            preds = evaluate_forecaster(signal.forecaster("test"), wd, "test", horizons, batch_size=eval_bs,
                                        progress=progress, desc="evaluate the teachers' ensemble")
            record(names.TEACHER_ENSEMBLE, "teacher_ensemble", preds, ensemble_entry(teachers, signal.weights))
        for b in cfg.eval.baselines:
            t0 = time.perf_counter()
            baseline = build_baseline(b, wd, progress=progress)
            fit_s = time.perf_counter() - t0
            preds = evaluate_forecaster(baseline, wd, "test", horizons, batch_size=eval_bs, progress=progress,
                                        desc=f"baseline {b}")
            extra = {"model": b, "params": None, "latency_ms_batch1": None, "throughput_windows_per_s": None,
                     "train_seconds": fit_s}
            if getattr(baseline, "period_name", None):
                extra["period"] = baseline.period_name  # which seasonal profile: "1 week", "1 day" or "none"
            record(names.BASELINES[b], "baseline", preds, extra)
        metrics = {**self.metrics_header(), "models": entries}
        write_json(Path(run_dir) / "metrics.json", metrics)
        return metrics
