"""The whole job: data -> teacher(s) -> soft-label cache -> distilled and plain students -> baselines
-> evaluation -> metrics.json + report. Each step is also callable on its own (``stkd train``,
``stkd distill``, ``stkd evaluate``) through the functions here, reading and writing run directories.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from stkd import names
from stkd.checkpoint import save_model
from stkd.config import RunConfig, to_dict
from stkd.data.windows import load_windowed
from stkd.errors import ConfigError, STKDError
from stkd.io import write_json, write_npy
from stkd.runs import (Trained, check_same_data, linked_teacher_run, load_run, load_trained, open_run_dir,
                       require_run_dir, require_teachers)

ROLE_ORDER = names.ROLE_ORDER


# ------------------------------------------------------------------ run directory
# ----------------------------------------------------------------------- the data
def load_prepared(cfg: RunConfig):
    """Load and prepare the data once: (STData, WindowedData)."""
    wd = load_windowed(cfg.data)
    return wd.data, wd


def model_spec(wd, out_classes: int = 1):
    from stkd.models.base import ModelSpec

    return ModelSpec(num_nodes=wd.num_nodes, input_len=wd.P, horizon=wd.H, in_features=wd.in_features,
                     out_features=wd.out_features, steps_per_day=wd.steps_per_day,
                     adjacency=wd.data.adjacency, out_classes=out_classes)


def build(name: str, params: dict, wd) -> nn.Module:
    from stkd.models.registry import build_model

    return build_model(name, model_spec(wd), params)


# ------------------------------------------------------------------------- losses
def hard_loss_fn(wd, kind: str):
    """The loss of teachers and plain students: masked, in original units (like the metrics)."""
    from stkd.distill.losses import masked_loss
    from stkd.evaluate import to_original_units

    def loss_fn(batch, out):
        pred = to_original_units(wd, out["pred"], batch.nodes)  # [B, H, N, F_out] (N = K on a node subset)
        loss = masked_loss(pred, batch.y, batch.mask, kind=kind)
        return loss, {"hard": float(loss.detach())}

    return loss_fn


def kd_loss_fn(wd, caches: list, weights: list[float] | None, distill_cfg, train_loss: str,
               projection: nn.Module | None, seed: int = 0, relation_nodes: int = 512):
    """The distillation objective over named outputs: response (+ hint, + relation) terms."""
    from stkd.distill.losses import ensemble_targets
    from stkd.distill.objective import build_forecast_objective
    from stkd.evaluate import to_original_units

    objective = build_forecast_objective(distill_cfg, train_loss, projection=projection)
    need_hidden = distill_cfg.feature_weight > 0 or distill_cfg.relation_weight > 0
    gen = torch.Generator().manual_seed(seed)
    N = wd.num_nodes

    def loss_fn(batch, out):
        starts = batch.start.cpu().numpy()
        teacher = ensemble_targets([c.pred("train", starts) for c in caches], weights).to(batch.y.device)
        named = {"student_pred": to_original_units(wd, out["pred"]), "y": batch.y, "mask": batch.mask,
                 "teacher_pred": teacher}
        if need_hidden:
            named["student_hidden"] = out["hidden"]
            named["teacher_hidden"] = caches[0].hidden("train", starts).to(batch.y.device)
            if N > relation_nodes:
                named["node_idx"] = torch.randperm(N, generator=gen)[:relation_nodes].to(batch.y.device)
        return objective(named)

    return loss_fn


def eval_batch_size(cfg: RunConfig) -> int:
    """Windows per forward pass when nothing is trained (validation, cache, test, throughput): a few
    training batches' worth (no activations are kept for a backward pass), at most 256, so a graph
    large enough to need a small train.batch_size does not run out of memory outside training."""
    return max(1, min(256, 4 * cfg.train.batch_size))


def validator(wd, device=None, batch_size: int = 256):
    """Validation MAE/RMSE in original units on observed targets (lower is better)."""
    from stkd.evaluate import evaluate_forecaster, model_forecaster

    def validate(model):
        preds = evaluate_forecaster(model_forecaster(model, wd, device), wd, "val", horizons=[],
                                    batch_size=batch_size, keep_bytes=0)
        return {"mae": preds.metrics["mae"], "rmse": preds.metrics["rmse"]}

    return validate


# -------------------------------------------------------------------- train steps
def _check_fits(name: str, params: dict, wd, seed: int | None = None, role: str = "model", train=None) -> nn.Module:
    """Build the model and run one batch through it, so shape errors surface before any training.

    First the memory guard (:func:`stkd.memory.check_fits`, at ``train.batch_size`` and ``train.device``)
    refuses a model that would not fit in memory, with what to try instead.

    With ``seed`` the weights are initialised from it (``--seed`` repeats a run, and the distilled and
    plain students start from the same weights). The check runs in eval mode, so it neither draws
    dropout noise nor moves batch-norm statistics of the model that is then trained.
    """
    from stkd.memory import check_fits
    from stkd.models.base import uses_node_subsets

    bs = train.batch_size if train is not None else 64
    subset = train.node_subset if (train is not None and role == "teacher") else None
    check_fits(name, model_spec(wd), params, batch_size=bs, eval_batch_size=max(1, min(256, 4 * bs)),
               data_loaded=True, device=train.device if train is not None else "cpu", train_nodes=subset)
    if seed is not None:
        from stkd.train import set_seed

        set_seed(seed)
    try:
        model = build(name, params, wd)
        b = wd.batch(wd.starts["train"][:2])
        model.eval()
        with torch.no_grad():
            out = model(b.x, b.tod, b.dow)
        model.train()
    except STKDError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise ConfigError(f"{role} {name!r} with params {params} does not fit the data ({wd.num_nodes} nodes, "
                          f"input {wd.P} x {wd.in_features} features, horizon {wd.H}): "
                          f"{type(e).__name__}: {e}") from None
    uses_node_subsets(model, subset, f"teacher {name!r}")  # a per-node teacher is refused before training
    expected = tuple(b.y.shape)
    if tuple(out["pred"].shape) != expected:
        raise ConfigError(f"{role} {name!r} produces {tuple(out['pred'].shape)} but the data needs {expected} "
                          "([batch, horizon, nodes, targets]); check its hyper-parameters")
    return model


def check_models(cfg: RunConfig, wd, teachers: bool = True, student: bool = True) -> None:
    """Build every configured model once and run a batch through it: bad names, hyper-parameters or
    shapes fail here, before a run directory is touched or any training starts."""
    if teachers:
        for t in cfg.teacher:
            _check_fits(t.name, t.params, wd, role="teacher", train=cfg.train)
    if student:
        _check_fits(cfg.student.name, cfg.student.params, wd, role="student", train=cfg.train)


def train_teachers(cfg: RunConfig, wd, run_dir: Path, *, resume=False, progress=True) -> list[Trained]:
    from stkd.train import fit

    trained = []
    names = _unique_names([t.name for t in cfg.teacher])
    for tcfg, label in zip(cfg.teacher, names):
        model = _check_fits(tcfg.name, tcfg.params, wd, seed=cfg.train.seed, role="teacher", train=cfg.train)
        mdir = run_dir / "models" / label
        res = fit(model, wd, hard_loss_fn(wd, cfg.train.loss), validator(wd, batch_size=eval_batch_size(cfg)), cfg.train, mdir,
                  epochs=tcfg.epochs, resume=resume, desc=f"teacher {label}", progress=progress,
                  node_subset=cfg.train.node_subset)
        save_model(mdir, model, tcfg.name, model_spec(wd), "teacher",
                   {"train_seconds": res.train_seconds, "best_epoch": res.best_epoch, "val_mae": res.best_score})
        trained.append(Trained(label, "teacher", model, tcfg.name, res.train_seconds, res.best_score))
    return trained


def _unique_names(names: list[str]) -> list[str]:
    out = []
    for i, n in enumerate(names):
        out.append(n if names.count(n) == 1 else f"{n}_{i + 1}")
    return out


def build_caches(run_dir: Path, teachers: list[Trained], wd, cfg: RunConfig):
    from stkd.distill.cache import build_or_load

    from stkd.distributed import rank0_first

    with_hidden = cfg.distill.feature_weight > 0 or cfg.distill.relation_weight > 0

    def build():
        return [build_or_load(run_dir, t.model, t.registry_name, wd, with_hidden=with_hidden,
                              batch_size=eval_batch_size(cfg)) for t in teachers]

    return rank0_first(build)  # under DDP built once, by rank 0; the other ranks then read it from disk


def ensemble_weights(cfg: RunConfig, teachers: list[Trained]) -> list[float] | None:
    from stkd.distill.losses import inverse_error_weights

    if len(teachers) < 2 or cfg.distill.ensemble == "mean":
        return None
    return inverse_error_weights([t.val_mae for t in teachers])


def train_student(cfg: RunConfig, wd, run_dir: Path, *, caches=None, weights=None, resume=False,
                  progress=True) -> Trained:
    """Train the configured student with distillation (``caches`` given) or without."""
    from stkd.train import fit

    s = cfg.student
    kd = caches is not None
    label = f"{s.name}_{'kd' if kd else 'plain'}"
    model = _check_fits(s.name, s.params, wd, seed=cfg.train.seed, role="student", train=cfg.train)
    mdir = run_dir / "models" / label
    extra = {}
    if kd:
        projection = None
        if cfg.distill.feature_weight > 0:
            projection = nn.Linear(model.hidden_dim, caches[0].meta["hidden_dim"])
            extra["projection"] = projection
        loss_fn = kd_loss_fn(wd, caches, weights, cfg.distill, cfg.train.loss, projection, cfg.train.seed)
    else:
        loss_fn = hard_loss_fn(wd, cfg.train.loss)
    res = fit(model, wd, loss_fn, validator(wd, batch_size=eval_batch_size(cfg)), cfg.train, mdir, epochs=s.epochs, extra_modules=extra,
              resume=resume, desc=f"student {label}", progress=progress)
    role = "student_kd" if kd else "student_plain"
    save_model(mdir, model, s.name, model_spec(wd), role,
               {"train_seconds": res.train_seconds, "best_epoch": res.best_epoch, "val_mae": res.best_score,
                "distill": to_dict(cfg.distill) if kd else None,
                "teachers": [c.meta["teacher"] for c in caches] if kd else None,
                "teacher_weights": (list(weights) if weights is not None else None) if kd else None})
    return Trained(label, role, model, s.name, res.train_seconds, res.best_score)


# --------------------------------------------------------------------- evaluation
def evaluate_all(cfg: RunConfig, wd, run_dir: Path, models: list[Trained]) -> dict:
    """Score every model and baseline on the test split; write predictions and metrics.json."""
    from stkd.baselines import BASELINE_NAMES, build_baseline
    from stkd.evaluate import evaluate_forecaster, measure_speed, model_forecaster
    from stkd.models.base import count_params

    horizons = cfg.eval.horizons
    eval_bs = eval_batch_size(cfg)
    entries: dict[str, dict] = {}
    first = True
    pred_dir = run_dir / "predictions"

    def record(name, role, preds, extra):
        nonlocal first
        if first:
            write_npy(pred_dir / "truth.npy", preds.truth)
            write_npy(pred_dir / "mask.npy", preds.mask)
            write_npy(pred_dir / "starts.npy", preds.starts)
            first = False
        write_npy(pred_dir / f"{name}.npy", preds.pred)
        entries[name] = {"role": role, **extra, "test": preds.metrics}

    for m in sorted(models, key=lambda t: ROLE_ORDER[t.role]):
        preds = evaluate_forecaster(model_forecaster(m.model, wd), wd, "test", horizons, batch_size=eval_bs)
        speed = measure_speed(m.model.cpu(), wd, repeats=cfg.eval.latency_repeats,  # CPU latency, as reported
                              throughput_batch=eval_bs)
        record(m.name, m.role, preds, {"model": m.registry_name, "params": count_params(m.model), **speed,
                                       "train_seconds": m.train_seconds, "val_mae": m.val_mae})
    for b in cfg.eval.baselines:
        t0 = time.perf_counter()
        baseline = build_baseline(b, wd)
        fit_s = time.perf_counter() - t0
        preds = evaluate_forecaster(baseline, wd, "test", horizons, batch_size=eval_bs)
        extra = {"model": b, "params": None, "latency_ms_batch1": None, "throughput_windows_per_s": None,
                 "train_seconds": fit_s}
        if getattr(baseline, "period_name", None):
            extra["period"] = baseline.period_name  # which seasonal profile: "1 week", "1 day" or "none"
        record(BASELINE_NAMES[b], "baseline", preds, extra)
    data = wd.data
    metrics = {"dataset": {"name": data.name, "nodes": data.num_nodes, "steps": data.num_steps,
                           "freq": data.freq_str},
               "task": cfg.task, "models": entries}
    write_json(run_dir / "metrics.json", metrics)
    return metrics


# ------------------------------------------------------------------ entry points
def start_run(cfg: RunConfig, out: Path, *, overwrite=False, resume=False, check_student=True):
    """Validate, load data, create the run directory, save config.yaml and data.json."""
    data, wd = load_prepared(cfg)  # bad data fails here, before anything is written
    check_models(cfg, wd, student=check_student)  # and bad models
    return open_run_dir(cfg, wd, out, overwrite=overwrite, resume=resume), wd


def run(cfg: RunConfig, out: Path, *, overwrite=False, resume=False, progress=True) -> dict:
    """The whole pipeline; returns metrics.json's content. Writes report.md beside it."""
    if cfg.task == "classify":
        from stkd.events.pipeline import run_classify

        return run_classify(cfg, out, overwrite=overwrite, resume=resume, progress=progress)
    run_dir, wd = start_run(cfg, out, overwrite=overwrite, resume=resume)
    teachers = train_teachers(cfg, wd, run_dir, resume=resume, progress=progress)
    caches = build_caches(run_dir, teachers, wd, cfg)
    weights = ensemble_weights(cfg, teachers)
    kd = train_student(cfg, wd, run_dir, caches=caches, weights=weights, resume=resume, progress=progress)
    plain = train_student(cfg, wd, run_dir, resume=resume, progress=progress)
    return _finish(cfg, wd, run_dir, [*teachers, kd, plain])


