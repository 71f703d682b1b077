"""The paired comparisons of an evidence file's rows (``benchmarks/evidence.py``): per row the gain of the
distilled student over the same student alone, its ratio against the issue's target and its teacher, on test and
on validation; and the teacher's bar. What the evidence page, the targets block, ``headroom.py`` and
``distill_gain.py`` read; it trains nothing."""

from __future__ import annotations

import numpy as np

from evidence_gaps import (
    dropout_twin,
    lr_choice,
    lr_family,
    seeds_mean,
    shared_seeds,
    speaks_for_rates,
    teacher_val_mean,
)
from evidence_rows import (
    LR_MARK,
    scarcity,
    teacher_epochs_label,
    teacher_lags_label,
)

# The targets for the distilled student's test MAE relative to its plain self (mean over seeds).
TARGET_RATIO = {"los-loop": 0.95, "akl-pedestrians": 0.97}


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
