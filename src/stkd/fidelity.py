"""How closely a student follows its teacher, beside how accurate it is.

A distilled student learns the teacher's outputs; the plain student, which never saw them, says how near a
student of that kind comes to the teacher from the ground truth alone. Two numbers read the pair:

- how much nearer distillation brings the student (:func:`nearer_pct`), from each student's distance to the
  teacher (a forecaster's mean absolute difference to the teacher's forecast,
  :meth:`stkd.tasks.forecast.ForecastSignal.distance`);
- what share of the plain student's distance to the teacher is the teacher's edge in error
  (:func:`edge_share_pct`). A student moved a fraction of the way towards its teacher at every point gains at
  least that fraction of the edge (the error is convex along the way), and the edge is at most the distance
  (triangle inequality). A small share means that where the two differ the teacher is right barely more often
  than the student: each unit of approach buys little accuracy, even for a student that follows closely.

The run report (:mod:`stkd.report.tables`) and the evidence benchmark both read them from here.
"""

from __future__ import annotations


def nearer_pct(kd_distance: float, plain_distance: float) -> float:
    """How much nearer the teacher the distilled student is than the plain one, in % of the plain one's
    distance (negative: further)."""
    return 100.0 * (1.0 - kd_distance / plain_distance)


def nearer_words(kd_distance: float, plain_distance: float) -> str:
    """``12.5 % nearer`` or ``3.0 % further away``: :func:`nearer_pct` as the report's sentences say it."""
    nearer = nearer_pct(kd_distance, plain_distance)
    return f"{abs(nearer):.1f} % {'nearer' if nearer >= 0 else 'further away'}"


def edge_share_pct(plain_error: float, teacher_error: float, plain_distance: float) -> float | None:
    """The teacher's edge over the plain student in error (plain - teacher, in the distance's units) as a share
    of their distance, in %; None where the teacher is not ahead or the two do not differ."""
    if teacher_error >= plain_error or plain_distance <= 0:
        return None
    return 100.0 * (plain_error - teacher_error) / plain_distance
