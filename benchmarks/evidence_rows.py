"""What a row of the distillation evidence (``benchmarks/evidence.py``) is measured with, and the words that name it.

The data sets, students and teachers a row can take and the run config of each (:func:`config`,
:func:`student_config`); the settings a data set's rows have unless their label says otherwise (the teacher's
lags and epochs, the distillation's weights, the students' loss and learning rate: :func:`usual_rate`,
:func:`student_rate`); and each setting's mark in a row's label with its slug in a run folder's or file's name
(``, lr 0.008`` and ``-lr-0.008``, ``, reading lags 1D, 7D`` and ``-lags-1D-7D``, ...).

Why apart from ``evidence.py``: two sides read these names. The training of a row (``evidence_train.run_seed``) names
its rows and folders with them, and the sentences that compare rows (:mod:`evidence_gaps`, which ``evidence.py``
imports for its page) find a row's neighbour by the same marks and the same usual settings; neither can import the
other's module for them without an import cycle. :func:`usual_rate` reads :func:`config`, so the configs live here
with the marks. The other benchmarks that train or count evidence students (``headroom.py``, ``distill_gain.py``,
``targets.py``, ``day_of_week.py``, ``crossfit.py``, ``batch_stream.py``) take them from here too. This module
imports no other evidence module.
"""

from __future__ import annotations

import copy
import functools
import re

from common import akl_gwnet_preset, los_loop_data
from stkd.config import TrainConfig

DATASETS = {
    "los-loop": {"data": los_loop_data(), "train": {"epochs": 80, "patience": 15, "max_batches": None}},
    "akl-pedestrians": "preset",  # common.akl_gwnet_preset, unchanged but for the seed (and the teacher's inputs)
    "synthetic-traffic": {"data": {"source": "builtin", "name": "synthetic-traffic",
                                   "simulator": {"nodes": 200, "days": 14}},
                          "train": {"epochs": 30, "patience": 8, "max_batches": 100}},
}
# The pinned preset on other years of the same counts, data nobody tuned on, in time. Each held-out row repeats a
# row of ``of`` (the preset's commands with this data set name) on its ``years`` (data.time_range here).
# 2020-2022: the three years before the preset's own (2023 to 2025), chosen before any run on them; every preset
# choice was made on the 2023-2025 rows, but their table was seen before the preset of 2026-12-06 dropped the
# augmented windows (presets.py), so for that choice they are not untouched. 2019 (19 of the 21 sensors counted;
# the year before the pandemic): chosen on 2026-12-06, after that choice, before any run on it.
HELD_OUT = {"akl-pedestrians-2020-2022": {"of": "akl-pedestrians", "years": ["2020-01-01", "2022-12-31 23:00"]},
            "akl-pedestrians-2019": {"of": "akl-pedestrians", "years": ["2019-01-01", "2019-12-31 23:00"]}}
