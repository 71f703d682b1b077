"""One trial: a student distilled with sampled settings from the shared teachers' cache, scored on the
validation split, reported to the pruner after every epoch.

Everything a trial needs that does not depend on its settings (the prepared data, the saved teachers and
their soft labels read from the cache) is loaded once per process (:class:`Shared`): a trial only builds
and trains its student. Its folder ``OUT/trials/NNNN`` holds its ``config.yaml`` and the student
(``models/<name>/``: best weights, card, per-epoch ``log.csv``); the test split is never read here.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stkd.config import RunConfig, dump_config, to_dict
from stkd.errors import ConfigError, TrainingDiverged
from stkd.io import write_text
from stkd.pipeline import check_start, prepare_task, saved_teachers, train_student
from stkd.runs import Trained
from stkd.tasks.base import Task, TeacherSignal
from stkd.tuning import require_optuna
from stkd.tuning.space import Space, apply_values

TRIALS_DIR = "trials"


@dataclass
class Shared:
    """What every trial of one process reuses: the task on the prepared data, the saved teachers and their
    soft-label signal (the cache read once, never rebuilt), the space, the output folder, the deadline."""

    task: Task
    teachers: list[Trained]
    signal: TeacherSignal
    space: Space
    out: Path
    deadline: float | None = None  # time.time() after which running trials stop (as pruned)
    progress: bool = True


def load_shared(cfg: RunConfig, teacher_run: Path, out: Path, space: Space, *, deadline: float | None = None,
                progress: bool = True) -> tuple[Shared, str]:
    """The data prepared once, the saved teachers and their soft labels (the cache is built now if the
    teacher run lacks it, else read), and the data's fingerprint."""
    task = prepare_task(cfg)
    teachers = saved_teachers(task, teacher_run)
    signal = task.teacher_signal(teacher_run, teachers)
    return Shared(task, teachers, signal, space, Path(out), deadline, progress), task.wd.fingerprint()


def check_widest_start(shared: Shared) -> None:
    """With ``distill.init: teacher`` every trial's student starts from the first teacher's weights cut to its
    size: the widest and deepest student the space can draw must fit in that teacher, checked before any trial
    trains (else a trial far into the search would stop it)."""
    start = shared.signal.start
    if start is None:
        return
    widest: dict[str, Any] = {}
    for key in ("student.width", "student.depth"):
        param = shared.space.params.get(key)
        if param is not None:
            widest[key] = max(param.choices) if param.kind == "categorical" else int(param.high)  # type: ignore[arg-type]
        elif key in shared.space.fixed:
            widest[key] = shared.space.fixed[key]
    if not widest:
        return
    cfg = apply_values(shared.task.cfg, widest)
    try:
        check_start(shared.task.with_config(cfg), start, shared.signal.start_inputs)
    except ConfigError as e:
        drawn = ", ".join(f"{k} {v}" for k, v in widest.items())
        raise ConfigError(f"--space: the widest student the search can draw ({drawn}) cannot start from the first "
                          f"teacher: {e}. Narrow the space (--space) or use distill.init: random") from None


# The user attribute of a trial that found ``--trials`` already filled by other workers when it started: it is
# recorded as failed (so it does not count), never trains, and the search's results leave it out.
SURPLUS = "surplus"


class SurplusTrial(Exception):
    """Raised by :func:`claim_place` for a trial beyond ``--trials``."""


def counted_states() -> tuple:
    """The trial states that count toward ``--trials``: finished (complete or pruned) and running, every
    session's and worker's. Failed trials (an error, an interrupted session, a surplus trial) do not."""
    optuna = require_optuna()
    return optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING


def claim_place(trial, trials: int | None) -> None:
    """Let ``trial`` run only if fewer than ``trials`` counted trials were created before it. Workers check the
    budget before they ask for a trial, but two can ask at once; the storage numbers trials in the order it
    creates them, so this decides who came first and the surplus trial stops before it trains
    (:class:`SurplusTrial`, marked :data:`SURPLUS`)."""
    if trials is None:
        return
    before = [t for t in trial.study.get_trials(deepcopy=False, states=counted_states()) if t.number < trial.number]
    if len(before) >= trials:
        trial.set_user_attr(SURPLUS, True)
        raise SurplusTrial(f"trial {trial.number}: --trials {trials} were already taken by other workers")


def trial_dir(out: Path, number: int) -> Path:
    return Path(out) / TRIALS_DIR / f"{number:04d}"


def score_name(task: Task) -> tuple[str, int]:
    """The validation score as people read it, and the sign from the minimised monitor: ``("mae", 1)``, or
    ``("f1", -1)`` for events (whose monitor ``neg_f1`` is minimised)."""
    return (task.monitor[4:], -1) if task.monitor.startswith("neg_") else (task.monitor, 1)


def run_trial(trial, shared: Shared) -> float:
    """Train one student with ``trial``'s settings and return its best validation score (the task's
    monitor, minimised). Each epoch's score goes to ``trial.report``; when the pruner gives up on the
    trial, or the search's time is up, training stops after that epoch and the trial ends as pruned. A
    trial whose loss diverges ends as pruned too, at its last reported score, so the sampler learns the
    region is bad instead of the search stopping."""
    optuna = require_optuna()
    values = shared.space.suggest(trial)
    cfg: RunConfig = apply_values(shared.task.cfg, values)
    trial.set_user_attr("config", to_dict(cfg))
    task = shared.task.with_config(cfg)
    tdir = trial_dir(shared.out, trial.number)
    if tdir.exists():  # a trial number is never reused in a study: this is a stale folder of a removed study
        shutil.rmtree(tdir)
    write_text(tdir / "config.yaml", dump_config(cfg))
    scores: list[float] = []
    stopped: dict[str, str] = {}
    t0 = time.perf_counter()

    def on_epoch(epoch: int, score: float, val: dict[str, float]) -> bool:
        scores.append(score)
        if math.isfinite(score):
            trial.report(score, epoch)
        if shared.deadline is not None and time.time() >= shared.deadline:
            stopped["why"] = "time"
            return True
        if trial.should_prune():
            stopped["why"] = "pruned"
            return True
        return False

    try:
        train_student(task, tdir, shared.signal, progress=False, on_epoch=on_epoch)
    except TrainingDiverged as e:
        stopped["why"] = "diverged"
        _record(trial, scores, t0, stopped)
        raise optuna.TrialPruned(str(e)) from None
    finally:
        _drop_resume_state(tdir)
    _record(trial, scores, t0, stopped)
    if stopped:
        raise optuna.TrialPruned(f"stopped after epoch {len(scores)} ({stopped['why']})")
    finite = [s for s in scores if math.isfinite(s)]
    return min(finite) if finite else math.nan


def _record(trial, scores: list[float], t0: float, stopped: dict[str, str]) -> None:
    """What trials.csv shows beside the settings: epochs trained, seconds, why it stopped."""
    attrs: dict[str, Any] = {"epochs": len(scores), "seconds": round(time.perf_counter() - t0, 3),
                             "stopped": stopped.get("why", "")}
    for k, v in attrs.items():
        trial.set_user_attr(k, v)


def _drop_resume_state(tdir: Path) -> None:
    """A trial is never resumed (a stopped search starts new trials), so its resume checkpoint (weights
    plus optimizer state, twice the best weights) is removed; best weights, card and log stay."""
    for model_dir in (tdir / "models").glob("*"):
        for name in ("last.safetensors", "last.json"):
            (model_dir / name).unlink(missing_ok=True)
