"""The whole job, for any task: data -> teacher(s) -> soft-label cache -> distilled and plain students ->
baselines -> evaluation -> metrics.json + report. Each step is also callable on its own (``stkd train``,
``stkd distill``, ``stkd evaluate``) through the functions here, reading and writing run directories.

What differs between forecasting and event classification lives in the task (:mod:`stkd.tasks`); the
steps they share in :mod:`stkd.steps`; run directories in :mod:`stkd.runs`.

With ``train.workers`` above 1 the models that do not depend on each other train at once, each in a process of
its own (:mod:`stkd.processes`): first the teachers, then the distilled and the plain student. A process rebuilds
the task from the run's config, trains its one model into ``models/<label>`` as this process would, and the run
goes on with the models read back from there.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from stkd.config import InputsConfig, RunConfig, parse_config, to_dict
from stkd.data.windows import load_windowed
from stkd.distributed import is_rank0, world
from stkd.errors import ConfigError, STKDError
from stkd.models.base import STModel
from stkd.models.registry import build_model
from stkd.plan import format_plan, training_plan
from stkd.processes import run_processes, threads_per_worker
from stkd.runs import (
    Trained,
    check_same_data,
    linked_teacher_run,
    load_run,
    open_run_dir,
    require_run_dir,
    require_teachers,
    run_lock,
)
from stkd.steps import (
    check_fits,
    reads_alike,
    report_on_rank0,
    side_by_side,
    student_start,
    teacher_labels,
    train_model,
)
from stkd.tasks.base import Task, TeacherSignal
from stkd.tasks.classify import ClassifyTask
from stkd.tasks.forecast import ForecastTask
from stkd.train import EpochCallback

TASKS: dict[str, type[Task]] = {"forecast": ForecastTask, "classify": ClassifyTask}
log = logging.getLogger(__name__)


def make_task(cfg: RunConfig, wd) -> Task:
    """The task of ``cfg`` (``task: forecast | classify``) on the prepared data ``wd``; its own input
    (e.g. event labels) is checked here."""
    return TASKS[cfg.task].build(cfg, wd)


def prepare_task(cfg: RunConfig) -> Task:
    """Load and prepare the data once and build the task on it (bad data or labels fail here)."""
    if cfg.train.workers > 1 and world()[1] > 1 and is_rank0():
        log.warning("train.workers %d is not used under torchrun: the ranks share every model's batches (DDP) and "
                    "train the models one after the other", cfg.train.workers)
    wd = load_windowed(cfg.data)
    check_splits(wd)
    return make_task(cfg, wd)


def check_splits(wd) -> None:
    """Training selects its epochs on the validation part and the report scores the test part: an empty one
    (``data.split`` with a 0 share) would report the training loss as validation score and n/a for every test
    metric, so it is refused."""
    for split in ("val", "test"):
        if wd.num_windows(split) == 0:
            raise ConfigError(f"data.split: the {split} part is empty ({list(wd.cfg.split)}): training picks its "
                              "best epoch on the val part and the report scores the test part; give both a "
                              "positive share, e.g. [0.7, 0.1, 0.2]")


def check_models(task: Task, *, teachers: bool = True, student: bool = True,
                 students_at_once: int | None = None) -> None:
    """Build every configured model once and run a batch through it (and the memory guard, in each model's share
    of the memory where ``train.workers`` trains it beside others): bad names, hyper-parameters, shapes or sizes
    fail here, before a run directory is touched or training starts. ``students_at_once``: how many copies of
    the student train at the same time, each in its own process (a search's workers); default: the run's two
    students, side by side as ``train.workers`` allows."""
    cfg = task.cfg  # with train.workers, the teachers train at once, then the two students: each in its share
    built = ([check_fits(task.teacher_task(), t, "teacher", share=side_by_side(cfg, len(cfg.teacher)))
              for t in cfg.teacher] if teachers else [])
    if student:
        at_once = students_at_once if students_at_once is not None else side_by_side(cfg, 2)
        model = check_fits(task, cfg.student, "student", share=at_once)
        if built:
            check_start(task, built[0], task.cfg.teacher[0].inputs, model)


def check_start(task: Task, first_teacher: nn.Module, teacher_inputs: InputsConfig | None,
                student: STModel | None = None) -> None:
    """With ``distill.init: teacher``: raise ConfigError unless the configured student (``student``: as built
    already) can be cut from the first teacher, which reads ``teacher_inputs`` (as
    :func:`stkd.steps.student_start` will cut it: from the same place the teacher's model came), before
    anything trains."""
    if task.cfg.distill.init != "teacher":
        return
    if student is None:
        with torch.random.fork_rng():  # a throw-away build: the seeded runs after it draw as they would without
            student = build_model(task.cfg.student.name, task.for_inputs(task.cfg.student.inputs).spec(),
                                  task.cfg.student.params)
    assert isinstance(first_teacher, STModel)
    student.check_shrink_from(first_teacher, same_inputs=reads_alike(task, task.cfg.student.inputs, teacher_inputs))


def train_teachers(task: Task, run_dir: Path, *, resume: bool = False, progress: bool = True) -> list[Trained]:
    """Every configured teacher, trained under the teachers' task and saved in ``run_dir/models`` (up to
    ``train.workers`` of them at once)."""
    labels = teacher_labels(task.cfg)
    jobs = [ModelJob("teacher", label, teacher=i) for i, label in enumerate(labels)]
    if side_by_side(task.cfg, len(jobs)) > 1:
        return train_apart(task, run_dir, jobs, resume=resume, progress=progress)
    return [_train_teacher(task, i, run_dir, resume=resume, progress=progress) for i in range(len(labels))]


def _train_teacher(task: Task, index: int, run_dir: Path, *, resume: bool, progress: bool) -> Trained:
    """The ``index``-th configured teacher, trained and saved in ``run_dir/models/<its label>``."""
    teacher_task = task.teacher_task()
    hard = teacher_task.hard_loss()
    return train_model(teacher_task, task.cfg.teacher[index], teacher_labels(task.cfg)[index], "teacher", run_dir,
                       lambda _: (hard, {}), resume=resume, progress=progress)


def student_label(cfg: RunConfig, kd: bool) -> str:
    """The folder (and row) name of the configured student: ``<name>_kd`` distilled, ``<name>_plain`` alone."""
    return f"{cfg.student.name}_{'kd' if kd else 'plain'}"


def train_student(task: Task, run_dir: Path, signal: TeacherSignal | None = None, *, resume: bool = False,
                  progress: bool = True, on_epoch: EpochCallback | None = None, label: str | None = None,
                  card: dict | None = None) -> Trained:
    """The configured student distilled from the teachers' ``signal``, or (None) trained alone; ``on_epoch``
    sees every epoch's validation score (:func:`stkd.train.fit`). ``label`` names its folder (default
    ``<name>_kd`` / ``<name>_plain``); ``card`` adds fields to its model card (e.g. where a transfer's teacher
    came from)."""
    s = task.cfg.student
    kd = signal is not None
    if signal is not None:
        base = {"distill": to_dict(task.cfg.distill), **signal.card()}
        make_loss = lambda model: task.kd_loss(signal, model)  # noqa: E731
    else:
        hard = task.hard_loss()
        base = {"distill": None, "teachers": None, "teacher_weights": None}
        make_loss = lambda model: (hard, {})  # noqa: E731
    init = student_start(task, signal.start, signal.start_inputs) if signal is not None else None  # distill.init: teacher
    return train_model(task, s, label or student_label(task.cfg, kd), "student_kd" if kd else "student_plain",
                       run_dir, make_loss, card={**base, **(card or {})}, resume=resume, progress=progress,
                       on_epoch=on_epoch, init=init)


def _students(task: Task, run_dir: Path, signal: TeacherSignal, teacher_run: Path, *, resume: bool,
              progress: bool) -> list[Trained]:
    """The distilled student and the same student without distillation (for the side-by-side table), at once
    with ``train.workers`` of 2 or more (the distilled one reads the teachers and their cache in
    ``teacher_run``)."""
    jobs = [ModelJob("student_kd", student_label(task.cfg, True), teacher_run=str(teacher_run)),
            ModelJob("student_plain", student_label(task.cfg, False))]
    if side_by_side(task.cfg, len(jobs)) > 1:
        return train_apart(task, run_dir, jobs, resume=resume, progress=progress)
    return [train_student(task, run_dir, signal, resume=resume, progress=progress),
            train_student(task, run_dir, resume=resume, progress=progress)]


# ------------------------------------------------------------------ models side by side
@dataclass
class ModelJob:
    """One model of a run to train in a process of its own: its role (``teacher``, ``student_kd``,
    ``student_plain``), its folder under ``models/``, which teacher (role teacher) and where the teachers and
    their soft-label cache are (role student_kd). The process gets it as JSON, with the run's config as a
    dict (:class:`_Apart`)."""

    role: str
    label: str
    teacher: int = 0
    teacher_run: str = ""


@dataclass
class _Apart:
    """What a process of its own needs besides its job: the run's config, folder and switches (sent as JSON)."""

    job: ModelJob
    config: dict
    run_dir: str
    resume: bool
    progress: bool

    @classmethod
    def from_json(cls, raw: dict) -> _Apart:
        return cls(**{**raw, "job": ModelJob(**raw["job"])})