DATASETS |= {name: DATASETS[h["of"]] for name, h in HELD_OUT.items()}  # its source's setting, its own years
# label -> (model, hyper-parameters). ``stid-nb`` and ``mlp-nb`` also read the mean windows of each sensor's 4
# strongest downstream and upstream neighbours: a graph teacher's edge comes partly from the neighbours, which
# a per-sensor student cannot see. ``mlp-nb-id`` adds a 16-wide embedding per sensor (the independent reference
# MLP's node identity): the part of a teacher's edge that is each sensor's own level and daily shape;
# ``mlp-id`` the same embedding without the neighbours (where the teacher reads no graph either); ``mlp-id-cal``
# and ``mlp-nb-id-cal`` add 4 harmonics of the time of day and the weekday (``calendar``; the weekday only where
# the data covers every weekday): what a teacher's time embeddings know. ``stid-8``, ``stid-32`` and ``stid-48`` are
# STIDs of half, twice and three times the default width (8, 32 and 48; 2, 3 and 3 layers): a student-size frontier
# beside a data set's own ``stid`` (on the Auckland counts the preset's 16-wide student; elsewhere ``stid`` is
# ``stid-32``'s size);
# ``stid-nb-8`` and ``stid-nb-32`` the same beside ``stid-nb`` (the default width, reading its neighbours);
# ``mlp-nb-id-cal-16`` and ``-256`` the MLP with all its inputs at hidden widths 16 and 256 (the default is 64),
# ``mlp-id-cal-16``, ``-256`` and ``-512`` the same without the neighbours (where a wider student took more of its
# teachers' edge, how far that goes). ``stid-nodrop`` is the data set's ``stid``
# without dropout in its encoder (the model's default keeps 0.15), and every STID label has such a twin
# (``stid-nb-nodrop``, ...): a student too small for its data may need all of its width to follow a teacher, and a
# teacher's forecasts are no noisy labels to be regularised against. (The MLP has no dropout by default.)
NO_DROPOUT = "-nodrop"
STID_8 = {"embed_dim": 8, "node_dim": 8, "tod_dim": 8, "dow_dim": 8, "layers": 2}
STID_32 = {"embed_dim": 32, "node_dim": 32, "tod_dim": 32, "dow_dim": 32, "layers": 3}
STID_48 = {"embed_dim": 48, "node_dim": 48, "tod_dim": 48, "dow_dim": 48, "layers": 3}
STID_64 = {"embed_dim": 64, "node_dim": 64, "tod_dim": 64, "dow_dim": 64, "layers": 4}  # the wide teachers' STID
MLP_ID_CAL = {"node_dim": 16, "calendar": 4}
MLP_NB_ID_CAL = {"neighbours": 4, **MLP_ID_CAL}
STUDENTS = {"stid": ("stid", dict(STID_32)),
            "stid-8": ("stid", dict(STID_8)),
            "stid-32": ("stid", dict(STID_32)),
            "stid-48": ("stid", dict(STID_48)),
            "stid-nb": ("stid", {"neighbours": 4, "neighbour_dim": 16}),
            "stid-nb-8": ("stid", {**STID_8, "neighbours": 4, "neighbour_dim": 8}),
            "stid-nb-32": ("stid", {**STID_32, "neighbours": 4, "neighbour_dim": 32}),
            "mlp": ("mlp", {}), "mlp-nb": ("mlp", {"neighbours": 4}),
            "mlp-nb-id": ("mlp", {"neighbours": 4, "node_dim": 16}), "mlp-id": ("mlp", {"node_dim": 16}),
            "mlp-id-cal": ("mlp", dict(MLP_ID_CAL)),
            "mlp-id-cal-16": ("mlp", {**MLP_ID_CAL, "hidden": [16, 16]}),
            "mlp-id-cal-256": ("mlp", {**MLP_ID_CAL, "hidden": [256, 256]}),
            "mlp-id-cal-512": ("mlp", {**MLP_ID_CAL, "hidden": [512, 512]}),
            "mlp-nb-id-cal": ("mlp", dict(MLP_NB_ID_CAL)),
            "mlp-nb-id-cal-16": ("mlp", {**MLP_NB_ID_CAL, "hidden": [16, 16]}),
            "mlp-nb-id-cal-256": ("mlp", {**MLP_NB_ID_CAL, "hidden": [256, 256]}),
            "linear": ("linear", {})}
STUDENTS |= {label + NO_DROPOUT: (model, {**params, "dropout": 0.0})  # every STID student without dropout too
             for label, (model, params) in STUDENTS.items() if model == "stid"}
