"""The steps every task shares: build and check a model, train it and save it, cache teachers' outputs,
score on rank 0.

A task (:mod:`stkd.tasks`) says what differs (the models' output shape, the losses, the validation
score, the evaluation); everything here runs the same way for forecasts and event classification, so
the memory guard, node-subset training, seeding, checkpointing and the evaluation batch size cannot
drift apart between tasks.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from stkd import report
from stkd.checkpoint import save_model
from stkd.config import InputsConfig, ModelConfig, RunConfig, TrainConfig, to_dict
from stkd.data.windows import WindowedData
from stkd.distill.cache import CacheEntry, build_or_load
from stkd.distributed import barrier, is_rank0, rank0_first, world
from stkd.errors import ConfigError, STKDError
from stkd.memory import check_fits as memory_check_fits
from stkd.memory import default_eval_batch_size
from stkd.models.base import ModelSpec, STModel, uses_node_subsets
from stkd.models.registry import build_model
from stkd.runs import Trained
from stkd.tasks.base import Task
from stkd.tracking import open_tracker
from stkd.train import EpochCallback, FitResult, fit, has_last, set_seed


def eval_batch_size(cfg: RunConfig) -> int:
    """Windows per forward pass when nothing is trained (validation, cache, test, throughput): a few
    training batches' worth (no activations are kept for a backward pass), at most 256, so a graph
    large enough to need a small train.batch_size does not run out of memory outside training."""
    return default_eval_batch_size(cfg.train.batch_size)


def model_spec(wd, *, out_features: int | None = None, out_classes: int = 1) -> ModelSpec:
    """The shape of the models trained on ``wd``: forecasts of every target (``out_classes = 1``), or K
    event classes of one target (``out_features = 1, out_classes = K``)."""
    return ModelSpec(num_nodes=wd.num_nodes, input_len=wd.input_len, horizon=wd.H, in_features=wd.in_features,
                     out_features=wd.out_features if out_features is None else out_features,
                     steps_per_day=wd.steps_per_day, adjacency=wd.data.adjacency, out_classes=out_classes,
                     day_of_week=wd.day_of_week)


def side_by_side(cfg: RunConfig, count: int) -> int:
    """How many of ``count`` models that do not depend on each other (a run's teachers; its distilled and plain
    student) train at once, one process each: ``train.workers``, at most ``count`` (1: one after the other in
    the run's own process). Under torchrun 1: the ranks already share every model's batches."""
    return 1 if world()[1] > 1 else min(cfg.train.workers, count)


def unique_names(names: list[str]) -> list[str]:
    """Folder names for a run's models: a name used twice gets ``_1``, ``_2``, ... by position."""
    return [n if names.count(n) == 1 else f"{n}_{i + 1}" for i, n in enumerate(names)]


def teacher_labels(cfg: RunConfig) -> list[str]:
    """The folder names of the configured teachers (``models/<label>``)."""
    return unique_names([t.name for t in cfg.teacher])


def check_lag_reach(wd: WindowedData, who: str) -> None:
    """Refuse lags that reach before the data's first step from every training window (the channel would
    read the training mean only: a model that learns nothing from it, silently), and warn where they do
    from most of them. A lag is worth what the training windows see of it."""
    share = wd.unseen_lag_share("train")
    if share <= 0.5:
        return
    assert wd.view_spec is not None  # a share above 0 needs a view with lags
    longest = max(wd.view_spec.lags)
    reach = f"{longest} steps ({pd.Timedelta(wd.data.freq) * longest})"
    where = (f"{who} inputs.lags: the longest lag, {reach}, reaches before the data's first step from "
             f"{100 * share:.0f} % of the {wd.num_windows('train')} training windows")
    if share >= 1:
        raise ConfigError(f"{where}: that channel would read only the training mean; use a shorter lag, or data "
                          "with that much history before its training part")
    warnings.warn(f"{where}: there it reads only the training mean, and the model learns it from the rest",
                  stacklevel=2)


def check_fits(task: Task, mcfg: ModelConfig, role: str, seed: int | None = None, share: int = 1) -> STModel:
    """Build the model and run one batch through it, so shape errors surface before any training.

    First the memory guard (:func:`stkd.memory.check_fits`, at ``train.batch_size`` and ``train.device``,
    with the teachers' ``train.node_subset``; with ``share`` above 1 in that part of the memory: it trains at once
    with others, each process loading its own data) refuses a model that would not fit in memory, with what to
    try instead. A teacher asked to train on node subsets that has per-node weights is refused here too.

    With ``seed`` the weights are initialised from it (``--seed`` repeats a run, and the distilled and
    plain students start from the same weights). The check runs in eval mode, so it neither draws
    dropout noise nor moves batch-norm statistics of the model that is then trained.
    """
    task = task.for_inputs(mcfg.inputs)  # what this model reads (a privileged teacher reads more)
    cfg, wd = task.cfg, task.wd
    check_lag_reach(wd, f"{role} {mcfg.name!r}")
    spec = task.spec()
    train = cfg.train
    subset = train.node_subset if role == "teacher" else None
    memory_check_fits(mcfg.name, spec, mcfg.params, batch_size=train.batch_size,
                      eval_batch_size=eval_batch_size(cfg), data_loaded=share == 1, device=train.device,
                      train_nodes=subset, share=share)
    if seed is not None:
        set_seed(seed)
    try:
        model = build_model(mcfg.name, spec, mcfg.params)
        b = wd.batch(wd.starts["train"][:2])
        model.eval()
        with torch.no_grad():
            out = model(b.x, b.tod, b.dow)
        model.train()
    except STKDError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise ConfigError(f"{role} {mcfg.name!r} with params {mcfg.params} does not fit the data ({wd.num_nodes} "
                          f"nodes, input {wd.P} x {wd.in_features} features, horizon {wd.H}): "
                          f"{type(e).__name__}: {e}") from None
    uses_node_subsets(model, subset, f"{role} {mcfg.name!r}")  # a per-node teacher is refused before training
    expected = (len(b), wd.H, wd.num_nodes, spec.out_channels)
    if tuple(out["pred"].shape) != expected:
        raise ConfigError(f"{role} {mcfg.name!r} produces {tuple(out['pred'].shape)} but the {task.name} task "
                          f"needs {expected} ([batch, horizon, nodes, {task.channels_meaning}]); check its "
                          "hyper-parameters")
    return model


LossMaker = Callable[[STModel], tuple[Callable, dict[str, nn.Module]]]


def model_train_config(cfg: RunConfig, mcfg: ModelConfig) -> TrainConfig:
    """The training settings of one model: the run's, with the model's own ``seed`` and ``lr`` where it has
    them."""
    train = cfg.train if mcfg.seed is None else dataclasses.replace(cfg.train, seed=mcfg.seed)
    return train if mcfg.lr is None else dataclasses.replace(train, lr=float(mcfg.lr))


def train_model(task: Task, mcfg: ModelConfig, label: str, role: str, run_dir: Path, make_loss: LossMaker,
                *, card: dict[str, Any] | None = None, resume: bool = False, progress: bool = True,
                on_epoch: EpochCallback | None = None,
                init: dict[str, torch.Tensor] | Callable[[STModel], dict[str, torch.Tensor]] | None = None) -> Trained:
    """Build ``mcfg``'s model from the seed, train it under the task's validation score with the loss
    ``make_loss(model)`` returns (with any module trained beside it, e.g. a hint projection), save it to
    ``run_dir/models/<label>`` (best weights and card) and return it.

    ``init``: weights to start from instead of the seed's (fine-tuning a model trained elsewhere; every
    weight must match), or a function of the model built from the seed that returns them (a student cut
    from its teacher: :func:`shrink_batches`). They are validated first, as epoch 0, and kept if no epoch of training beats
    them. Teachers train on node subsets when ``train.node_subset`` is set (for every task alike).
    ``on_epoch`` is :func:`stkd.train.fit`'s per-epoch callback (a search's pruner)."""
    cfg = task.cfg
    train_cfg = model_train_config(cfg, mcfg)
    model = check_fits(task, mcfg, role, seed=train_cfg.seed)  # the seed fixes the weights and the batch order
    mdir = Path(run_dir) / "models" / label
    # a checkpoint to resume from replaces the starting weights (and holds the random state): they are not
    # computed again, which for a student cut from its teacher is a pass of the teacher over training windows
    if init is not None and not (resume and has_last(mdir)):
        weights = init(model) if callable(init) else init
        model.load_state_dict(weights)  # strict: a weight that does not fit is an error, not a silent re-init
    loss_fn, extra_modules = make_loss(model)
    task = task.for_inputs(mcfg.inputs)  # batches, validation and the card follow what the model reads
    tracker = open_tracker(cfg, run_dir, label, role) if is_rank0() else None  # train.tensorboard / mlflow
    with tracker if tracker is not None else nullcontext():
        res: FitResult = fit(model, task.wd, loss_fn, task.validator(eval_batch_size(cfg)), train_cfg, mdir,
                             epochs=mcfg.epochs, extra_modules=extra_modules, resume=resume, monitor=task.monitor,
                             desc=f"{role} {label}", progress=progress,
                             node_subset=cfg.train.node_subset if role == "teacher" else None, tracker=tracker,
                             on_epoch=on_epoch, validate_start=init is not None)
    val = task.val_record(res.best_score)
    if not (res.was_finished and (mdir / "model.json").is_file()):  # a finished model re-opened keeps its files
        save_model(mdir, model, mcfg.name, task.spec(), role,
                   {**task.card_extra(), "train_seconds": res.train_seconds, "trained_on": res.machines,
                    "best_epoch": res.best_epoch,
                    **{f"val_{k}": v for k, v in val.items()}, "inputs": inputs_card(mcfg.inputs, task.wd),
                    **(card or {})})
    return Trained(label, role, model, mcfg.name, res.train_seconds, val, kind=task.name, run_dir=Path(run_dir),
                   inputs=mcfg.inputs if task.wd.view_spec is not None else None, trained_on=res.machines)


#: Node-rows (windows x sensors) a teacher is measured on to cut a student from it: enough for the second moments
#: of its widest block (hundreds wide), and a few seconds of teacher forwards at any N.
SHRINK_ROWS = 65536


def shrink_batches(wd: WindowedData, seed: int, batch_size: int = 64):
    """Training windows to measure a teacher on before cutting a student from it (``distill.init: teacher``):
    about :data:`SHRINK_ROWS` node-rows (at least one window), drawn by ``seed`` from the training split, in
    batches of ``batch_size`` windows; the same seed draws the same windows."""
    starts = wd.starts["train"]
    count = min(len(starts), max(1, SHRINK_ROWS // wd.num_nodes))
    gen = torch.Generator().manual_seed(seed)
    picked = starts[torch.randperm(len(starts), generator=gen)[:count].numpy()]
    for i in range(0, count, batch_size):
        yield wd.batch(picked[i:i + batch_size])


def student_start(task: Task, start: STModel | None,
                  start_inputs: InputsConfig | None = None) -> Callable[[STModel], dict[str, torch.Tensor]] | None:
    """``init`` for :func:`train_model`: the configured student's weights cut from ``start`` (its teacher, which
    reads ``start_inputs``) on training windows drawn by the student's seed, each seen as the student and as the
    teacher read it; None when the student starts from the seed's weights."""
    if start is None:
        return None
    student = task.cfg.student
    wd, seed = task.for_inputs(student.inputs).wd, model_train_config(task.cfg, student).seed
    teacher_wd = None if reads_alike(task, student.inputs, start_inputs) else task.for_inputs(start_inputs).wd
    return lambda model: model.shrink_from(start, shrink_batches(wd, seed),
                                           None if teacher_wd is None else shrink_batches(teacher_wd, seed))


def reads_alike(task: Task, a: InputsConfig | None, b: InputsConfig | None) -> bool:
    """Whether models reading ``a`` and ``b`` get the same batches of this task's windows (the same view)."""
    return task.for_inputs(a).wd.view_key() == task.for_inputs(b).wd.view_key()


def inputs_card(inputs: InputsConfig | None, wd) -> dict | None:
    """What a model card records of the model's inputs: the config, its resolved view and whether the
    serving path can feed it (``servable``: the run's window of every feature, with lagged channels at most;
    a longer history or some features only it cannot). None: the plain window, as every card before views
    existed."""
    v = wd.view_spec
    if v is None:
        return None
    servable = v.length == wd.P and tuple(v.features) == tuple(range(len(wd.features)))
    return {**to_dict(inputs), "view": wd.view_key(), "servable": servable}


def inputs_entry(inputs: InputsConfig | None, wd) -> dict:
    """``{"inputs": card}`` for the metrics entry of a model that reads its own view of the data (lagged
    channels, a longer history, some features: :func:`inputs_card`), else ``{}``: what tells the report
    whether the serving path can feed that model."""
    card = inputs_card(inputs, wd)
    return {} if card is None else {"inputs": card}


def other_nodes_entry(model: nn.Module) -> dict:
    """``{"reads_other_nodes": bool}`` for a model's metrics entry (:meth:`STModel.reads_other_nodes`): what tells
    the report that a teacher forecasts each sensor from the others too while its student reads its own only."""
    if not isinstance(model, STModel):
        return {}
    return {"reads_other_nodes": model.reads_other_nodes(model.hparams)}


def load_caches(run_dir: Path, teachers: list[Trained], wd, cfg: RunConfig, *, kind: str = "forecast",
                with_hidden: bool = False, progress: bool = False) -> list[CacheEntry]:
    """The soft-label cache of every teacher, each on its own view of the same windows (the cache is
    keyed by window start), built where it is missing, with a bar ``cache <teacher>`` while one is built
    when ``progress``. No barrier: for one process (scoring on rank 0); training uses :func:`build_caches`."""
    return [build_or_load(run_dir, t.model, t.registry_name, wd.view(t.inputs),  # type: ignore[arg-type]
                          with_hidden=with_hidden, batch_size=eval_batch_size(cfg), kind=kind,
                          progress=progress, label=t.name) for t in teachers]


def build_caches(run_dir: Path, teachers: list[Trained], wd, cfg: RunConfig, *, kind: str = "forecast",
                 with_hidden: bool = False, progress: bool = False) -> list[CacheEntry]:
    """:func:`load_caches`, built once (by rank 0 under DDP; read from disk by the others after)."""
    return rank0_first(lambda: load_caches(run_dir, teachers, wd, cfg, kind=kind, with_hidden=with_hidden,
                                           progress=progress))


def report_on_rank0(run_dir: Path, score: Callable[[], dict]) -> dict:
    """``score()`` (which writes metrics.json and returns it) and report.md, on rank 0 only; the other
    ranks wait for them and get ``{}``. Every run kind ends with it."""
    metrics: dict = {}
    if is_rank0():
        metrics = score()
        report.write_report(run_dir)  # looked up at call time: tests replace stkd.report.write_report
    barrier()
    return metrics
