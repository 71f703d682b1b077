"""Distillation losses: pure functions of tensors, no module state.

Conventions. Forecast tensors are ``[B, H, N, F]`` (any shape works where only elementwise maths is
involved); ``mask`` is boolean, broadcastable to the prediction, True where the ground truth was
observed. Every masked mean divides by the number of True entries and gives exactly 0 (with zero,
finite gradients) when there are none, so a batch of missing data never produces NaN. Teacher
outputs are constants: they are detached here, whatever the caller passes (they usually come from
the soft-label cache anyway).

Event (classification) tensors are logits ``[..., K]`` with labels ``[...]`` and a mask ``[...]``;
the binary case is K = 2.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from stkd import names

__all__ = [
    "masked_loss",
    "response_kd_loss",
    "teacher_bounded_loss",
    "hint_loss",
    "relation_loss",
    "kd_kl_loss",
    "weighted_cross_entropy",
    "focal_loss",
    "event_kd_loss",
    "ensemble_targets",
    "multiscale_loss",
    "period_loss",
    "inverse_error_weights",
    "LOSS_KINDS",
]

LOSS_KINDS = names.LOSSES


# ------------------------------------------------------------------------------- helpers
def _mask_like(mask: torch.Tensor | None, ref: torch.Tensor) -> torch.Tensor:
    """``mask`` as a boolean tensor of ``ref``'s shape (all True when None)."""
    if mask is None:
        return torch.ones_like(ref, dtype=torch.bool)
    return torch.broadcast_to(mask.to(device=ref.device, dtype=torch.bool), ref.shape)