TEACHERS = [{"name": "gwnet"}]
# Extra teachers (``--extra-teachers LABEL[:SEED]``), each trained once in its own folder and averaged with the
# main one (weights inverse to their validation MAE): an ensemble teacher is better than each of its members.
# A student's own architecture is a teacher too: an ensemble of its copies trained from other seeds knows
# what averaging over seeds buys, which the student can represent (ensemble distillation).
# ``stid-64``: twice ``stid-32``'s width and one layer more (535k parameters, 28x the Auckland student);
# ``stid-64-nb`` the same reading its 4 strongest up- and downstream neighbours, as ``stid-nb`` does;
# ``stid-64-nodrop`` ``stid-64`` without dropout (as ``stid-nodrop`` is the student without it), and
# ``stid-64-dropout-0.3`` with twice the model's dropout: the teacher's regulariser, both ways.
# ``gwnet``: the main teacher's own model from another seed (``gwnet:101``), on the main teacher's schedule
# (``--teacher-epochs``): copies of the strongest teacher for an ensemble further ahead of the students.
EXTRA_TEACHERS = {"gwnet": copy.deepcopy(TEACHERS[0]),
                  "stid-32": {"name": "stid", "params": STUDENTS["stid"][1]},
                  "stid-nb": {"name": "stid", "params": STUDENTS["stid-nb"][1]},
                  "stid-64": {"name": "stid", "params": dict(STID_64)},
                  "stid-64" + NO_DROPOUT: {"name": "stid", "params": {**STID_64, "dropout": 0.0}},
                  "stid-64-dropout-0.3": {"name": "stid", "params": {**STID_64, "dropout": 0.3}},
                  "stid-64-nb": {"name": "stid", "params": {**STID_64, "neighbours": 4, "neighbour_dim": 32}}}
DISTILL = {"alpha": 0.5, "loss": "huber", "ensemble": "weighted"}
TRAIN_LOSS = TrainConfig.loss  # the students' loss of a row unless --loss set another (records before it lack it)
# The lags every teacher of a data set's rows reads unless the row's label says otherwise (``--teacher-lags``):
# on the Auckland counts the pinned preset's privileged teacher; elsewhere the window only.
USUAL_TEACHER_LAGS = {"akl-pedestrians": ["1D", "7D"]}
USUAL_TEACHER_LAGS |= {name: USUAL_TEACHER_LAGS[h["of"]] for name, h in HELD_OUT.items()}
# The epochs every main teacher of a data set's rows trains for unless the row's label says otherwise
# (``--teacher-epochs``); the pinned Auckland preset's teacher keeps its own schedule.
USUAL_TEACHER_EPOCHS = {"los-loop": 40, "synthetic-traffic": 20}
INIT_LABEL = ", started from the teacher"  # a row whose distilled students had distill.init: teacher
SCOPE_LABEL = ", teacher where inputs observed"  # a row whose students had distill.teacher_scope: observed-inputs


def config(dataset: str, seed: int, quick: bool, teacher_lags: list[str] | None = None,
           precision: str | None = None, teacher_epochs: int | None = None, history: str | None = None,
           data: dict | None = None, teacher_scope: str | None = None, augment: dict | None = None) -> dict:
    """The run's config; ``data`` replaces the data section (the same data with outages, :mod:`outages`),
    ``teacher_scope`` sets ``distill.teacher_scope``, ``augment`` the ``distill`` keys of teacher-labelled
    augmented inputs (``augment``, ``augment_weight``, ``augment_labels``)."""
    eval_cfg = {"baselines": ["last"], "latency_repeats": 5}
    if DATASETS[dataset] == "preset":
        cfg = akl_gwnet_preset()
        cfg["train"]["seed"] = seed
        if dataset in HELD_OUT:
            cfg["data"]["time_range"] = list(HELD_OUT[dataset]["years"])
        cfg["eval"] = eval_cfg
    else:
        d = copy.deepcopy(DATASETS[dataset])
        cfg = {"data": d["data"], "teacher": copy.deepcopy(TEACHERS), "student": {"name": "stid"},
               "distill": dict(DISTILL), "eval": eval_cfg,
               "train": {"batch_size": 64, "lr": 0.002, "seed": seed, "precision": "bf16", **d["train"]}}
    if precision is not None:
        cfg["train"]["precision"] = precision
    if data is not None:
        cfg["data"] = copy.deepcopy(data)
    if teacher_scope is not None:
        cfg.setdefault("distill", {})["teacher_scope"] = teacher_scope
    if augment:
        cfg.setdefault("distill", {}).update(augment)
    if history is not None:  # teacher and students alike see only the last part of the train period
        cfg["data"]["history"] = history
    if teacher_lags:
        for t in cfg["teacher"]:
            t["inputs"] = {"lags": list(teacher_lags)}
    if teacher_epochs is not None:
        for t in cfg["teacher"]:
            t["epochs"] = teacher_epochs
    if quick:
        cfg["train"].update(epochs=2, max_batches=3)
        for t in cfg["teacher"]:
            t.pop("epochs", None)
    return cfg


