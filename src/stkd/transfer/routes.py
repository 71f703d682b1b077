"""The five routes of one transfer run (one target history, one seed), trained into one run folder and
scored together on the target's test split.

Every route sees the same truncated target history and is scored on the same test windows with the
same scaler (the target's, fitted on its own kept history), so their differences are the routes':

- ``target_only``: the configured student trained on the target alone;
- ``source_zero_shot``: the source teacher applied to the target unchanged (no target training);
- ``finetuned``: the source teacher's weights trained further on the target (scored on the target's
  validation split first, as epoch 0: fine-tuning keeps them unless an epoch beats them there);
- ``kd_source``: the student distilled from the source teacher's forecasts of the target's windows;
- ``kd_finetuned``: the student distilled from the fine-tuned teacher.

Soft labels go through the usual cache (:mod:`stkd.distill.cache`), keyed to the target's data (history
included) and to each teacher's weights, so the two teachers never share an entry.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from stkd import names
from stkd.config import ModelConfig
from stkd.pipeline import check_start, train_student
from stkd.runs import Trained
from stkd.steps import train_model
from stkd.tasks.base import Task
from stkd.transfer.source import SourceModel, source_task, zero_shot

ROUTES = names.TRANSFER_ROUTES
KEPT = ("mae", "rmse", "mape", "horizons")  # of a test block in transfer.json (per step and node: metrics.json)


def finetune_config(task: Task, source: SourceModel) -> ModelConfig:
    """The source teacher as a model section: its own name and hyper-parameters; epochs from the target
    config's first teacher section (else ``train.epochs``)."""
    epochs = task.cfg.teacher[0].epochs if task.cfg.teacher else None
    return ModelConfig(name=source.name, params=dict(source.hparams), epochs=epochs)


def with_lr(task: Task, lr: float | None) -> Task:
    """``task`` whose training runs at learning rate ``lr`` (the task itself for None)."""
    if lr is None:
        return task
    out = copy.copy(task)  # shares its data; only the config differs
    out.cfg = dataclasses.replace(task.cfg, train=dataclasses.replace(task.cfg.train, lr=float(lr)))
    return out


def train_routes(task: Task, source: SourceModel, run_dir: Path, *, progress: bool = True,
                 finetune_lr: float | None = None) -> list[Trained]:
    """Train every route's model into ``run_dir/models/<route>`` (the zero-shot teacher is not trained);
    ``finetune_lr``: the fine-tuned route's learning rate (default: the target's ``train.lr``)."""
    src = source_task(task, source)
    origin = {"source_run": str(Path(source.run_dir).resolve()), "source_model": source.label}
    zero = zero_shot(src, source, run_dir)
    check_start(task, zero.model, zero.inputs)  # distill.init: teacher: the students can be cut from it, before anything trains
    hard = src.hard_loss()
    tuned = train_model(with_lr(src, finetune_lr), finetune_config(task, source), "finetuned", "teacher", run_dir,
                        lambda _: (hard, {}), card=origin, progress=progress, init=source.state)
    models = [zero, tuned, train_student(task, run_dir, label="target_only", progress=progress)]
    for label, teacher in (("kd_source", zero), ("kd_finetuned", tuned)):
        signal = task.teacher_signal(run_dir, [teacher])
        models.append(train_student(task, run_dir, signal, label=label, progress=progress,
                                    card={"teacher_route": teacher.name, **origin}))
    return models


def score_routes(task: Task, run_dir: Path, models: list[Trained]) -> dict:
    """Score the routes and the baselines on the test split (``run_dir/metrics.json``); returns
    ``{"routes": {route: test metrics}, "baselines": {name: test metrics}, "windows": {split: count}}``."""
    rows = task.score(run_dir, models, teachers_together=False)["models"]  # each distilled route has its own teacher
    brief = lambda test: {k: test[k] for k in KEPT if k in test}  # noqa: E731
    return {"routes": {r: brief(rows[r]["test"]) for r in ROUTES},
            "baselines": {k: brief(v["test"]) for k, v in rows.items() if v["role"] == "baseline"},
            "windows": {s: task.wd.num_windows(s) for s in names.SPLITS}}
