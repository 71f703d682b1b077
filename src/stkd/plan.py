"""The plan a run prints before it trains: every model it will train, the epochs each gets (and which
setting gave them), batches per epoch and an estimate of the time.

Why: a long run should say up front what it will do and roughly how long it takes (a user once watched a
teacher's bar at 0/30 for minutes, not knowing the preset's ``teacher.epochs`` had won over their
``train.epochs``). The estimate times real training steps of each model (the batch cut, forward, loss, backward and
optimizer step, at ``train.batch_size`` and ``train.precision``) and one validation pass's share of them;
it is a guide, not a promise (early stopping ends models sooner; a busy machine runs slower).
``benchmarks/default_run.py`` compares it with the default run's training time.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from stkd.config import ModelConfig
from stkd.machine import resolve_precision
from stkd.processes import threads_per_worker
from stkd.steps import check_fits, eval_batch_size, side_by_side
from stkd.tasks.base import Task
from stkd.train import format_duration, num_train_batches, precision_context, resolve_device


def _step_seconds(task: Task, mcfg: ModelConfig, role: str, steps: int = 5,
                  budget_s: float = 2.0, threads: int | None = None) -> tuple[float, float]:
    """Seconds of one training step of the model as the trainer takes it (cut the batch, forward under
    ``train.precision``, the task's loss, backward and an AdamW step), and of one forward without gradients
    (what labelling a batch online costs a teacher). Medians of ``steps`` after a warm-up, or of those that
    fit in ``budget_s`` (at least one: a graph teacher on many sensors takes seconds a step), at ``threads``
    torch threads (default: this process's). The model is a throwaway copy and the run's random state and
    threads are left alone."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _timed_steps(task, mcfg, role, steps, budget_s)
    finally:
        torch.set_num_threads(before)


def _timed_steps(task: Task, mcfg: ModelConfig, role: str, steps: int, budget_s: float) -> tuple[float, float]:
    """:func:`_step_seconds` at this process's threads."""
    cfg = task.cfg
    with torch.random.fork_rng(devices=[]):  # the plan leaves the run's random state alone
        model = check_fits(task, mcfg, role)
        wd = task.for_inputs(mcfg.inputs).wd
        device = resolve_device(cfg.train.device)
        model.to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
        loss_fn = task.hard_loss()  # the task's own loss (a forecast's masked error, an event's cross-entropy)
        autocast = precision_context(cfg.train.precision, device)
        starts = wd.starts["train"]
        bs = min(cfg.train.batch_size, len(starts))
        times: list[float] = []
        started = time.perf_counter()
        for i in range(steps + 1):
            t0 = time.perf_counter()
            batch = wd.batch(np.roll(starts, -i * bs)[:bs]).to(device)  # [B, P, N, F] inputs
            with autocast():
                out = model(batch.x, batch.tod, batch.dow)
            loss, _ = loss_fn(batch, {k: v.float() if torch.is_tensor(v) else v for k, v in out.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
            if len(times) >= 2 and time.perf_counter() - started > budget_s:
                break
        model.eval()
        forwards = []
        with torch.no_grad(), autocast():
            for _ in range(min(3, len(times))):
                t0 = time.perf_counter()
                model(batch.x, batch.tod, batch.dow)
                forwards.append(time.perf_counter() - t0)
    return statistics.median(times[1:]), statistics.median(forwards)


def training_plan(task: Task, *, students: int = 2) -> list[dict]:
    """One row per model to train: name, role, epochs, where the epochs came from, batches per epoch and
    the estimated seconds (``students``: how many times the student trains: 2 = distilled and alone), and how
    many of its group (the teachers; the students) train at once and at how many threads (``train.workers``:
    the steps are timed at those threads). The teachers come first: a distilled student that learns their
    labels of augmented inputs online runs them in its own steps, so its estimate needs their forward's time."""
    cfg = task.cfg
    rows = []
    models: list[tuple[Task, ModelConfig, str]] = [(task.teacher_task(), t, "teacher") for t in cfg.teacher]
    if students:
        models += [(task, cfg.student, "student")]
    batches = num_train_batches(task.wd, cfg.train)
    val_batches = -(-len(task.wd.starts["val"]) // eval_batch_size(cfg))
    budget = None
    if cfg.train.time_budget:
        from stkd.config import parse_duration

        budget = parse_duration(cfg.train.time_budget, "train.time_budget")
    precision, why = resolve_precision(cfg.train.precision, resolve_device(cfg.train.device).type)
    teacher_forwards = 0.0  # seconds: every teacher labelling one batch (augmented inputs labelled online)
    d = cfg.distill
    augmented = bool(d.augment) and d.augment_weight > 0
    group = {"teacher": len(cfg.teacher), "student": students}  # models that train side by side with workers
    for t, mcfg, role in models:
        epochs = mcfg.epochs or cfg.train.epochs
        source = (f"its own epochs ({mcfg.epochs}; train.epochs is {cfg.train.epochs})" if mcfg.epochs
                  else "train.epochs")
        at_once = side_by_side(cfg, group[role])
        threads = threads_per_worker(at_once, cfg.train.threads) if at_once > 1 else (cfg.train.threads or
                                                                                       torch.get_num_threads())
        step, forward = _step_seconds(t, mcfg, role, threads=threads)
        if role == "teacher":
            teacher_forwards += forward
        labels = ("distilled", "alone")[:students] if role == "student" else ("",)
        for label in labels:
            # a distilled step with augmented inputs also runs the student on them (a second forward and
            # backward) and, labelled online, every teacher on them
            train_step = step
            if label == "distilled" and augmented:
                train_step = 2 * step + (teacher_forwards if d.augment_labels == "online" else 0.0)
            # a validation batch is a forward at up to 4x the training batch: about the cost of one training step
            seconds = epochs * (batches * train_step + val_batches * step)
            if budget is not None:
                seconds = min(seconds, budget)
            rows.append({"model": mcfg.name + (f" ({label})" if label else ""), "role": role, "epochs": epochs,
                         "epochs_from": source, "batches_per_epoch": batches, "step_seconds": train_step,
                         "estimate_seconds": seconds, "precision": precision, "precision_why": why,
                         "at_once": at_once, "threads": threads})
    return rows


def wall_seconds(rows: list[dict]) -> float:
    """The plan's estimate of the training's wall time: each role's models (the teachers, then the students)
    in their order, each started as soon as one of its ``at_once`` places is free."""
    total = 0.0
    for role in dict.fromkeys(r["role"] for r in rows):
        group = [r for r in rows if r["role"] == role]
        places = [0.0] * group[0].get("at_once", 1)  # a plan recorded before train.workers: one at a time
        for r in group:
            places[places.index(min(places))] += r["estimate_seconds"]
        total += max(places)
    return total


def trained_at_once(rows: list[dict]) -> list[tuple[str, int, int]]:
    """(role, how many at once, threads each) of each group of the plan that trains side by side, in order (none
    for a plan recorded before ``train.workers``)."""
    return list(dict.fromkeys((r["role"], r["at_once"], r["threads"]) for r in rows if r.get("at_once", 1) > 1))


def format_plan(rows: list[dict]) -> str:
    how = "".join(f"; {role}s {n} at once at {threads} thread(s) each" for role, n, threads in trained_at_once(rows))
    lines = [f"plan: {len(rows)} model(s), about {format_duration(wall_seconds(rows))} of training (estimated from "
             f"a few timed steps of each model; early stopping may end models sooner{how})"]
    if rows:
        lines.append(f"  training forward at {rows[0]['precision']} ({rows[0]['precision_why']})")
    for r in rows:
        lines.append(f"  {r['role']:7s} {r['model']:22s} {r['epochs']:4d} epochs ({r['epochs_from']}) x "
                     f"{r['batches_per_epoch']} batches, ~{format_duration(r['estimate_seconds'])}")
    return "\n".join(lines)