def student_config(dataset: str, label: str, cfg):
    """The student called ``label``: the pinned preset's own STID for its ``stid`` (and, for ``stid-nodrop``, that
    STID without dropout)."""
    from stkd.config import ModelConfig

    model, params = STUDENTS[label]
    if DATASETS[dataset] == "preset" and label.removesuffix(NO_DROPOUT) == cfg.student.name:
        params = {**cfg.student.params, **({"dropout": 0.0} if label.endswith(NO_DROPOUT) else {})}
    return ModelConfig(name=model, params=dict(params))


@functools.cache
def usual_rate(dataset: str) -> float:
    """The students' learning rate of a data set's rows unless ``--student-lr`` set another (its ``train.lr``)."""
    return float(config(dataset, 0, False)["train"]["lr"])


def student_rate(record: dict, dataset: str) -> float:
    """The learning rate a record's students trained at (a record without ``student_lr``: :func:`usual_rate`)."""
    return float(record.get("student_lr") or usual_rate(dataset))


def teacher_lags_label(dataset: str, lags: list[str] | None) -> str:
    """A row's words for a teacher that reads other lags than the data set's usual teacher
    (:data:`USUAL_TEACHER_LAGS`), e.g. ``, privileged teacher (lags 1D)``; empty for the usual teacher."""
    lags = list(lags or [])
    if lags == USUAL_TEACHER_LAGS.get(dataset, []):
        return ""
    return f", privileged teacher (lags {', '.join(lags)})" if lags else ", window-only teacher"


def teacher_lags_folder(dataset: str, lags: list[str] | None) -> str:
    """The same in a folder name (``-teacher-lags-1D``): such teachers and their students keep folders of their
    own, so that a cached teacher of other inputs is never taken for them."""
    if not teacher_lags_label(dataset, lags):
        return ""
    return "-teacher-lags-" + "-".join(lags) if lags else "-teacher-window-only"


def teacher_epochs_label(dataset: str, epochs: int | None) -> str:
    """A row's words for a teacher trained for other epochs than the data set's usual teacher
    (:data:`USUAL_TEACHER_EPOCHS`), e.g. ``, teacher 80 epochs``; empty for the usual schedule."""
    if epochs is None or epochs == USUAL_TEACHER_EPOCHS.get(dataset):
        return ""
    return f", teacher {epochs} epochs"


def teacher_epochs_folder(dataset: str, epochs: int | None) -> str:
    """The same in a folder name (``-teacher-epochs-80``): such teachers and their students keep folders of
    their own, so that a teacher of another schedule is never resumed or taken for them."""
    return f"-teacher-epochs-{epochs}" if teacher_epochs_label(dataset, epochs) else ""


def extra_epochs_label(epochs: int | None) -> str:
    """A row's words for extra teachers trained for epochs of their own (``--extra-teacher-epochs``), e.g.
    ``, extra teachers 20 epochs``; empty where they train on their usual schedule."""
    return f", extra teachers {epochs} epochs" if epochs else ""


def extra_epochs_folder(epochs: int | None) -> str:
    """The same in a folder name (``-extra-epochs-20``): such teachers, and the students they teach, keep folders
    of their own, so that a teacher of another schedule is never resumed or taken for them."""
    return f"-extra-epochs-{epochs}" if epochs else ""


def augment_label(augment: dict) -> str:
    """A row's words for its students' augmented inputs, e.g. ``mask + mixup labelled online (weight 1)``
    (from ``--augment``, ``--augment-labels``, ``--augment-weight`` or a record's fields of those names)."""
    return (f"{' + '.join(augment['augment'])} labelled {augment['augment_labels']} "
            f"(weight {augment['augment_weight']:g})")