def train_apart(task: Task, run_dir: Path, jobs: list[ModelJob], *, resume: bool, progress: bool) -> list[Trained]:
    """Train ``jobs``' models in processes of their own, :func:`side_by_side` at once, each at its share of the cores
    (``train.threads`` if set), and return them as read back from ``run_dir/models``, in the jobs' order. A
    model whose process fails stops the others; each keeps its checkpoints for ``--resume``."""
    workers = side_by_side(task.cfg, len(jobs))
    config = to_dict(task.cfg)
    run_processes(_train_in_process, [asdict(_Apart(job, config, str(run_dir), resume, progress)) for job in jobs],
                  limit=workers, threads=threads_per_worker(workers, task.cfg.train.threads),
                  name=lambda a: f"{a['job']['role']} {a['job']['label']}", stop_on_failure=True,
                  after_failure="what each model trained is kept: run the same command with --resume to go on")
    teachers = any(job.role == "teacher" for job in jobs)
    saved = (task.teacher_task() if teachers else task).load_models(run_dir, roles=tuple({j.role for j in jobs}))
    by_label = {t.name: t for t in saved}
    return [by_label[job.label] for job in jobs]


def _train_in_process(raw: dict, slot: int) -> None:
    """A process of its own: rebuild the task from the config, train the one model and save it (as this
    process would have). :func:`stkd.processes.child_main` sets its threads, places its bars on row ``slot`` and
    reports its errors."""
    apart = _Apart.from_json(raw)
    job = apart.job
    task = prepare_task(parse_config(apart.config))
    run_dir = Path(apart.run_dir)
    if job.role == "teacher":
        _train_teacher(task, job.teacher, run_dir, resume=apart.resume, progress=apart.progress)
        return
    signal = None
    if job.role == "student_kd":
        teacher_run = Path(job.teacher_run)
        signal = task.teacher_signal(teacher_run, saved_teachers(task, teacher_run))
    train_student(task, run_dir, signal, resume=apart.resume, progress=apart.progress)


