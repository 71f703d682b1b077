"""How near a student comes to its teacher: the distance of its forecasts to the teachers' soft labels.

A distilled student learns the teachers' forecasts on its training windows. Whether it could fit them there
(its inputs and capacity suffice) and whether that fit holds on windows it never saw (it generalises what
it was taught) are two different limits; the evidence benchmark (``evidence.py``) records, for the
distilled and the plain student of each seed, the mean absolute difference between their forecasts and the
teachers' (weighted) cached forecast, on the training windows and on test
(:meth:`stkd.tasks.forecast.ForecastSignal.distance`), and this module turns a row's distances into its
sentence. The plain student, which never saw the soft labels, is the reference: how near a student of that
kind comes to the teacher from the ground truth alone.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "test")  # where the distances are measured: the windows taught, and the scored ones
KEYS = ("kd_to_teacher", "plain_to_teacher")


def to_teacher(signal, wd, kd, plain, metrics: dict | None = None) -> dict:
    """``{"kd_to_teacher": {"train": d, "test": d}, "plain_to_teacher": {...}}`` for the distilled and the plain
    student (:class:`stkd.runs.Trained`), each read through its own view of ``wd`` (what it reads).
    ``metrics``: the run's metrics.json models, whose students' ``to_teacher`` is the test distance already
    measured in their evaluation pass (:meth:`stkd.tasks.forecast.ForecastTask.score`): only the training
    windows then need a pass of their own."""
    from stkd.evaluate import model_forecaster

    out = {}
    for key, trained in zip(KEYS, (kd, plain)):
        view = wd.view(trained.inputs)
        measured = ((metrics or {}).get(trained.name) or {}).get("to_teacher")
        out[key] = {split: (float(measured["value"]) if split == "test" and measured is not None
                            else signal.distance(model_forecaster(trained.model, view), view, split))
                    for split in SPLITS}
    return out


def fidelity_gap(rows: list[dict], plain: float, teacher: float | None) -> str:
    """A row's sentence from its seeds' distances (means over the seeds), empty where a seed lacks them: how far
    each student is from the teacher on the training windows and on test, how much nearer distillation brings
    the student on each (:func:`stkd.fidelity.nearer_pct`), and what share of the first holds on the second.
    Where the teacher is ahead, also its edge in MAE as a share of how much the plain student differs from it
    (:func:`stkd.fidelity.edge_share_pct`). ``plain`` and ``teacher``: the row's mean test MAE of the plain
    student and of what it learns from (:func:`evidence_compare.row_summary`)."""
    from stkd.fidelity import edge_share_pct, nearer_pct

    if not rows or any(k not in r for r in rows for k in KEYS):
        return ""
    d = {(k, s): float(np.mean([r[k][s] for r in rows])) for k in KEYS for s in SPLITS}
    nearer = {s: nearer_pct(d[("kd_to_teacher", s)], d[("plain_to_teacher", s)]) for s in SPLITS}
    text = (f" From the teacher's forecasts the distilled student is {d[('kd_to_teacher', 'train')]:.3f} on the "
            f"training windows and {d[('kd_to_teacher', 'test')]:.3f} on test, the plain student "
            f"{d[('plain_to_teacher', 'train')]:.3f} and {d[('plain_to_teacher', 'test')]:.3f}: distillation brings "
            f"it {abs(nearer['train']):.1f} % {'nearer' if nearer['train'] >= 0 else 'further'} where it was taught "
            f"and {abs(nearer['test']):.1f} % {'nearer' if nearer['test'] >= 0 else 'further'} on test")
    if nearer["train"] > 0:
        text += (f" (its approach on test is {100 * nearer['test'] / nearer['train']:.0f} % of that on the windows it "
                 "was taught)")
    text += "."
    share = None if teacher is None else edge_share_pct(plain, teacher, d[("plain_to_teacher", "test")])
    if teacher is not None and share is not None:  # how much of their difference is the teacher being right
        text += (f" On test the plain student's forecasts differ from the teacher's by "
                 f"{d[('plain_to_teacher', 'test')]:.3f} while the teacher's MAE is {plain - teacher:.3f} lower: its edge is "
                 f"{share:.0f} % of their difference (weighed by how far apart the two forecasts are, those where the "
                 "teacher is nearer the truth outweigh those where the student is by that share).")
    return text
