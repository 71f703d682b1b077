"""The training objective: a weighted sum of named loss terms.

Each :class:`Term` reads what it needs from one dict of named tensors (``student_pred``, ``y``,
``mask``, ``teacher_pred``, ``student_hidden``, ``teacher_hidden``, optionally ``node_idx``), so a new
distillation method is a new term, not a new training loop (torchdistill's design, without its
registries). The objective returns the total and each term's unweighted value for the logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from stkd.distill import losses

__all__ = ["Term", "Objective", "build_forecast_objective", "build_event_objective"]


@dataclass(frozen=True)
class Term:
    """One named loss term: ``weight * fn(outputs)``; ``fn`` returns a scalar tensor."""

    name: str
    weight: float
    fn: Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


class Objective:
    """``total = sum(weight * fn(outputs))`` over the terms with a non-zero weight.

    ``objective(outputs) -> (total, {name: unweighted value as float})``. Terms with weight 0 are not
    computed and do not appear in the dict (a disabled hint loss costs nothing, and needs no hidden
    features in ``outputs``).
    """

    def __init__(self, terms: Sequence[Term]):
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"term names must be unique, got {names}")
        self.terms = [t for t in terms if t.weight != 0]
        if not self.terms:
            raise ValueError(f"the objective has no term with a non-zero weight (terms: {names})")

    def __call__(self, outputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        total = None
        values: dict[str, float] = {}
        for term in self.terms:
            value = term.fn(outputs)
            values[term.name] = float(value.detach())
            total = term.weight * value if total is None else total + term.weight * value
        assert total is not None  # __init__ refuses an objective without terms
        return total, values

    def __repr__(self) -> str:
        return "Objective(" + " + ".join(f"{t.weight:g}*{t.name}" for t in self.terms) + ")"


def build_forecast_objective(distill_cfg=None, train_loss: str = "huber",
                             projection: Callable[[torch.Tensor], torch.Tensor] | None = None,
                             max_nodes: int | None = 1024) -> Objective:
    """The objective of a forecaster, from a :class:`stkd.config.DistillConfig` (or None).

    ``distill_cfg`` None (a teacher or a plain student): one term ``hard`` =
    ``masked_loss(student_pred, y, mask, train_loss)``. With a config the terms are

    - ``hard`` (weight alpha): ``L(student, y)``, masked, or with ``fill_missing`` on
      ``where(mask, y, teacher)`` over all entries (:func:`losses.response_kd_loss` at alpha = 1);
    - ``soft`` (weight 1 - alpha): ``L(student, teacher)`` over all entries, or with ``bounded`` the
      term ``bounded`` = :func:`losses.teacher_bounded_loss` with ``margin`` in its place;
    - in both, ``outputs["teacher_mask"]`` (when given: ``distill.teacher_scope: observed-inputs``) limits
      the entries where the teacher counts;
    - ``hint`` (weight ``feature_weight``): :func:`losses.hint_loss` through ``projection``;
    - ``relation`` (weight ``relation_weight``): :func:`losses.relation_loss` on the hidden features
      (``outputs["node_idx"]`` when given, else a random subset of ``max_nodes`` nodes per call);
    - ``multiscale`` (weight ``multiscale_weight``): :func:`losses.multiscale_loss` against the teacher;
    - ``period`` (weight ``period_weight``): :func:`losses.period_loss` at ``period_temperature``;
    - ``augment`` (weight ``augment_weight``): ``L(augment_pred, augment_target)``, the student's forecast
      of teacher-labelled augmented inputs (:mod:`stkd.distill.augment`; the caller runs the student);

    so ``hard + soft`` equals ``response_kd_loss`` exactly. L is ``distill_cfg.loss``. ``student_pred``,
    ``y`` and ``teacher_pred`` must be in the same units (``margin`` is in those units).
    """
    if distill_cfg is None:
        return Objective([Term("hard", 1.0, lambda o: losses.masked_loss(
            o["student_pred"], o["y"], o.get("mask"), kind=train_loss))])
    c = distill_cfg
    kind = c.loss
    if kind not in losses.LOSS_KINDS:
        raise ValueError(f"distill.loss {kind!r} is not one of {', '.join(losses.LOSS_KINDS)}")
    terms = [Term("hard", c.alpha, lambda o: losses.response_kd_loss(
        o["student_pred"], o["y"], o.get("mask"), o["teacher_pred"], 1.0, kind, c.fill_missing,
        teacher_mask=o.get("teacher_mask")))]
    if c.bounded:
        terms.append(Term("bounded", 1.0 - c.alpha, lambda o: losses.teacher_bounded_loss(
            o["student_pred"], o["y"], o.get("mask"), o["teacher_pred"], c.margin, kind)))
    else:
        terms.append(Term("soft", 1.0 - c.alpha, lambda o: losses.response_kd_loss(
            o["student_pred"], o["y"], o.get("mask"), o["teacher_pred"], 0.0, kind,
            teacher_mask=o.get("teacher_mask"))))
    terms.append(Term("hint", c.feature_weight, lambda o: losses.hint_loss(
        o["student_hidden"], o["teacher_hidden"], projection)))
    terms.append(Term("relation", c.relation_weight, lambda o: losses.relation_loss(
        o["student_hidden"], o["teacher_hidden"], o.get("node_idx"), max_nodes)))
    terms.append(Term("multiscale", c.multiscale_weight, lambda o: losses.multiscale_loss(
        o["student_pred"], o["teacher_pred"], kind=kind)))
    terms.append(Term("period", c.period_weight, lambda o: losses.period_loss(
        o["student_pred"], o["teacher_pred"], c.period_temperature)))
    terms.append(Term("augment", c.augment_weight, lambda o: losses.masked_loss(
        o["augment_pred"], o["augment_target"], None, kind)))
    return Objective(terms)


def build_event_objective(distill_cfg=None, class_weights: Sequence[float] | None = None,
                          focal_gamma: float = 0.0) -> Objective:
    """The objective of an event classifier (logits in ``student_pred``, int labels in ``y``).

    ``distill_cfg`` None: one term ``hard`` (weighted cross-entropy, or focal loss with
    ``focal_gamma > 0``). With a config: ``hard`` (weight alpha) and ``soft`` (weight 1 - alpha) =
    ``T^2 * KL`` at ``distill_cfg.temperature`` against ``teacher_pred`` logits, which together equal
    :func:`losses.event_kd_loss`.
    """
    def hard(o):
        return losses.focal_loss(o["student_pred"], o["y"], o.get("mask"), focal_gamma, class_weights)

    if distill_cfg is None:
        return Objective([Term("hard", 1.0, hard)])
    c = distill_cfg
    return Objective([
        Term("hard", c.alpha, hard),
        Term("soft", 1.0 - c.alpha, lambda o: losses.kd_kl_loss(
            o["student_pred"], o["teacher_pred"], c.temperature, o.get("mask"))),
    ])