def _finish(cfg: RunConfig, wd, run_dir: Path, models: list[Trained]) -> dict:
    """Evaluate and report on rank 0 (the others have nothing to write); returns metrics.json."""
    return report_on_rank0(run_dir, lambda: evaluate_all(cfg, wd, run_dir, models))


def report_on_rank0(run_dir: Path, score) -> dict:
    """``score()`` (which writes metrics.json and returns it) and report.md, on rank 0 only; the other
    ranks wait for them and get ``{}``. Forecast and event runs end with it."""
    from stkd.distributed import barrier, is_rank0
    from stkd.report import write_report

    metrics = {}
    if is_rank0():
        metrics = score()
        write_report(run_dir)
    barrier()
    return metrics


def distill_from(cfg: RunConfig, teacher_run: Path, out: Path, *, overwrite=False, resume=False,
                 progress=True) -> dict:
    """Distil the configured student from the teacher(s) saved in ``teacher_run`` (not retrained)."""
    if cfg.task == "classify":
        from stkd.events.pipeline import distill_classify_from

        return distill_classify_from(cfg, Path(teacher_run), Path(out), overwrite=overwrite, resume=resume,
                                     progress=progress)

    require_run_dir(teacher_run)
    _, wd = load_prepared(cfg)
    check_same_data(teacher_run, wd)
    teachers = require_teachers(load_trained(teacher_run, wd, roles=("teacher",)), teacher_run)
    check_models(cfg, wd, teachers=False)  # a student that does not fit fails before anything is written
    run_dir = Path(out)
    if run_dir.resolve() != Path(teacher_run).resolve():  # else: students added to the teacher run
        open_run_dir(cfg, wd, run_dir, overwrite=overwrite, resume=resume, teacher_run=teacher_run)
    caches = build_caches(Path(teacher_run), teachers, wd, cfg)
    kd = train_student(cfg, wd, run_dir, caches=caches, weights=ensemble_weights(cfg, teachers),
                       resume=resume, progress=progress)
    plain = train_student(cfg, wd, run_dir, resume=resume, progress=progress)
    return _finish(cfg, wd, run_dir, [*teachers, kd, plain])