def _elementwise(pred: torch.Tensor, target: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    if kind == "l1":
        return (pred - target).abs()
    if kind == "mse":
        return (pred - target) ** 2
    if kind == "huber":
        return F.huber_loss(pred, target, reduction="none", delta=delta)
    raise ValueError(f"loss kind {kind!r} is not one of {', '.join(LOSS_KINDS)}")


def _masked_mean(values: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """sum(values * w) / sum(w) over mask-True entries (w = 1 without weights); 0 when the sum of w is 0."""
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    w = mask.to(values.dtype) if weight is None else torch.where(mask, weight.to(values.dtype), zero)
    total = torch.where(mask, values, zero) * w
    return total.sum() / w.sum().clamp_min(torch.finfo(values.dtype).tiny)


# ------------------------------------------------------------------------ regression KD
def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                kind: str = "l1", delta: float = 1.0) -> torch.Tensor:
    """Mean of an elementwise regression loss over observed entries.

    ``kind``: ``"l1"`` |x|, ``"mse"`` x^2, ``"huber"`` 0.5 x^2 for |x| <= delta else
    delta (|x| - 0.5 delta) (Huber, "Robust Estimation of a Location Parameter", 1964). The masked
    metrics of DCRNN/Graph WaveNet (Li et al. 2018; Wu et al. 2019) train this way: missing targets are
    excluded rather than scored as 0. Masked-out targets are replaced by the (detached) prediction before
    the loss, so NaN or garbage under the mask cannot leak into the gradient; with nothing observed the
    loss is 0 with zero gradients. Shapes: ``pred``, ``target`` ``[...]``; ``mask`` broadcastable.
    """
    m = _mask_like(mask, pred)
    safe_target = torch.where(m, target.to(pred.dtype), pred.detach())
    return _masked_mean(_elementwise(pred, safe_target, kind, delta), m)


def response_kd_loss(student: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None,
                     teacher: torch.Tensor, alpha: float, kind: str = "huber",
                     fill_missing: bool = True, delta: float = 1.0,
                     teacher_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Response (output) distillation for regression: ``alpha * L(s, y | mask) + (1 - alpha) * L(s, t)``.

    The student fits a mix of the ground truth and the teacher's prediction, the regression form of
    Hinton et al., "Distilling the Knowledge in a Neural Network" (2015); for regression the soft target
    is the teacher's output itself (Takamoto et al., "An Efficient Method of Training Small Models for
    Regression Problems with Knowledge Distillation", MIPR 2020). The teacher's forecast is smoother than
    the noisy truth and defined everywhere, which is what helps a small student.

    The teacher term covers every entry. With ``fill_missing`` the teacher also stands in for missing
    truth in the first term (target = where(mask, y, teacher), all entries), so sensor outages still
    teach the student something; without it the first term is masked. ``teacher_mask`` (broadcastable,
    None: everywhere) limits where the teacher counts, in both terms: the teacher term covers only its
    True entries and a missing truth is filled only there (the first term then covers ``mask | teacher_mask``);
    a teacher that forecast from imputed inputs is no better a target than nothing. A term whose weight is 0
    is not computed. Shapes: ``student``, ``y``, ``teacher`` ``[B, H, N, F]``; ``mask`` broadcastable.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    teacher = teacher.detach().to(student.dtype)
    total = student.new_zeros(())
    if alpha > 0:
        if fill_missing:
            m = _mask_like(mask, student)
            where = None if teacher_mask is None else m | _mask_like(teacher_mask, student)
            hard = masked_loss(student, torch.where(m, y.to(student.dtype), teacher), where, kind, delta)
        else:
            hard = masked_loss(student, y, mask, kind, delta)
        total = total + alpha * hard
    if alpha < 1:
        total = total + (1.0 - alpha) * masked_loss(student, teacher, teacher_mask, kind, delta)
    return total


def teacher_bounded_loss(student: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None,
                         teacher: torch.Tensor, margin: float = 0.0, kind: str = "l1",
                         delta: float = 1.0) -> torch.Tensor:
    """Teacher-bounded regression loss: penalise ``L(s, y)`` only where the student is worse than the teacher.

    From Chen et al., "Learning Efficient Object Detection Models with Knowledge Distillation",
    NeurIPS 2017 (their L_b for bounding-box regression): the teacher is an upper bound the student should
    reach, not a target to copy, so entries where the student already beats the teacher add nothing.
    Per entry the loss is ``L(s, y)`` if ``|s - y| > |t - y| + margin`` and 0 otherwise, averaged over
    the observed entries (the denominator counts all of them, active or not). The comparison uses
    absolute errors so ``margin`` is in the data's units whatever ``kind`` is. Sign convention: Chen et
    al. write the condition as ``err_s + m > err_t``; our ``margin`` is their ``-m``, so a positive
    margin tolerates a student slightly worse than the teacher.
    """
    m = _mask_like(mask, student)
    teacher = teacher.detach().to(student.dtype)
    safe_y = torch.where(m, y.to(student.dtype), student.detach())
    with torch.no_grad():
        active = (student - safe_y).abs() > (teacher - safe_y).abs() + margin  # (B, H, N, F)
    per_entry = torch.where(active, _elementwise(student, safe_y, kind, delta), student.new_zeros(()))
    return _masked_mean(per_entry, m)


# ------------------------------------------------------------------- feature/relation KD
def hint_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
              projection: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Hint (feature) loss: ``MSE(projection(student_hidden), teacher_hidden)``.

    FitNets (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015): the student's intermediate
    representation, through a learned regressor, is made to predict the teacher's, which passes on how
    the teacher represents each node and not only its output. ``projection`` (e.g. ``nn.Linear(Ds, Dt)``,
    trained with the student) maps ``[B, N, Ds] -> [B, N, Dt]``; None means identity (Ds == Dt).
    """
    s = student_hidden if projection is None else projection(student_hidden)
    t = teacher_hidden.detach().to(s.dtype)
    if s.shape != t.shape:
        raise ValueError(f"projected student hidden {tuple(s.shape)} does not match teacher hidden "
                         f"{tuple(t.shape)}; give a projection from the student's to the teacher's width")
    return F.mse_loss(s, t)


def _cosine_gram(x: torch.Tensor) -> torch.Tensor:
    """Node-to-node cosine similarities: ``[..., N, D] -> [..., N, N]`` (zero rows give zero similarity)."""
    xn = F.normalize(x, dim=-1, eps=1e-8)
    return xn @ xn.transpose(-1, -2)


def relation_loss(student_repr: torch.Tensor, teacher_repr: torch.Tensor,
                  node_idx: torch.Tensor | None = None, max_nodes: int | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Relation loss: MSE between the student's and the teacher's node-to-node cosine-similarity matrices.

    Relational KD (Park et al., "Relational Knowledge Distillation", CVPR 2019) and similarity-preserving
    KD (Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019) transfer the structure of
    a representation rather than its values: here which nodes the teacher treats as alike, i.e. the
    spatial structure it learned from the graph. The two widths may differ (``[.., N, Ds]`` and
    ``[.., N, Dt]``, with or without a batch axis) because only ``[.., N, N]`` matrices are compared.

    The cost is O(N^2); ``node_idx`` (a 1-D index tensor) restricts both to a subset of nodes, and
    ``max_nodes`` draws a random subset of that size (with ``generator``) when N is larger and no
    ``node_idx`` is given.
    """
    if student_repr.shape[:-1] != teacher_repr.shape[:-1]:
        raise ValueError(f"student {tuple(student_repr.shape)} and teacher {tuple(teacher_repr.shape)} "
                         "representations must agree on all but the last (feature) axis")
    n = student_repr.shape[-2]
    if node_idx is None and max_nodes is not None and n > max_nodes:
        node_idx = torch.randperm(n, generator=generator)[:max_nodes]
    if node_idx is not None:
        node_idx = node_idx.to(student_repr.device)
        student_repr = student_repr.index_select(-2, node_idx)
        teacher_repr = teacher_repr.index_select(-2, node_idx.to(teacher_repr.device))
    gs = _cosine_gram(student_repr)  # (.., n, n)
    gt = _cosine_gram(teacher_repr.detach().to(student_repr.dtype))
    return F.mse_loss(gs, gt)


# ------------------------------------------------------------------- multi-scale and periods
def multiscale_loss(student: torch.Tensor, teacher: torch.Tensor, scales: Sequence[int] = (2, 4),
                    kind: str = "huber", delta: float = 1.0) -> torch.Tensor:
    """Match the teacher's forecast at coarser time scales: the mean over ``scales`` of
    ``L(avgpool_k(student), avgpool_k(teacher))`` along the horizon axis (axis 1 of ``[B, H, N, F]``).

    After TimeDistill's multi-scale distillation (Ni et al., "TimeDistill: Efficient Long-Term Time Series
    Forecasting with MLP via Cross-Architecture Distillation", 2025): the teacher's trend over 2, 4, ...
    steps is a smoother target than its step-by-step values, and what a small student gets right first.
    A scale larger than H pools the whole horizon; the last window of a horizon not divisible by k is
    dropped (``avg_pool1d`` floor mode). Scale 1 is the response term already.
    """
    t = teacher.detach().to(student.dtype)

    def pool(x: torch.Tensor, k: int) -> torch.Tensor:  # [B, H, N, F] -> [B*N*F, 1, H // k]
        return F.avg_pool1d(x.movedim(1, -1).flatten(0, -2).unsqueeze(1), k, k)

    terms = []
    for k in scales:
        k = max(1, min(int(k), student.shape[1]))
        terms.append(_elementwise(pool(student, k), pool(t, k), kind, delta).mean())
    return torch.stack(terms).mean()


def period_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Match the teacher's distribution over periods: ``T^2 * KL(softmax(|rfft(t)| / T) || softmax(|rfft(s)| / T))``
    over the horizon axis, per series, DC component left out, mean over series.

    TimeDistill's multi-period distillation (Ni et al., 2025): the amplitude spectrum of a forecast says
    which periods carry it; as a distribution over frequencies (softmax at temperature T, as in Hinton's
    soft targets) it is a target free of the forecast's level, so a student learns the teacher's shape
    of the coming hour even where its level is off. Needs H >= 3 (at least one non-DC frequency).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student.shape[1] < 3:
        raise ValueError(f"period_loss needs a horizon of at least 3 steps, got {student.shape[1]}")
    amp_s = torch.fft.rfft(student.float(), dim=1).abs()[:, 1:]  # [B, H//2, N, F] without DC
    amp_t = torch.fft.rfft(teacher.detach().float(), dim=1).abs()[:, 1:]
    log_s = F.log_softmax(amp_s / temperature, dim=1)
    p_t = F.softmax(amp_t / temperature, dim=1)
    kl = (torch.special.xlogy(p_t, p_t) - p_t * log_s).sum(dim=1)  # [B, N, F]
    return (temperature ** 2 * kl.mean()).to(student.dtype)


# ----------------------------------------------------------------------------- event KD
def kd_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """Soft-target loss ``T^2 * KL(softmax(t / T) || softmax(s / T))``, mean over masked positions.

    Hinton et al., "Distilling the Knowledge in a Neural Network" (2015): a temperature T > 1 softens the
    teacher's distribution so the relative probabilities of the wrong classes (how close a near-miss was)
    carry information; the T^2 factor keeps the gradient's scale independent of T, so alpha means the
    same at any temperature. Logits ``[..., K]``, mask ``[...]``. A teacher that outputs probabilities
    (e.g. a forecaster's event probabilities) can pass their logarithms as ``teacher_logits``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_s = F.log_softmax(student_logits / temperature, dim=-1)  # (..., K)
    p_t = F.softmax(teacher_logits.detach().to(log_s.dtype) / temperature, dim=-1)  # (..., K)
    kl = (torch.special.xlogy(p_t, p_t) - p_t * log_s).sum(dim=-1)  # (...); 0 log 0 = 0
    return temperature ** 2 * _masked_mean(kl, _mask_like(mask, kl))


def _safe_labels(labels: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Labels with masked-out positions set to class 0 (they may hold -1 or garbage)."""
    return torch.where(m, labels.long(), torch.zeros((), dtype=torch.long, device=labels.device))


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None,
                           class_weights: torch.Tensor | Sequence[float] | None = None) -> torch.Tensor:
    """Cross-entropy with optional class weights, a weighted mean over masked positions.

    Rare events are under-fitted by plain CE; weighting class k by w_k (e.g. inverse frequency; King &
    Zeng, "Logistic Regression in Rare Events Data", 2001) rebalances them. The mean is
    ``sum(w_y * CE) / sum(w_y)``, torch's convention, so it equals ``F.cross_entropy(weight=w)``.
    Logits ``[..., K]``, labels and mask ``[...]``; 0 when nothing is masked in.
    """
    return focal_loss(logits, labels, mask, gamma=0.0, class_weights=class_weights)


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None,
               gamma: float = 2.0, class_weights: torch.Tensor | Sequence[float] | None = None) -> torch.Tensor:
    """Focal loss ``-w_y (1 - p_y)^gamma log p_y``, a weighted mean over masked positions.

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017: the factor ``(1 - p_y)^gamma``
    down-weights the many easy (non-event) examples so training attends to the rare hard ones; the class
    weights play the role of their alpha_t. Normalised like :func:`weighted_cross_entropy` (which it
    equals at gamma = 0). Logits ``[..., K]``, labels and mask ``[...]``.
    """
    m = _mask_like(mask, labels)
    y = _safe_labels(labels, m)
    log_p = F.log_softmax(logits, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)  # (...)
    per = -log_p if gamma == 0 else -((1.0 - log_p.exp()) ** gamma) * log_p
    w = None
    if class_weights is not None:
        cw = torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
        if cw.shape != (logits.shape[-1],):
            raise ValueError(f"class_weights must have one weight per class ({logits.shape[-1]}), "
                             f"got {tuple(cw.shape)}")
        w = cw[y]
    return _masked_mean(per, m, w)