def augment_folder(augment: dict) -> str:
    """The run folder's suffix for students with augmented inputs (their teachers keep their folders)."""
    return f"augment-{'-'.join(augment['augment'])}-{augment['augment_labels']}-{augment['augment_weight']:g}"


def lr_label(lr: float | None) -> str:
    """A row's mark for students trained at another learning rate than the data set's (``--student-lr``)."""
    return f", lr {lr:g}" if lr is not None else ""


def lr_slug(lr: float | None) -> str:
    """The same in a file or folder name (``-lr-0.008``; empty at the data set's rate)."""
    return f"-lr-{lr:g}" if lr is not None else ""


LR_MARK = re.compile(r", lr ([0-9.e+-]+)")  # :func:`lr_label`'s mark in a row's label


def loss_label(loss: str | None) -> str:
    """A row's mark for its students' loss (``--loss``): none for the data set's own."""
    return f", loss {loss}" if loss is not None else ""


def schedule_slug(schedule: tuple[int, int] | list[int] | None, min_epochs: int | None) -> str:
    """The run folders' (and distill_gain.py's result file's) mark for the students' own schedule
    (``--student-schedule``, ``--student-min-epochs``); "" for the data set's or the teacher run's."""
    slug = f"-epochs-{schedule[0]}-patience-{schedule[1]}" if schedule else ""
    return slug + (f"-min-epochs-{min_epochs}" if min_epochs else "")


def schedule_label(schedule: tuple[int, int] | list[int] | None, min_epochs: int | None) -> str:
    """The words for the students' own schedule, ``, 60 epochs (patience 12), early stop from epoch 40`` (a
    per-method table's heading, a learning curve's row); "" for the data set's or the teacher run's."""
    if not schedule:
        return ""
    return f", {schedule[0]} epochs (patience {schedule[1]})" + min_epochs_mark(min_epochs)


def min_epochs_problem(min_epochs: int | None, schedule: tuple[int, int] | list[int] | None,
                       flags: tuple[str, str] = ("--student-min-epochs", "--student-schedule")) -> str | None:
    """Why a floor of early stopping (``flags[0]``) cannot be taken with the students' schedule (``flags[1]``),
    or None: it is an epoch of their own schedule, so it needs one and lies within it. The benchmarks that
    train students on their own schedule (evidence.py, distill_gain.py, headroom.py) all ask this."""
    if min_epochs is None:
        return None
    if not schedule:
        return f"{flags[0]} needs {flags[1]} (the floor is of the students' own schedule)"
    if not 1 <= min_epochs <= schedule[0]:
        return f"{flags[0]}: an epoch of the students' schedule (1 to its EPOCHS, {schedule[0]})"
    return None


def min_epochs_mark(epochs: int | None) -> str:
    """The row label's mark of ``--student-min-epochs``: early stopping held off until that epoch."""
    return f", early stop from epoch {epochs}" if epochs else ""


def lags_label(lags: list[str]) -> str:
    """A row's words for students that read lagged channels too (``--student-lags``)."""
    return f", reading lags {', '.join(lags)}"


def lags_slug(lags: list[str] | None) -> str:
    """The same in a file or folder name (``-lags-1D-7D``; empty for a student of the window only)."""
    return "-lags-" + "-".join(lags) if lags else ""


def outages_text(rate: float) -> str:
    """How a row names its outages: ``50 % outages``."""
    return f"{100 * rate:g} % outages"


def scarcity(row: dict) -> tuple[str, str, str] | None:
    """For a row trained on less data, a shorter history or outages: its label's suffix, what it lacked and
    what the full row had, for :func:`history_gap`'s sentence; None for a row with all the data."""
    if row.get("history"):
        return f", {row['history']} of history", f"only {row['history']} of history", "on the whole training period"
    if row.get("outages"):
        what = outages_text(row["outages"])
        return f", {what}", f"{what} in the training part", "with every reading"
    return None
