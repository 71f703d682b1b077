"""Distillation: losses (pure functions of tensors), the objective (a weighted sum of named terms),
and the soft-label cache (``stkd.distill.cache``, imported on its own)."""

from stkd.distill.losses import (
    ensemble_targets,
    event_kd_loss,
    focal_loss,
    hint_loss,
    inverse_error_weights,
    kd_kl_loss,
    masked_loss,
    relation_loss,
    response_kd_loss,
    teacher_bounded_loss,
    weighted_cross_entropy,
)
from stkd.distill.objective import (
    Objective,
    Term,
    build_event_objective,
    build_forecast_objective,
)

__all__ = [
    "Objective",
    "Term",
    "build_event_objective",
    "build_forecast_objective",
    "ensemble_targets",
    "event_kd_loss",
    "focal_loss",
    "hint_loss",
    "inverse_error_weights",
    "kd_kl_loss",
    "masked_loss",
    "relation_loss",
    "response_kd_loss",
    "teacher_bounded_loss",
    "weighted_cross_entropy",
]