def event_kd_loss(student_logits: torch.Tensor, hard_labels: torch.Tensor, mask: torch.Tensor | None,
                  teacher_logits: torch.Tensor, alpha: float, temperature: float,
                  class_weights: torch.Tensor | Sequence[float] | None = None,
                  focal_gamma: float = 0.0) -> torch.Tensor:
    """Classic KD for event labels: ``alpha * CE(s, hard) + (1 - alpha) * T^2 * KL(soft_T(t) || soft_T(s))``.

    Hinton et al., "Distilling the Knowledge in a Neural Network" (2015). The hard term is
    :func:`weighted_cross_entropy` (class weights) or, with ``focal_gamma > 0``, :func:`focal_loss`
    (Lin et al. 2017): events are rare. Both terms are means over masked positions; a term whose weight
    is 0 is not computed. Logits ``[..., K]`` (binary: K = 2), labels and mask ``[...]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    total = student_logits.new_zeros(())
    if alpha > 0:
        total = total + alpha * focal_loss(student_logits, hard_labels, mask, focal_gamma, class_weights)
    if alpha < 1:
        total = total + (1.0 - alpha) * kd_kl_loss(student_logits, teacher_logits, temperature, mask)
    return total


# -------------------------------------------------------------------------- several teachers
def ensemble_targets(preds: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> torch.Tensor:
    """Soft targets from several teachers: their mean, or a weighted mean (weights normalised to sum 1).

    Averaging teachers reduces the variance of the soft targets (ensemble distillation: Hinton et al.
    2015, section 2; You et al., "Learning from Multiple Teacher Networks", KDD 2017). All ``preds``
    share one shape; the result has it too and is detached.
    """
    if len(preds) == 0:
        raise ValueError("ensemble_targets needs at least one prediction")
    stacked = torch.stack([p.detach() for p in preds])  # (T, ...)
    if weights is None:
        return stacked.mean(dim=0)
    w = torch.as_tensor(list(weights), dtype=stacked.dtype, device=stacked.device)
    if w.shape != (len(preds),) or bool((w < 0).any()) or not bool(torch.isfinite(w).all()) or float(w.sum()) <= 0:
        raise ValueError(f"weights must be {len(preds)} finite non-negative numbers with a positive sum, "
                         f"got {list(weights)}")
    w = (w / w.sum()).reshape(-1, *([1] * (stacked.dim() - 1)))
    return (w * stacked).sum(dim=0)


def inverse_error_weights(val_errors: Sequence[float]) -> list[float]:
    """Teacher weights proportional to 1 / validation error, normalised to sum 1.

    The better a teacher did on validation data, the more its forecast counts. A teacher with zero
    error takes all the weight (shared with any other zero-error teacher); a non-finite error (a teacher
    that failed) gets weight 0. Negative errors, or no finite error at all, are a ValueError.
    """
    errs = [float(e) for e in val_errors]
    if not errs:
        raise ValueError("inverse_error_weights needs at least one error")
    if any(e < 0 for e in errs):
        raise ValueError(f"validation errors must be >= 0, got {errs}")
    finite = [e == e and e != float("inf") for e in errs]
    if not any(finite):
        raise ValueError(f"no finite validation error among {errs}")
    if any(f and e == 0 for f, e in zip(finite, errs)):
        raw = [1.0 if (f and e == 0) else 0.0 for f, e in zip(finite, errs)]
    else:
        raw = [1.0 / e if f else 0.0 for f, e in zip(finite, errs)]
    s = sum(raw)
    return [r / s for r in raw]