def _finish(task: Task, run_dir: Path, models: list[Trained], *, progress: bool) -> dict:
    """Score and report on rank 0 (the others have nothing to write); returns metrics.json's content."""
    return report_on_rank0(run_dir, lambda: task.score(run_dir, models, progress=progress))


def _open(task: Task, out: Path, *, overwrite: bool, resume: bool, teachers: bool = True, student: bool = True,
          teacher_run: Path | None = None) -> Path:
    check_models(task, teachers=teachers, student=student)  # bad models fail before anything is written
    return open_run_dir(task.cfg, task.wd, out, overwrite=overwrite, resume=resume,
                        summary_extra=task.summary_extra(), teacher_run=teacher_run)


# ------------------------------------------------------------------ entry points
def run(cfg: RunConfig, out: Path, *, overwrite=False, resume=False, progress=True) -> dict:
    """The whole pipeline; returns metrics.json's content. Writes report.md beside it. The run folder is
    locked for the whole run (:func:`stkd.runs.run_lock`)."""
    task = prepare_task(cfg)
    with run_lock(out):
        run_dir = _open(task, out, overwrite=overwrite, resume=resume)
        if progress and is_rank0():
            print(format_plan(training_plan(task)), file=sys.stderr, flush=True)
        teachers = train_teachers(task, run_dir, resume=resume, progress=progress)
        signal = task.teacher_signal(run_dir, teachers, progress=progress)
        students = _students(task, run_dir, signal, run_dir, resume=resume, progress=progress)
        return _finish(task, run_dir, [*teachers, *students], progress=progress)