def train_only(cfg: RunConfig, out: Path, *, overwrite=False, resume=False, progress=True) -> Path:
    """Train the teacher(s) and write their soft-label cache; students can be distilled later."""
    if cfg.task == "classify":
        from stkd.events.pipeline import train_classify

        return train_classify(cfg, Path(out), overwrite=overwrite, resume=resume, progress=progress)
    run_dir, wd = start_run(cfg, out, overwrite=overwrite, resume=resume, check_student=False)
    teachers = train_teachers(cfg, wd, run_dir, resume=resume, progress=progress)
    build_caches(run_dir, teachers, wd, cfg)
    return run_dir


def evaluate_run(run_dir: Path) -> dict:
    """Re-score every saved model of a run on its test split and rewrite metrics.json and report.md."""
    from stkd.report import write_report

    cfg, _ = load_run(run_dir)
    if cfg.task == "classify":  # event runs are re-scored by stkd.events
        from stkd.events.pipeline import evaluate_classify_run

        return evaluate_classify_run(cfg, Path(run_dir))
    _, wd = load_prepared(cfg)
    check_same_data(run_dir, wd)
    models = load_trained(run_dir, wd)
    teacher_run = None if any(m.role == "teacher" for m in models) else linked_teacher_run(run_dir)
    if teacher_run is not None:
        check_same_data(teacher_run, wd)
        models = load_trained(teacher_run, wd, roles=("teacher",)) + models
    if not models:
        raise STKDError(f"{run_dir} holds no trained models")
    metrics = evaluate_all(cfg, wd, Path(run_dir), models)
    write_report(Path(run_dir))
    return metrics
