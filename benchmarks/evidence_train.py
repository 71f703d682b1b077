"""The training side of ``benchmarks/evidence.py``: a row's settings and folders, its teachers (the main one,
extra ones, copies from other seeds), and its two students per seed, distilled and plain, trained in turn or
side by side in processes of their own (``--workers 2``); ``evidence.py`` writes each seed's records as soon as they are measured."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import inspect
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common import (
    command,
    machine,
    train_side_by_side,
)
from evidence_rows import (
    EXTRA_TEACHERS,
    INIT_LABEL,
    SCOPE_LABEL,
    TEACHERS,
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
    outages_text,
    schedule_slug,
    student_config,
    teacher_epochs_folder,
    teacher_epochs_label,
    teacher_lags_folder,
    teacher_lags_label,
)
from fidelity import to_teacher
from stkd.io import read_json
from stkd.names import STUDENT_ROLES


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
            train_side_by_side("evidence_train.train_row_student",
                               side_by_side_jobs(dataset, seed, runs, quick, row, name), workers,
                               lambda j: f"seed {j['seed']} {j['student']} {'distilled' if j['kd'] else 'plain'}")
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