def train_only(cfg: RunConfig, out: Path, *, overwrite=False, resume=False, progress=True) -> Path:
    """Train the teacher(s) and write their soft-label cache; students can be distilled later."""
    task = prepare_task(cfg)
    with run_lock(out):
        run_dir = _open(task, out, overwrite=overwrite, resume=resume, student=False)
        teachers = train_teachers(task, run_dir, resume=resume, progress=progress)
        task.teacher_signal(run_dir, teachers, progress=progress)
        return run_dir


def saved_teachers(task: Task, teacher_run: Path) -> list[Trained]:
    """The teachers saved in ``teacher_run``, checked to match this task's data and kind of teacher."""
    check_same_data(teacher_run, task.wd)
    teachers = require_teachers(task.teacher_task().load_models(teacher_run, roles=("teacher",)), teacher_run)
    task.check_teachers(teachers, teacher_run)
    order = teacher_labels(load_run(teacher_run)[0])  # the teacher run's config order, as it trained them
    return sorted(teachers, key=lambda t: order.index(t.name) if t.name in order else len(order))


def distill_from(cfg: RunConfig, teacher_run: Path, out: Path, *, overwrite=False, resume=False,
                 progress=True, plain: bool = True) -> dict:
    """Distil the configured student from the teacher(s) saved in ``teacher_run`` (not retrained) and,
    with ``plain``, train the same student without distillation for the side-by-side table."""
    teacher_run = require_run_dir(teacher_run)
    task = prepare_task(cfg)
    teachers = saved_teachers(task, teacher_run)
    check_start(task, teachers[0].model, teachers[0].inputs)
    run_dir = Path(out)
    with run_lock(run_dir):
        if run_dir.resolve() == teacher_run.resolve():  # students added to the teacher run
            check_models(task, teachers=False)
        else:
            _open(task, run_dir, overwrite=overwrite, resume=resume, teachers=False, teacher_run=teacher_run)
        signal = task.teacher_signal(teacher_run, teachers, progress=progress)  # a missing cache is built once (rank 0), in the teacher run
        students = (_students(task, run_dir, signal, teacher_run, resume=resume, progress=progress) if plain
                    else [train_student(task, run_dir, signal, resume=resume, progress=progress)])
        return _finish(task, run_dir, [*teachers, *students], progress=progress)


def evaluate_run(run_dir: Path, *, progress: bool = True) -> dict:
    """Re-score every saved model of a run on its test split and rewrite metrics.json and report.md (the
    teachers of a run made by ``stkd distill`` are read from their own run); ``progress``: a bar per
    stage of the scoring."""
    run_dir = Path(run_dir)
    cfg, _ = load_run(run_dir)
    task = prepare_task(cfg)
    with run_lock(run_dir):  # not while a run writes its models
        check_same_data(run_dir, task.wd)
        models = task.load_models(run_dir, roles=("teacher", "student_kd", "student_plain"))
        teacher_run = None if any(m.role == "teacher" for m in models) else linked_teacher_run(run_dir)
        if teacher_run is not None:
            models = saved_teachers(task, teacher_run) + models
        if not models:
            raise STKDError(f"{run_dir} holds no trained models")
        return _finish(task, run_dir, models, progress=progress)
