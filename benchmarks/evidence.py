"""Evidence that distillation pays: paired seeds, bootstrap intervals, win counts.

    python benchmarks/evidence.py --datasets los-loop --seeds 0 1 2 3 4
    python benchmarks/evidence.py --datasets los-loop akl-pedestrians synthetic-traffic --students stid mlp linear
    python benchmarks/evidence.py --datasets akl-pedestrians --teacher-seed 0 --teacher-lags 1D 7D
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --students stid-nb
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --extra-teachers stid-32
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --students stid-nb \
        --extra-teachers stid-nb:100 stid-nb:101 stid-nb:102 stid-nb:103 [--without-main-teacher]
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --history 1d
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --outages 0.5
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --teacher-lags 1D \
        [--extra-teachers stid-64-nb] [--student-lags 1D]
    python benchmarks/evidence.py --datasets akl-pedestrians --teacher-seed 0 --teacher-lags 1D 7D \
        --augment mask mixup [--augment-labels online] [--augment-weight 1]
    python benchmarks/evidence.py --datasets akl-pedestrians --teacher-seed 0 --teacher-lags 1D 7D --precision bf16 \
        --student-schedule 30 6 --student-lags 1D 7D --extra-teachers stid-64 --without-main-teacher \
        --augment mask mixup --student-init teacher --students stid-8 stid-32   # students of other sizes
    python benchmarks/evidence.py --datasets akl-pedestrians --teacher-seed 0 --teacher-lags 1D 2D 3D 7D 14D 21D 28D \
        --precision bf16 --student-schedule 30 6 --student-lags 1D 2D 3D 7D --extra-teachers stid-64 \
        --without-main-teacher --augment mask mixup --student-init teacher \
        --student-lr 0.008   # the preset pair of 2026-12-06 (its students now: 60 epochs, no augmented windows)
    python benchmarks/evidence.py --datasets akl-pedestrians --students stid --teacher-seed 0 \
        --teacher-lags 1D 2D 3D 7D 14D 21D 28D --precision bf16 --student-schedule 60 12 --student-min-epochs 40 \
        --student-lags 1D 2D 3D 7D --extra-teachers stid-64 --without-main-teacher --student-init teacher \
        --student-lr 0.008   # today's preset pair, no early stop before epoch 40

For every data set and seed the teacher(s) train once and cache their soft labels (``--teacher-seed S``:
one teacher, trained with seed S, serves every seed; cheaper, and the spread then holds the students'
randomness only); then every student trains twice from the same seed (so from the same initial weights
and batch order): distilled and alone, one after the other at this process's threads, or both at once in
processes of their own with ``--workers 2`` (one thread each on 2 cores; the same threads give the same numbers
either way, and the command that measured a row says which it was: the rows before it trained in turn). ``akl-pedestrians`` is the default preset of ``stkd run`` as it was
until 2026-12-04 (its data, Graph WaveNet teacher, student width and schedule: ``common.akl_gwnet_preset``,
pinned so that the rows measured from it keep their meaning); the rows whose student reads the lags 1D, 2D,
3D, 7D at ``--student-lr 0.008``, taught by ``stid-64`` alone reading ``--teacher-lags 1D 2D 3D 7D 14D 21D 28D``,
are today's preset (at ``--student-schedule 60 12 --student-min-epochs 40`` its schedule; those whose student reads
1D, 7D were it from 2026-12-04 to 2026-12-06). A teacher that
reads other lags than the data set's usual one (``--teacher-lags``; :data:`USUAL_TEACHER_LAGS`) has rows, run
folders and a teacher cache of its own.
Per data set and student the script reports the teacher's, the plain and the distilled test MAE (mean over
seeds), the mean relative gain with a 95 % bootstrap interval over seeds and the wins
(:func:`stkd.paired.paired_gain`); a gain is "established" only when the interval excludes zero. Choices
(early stopping) use the validation split only. Results: ``docs/results/evidence-<dataset>.json``, one
record per (seed, student), written as soon as it is measured (an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import inspect
import json
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from common import (
    RESULTS,
    command,
    commands_line,
    machine,
    machine_line,
    merged_records,
    save_result,
)
from evidence_gaps import (
    alpha_gap,
    augment_gap,
    calendar_gap,
    copies_gap,
    dropout_twin,
    edge_kept,
    held_out_gap,
    history_gap,
    init_gap,
    lags_gap,
    loss_gap,
    lr_choice,
    lr_family,
    lr_gap,
    min_epochs_gap,
    privileged_gap,
    schedule_gap,
    scope_gap,
    seeds_mean,
    shared_seeds,
    size_gap,
    speaks_for_rates,
    splits_disagree,
    teacher_epochs_gap,
    teacher_val_mean,
)
from evidence_rows import (
    DATASETS,
    DISTILL,
    EXTRA_TEACHERS,
    HELD_OUT,
    INIT_LABEL,
    LR_MARK,
    SCOPE_LABEL,
    STUDENTS,
    TEACHERS,
    USUAL_TEACHER_EPOCHS,
    USUAL_TEACHER_LAGS,
    augment_folder,
    augment_label,
    config,
    extra_epochs_folder,
    extra_epochs_label,
    lags_label,
    loss_label,
    lr_label,
    lr_slug,
    min_epochs_mark,
    min_epochs_problem,
    outages_text,
    scarcity,
    schedule_slug,
    student_config,
    teacher_epochs_folder,
    teacher_epochs_label,
    teacher_lags_folder,
    teacher_lags_label,
)
from fidelity import fidelity_gap, to_teacher
from stkd.io import read_json
from stkd.names import AUGMENT_LABELS, AUGMENTATIONS, LOSSES, STUDENT_INITS, STUDENT_ROLES, TEACHER_SCOPES

# The targets for the distilled student's test MAE relative to its plain self (mean over seeds).
TARGET_RATIO = {"los-loop": 0.95, "akl-pedestrians": 0.97}
SCOPE_WORDS = {"all": "everywhere", "observed-inputs": "where inputs were observed"}  # for the table's header
assert set(SCOPE_WORDS) == set(TEACHER_SCOPES), "a teacher scope without words for the table"


def learning_rate(text: str) -> float:
    """argparse type of ``--student-lr`` (here, in ``headroom.py`` and in ``distill_gain.py``): a rate above 0."""
    try:
        lr = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a learning rate above 0, not {text!r}") from None
    if not lr > 0:
        raise argparse.ArgumentTypeError(f"a learning rate above 0, not {text}")
    return lr


def students_folder_config(cfg, teacher_cfgs: list):
    """The config saved in the students' folder of a row whose teachers train in their own folders
    (``--teacher-seed``): as ``cfg``, but with ``distill.init: teacher`` it names the teachers the students
    start from (``teacher_cfgs``, the ensemble's order). Why: a later row reopening the folder (``--resume``)
    loads that file, and the config check refuses ``init: teacher`` beside a first teacher of another kind
    (the data set's own main teacher)."""
    if cfg.distill.init != "teacher":
        return cfg
    return dataclasses.replace(cfg, teacher=list(teacher_cfgs))


def seeded_teachers(run_cfg) -> list:
    """The teachers of a teacher run's config, each with the seed it trained from (its own, else the run's
    ``train.seed``). Why: copies of one model from other seeds (``stid-64 stid-64:101``) read the same in a
    students' folder config without their seeds, and the config check refuses two teachers that would train to the
    same weights when the folder is opened again (a student's process, ``--resume``)."""
    return [t if t.seed is not None else dataclasses.replace(t, seed=run_cfg.train.seed) for t in run_cfg.teacher]


class NotOnThisMachine(Exception):
    """A run folder that ``--distances-only`` needs (it trains nothing) is not under ``--runs``."""


def check_record_settings(old: dict, dataset: str, label: str, seed: int, cfg, teacher_scope: str | None) -> None:
    """Refuse to count a stored record as measured where it was measured with another student schedule or teacher's
    scope than this command asks for: its row's name does not carry the patience or a default scope, so without
    this check the command would print the old numbers as if it had measured the new setting."""
    # the schedule and the teacher's scope a record's students had (None: older than the field)
    epochs, patience, scope = old.get("student_epochs"), old.get("student_patience"), old.get("teacher_scope", "all")
    if epochs not in (None, cfg.train.epochs):
        raise SystemExit(f"evidence-{dataset}.json: the row {label!r} (seed {seed}) was measured with "
                         f"{epochs} student epochs, the data set's schedule now has {cfg.train.epochs}; "
                         "move the file aside to measure it again, or pass --student-schedule")
    if patience not in (None, cfg.train.patience):
        raise SystemExit(f"evidence-{dataset}.json: the row {label!r} (seed {seed}) was measured with "
                         f"patience {patience}, this command asks for {cfg.train.patience}; move the file "
                         f"aside to measure it again, or pass --student-schedule {cfg.train.epochs} {patience}")
    if scope != cfg.distill.teacher_scope and not teacher_scope:
        raise SystemExit(f"evidence-{dataset}.json: the row {label!r} (seed {seed}) was measured with "
                         f"distill.teacher_scope {scope}, the default now is {cfg.distill.teacher_scope}; "
                         f"move the file aside to measure it again, or pass --teacher-scope {scope}")


@dataclasses.dataclass
class RowSetup:
    """What every student row of one seed shares: the students' task and config, the teachers, what the
    students learn from (``signal``) and the run folder the students train in."""

    task: Any
    cfg: Any
    teachers: list
    signal: Any
    run_dir: Path


def row_setup(dataset: str, seed: int, runs: Path, quick: bool, *, distances_only: bool = False,
              teacher_seed: int | None = None, teacher_lags: list[str] | None = None,
              precision: str | None = None, teacher_epochs: int | None = None,
              extra_teachers: list[str] | None = None, without_main: bool = False,
              history: str | None = None, student_schedule: Sequence[int] | None = None,
              outages: float | None = None, teacher_scope: str | None = None,
              augment: dict | None = None, student_lags: list[str] | None = None,
              alpha: float | None = None, student_init: str | None = None,
              student_lr: float | None = None, student_min_epochs: int | None = None,
              loss: str | None = None, extra_epochs: int | None = None) -> RowSetup | None:
    """The teachers of one seed's rows (trained where they are not yet, unless ``distances_only``), their signal
    and the students' run folder; None where ``distances_only`` finds a folder not on this machine. The keyword
    arguments are the row's settings (:func:`run_seed`); a student's process of its own calls it with the same
    ones and finds the teachers trained."""
    from outages import outage_data
    from stkd.config import parse_config
    from stkd.pipeline import check_models, prepare_task, saved_teachers, train_teachers
    from stkd.runs import open_run_dir
    from stkd.tasks.forecast import ForecastTask

    data = (outage_data(config(dataset, 0, quick)["data"], outages, runs / dataset / f"outages-{outages:g}-data")
            if outages else None)  # every model reads the same data with outages in its training part
    cfg = parse_config(config(dataset, seed, quick, teacher_lags, precision, teacher_epochs, history, data,
                              teacher_scope, augment))
    if student_schedule:  # the students' own schedule; the teacher (its own run, --teacher-seed) keeps its own
        cfg.train = dataclasses.replace(cfg.train, epochs=student_schedule[0], patience=student_schedule[1])
    if student_min_epochs:  # no early stop of the students before this epoch (train.min_epochs)
        cfg.train = dataclasses.replace(cfg.train, min_epochs=student_min_epochs)
    if alpha is not None:  # the distilled students' weight of the ground truth (the rest is the teacher's)
        cfg.distill = dataclasses.replace(cfg.distill, alpha=alpha)
    if student_lr is not None:  # both students' learning rate; the teachers train apart (--teacher-seed)
        cfg.train = dataclasses.replace(cfg.train, lr=student_lr)
    if loss is not None:  # both students' loss, the plain one's and both terms of the distilled one's
        cfg.train = dataclasses.replace(cfg.train, loss=loss)
        cfg.distill = dataclasses.replace(cfg.distill, loss=loss)
    task = prepare_task(cfg)
    check_models(task)
    if student_init:  # after the check: the dataset's first configured teacher need not be the one the student starts from
        cfg.distill = dataclasses.replace(cfg.distill, init=student_init)
    # run folders of a shorter history, or of outages, stand apart
    short = (f"-history-{history}" if history else "") + (f"-outages-{outages:g}" if outages else "")
    short += teacher_lags_folder(dataset, teacher_lags)  # teachers of other inputs (and their students) too
    short += teacher_epochs_folder(dataset, None if quick else teacher_epochs)  # and of another schedule
    short += extra_epochs_folder(None if quick else extra_epochs)  # extra teachers of another schedule too
    # the students' folders of another schedule too (their teachers are the same and keep their folders)
    schedule = schedule_slug(student_schedule, student_min_epochs)
    schedule += f"-teacher-{teacher_scope}" if teacher_scope else ""  # the students' objective, not the teacher's
    schedule += f"-{augment_folder(augment)}" if augment else ""
    schedule += f"-alpha-{alpha:g}" if alpha is not None else ""
    schedule += f"-loss-{loss}" if loss is not None else ""
    schedule += lr_slug(student_lr)
    schedule += f"-init-{student_init}" if student_init else ""

    def opened(rcfg, path: Path, **kw) -> Path:  # with distances_only: only a folder that holds a run already
        if distances_only and not path.is_dir():
            raise NotOnThisMachine(f"{path.name} (under --runs) is not on this machine")
        return open_run_dir(rcfg, task.wd, path, overwrite=False, resume=True, **kw)

    def trained(ttask, path: Path) -> list:  # the teachers of a run folder, trained there unless distances_only
        if not distances_only:
            train_teachers(ttask, path, resume=True, progress=False)
        return saved_teachers(task, path)

    try:
        if teacher_seed is None:
            run_dir = opened(cfg, runs / dataset / f"seed-{seed}{short}{schedule}")
            teachers = (saved_teachers(task, run_dir) if distances_only
                        else train_teachers(task, run_dir, resume=True, progress=False))
        else:  # one teacher for every seed, in its own run folder; the students of each seed beside it
            tcfg = parse_config(config(dataset, teacher_seed, quick, teacher_lags, precision, teacher_epochs, history,
                                       data))
            teacher_dir = opened(tcfg, runs / dataset / f"teacher-seed-{teacher_seed}{short}")
            # the extra teachers alone need no main teacher (its folder keeps the config)
            teachers = [] if without_main else trained(ForecastTask(tcfg, task.wd), teacher_dir)
            teacher_cfgs = [] if without_main else seeded_teachers(tcfg)  # the ensemble's configs, in its order
            for spec in extra_teachers or []:
                label, xseed = split_extra(spec, teacher_seed)
                xcfg = parse_config(extra_teacher_config(dataset, label, xseed, quick, teacher_lags, precision,
                                                         teacher_epochs, history, data, extra_epochs))
                folder = (f"teacher-seed-{teacher_seed}-{label}" + (f"-s{xseed}" if xseed != teacher_seed else "")
                          + short)
                xdir = opened(xcfg, runs / dataset / folder)
                teacher_cfgs += seeded_teachers(xcfg)
                taken = {t.name for t in teachers}  # score() keys models by name: copies of one model get the seed
                teachers += [t if t.name not in taken else dataclasses.replace(t, name=f"{t.name}_s{xseed}")
                             for t in trained(ForecastTask(xcfg, task.wd), xdir)]
            suffix = (f"-{'only' if without_main else 'with'}-{'-'.join(extra_teachers).replace(':', '-s')}"
                      if extra_teachers else "")
            cfg = students_folder_config(cfg, teacher_cfgs)
            run_dir = opened(cfg, runs / dataset / f"seed-{seed}{suffix}{short}{schedule}", teacher_run=teacher_dir)
    except NotOnThisMachine as e:  # only --distances-only raises it: a missing file elsewhere stays an error
        print(f"seed {seed}: {e}; its rows keep their records as they are")
        return None
    signal = task.teacher_signal(run_dir if teacher_seed is None else teacher_dir, teachers)
    return RowSetup(task, cfg, teachers, signal, run_dir)


#: The settings of a row (:func:`row_setup`'s keyword arguments but ``distances_only``, which says what to do).
ROW_KEYS = frozenset(k for k, p in inspect.signature(row_setup).parameters.items()
                     if p.kind is p.KEYWORD_ONLY and k != "distances_only")


def student_task(setup: RowSetup, dataset: str, name: str, student_lags: list[str] | None) -> tuple[Any, str]:
    """The task that trains the row's student ``name`` and its folder's stem under ``models/`` (``stid_nb``,
    ``stid_lags_1D_7D``: ``<stem>_kd`` and ``<stem>_plain``)."""
    from stkd.config import InputsConfig
    from stkd.tasks.forecast import ForecastTask

    stask = ForecastTask(copy.copy(setup.cfg), setup.task.wd)
    stask.cfg.student = student_config(dataset, name, setup.cfg)
    folder = name.replace("-", "_")  # the run folder's model names: stid_kd, stid_nb_plain, ...
    if student_lags:  # the student reads what the privileged teacher reads: its own folders
        stask.cfg.student.inputs = InputsConfig(lags=list(student_lags))
        folder += "_lags_" + "_".join(student_lags)
    return stask, folder


def train_row_student(job: dict, slot: int) -> None:
    """In a process of its own (:func:`stkd.processes.run_processes`): train one student of a row, distilled
    (``job["kd"]``) or plain, from the row's settings ``job["row"]`` (the teachers are trained and cached by then;
    the parent reads the student back from its folder; ``run_processes`` sets the threads)."""
    from stkd.pipeline import train_student

    row = dict(job["row"])
    setup = row_setup(job["dataset"], job["seed"], Path(job["runs"]), job["quick"], **row)
    assert setup is not None  # only distances_only finds no folder, and it trains nothing
    stask, folder = student_task(setup, job["dataset"], job["student"], row_settings(row).student_lags)
    kd = job["kd"]
    train_student(stask, setup.run_dir, setup.signal if kd else None, resume=True, progress=False,
                  label=f"{folder}_{'kd' if kd else 'plain'}")


def side_by_side_jobs(dataset: str, seed: int, runs: Path, quick: bool, row: dict, name: str) -> list[dict]:
    """The two jobs of :func:`train_row_student` for the row's student ``name``, distilled and plain: JSON, all a
    fresh process needs to rebuild the row (its settings ``row``) and train one of them."""
    return [{"dataset": dataset, "seed": seed, "runs": str(runs), "quick": quick, "row": row, "student": name,
             "kd": kd} for kd in (True, False)]


def train_side_by_side(jobs: list[dict], workers: int) -> None:
    """A row's distilled and plain student (``jobs``: :func:`side_by_side_jobs`) trained at once, one process each,
    each at its share of the cores: a small student's step is little slower at one thread than at two
    (``stkd.processes``), so on 2 cores the pair finishes well before two in turn would. Each keeps its checkpoints
    if the other fails."""
    import importlib

    from stkd.processes import run_processes, threads_per_worker

    target = importlib.import_module("evidence").train_row_student  # by its module's name, not ``__main__``
    run_processes(target, jobs, limit=workers, threads=threads_per_worker(workers, None),
                  name=lambda j: f"seed {j['seed']} {j['student']} {'distilled' if j['kd'] else 'plain'}",
                  stop_on_failure=True,
                  after_failure="each student keeps its checkpoints: run the same command again to go on")


def row_settings(row: dict) -> SimpleNamespace:
    """A row's settings (``--teacher-lags`` and the rest, as :func:`row_setup` takes them), each one not given at
    :func:`row_setup`'s default: the defaults live in one place."""
    given = set(row) - ROW_KEYS
    if given:
        raise TypeError(f"not a row setting: {', '.join(sorted(given))}")
    defaults = {k: p.default for k, p in inspect.signature(row_setup).parameters.items() if k in ROW_KEYS}
    return SimpleNamespace(**{**defaults, **row})


def run_seed(dataset: str, seed: int, students: list[str], runs: Path, quick: bool, done: dict, *,
             distances_only: bool = False, workers: int = 1, **row: Any) -> list[dict]:
    """The records of one seed's rows not yet in ``done`` (``(seed, row) -> record``); ``row`` holds the rows'
    settings (:func:`row_setup`). With ``workers`` of 2 or more each row's two students train at once, one
    process each. With ``distances_only`` it trains nothing: for the rows in ``done`` that lack the students'
    distances to the teacher (:mod:`fidelity`) or their stop facts (:func:`lacking`), whose teachers and students
    are saved under ``runs``, it adds them to the record."""
    from stkd.pipeline import train_student
    from stkd.runs import load_trained

    setup = row_setup(dataset, seed, runs, quick, distances_only=distances_only, **row)
    if setup is None:
        return []
    task, cfg, teachers, signal, run_dir = setup.task, setup.cfg, setup.teachers, setup.signal, setup.run_dir
    r = row_settings(row)
    # what the student learns from: the ensemble's own forecast where there are several teachers
    ensemble = ({f"ensemble_{key}": signal.mae(task.wd, split)
                 for key, split in (("mae", "test"), ("val", "val"), ("train", "train"))}
                if len(teachers) > 1 and not distances_only else {})
    records = []
    for name in students:
        label = f"{name}, teachers {ensemble_label(r.extra_teachers, r.without_main)}" if r.extra_teachers else name
        label += teacher_lags_label(dataset, r.teacher_lags)
        label += teacher_epochs_label(dataset, None if quick else r.teacher_epochs)
        label += extra_epochs_label(None if quick else r.extra_epochs)
        label += f", {r.history} of history" if r.history else ""
        label += SCOPE_LABEL if r.teacher_scope == "observed-inputs" else ""  # named before it was the default
        label += f", {outages_text(r.outages)}" if r.outages else ""
        label += f", {r.student_schedule[0]} epochs" if r.student_schedule else ""
        label += min_epochs_mark(r.student_min_epochs)
        label += lr_label(r.student_lr)
        label += f", {augment_label(r.augment)}" if r.augment else ""
        label += f", alpha {r.alpha:g}" if r.alpha is not None else ""
        label += loss_label(r.loss)
        label += INIT_LABEL if r.student_init == "teacher" else ""
        label += lags_label(r.student_lags) if r.student_lags else ""
        old = done.get((seed, label))
        if old is not None:
            check_record_settings(old, dataset, label, seed, cfg, r.teacher_scope)
        if (old is None) == distances_only or (old is not None and not lacking(old)):
            continue  # measured already, or (distances_only) not measured or complete: nothing to add
        stask, folder = student_task(setup, dataset, name, r.student_lags)
        if distances_only:
            saved = {t.name: t for t in load_trained(run_dir, task.wd, roles=STUDENT_ROLES)}
            if f"{folder}_kd" not in saved or f"{folder}_plain" not in saved:
                print(f"seed {seed}, row {label!r}: its students are not in {run_dir.name}; the record stays as it is")
                continue
            kd, plain = saved[f"{folder}_kd"], saved[f"{folder}_plain"]
            missing = lacking(old)
            added = {**(to_teacher(signal, task.wd, kd, plain) if "distances" in missing else {}),
                     **(students_stops(run_dir, kd.name, plain.name) if "stops" in missing else {})}
            records.append({**old, **added, "distances_command": command()})
            continue
        t0 = time.perf_counter()
        if workers > 1:  # both students at once; read back below from their finished folders
            train_side_by_side(side_by_side_jobs(dataset, seed, runs, quick, row, name), workers)
        kd = train_student(stask, run_dir, signal, resume=True, progress=False, label=f"{folder}_kd")
        plain = train_student(stask, run_dir, resume=True, progress=False, label=f"{folder}_plain")
        metrics = stask.score(run_dir / "scores" / folder, [*teachers, kd, plain])["models"]
        best_teacher = min(teachers, key=lambda t: t.val_mae)
        records.append({"seed": seed, "student": label, "teacher": best_teacher.name, "teacher_seed": r.teacher_seed,
                        "teachers": [t.name for t in teachers],
                        "teacher_weights": None if signal.weights is None else [float(w) for w in signal.weights],
                        "teacher_lags": list(r.teacher_lags or []), "student_lags": list(r.student_lags or []),
                        "precision": cfg.train.precision, "history": r.history,
                        "outages": r.outages, "teacher_scope": cfg.distill.teacher_scope,
                        "augment": list(cfg.distill.augment), "augment_weight": cfg.distill.augment_weight,
                        "augment_labels": cfg.distill.augment_labels, "alpha": cfg.distill.alpha,
                        "loss": cfg.train.loss,
                        "student_init": cfg.distill.init, "student_lr": cfg.train.lr,
                        "teacher_epochs": r.teacher_epochs, "extra_teacher_epochs": r.extra_epochs,
                        "day_of_week": bool(task.wd.day_of_week),
                        "student_epochs": cfg.train.epochs, "student_patience": cfg.train.patience,
                        "student_min_epochs": cfg.train.min_epochs,
                        **students_stops(run_dir, kd.name, plain.name),
                        "teacher_mae": metrics[best_teacher.name]["test"]["mae"], "teacher_val": best_teacher.val_mae,
                        "plain_mae": metrics[plain.name]["test"]["mae"], "kd_mae": metrics[kd.name]["test"]["mae"],
                        "plain_val": plain.val_mae, "kd_val": kd.val_mae,
                        "last_value_mae": metrics["last_value"]["test"]["mae"],
                        "params": {"teacher": metrics[best_teacher.name]["params"], "student": metrics[kd.name]["params"]},
                        **ensemble, "seconds": time.perf_counter() - t0, "workers": workers, **to_teacher(signal, task.wd, kd, plain, metrics),
                        "command": command(), "machine": machine()})  # rows of one file: several sessions' machines
    return records


def lacking(record: dict) -> list[str]:
    """What a record measured before ``--distances-only`` existed, or before the stop facts were kept, lacks that
    its saved run folder still holds: ``"distances"`` (the students' distances to the teacher, :mod:`fidelity`)
    and ``"stops"`` (:func:`stop_facts`)."""
    return [what for what, key in (("distances", "kd_to_teacher"), ("stops", "kd_stop")) if key not in record]


def stop_facts(run_dir: Path, name: str) -> dict:
    """How a trained model's schedule ended, from its checkpoint's ``last.json``: epochs run, its best epoch and
    whether early stopping ended it (what tells a lucky early epoch from a schedule run to its end)."""
    info = read_json(run_dir / "models" / name / "last.json")
    return {"epochs_run": info["epoch"] + 1, "best_epoch": info["best_epoch"],
            "stopped_early": bool(info.get("stopped_early"))}


def students_stops(run_dir: Path, kd: str, plain: str) -> dict:
    """A record's ``kd_stop`` and ``plain_stop``: :func:`stop_facts` of the distilled and the plain student."""
    return {"kd_stop": stop_facts(run_dir, kd), "plain_stop": stop_facts(run_dir, plain)}


def extra_teacher_config(dataset: str, label: str, seed: int, quick: bool, teacher_lags: list[str] | None,
                         precision: str | None, teacher_epochs: int | None, history: str | None,
                         data: dict | None, extra_epochs: int | None = None) -> dict:
    """The run config of the extra teacher ``label`` (:data:`EXTRA_TEACHERS`) from ``seed``: it reads what the main
    teacher reads (``teacher_lags``); a copy of the main teacher's model also trains on its schedule
    (``teacher_epochs``), the others on the data set's; with ``extra_epochs`` (``--extra-teacher-epochs``) every one
    trains for those epochs."""
    raw = config(dataset, seed, quick, teacher_lags, precision, history=history, data=data)
    raw["teacher"] = [copy.deepcopy(EXTRA_TEACHERS[label])]
    if teacher_epochs is not None and not quick and EXTRA_TEACHERS[label]["name"] == TEACHERS[0]["name"]:
        raw["teacher"][0]["epochs"] = teacher_epochs
    if extra_epochs is not None and not quick:  # every extra teacher on a schedule of its own
        raw["teacher"][0]["epochs"] = extra_epochs
    if teacher_lags:  # every teacher of the ensemble reads what the main one reads
        raw["teacher"][0]["inputs"] = {"lags": list(teacher_lags)}
    return raw


def parse_extra(spec: str) -> tuple[str, int | None]:
    """``stid-nb:101`` -> (``stid-nb``, 101), ``stid-nb`` -> (``stid-nb``, None); anything else a ValueError."""
    label, _, seed = spec.partition(":")
    if label not in EXTRA_TEACHERS or (seed and not seed.isdigit()):
        raise ValueError(f"{spec!r}: expected LABEL or LABEL:SEED, LABEL one of {', '.join(EXTRA_TEACHERS)} and "
                         "SEED a whole number")
    return label, int(seed) if seed else None


def split_extra(spec: str, teacher_seed: int) -> tuple[str, int]:
    """An extra teacher's label and seed; without ``:SEED`` it trains with ``teacher_seed``."""
    label, seed = parse_extra(spec)
    return label, teacher_seed if seed is None else seed


def ensemble_label(extra_teachers: list[str], without_main: bool) -> str:
    """The ensemble as the table names it: ``gwnet + stid`` (the first ensemble's name, kept so its records
    stay matched), ``gwnet + 4 stid-nb``, ``4 stid-nb``, ``3 gwnet + stid-64-nb`` (the main teacher counted with
    its copies)."""
    labels = [parse_extra(spec)[0] for spec in extra_teachers]
    if labels == ["stid-32"] and not without_main:
        return "gwnet + stid"
    labels = ([] if without_main else [TEACHERS[0]["name"]]) + labels
    counts = {lab: labels.count(lab) for lab in dict.fromkeys(labels)}
    return " + ".join(f"{n} {lab}" if n > 1 else lab for lab, n in counts.items())


def teacher_epochs_problem(teacher_epochs: int | None, extra_teachers: list[str] | None,
                           without_main: bool) -> str | None:
    """Why ``--teacher-epochs`` would change no teacher of the row, or None: it sets the schedule of the main
    teacher and of its model's copies among the extra teachers (:func:`extra_teacher_config`); without the main
    teacher and without such a copy the row would be labelled with a schedule no teacher trained on."""
    if teacher_epochs is None or not without_main:
        return None
    labels = [parse_extra(spec)[0] for spec in extra_teachers or []]
    if any(EXTRA_TEACHERS[label]["name"] == TEACHERS[0]["name"] for label in labels):
        return None
    return (f"--teacher-epochs sets the schedule of the main teacher ({TEACHERS[0]['name']}) and of its copies; "
            f"with --without-main-teacher the extra teachers {', '.join(labels)} train on the data set's schedule, "
            "so no teacher of the row would train for it")


def extra_teacher(spec: str) -> str:
    """argparse type of ``--extra-teachers``: ``LABEL`` or ``LABEL:SEED`` (:func:`parse_extra`)."""
    try:
        parse_extra(spec)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return spec


def recipe_comparison(dataset: str, teacher_val: float, records: list[dict]) -> list[str]:
    """On Los-loop, the teacher against the best plain student of the recipe ablation (chosen there on
    validation, ``docs/results/recipe-los-loop.json``) and against the last value: the issue's teacher bar."""
    path = RESULTS / "recipe-los-loop.json"
    if dataset != "los-loop" or not path.is_file():
        return []
    from recipe import best_student

    best = best_student(json.loads(path.read_text()))
    t_test = float(np.mean([r["teacher_mae"] for r in records]))
    last = float(np.mean([r["last_value_mae"] for r in records]))
    below = 100 * (1 - t_test / best["test_mae"])
    ratio = t_test / last
    met = below >= 5 and ratio <= 0.80
    return [f"- against the recipe's best plain student ({best['variant']}, val {best['val_mae']:.3f}, test "
            f"{best['test_mae']:.3f}): the teacher's validation MAE is {100 * abs(1 - teacher_val / best['val_mae']):.1f} % "
            f"{'below' if teacher_val <= best['val_mae'] else 'above'} and its test MAE ({t_test:.3f}) "
            f"{abs(below):.1f} % {'below' if below >= 0 else 'above'}; it is {ratio:.2f}x the last value ({last:.3f}); "
            f"the bar (at least 5 % below the best plain student and at most 0.80x the last value) is "
            f"{'met' if met else 'not met'}"]


def per_row_line(by_student: dict[str, list[dict]], key: str, title: str, show=str) -> str:
    """A line under the table's header: the value of ``key`` in each row (``show`` names it), as recorded;
    empty for records older than the field."""
    state = {s: show(rows[0][key]) for s, rows in by_student.items() if key in rows[0]}
    if not state:
        return ""
    values = list(dict.fromkeys(state.values()))
    if len(values) == 1:
        return f"{title}: {values[0]} in every row  \n"
    parts = [f"{v} in {'the rows ' if i == 0 else ''}{', '.join(f'`{s}`' for s, w in state.items() if w == v)}"
             for i, v in enumerate(values)]
    return f"{title}: {'; '.join(parts)}  \n"


def day_of_week_line(by_student: dict[str, list[dict]]) -> str:
    """Which rows had the day-of-week embedding (``data.day_of_week: auto`` decides from the training part's
    calendar, teacher and students alike) and where the teacher counted for the distilled students
    (``distill.teacher_scope``)."""
    return (per_row_line(by_student, "day_of_week", "Day-of-week embedding", lambda on: "on" if on else "off")
            + per_row_line(by_student, "teacher_scope", "The teacher counts (`distill.teacher_scope`)",
                           lambda scope: SCOPE_WORDS[scope]))


def rows_by_student(result: dict) -> dict[str, list[dict]]:
    """The records grouped by row label: the whole period first, then shorter histories and outages, rows of an
    earlier rule last; within a row by seed."""
    by_student: dict[str, list[dict]] = {}
    for r in sorted(result["records"], key=lambda r: (bool(r.get("earlier_rule")), scarcity(r) is not None)):
        by_student.setdefault(r["student"], []).append(r)
    return {s: sorted(rows, key=lambda r: r["seed"]) for s, rows in by_student.items()}


def row_summary(result: dict, rows: list[dict]) -> dict:
    """One row's numbers: the paired gain (``gain``), mean test MAE of the teacher it learns from (``teacher``: an
    ensemble's own forecast where recorded), the plain and distilled student (``plain``, ``kd``), and against the
    issue's target for the data set (``ratio`` distilled / plain, ``met``: at most the target and established;
    None where the data set has no target)."""
    with_val = all(r.get("plain_val") is not None and r.get("kd_val") is not None for r in rows)
    return paired_row(result["dataset"], [r["plain_mae"] for r in rows], [r["kd_mae"] for r in rows],
                      float(np.mean([r.get("ensemble_mae", r["teacher_mae"]) for r in rows])),
                      [r["plain_val"] for r in rows] if with_val else None,
                      [r["kd_val"] for r in rows] if with_val else None, teacher_val_mean(rows))


def row_comparisons(result: dict, rows_by: dict[str, list[dict]]) -> dict[str, tuple[str, dict]]:
    """The paired comparisons of an evidence file's rows ``rows_by``: ``label -> (row label, numbers)``, the
    numbers in :func:`row_summary`'s shape. A row measured at several learning rates of the students counts
    once, under the label of the row that speaks for its rates (:func:`lr_anchor`) with ``, each student at its best learning rate
    (...)``, each student at the rate where its mean validation MAE is lowest (:func:`lr_choice`): a shared
    rate that suits the plain student less than the distilled one would flatter distillation. Likewise a row
    measured with and without the students' dropout counts once, under the label of its row with dropout,
    each student the way validation chose (:func:`dropout_choice`). What the targets block and the headroom
    benchmark read of the evidence."""
    out: dict[str, tuple[str, dict]] = {}
    for s, rs in rows_by.items():
        family = lr_family(rs, rows_by, result["dataset"])
        if family and not speaks_for_rates(rs, family, result["dataset"]):
            continue  # counted with the row that speaks for its family of rates (lr_anchor)
        if dropout_twin(s, rows_by, with_dropout=True):
            continue  # counted with its twin that keeps dropout
        twin = dropout_twin(s, rows_by, with_dropout=False)
        if twin is not None:
            label, row = dropout_choice(result["dataset"], rs, rows_by[twin])
            out[f"{s}, {label}"] = (s, row)
            continue
        choice = lr_choice(rs, rows_by, result["dataset"])
        if choice is None:
            out[s] = (s, row_summary(result, rs))
            continue
        # the family's name: its row less the rate (the anchor's own rate may be none of the two chosen)
        label = (f"{LR_MARK.sub('', s, count=1)}, each student at its best learning rate (plain "
                 f"{choice['best']['plain']:g}, distilled {choice['best']['kd']:g})")
        out[label] = (s, paired_row(result["dataset"], choice["plain_mae"], choice["kd_mae"], choice["teacher"],
                                    choice["plain_val"], choice["kd_val"], choice["teacher_val"]))
    return out


def dropout_choice(dataset: str, with_rows: list[dict], without_rows: list[dict]) -> tuple[str, dict]:
    """A row measured with and without the students' dropout, counted once: each student, plain and distilled,
    the way its mean validation MAE is lower (over the seeds both rows have), as a user would choose. Why: dropping
    dropout may weaken the plain student (a small data set) while the teacher's forecasts regularise the
    distilled one, and setting the distilled student without it against the plain one without it would credit
    distillation with what dropout gave the plain student. Returns the label's tail and :func:`paired_row`."""
    seeds = sorted(shared_seeds(with_rows, without_rows))
    by_seed = {True: {r["seed"]: r for r in with_rows}, False: {r["seed"]: r for r in without_rows}}
    chosen = {arm: min((True, False), key=lambda kept: np.mean([by_seed[kept][s][f"{arm}_val"] for s in seeds]))
              for arm in ("plain", "kd")}
    words = {True: "with", False: "without"}
    teacher = seeds_mean(with_rows, "ensemble_mae", "teacher_mae", seeds=set(seeds))
    row = paired_row(dataset, [by_seed[chosen["plain"]][s]["plain_mae"] for s in seeds],
                     [by_seed[chosen["kd"]][s]["kd_mae"] for s in seeds], teacher,
                     [by_seed[chosen["plain"]][s]["plain_val"] for s in seeds],
                     [by_seed[chosen["kd"]][s]["kd_val"] for s in seeds], teacher_val_mean(with_rows, set(seeds)))
    return (f"each student with or without dropout as validation chose (plain {words[chosen['plain']]}, distilled "
            f"{words[chosen['kd']]})", row)


def paired_row(dataset: str, plain_mae: list[float], kd_mae: list[float], teacher: float | None,
               plain_val: list[float] | None = None, kd_val: list[float] | None = None,
               teacher_val: float | None = None) -> dict:
    """The numbers of one paired comparison (test MAE of the plain and the distilled student, per seed in the
    same order) against the issue's target for ``dataset``: the shape of :func:`row_summary`, which the
    targets block reads from every benchmark with paired students. ``val_ratio``: distilled / plain on the
    validation split (from ``plain_val`` and ``kd_val``, the same seeds; None where either is not given), what
    the targets block chooses its rows by, so that no row is picked for its test score. ``vs_teacher``: distilled
    / teacher on test; ``val_vs_teacher``: the same on validation (from ``kd_val`` and the teacher's mean
    validation MAE ``teacher_val``; None where either is not given), what the distilled / teacher target is chosen
    by."""
    from stkd.paired import paired_gain

    g = paired_gain(plain_mae, kd_mae)
    plain, kd = float(np.mean(plain_mae)), float(np.mean(kd_mae))
    target = TARGET_RATIO.get(dataset)
    val_ratio = float(np.mean(kd_val) / np.mean(plain_val)) if plain_val and kd_val else None
    return {"gain": g, "teacher": teacher, "plain": plain, "kd": kd, "ratio": kd / plain, "target": target,
            "val_ratio": val_ratio, "vs_teacher": None if teacher is None else kd / teacher,
            "val_vs_teacher": float(np.mean(kd_val)) / teacher_val if kd_val and teacher_val else None,
            "met": None if target is None else kd / plain <= target and g["established"] and g["mean"] > 0}


def held_out_source(dataset: str) -> tuple[str, list[dict]] | None:
    """For a held-out data set (:data:`HELD_OUT`): the data set its settings were chosen on and that one's evidence
    records, read once for all of its rows; None for any other data set, or where that file was never written."""
    tuned = HELD_OUT.get(dataset, {}).get("of")
    path = RESULTS / f"evidence-{tuned}.json"
    return (tuned, json.loads(path.read_text())["records"]) if tuned is not None and path.is_file() else None


def teacher_bar(result: dict, by_student: dict[str, list[dict]]) -> dict | None:
    """The issue's bar for the single teacher: its mean validation MAE (``teacher_val``) against the best plain
    student's here (``best``, ``best_val``), ``below`` in %; None without a row to judge. Rows of an ensemble (no
    single teacher), of a teacher reading other inputs (:func:`teacher_lags_label`: the targets weigh it apart),
    of less data (their teacher saw it too) or of an earlier rule are left out."""
    with_val = [r for r in result["records"] if r.get("teacher_val") is not None and len(r.get("teachers", [])) <= 1
                and ", teachers " not in r["student"]  # the main teacher: not an ensemble, nor extra teachers alone
                and not teacher_lags_label(result["dataset"], r.get("teacher_lags"))  # reading the usual inputs
                and not teacher_epochs_label(result["dataset"], r.get("teacher_epochs"))  # on the usual schedule
                and scarcity(r) is None and not r.get("earlier_rule")]
    if not with_val:
        return None
    plain_val = {s: float(np.mean([r["plain_val"] for r in rows])) for s, rows in by_student.items()
                 if not rows[0].get("earlier_rule")}
    best = min(plain_val, key=plain_val.__getitem__)
    t_val = float(np.mean([r["teacher_val"] for r in with_val]))
    return {"teacher_val": t_val, "best": best, "best_val": plain_val[best], "below": 100 * (1 - t_val / plain_val[best]),
            "records": with_val}


def same_lag_rows(records: list[dict]) -> list[str]:
    """The rows whose student reads every lag its teachers read (``--student-lags`` covering the teachers' lags):
    their teachers know no input the student lacks (their edge is width, depth or their ensemble), though a row is
    marked ``privileged teacher (lags ...)`` for lags beyond the data set's usual teacher's."""
    return sorted({r["student"] for r in records
                   if r.get("teacher_lags") and set(r["teacher_lags"]) <= set(r.get("student_lags") or [])})


def render(result: dict) -> str:
    from stkd.paired import describe_gain, gain_cell, paired_gain

    by_student = rows_by_student(result)
    source = held_out_source(result["dataset"])  # the tuned-on rows a held-out data set's rows are set beside
    lines = ["| student | seeds | teacher MAE | plain MAE | distilled MAE | mean gain (95 % interval) | wins | "
             "gain on validation | distilled / teacher |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    verdicts = []
    for student, rows in by_student.items():
        row = row_summary(result, rows)
        g, t, kd = row["gain"], row["teacher"], row["kd"]  # t: what the student learns from
        g_val = paired_gain([r["plain_val"] for r in rows], [r["kd_val"] for r in rows])  # where early stopping reads
        lines.append(f"| {student} | {g['n']} | {t:.3f} | {row['plain']:.3f} | {kd:.3f} | "
                     f"{gain_cell(g)} | {g['wins']}/{g['n']} | {gain_cell(g_val)}, {g_val['wins']}/{g_val['n']} | "
                     f"{kd / t:.3f} |")
        line = f"- {student}: " + describe_gain(g, "distillation") + splits_disagree(g, g_val)
        if "ensemble_mae" in rows[0]:  # how much of the ensemble's edge over the plain student it keeps
            plain = row["plain"]
            edge = plain - t
            kept = edge_kept(plain, kd, t)
            line += (f" The ensemble teacher's test MAE is {t:.3f}, {100 * abs(edge) / plain:.1f} % "
                     f"{'below' if edge >= 0 else 'above'} the plain student's"
                     + (f"; the distilled student keeps {kept:.0f} % of that edge." if kept >= 0 else
                        "; the distilled student is further from it than the plain one." if edge > 0 else "."))
            if "ensemble_train" in rows[0]:  # soft labels as close to the truth as the members' own fit add little
                tr, va = rows[0]["ensemble_train"], rows[0]["ensemble_val"]
                closer = 100 * (va - tr) / va
                line += (f" Its soft labels are {tr:.3f} from the truth on the training windows the student learns "
                         f"from, against {va:.3f} on validation ({abs(closer):.0f} % "
                         f"{'closer' if closer >= 0 else 'further'} where it trained).")
        elif len(rows[0].get("teachers", [])) > 1:
            line += " (Teacher MAE: its best member; the ensemble's own MAE was not recorded for this row.)"
        line += (history_gap(rows, by_student) + scope_gap(rows, by_student) + schedule_gap(rows, by_student)
                 + augment_gap(rows, by_student) + lags_gap(rows, by_student) + calendar_gap(rows, by_student)
                 + size_gap(rows, by_student)
                 + privileged_gap(rows, by_student, result["dataset"])
                 + teacher_epochs_gap(rows, by_student, result["dataset"]) + alpha_gap(rows, by_student)
                 + loss_gap(rows, by_student) + copies_gap(rows, by_student)
                 + init_gap(rows, by_student) + lr_gap(rows, by_student, result["dataset"])
                 + min_epochs_gap(rows, by_student)
                 + held_out_gap(source, rows, g)
                 + fidelity_gap(rows, row["plain"], t))
        if row["target"] is not None:
            line += (f" Distilled / plain {row['ratio']:.3f}: the issue's target (at most {row['target']:.2f}, the gain "
                     f"established) is {'met' if row['met'] else 'not met'}.")
        verdicts.append(line)
    bar = teacher_bar(result, by_student)
    if bar is not None:  # the bar: a teacher at least 5 % below the best plain student
        rel = bar["below"]
        verdicts.append(f"- the teacher's validation MAE is {bar['teacher_val']:.3f}, {abs(rel):.1f} % "
                        f"{'below' if rel >= 0 else 'above'} the best plain student's here ({bar['best']}, "
                        f"{bar['best_val']:.3f}): the 5 % margin the issue asks for is {'met' if rel >= 5 else 'not met'}")
        verdicts += recipe_comparison(result["dataset"], bar["teacher_val"], bar["records"])
    first = result["records"][0] if result["records"] else {}
    teacher = ("one teacher per seed" if first.get("teacher_seed") is None
               else f"one teacher (seed {first['teacher_seed']}) for every seed")
    epochs = USUAL_TEACHER_EPOCHS.get(result["dataset"], first.get("teacher_epochs"))
    if epochs:
        teacher += f", {epochs} epochs"
    if first.get("precision") == "bf16":
        teacher += ", every model trained under bf16"
    usual = USUAL_TEACHER_LAGS.get(result["dataset"], [])
    if usual:
        teacher += f", reading also the lags {', '.join(usual)} (a privileged teacher)"
    # rows whose teacher reads other inputs, or trained for longer or shorter, say so in their label
    for label_of, key, what in ((teacher_lags_label, "teacher_lags", "it reads what the mark names"),
                                (teacher_epochs_label, "teacher_epochs", "it trains for those epochs")):
        marked = sorted({lab for r in result["records"] if (lab := label_of(result["dataset"], r.get(key)))})
        if marked:
            teacher += "; in the rows marked " + ", ".join(f"`{m.removeprefix(', ')}`" for m in marked) + f" {what}"
    if same := same_lag_rows(result["records"]):
        teacher += ("; in the rows " + ", ".join(f"`{r}`" for r in same) + " the student reads every lag its teachers "
                    "read (`reading lags`): its teachers know no input it lacks, whatever their mark says")
    return (f"### Distillation evidence on {result['dataset']} (paired seeds)\n\n{commands_line(result)}  \n"
            f"Teacher: {teacher}; each seed trains the student twice from the same initial weights and batches  \n"
            f"{day_of_week_line(by_student)}{machine_line(result)}\n\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["los-loop"], choices=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    ap.add_argument("--runs", type=Path, default=Path("bench-runs/evidence"))
    ap.add_argument("--teacher-seed", type=int, default=None,
                    help="train one teacher with this seed for every seed (default: a teacher per seed)")
    ap.add_argument("--teacher-lags", nargs="+", default=None,
                    help="the teacher also reads these lags, e.g. 1D 7D (a privileged teacher)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                    help="train.precision of every model (default: the data set's setting)")
    ap.add_argument("--teacher-epochs", type=int, default=None,
                    help="the teacher's epochs (default: the data set's schedule, as the students')")
    ap.add_argument("--extra-teachers", nargs="+", type=extra_teacher, default=None, metavar="LABEL[:SEED]",
                    help=f"also train these teachers (once, with --teacher-seed or their own SEED) and distil from "
                         f"the weighted ensemble; LABEL is one of {', '.join(EXTRA_TEACHERS)}")
    ap.add_argument("--extra-teacher-epochs", type=int, default=None, metavar="EPOCHS",
                    help="every extra teacher trains for these epochs (default: the data set's schedule, or "
                         "--teacher-epochs for copies of the main teacher's model): e.g. two teachers of fewer "
                         "epochs in the time of one")
    ap.add_argument("--without-main-teacher", action="store_true",
                    help="the ensemble is the extra teachers alone (the main teacher is not trained)")
    ap.add_argument("--history", default=None, metavar="DURATION",
                    help="teacher and students train on only the last DURATION of the train period, e.g. 1d "
                         "(data.history; validation and test unchanged): a place with little history")
    ap.add_argument("--outages", type=float, default=None, metavar="RATE",
                    help="knock RATE (e.g. 0.5) of every sensor's training readings out, in outages of 1 to 8 hours "
                         "(benchmarks/outages.py); the distilled student gets the teacher's forecast in their place")
    ap.add_argument("--teacher-scope", choices=TEACHER_SCOPES, default=None,
                    help="distill.teacher_scope of the distilled students (default: the config's); rows measured with "
                         "observed-inputs given here are labelled so (they were measured before it was the default)")
    ap.add_argument("--student-schedule", nargs=2, type=int, default=None, metavar=("EPOCHS", "PATIENCE"),
                    help="the students' epochs and early-stopping patience (default: the data set's schedule); "
                         "needs --teacher-seed, so the teacher keeps its own")
    ap.add_argument("--student-min-epochs", type=int, default=None, metavar="EPOCH",
                    help="no early stop of the students before this epoch (train.min_epochs; the row's name says "
                         "so); needs --student-schedule")
    ap.add_argument("--augment", nargs="+", choices=AUGMENTATIONS, default=None,
                    help="the distilled students also learn the teacher's forecasts of these augmented inputs "
                         "(distill.augment)")
    ap.add_argument("--augment-labels", choices=AUGMENT_LABELS, default="online",
                    help="with --augment: the cached forecast of the clean window, or the teacher run on the "
                         "augmented input itself (distill.augment_labels; default here: online)")
    ap.add_argument("--augment-weight", type=float, default=1.0, help="with --augment: distill.augment_weight")
    ap.add_argument("--student-lags", nargs="+", default=None, metavar="LAG",
                    help="the students read these lagged channels too (student.inputs.lags, e.g. 1D 7D: what a "
                         "privileged teacher reads); such a student is served from a history back to its lag")
    ap.add_argument("--alpha", type=float, default=None,
                    help=f"distill.alpha of the distilled students: the ground truth's weight, the rest the "
                         f"teacher's (default {DISTILL['alpha']:g}; 0: the teacher's forecasts alone)")
    ap.add_argument("--loss", choices=LOSSES, default=None,
                    help="train.loss and distill.loss of both students, the plain and the distilled (default: the "
                         "data set's); needs --teacher-seed, so the teacher keeps its own")
    ap.add_argument("--student-init", choices=STUDENT_INITS, default=None,
                    help="distill.init of the distilled students: teacher starts them from the first teacher's weights "
                         "cut to their size (the first teacher must be of the student's kind and read what it reads)")
    ap.add_argument("--student-lr", type=learning_rate, default=None,
                    help="train.lr of both students, the plain and the distilled (default: the data set's); needs "
                         "--teacher-seed, so the teacher keeps its own")
    ap.add_argument("--distances-only", action="store_true",
                    help="train nothing: add what the records of the rows these arguments name lack, from their teachers "
                         "and students saved under --runs: the students' distances to the teacher (fidelity.py) "
                         "and how their schedules ended (epochs run, best epoch, early stop)")
    ap.add_argument("--workers", type=int, default=1, metavar="N",
                    help="with 2: train each row's distilled and plain student at once, one process each at a share "
                         "of the cores (default 1: one after the other in this process, at its threads, as every row "
                         "measured before this option; other threads round differently)")
    ap.add_argument("--quick", action="store_true", help="2 epochs of 3 batches: a smoke test, nothing is saved")
    args = ap.parse_args()
    if args.workers < 1:
        ap.error("--workers: at least 1")
    if args.extra_teachers and args.teacher_seed is None:
        ap.error("--extra-teachers needs --teacher-seed (the extra teachers are trained once)")
    if args.student_schedule and args.teacher_seed is None:
        ap.error("--student-schedule needs --teacher-seed (the teacher trains apart, on its own schedule)")
    if problem := min_epochs_problem(args.student_min_epochs, args.student_schedule):
        ap.error(problem)
    if args.loss is not None and args.teacher_seed is None:
        ap.error("--loss needs --teacher-seed (the teacher trains apart, under its own loss)")
    if args.student_lr is not None and args.teacher_seed is None:
        ap.error("--student-lr needs --teacher-seed (the teacher trains apart, at its own learning rate)")
    if args.outages is not None and not 0 < args.outages < 1:
        ap.error("--outages: a rate strictly between 0 and 1")
    if args.outages and args.history:
        ap.error("--outages and --history: one kind of missing data at a time")
    augment = ({"augment": args.augment, "augment_labels": args.augment_labels,
                "augment_weight": args.augment_weight} if args.augment else None)
    if augment and args.augment_weight <= 0:
        ap.error("--augment-weight: must be > 0")
    if args.alpha is not None and not 0 <= args.alpha <= 1:
        ap.error("--alpha: a weight between 0 and 1")
    if args.without_main_teacher and not args.extra_teachers:
        ap.error("--without-main-teacher needs --extra-teachers (an ensemble to distil from)")
    problem = teacher_epochs_problem(args.teacher_epochs, args.extra_teachers, args.without_main_teacher)
    if problem:
        ap.error(problem)
    if args.extra_teacher_epochs is not None and (not args.extra_teachers or args.extra_teacher_epochs < 1):
        ap.error("--extra-teacher-epochs needs --extra-teachers, and a number of epochs of at least 1")
    if args.extra_teacher_epochs is not None and args.teacher_epochs is not None:
        ap.error("--extra-teacher-epochs and --teacher-epochs: give one (both would set the epochs of a copy of "
                 "the main teacher's model)")
    row = {"teacher_seed": args.teacher_seed, "teacher_lags": args.teacher_lags, "precision": args.precision,
           "teacher_epochs": args.teacher_epochs, "extra_teachers": args.extra_teachers,
           "without_main": args.without_main_teacher, "history": args.history,
           "student_schedule": args.student_schedule, "outages": args.outages, "teacher_scope": args.teacher_scope,
           "augment": augment, "student_lags": args.student_lags, "alpha": args.alpha,
           "student_init": args.student_init, "student_lr": args.student_lr,
           "student_min_epochs": args.student_min_epochs, "loss": args.loss, "extra_epochs": args.extra_teacher_epochs}
    for dataset in args.datasets:
        section = f"evidence-{dataset}"
        path = RESULTS / f"{section}.json"
        old = json.loads(path.read_text()) if path.is_file() and not args.quick else {"records": []}
        records = old["records"]
        for seed in args.seeds:
            done = {(r["seed"], r["student"]): r for r in records}
            new = run_seed(dataset, seed, args.students, args.runs, args.quick, done,
                           distances_only=args.distances_only, workers=args.workers, **row)
            records += new
            if not args.quick:  # another invocation (other students) may have saved meanwhile
                records = merged_records(path, new, lambda r: (r["seed"], r["student"]))
                save_result(section, "evidence", {"dataset": dataset, "records": records}, vars(args) | {"runs": None})
        if args.quick:
            print(json.dumps(records, indent=1))
        else:
            print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
