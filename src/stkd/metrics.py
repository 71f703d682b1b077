"""Evaluation metrics: masked regression metrics for forecasts, and classification metrics for events.

Regression metrics (``mae``, ``rmse``, ``mse``, ``mape``) take ``(pred, y, mask)`` and dispatch on the
array type, as tsl's twins do but with one name: numpy in, Python ``float`` out; a torch tensor in (any
argument), a 0-dim tensor out on the same device (differentiable, usable in a validation step).
Only observed entries count: ``mask`` True, ``y`` finite, and ``y != null_value`` when a sentinel is
given (BasicTS's ``null_val``; e.g. 0 for METR-LA speeds). Nothing observed gives NaN, never 0 (a
model that was never scored has no error, not zero error) and never an exception.

MAPE is in percent and skips entries with ``|y| < mape_eps``: on zero targets (empty roads, closed
sensors, no pedestrians at night) the percentage error is undefined, and a single one used to make
the whole number ``inf`` in many codebases.

``forecast_metrics`` returns the ``test`` block of ``metrics.json`` (see ``DESIGN.md``): the average
over every horizon step's observed entries, and the same metrics *at* chosen horizons named by their
1-indexed step ("3" is the third step ahead, index 2). It is built on :class:`ForecastAccumulator`,
which sums errors per (step, node) in float64 batch by batch so a 20,000-node test set never has to
be held in memory at once.

Classification metrics (event tasks) use scikit-learn where it already does the job (AUROC, average
precision, confusion matrix, precision/recall/F1); the expected calibration error and the decision
threshold search are written here.
"""

from __future__ import annotations

import math
from typing import Any, Sequence, cast, overload

import numpy as np
import torch

__all__ = [
    "mae",
    "mse",
    "rmse",
    "mape",
    "observed",
    "ForecastAccumulator",
    "forecast_metrics",
    "classification_metrics",
    "expected_calibration_error",
    "best_threshold",
]

DEFAULT_MAPE_EPS = 1e-4


# ------------------------------------------------------------------ regression: elementwise
def _any_torch(*xs) -> bool:
    return any(isinstance(x, torch.Tensor) for x in xs)


def _as_torch(x, like: torch.Tensor) -> torch.Tensor | None:
    if x is None or isinstance(x, torch.Tensor):
        return x if x is None else x.to(like.device)
    return torch.as_tensor(np.asarray(x), device=like.device)


@overload
def _as_numpy(x: None) -> None: ...
@overload
def _as_numpy(x: Any) -> np.ndarray: ...
def _as_numpy(x) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype in (torch.bfloat16, torch.float16) else x).numpy()
    return np.asarray(x)


def _prepare(pred, y, mask):
    """Bring all arguments to one backend (torch if any of them is a tensor) and check shapes."""
    if _any_torch(pred, y, mask):
        ref = next(x for x in (pred, y, mask) if isinstance(x, torch.Tensor))
        pred, y, mask = (_as_torch(v, ref) for v in (pred, y, mask))
        if not torch.is_floating_point(pred):
            pred = pred.float()
        if not torch.is_floating_point(y):
            y = y.to(pred.dtype)
    else:
        pred, y, mask = (_as_numpy(v) for v in (pred, y, mask))
        pred = pred.astype(np.float64, copy=False)
        y = y.astype(np.float64, copy=False)
    if tuple(pred.shape) != tuple(y.shape):
        raise ValueError(f"pred and y must have the same shape, got {tuple(pred.shape)} and {tuple(y.shape)}")
    return pred, y, mask


def observed(y, mask=None, null_value: float | None = None):
    """Boolean array (numpy or torch, like ``y``) of the entries that are scored.

    True where ``mask`` is True (broadcast to ``y``'s shape), ``y`` is finite, and ``y`` is not the
    ``null_value`` sentinel (NaN as sentinel is already covered by the finiteness check).
    """
    if isinstance(y, torch.Tensor):
        valid = torch.isfinite(y)
        if mask is not None:
            valid = valid & _as_torch(mask, y).to(torch.bool)  # type: ignore[union-attr]
        if null_value is not None and not math.isnan(null_value):
            valid = valid & ((y - null_value).abs() > 1e-8)
        return valid
    y = np.asarray(y)
    valid = np.isfinite(y)
    if mask is not None:
        valid = valid & np.asarray(mask, dtype=bool)
    if null_value is not None and not math.isnan(null_value):
        valid = valid & (np.abs(y - null_value) > 1e-8)
    return valid


def _masked_mean(values, valid):
    """Mean of ``values`` over ``valid``; NaN when nothing is valid. Same backend in and out."""
    if isinstance(values, torch.Tensor):
        total = torch.where(valid, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum()
        return total / valid.sum()  # 0 / 0 = NaN when nothing is observed
    n = int(valid.sum())
    if n == 0:
        return float("nan")
    return float(np.where(valid, values, 0.0).sum() / n)


def mae(pred, y, mask=None, null_value: float | None = None):
    """Mean absolute error over observed entries (numpy -> float, torch -> 0-dim tensor; NaN if none)."""
    pred, y, mask = _prepare(pred, y, mask)
    return _masked_mean(abs(pred - y), observed(y, mask, null_value))


def mse(pred, y, mask=None, null_value: float | None = None):
    """Mean squared error over observed entries (numpy -> float, torch -> 0-dim tensor; NaN if none)."""
    pred, y, mask = _prepare(pred, y, mask)
    return _masked_mean((pred - y) ** 2, observed(y, mask, null_value))


def rmse(pred, y, mask=None, null_value: float | None = None):
    """Root of the mean squared error over observed entries (the root of the pooled mean, not a mean of roots)."""
    m = mse(pred, y, mask, null_value)
    return m.sqrt() if isinstance(m, torch.Tensor) else math.sqrt(m)  # sqrt(NaN) is NaN


def mape(pred, y, mask=None, null_value: float | None = None, eps: float = DEFAULT_MAPE_EPS):
    """Mean absolute percentage error **in percent** over observed entries with ``|y| >= eps``.

    Entries whose target is (near) zero are left out rather than divided by, so MAPE is never inf;
    when no entry is left the result is NaN.
    """
    pred, y, mask = _prepare(pred, y, mask)
    valid = observed(y, mask, null_value) & (abs(y) >= eps)
    denom: Any
    if isinstance(y, torch.Tensor):
        denom = torch.where(valid, y.abs(), torch.ones((), dtype=y.dtype, device=y.device))
    else:
        denom = np.where(valid, np.abs(y), 1.0)
    return _masked_mean(100.0 * abs(pred - y) / denom, valid)


# ---------------------------------------------------------------- regression: accumulation
def _nan_div(num: np.ndarray | float, den: np.ndarray | float):
    """num / den with NaN (not inf, not a warning) where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


class ForecastAccumulator:
    """Streams batches of forecasts and sums their errors per (horizon step, node) in float64.

    ``update(pred, y, mask)`` takes ``[B, H, N, F]`` arrays (numpy or torch, original units); features
    are pooled. Memory is O(H * N) whatever the size of the test set. ``horizon`` and ``num_nodes``
    are optional (then the first batch sets them; later batches must agree). ``compute(horizons)`` gives the
    same dict as :func:`forecast_metrics`; two accumulators (e.g. from two DDP ranks) combine with
    :meth:`merge`.
    """

    def __init__(self, horizon: int | None = None, num_nodes: int | None = None, *,
                 null_value: float | None = None, mape_eps: float = DEFAULT_MAPE_EPS):
        self.null_value = null_value
        self.mape_eps = mape_eps
        self.abs_sum = self.sq_sum = self.count = self.ape_sum = self.ape_count = cast(Any, None)  # each [H, N]
        if horizon is not None and num_nodes is not None:  # else sized by the first batch
            self._init(int(horizon), int(num_nodes))

    def _init(self, H: int, N: int) -> None:
        self.abs_sum = np.zeros((H, N))
        self.sq_sum = np.zeros((H, N))
        self.ape_sum = np.zeros((H, N))
        self.count = np.zeros((H, N), dtype=np.int64)
        self.ape_count = np.zeros((H, N), dtype=np.int64)

    def update(self, pred, y, mask=None) -> "ForecastAccumulator":
        pred, y, mask = (_as_numpy(v) for v in (pred, y, mask))
        if pred.ndim != 4 or pred.shape != y.shape:
            raise ValueError(f"pred and y must both be [B, H, N, F], got {pred.shape} and {y.shape}")
        B, H, N, F = pred.shape
        if self.count is None:
            self._init(H, N)
        elif self.count.shape != (H, N):
            raise ValueError(f"batch has (H, N) = {(H, N)}, earlier batches had {self.count.shape}")
        valid = observed(y, None if mask is None else np.broadcast_to(mask, y.shape), self.null_value)
        err = np.where(valid, np.abs(pred - y), 0.0)  # (B, H, N, F), input precision
        self.abs_sum += err.sum(axis=(0, 3), dtype=np.float64)
        self.sq_sum += np.square(err, dtype=np.float64).sum(axis=(0, 3))
        self.count += valid.sum(axis=(0, 3))
        valid_m = valid & (np.abs(y) >= self.mape_eps)
        ape = np.where(valid_m, err / np.where(valid_m, np.abs(y), 1.0), 0.0)
        self.ape_sum += 100.0 * ape.sum(axis=(0, 3), dtype=np.float64)
        self.ape_count += valid_m.sum(axis=(0, 3))
        return self

    def merge(self, other: "ForecastAccumulator") -> "ForecastAccumulator":
        """Add another accumulator's sums to this one (same H and N)."""
        if other.count is None:
            return self
        if self.count is None:
            self._init(*other.count.shape)
        for name in ("abs_sum", "sq_sum", "count", "ape_sum", "ape_count"):
            getattr(self, name).__iadd__(getattr(other, name))
        return self

    @staticmethod
    def _block(abs_s, sq_s, n, ape_s, ape_n) -> dict[str, float]:
        return {"mae": float(_nan_div(abs_s, n)), "rmse": float(np.sqrt(_nan_div(sq_s, n))),
                "mape": float(_nan_div(ape_s, ape_n))}

    def compute(self, horizons: Sequence[int] = (3, 6, 12)) -> dict[str, Any]:
        """The ``test`` block of metrics.json: averaged metrics, ``horizons``, ``per_step``, ``per_node_mae``."""
        if self.count is None:
            raise ValueError("no batch was added to the accumulator")
        H = self.count.shape[0]
        for h in horizons:
            if not 1 <= int(h) <= H:
                raise ValueError(f"horizon {h} is outside 1..{H} (horizons are 1-indexed steps ahead)")
        sums = (self.abs_sum, self.sq_sum, self.count, self.ape_sum, self.ape_count)
        per_step_sums = [s.sum(axis=1) for s in sums]  # each (H,)
        out: dict[str, Any] = self._block(*(s.sum() for s in per_step_sums))
        per_step = [self._block(*(s[h] for s in per_step_sums)) for h in range(H)]
        out["horizons"] = {str(int(h)): dict(per_step[int(h) - 1]) for h in horizons}
        out["per_step"] = per_step
        out["per_node_mae"] = [float(v) for v in _nan_div(self.abs_sum.sum(axis=0), self.count.sum(axis=0))]
        return out


def forecast_metrics(pred, y, mask=None, horizons: Sequence[int] = (3, 6, 12),
                     null_value: float | None = None, mape_eps: float = DEFAULT_MAPE_EPS) -> dict[str, Any]:
    """Forecast metrics in the ``metrics.json`` ``test`` layout.

    ``pred``, ``y``, ``mask``: ``[W, H, N, F]`` (windows, horizon steps, nodes, features), original units.
    Returns ``{"mae", "rmse", "mape", "horizons": {"3": {...}, "6": {...}, "12": {...}}, "per_step":
    [{mae, rmse, mape} for steps 1..H], "per_node_mae": [N floats]}``. The top-level numbers are
    averaged over all horizon steps' observed entries pooled together (so RMSE is the root of the pooled
    mean square, not the mean of per-step RMSEs); ``horizons`` holds the metrics *at* each 1-indexed step
    (key "3" = the third step ahead = index 2). MAPE is in percent, over entries with ``|y| >= mape_eps``.
    Anything with no observed entry is NaN (write metrics.json with a JSON encoder that allows NaN,
    or map NaN to null).
    """
    return ForecastAccumulator(null_value=null_value, mape_eps=mape_eps).update(pred, y, mask).compute(horizons)


# ------------------------------------------------------------------------- classification
def _flatten_cls(prob, y_true, mask):
    """To ``prob [M, K]`` (binary given as ``[M]`` becomes ``[M, 2]``), ``y [M]`` int, after masking.

    ``prob`` has the shape of ``y_true`` (binary: probability of class 1) or that plus a trailing
    class axis ``K``; leading axes (batch, horizon, node) are flattened.
    """
    prob = _as_numpy(prob).astype(np.float64, copy=False)
    y = _as_numpy(y_true)
    y_shape = y.shape
    if prob.shape == y.shape:
        p1 = prob.reshape(-1)
        prob = np.stack([1.0 - p1, p1], axis=1)
        binary = True
    elif prob.ndim == y.ndim + 1 and prob.shape[:-1] == y.shape:
        prob = prob.reshape(-1, prob.shape[-1])
        binary = prob.shape[1] == 2
    else:
        raise ValueError(f"prob must have y's shape {y.shape} (binary) or that plus a class axis, got {prob.shape}")
    y = y.reshape(-1)
    if mask is not None:
        keep = np.broadcast_to(_as_numpy(mask).astype(bool), y_shape).reshape(-1)
        prob, y = prob[keep], y[keep]
    if y.size and (np.any(y != np.round(y)) or y.min() < 0 or y.max() >= prob.shape[1]):
        raise ValueError(f"labels must be integers in 0..{prob.shape[1] - 1}")
    return prob, y.astype(np.int64), binary


def _decided(prob: np.ndarray, binary: bool, threshold: float) -> np.ndarray:
    """``[M]`` the class decided from ``prob [M, K]``: binary ``p >= threshold``, else the arg-max."""
    return (prob[:, 1] >= threshold).astype(np.int64) if binary else prob.argmax(axis=1)


def class_agreement(prob_a, threshold_a: float, prob_b, threshold_b: float, y_true, mask=None) -> float:
    """The share of the scored targets (``mask``; ``y_true`` gives their shape) where two classifiers decide the
    same class, each by its own rule (:func:`classification_metrics`' ``threshold``): how closely a student
    follows its teacher's decisions, right or wrong. NaN with no target."""
    a, _, binary = _flatten_cls(prob_a, y_true, mask)
    b, _, _ = _flatten_cls(prob_b, y_true, mask)
    if not len(a):
        return float("nan")
    return float(np.mean(_decided(a, binary, threshold_a) == _decided(b, binary, threshold_b)))


def probability_gap(prob_a, prob_b, y_true, mask=None) -> float:
    """The mean total-variation distance between two classifiers' class probabilities over the scored targets
    (``mask``; ``y_true`` gives their shape): ``0.5 * sum_k |a_k - b_k|``, for two classes ``|p_a - p_b|`` of
    the event. 0 where they give the same probabilities, 1 where they are sure of different classes.

    Why beside :func:`class_agreement`: a distilled event student learns the teacher's probabilities, not its
    decisions, and each decides at its own validation threshold. Two models can disagree on a borderline window
    while their probabilities are close, or agree while they are far apart; this measures what was taught.
    NaN with no target."""
    a, _, _ = _flatten_cls(prob_a, y_true, mask)
    b, _, _ = _flatten_cls(prob_b, y_true, mask)
    if not len(a):
        return float("nan")
    return float(0.5 * np.abs(a - b).sum(axis=1).mean())  # a, b: [M, K]


def expected_calibration_error(prob, y_true, mask=None, n_bins: int = 10) -> float:
    """Expected calibration error (Guo et al., ICML 2017, "On Calibration of Modern Neural Networks").

    The confidence of a prediction is its largest class probability (binary: ``max(p, 1 - p)``); the
    predictions are put in ``n_bins`` equal-width bins ``((b-1)/n, b/n]`` of confidence, and
    ``ECE = sum_b (n_b / n) * |accuracy_b - mean confidence_b|``. An alarm that says 90 % should be
    right 9 times in 10; ECE measures how far off that is. NaN with no sample.
    """
    prob, y, _ = _flatten_cls(prob, y_true, mask)
    return _ece(prob, y, n_bins)


def _ece(prob: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    if y.size == 0:
        return float("nan")
    conf = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.searchsorted(edges[1:], conf, side="left"), 0, n_bins - 1)  # conf in (lo, hi]
    gap = np.abs(np.bincount(b, correct, n_bins) - np.bincount(b, conf, n_bins))  # n_b * |acc_b - conf_b|
    return float(gap.sum() / y.size)


def classification_metrics(prob, y_true, threshold: float = 0.5, mask=None, n_bins: int = 10) -> dict[str, Any]:
    """Event-detection metrics, the ``test`` block of a ``task: classify`` metrics.json.

    ``prob``: probabilities, ``[M]`` (binary, probability of the positive class) or ``[M, K]``; leading
    axes beyond M are flattened (e.g. ``[B, H, N, K]`` with ``y_true [B, H, N]``). ``y_true``: int labels.
    ``threshold``: binary decision rule ``p >= threshold`` (choose it on validation data with
    :func:`best_threshold`); with K > 2 the prediction is the arg-max.

    Returns accuracy; precision, recall, f1 (binary: of the positive class, the rare event that
    matters; K > 2: macro averages) and ``f1_macro``; ``per_class`` precision/recall/f1/support lists;
    auroc (K > 2: macro one-vs-rest over classes that have both positives and negatives; NaN when
    only one class is present); average_precision (same averaging); ``confusion_matrix`` (rows =
    truth, columns = prediction, list of lists); ``ece`` (:func:`expected_calibration_error`);
    ``threshold`` (binary only) and ``n``.
    """
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    prob, y, binary = _flatten_cls(prob, y_true, mask)
    K = prob.shape[1]
    labels = list(range(K))
    nan = float("nan")
    pred = _decided(prob, binary, threshold)
    out: dict[str, Any] = {"n": int(y.size)}
    if y.size == 0:
        out.update(accuracy=nan, precision=nan, recall=nan, f1=nan, f1_macro=nan, auroc=nan,
                   average_precision=nan, ece=nan, confusion_matrix=np.zeros((K, K), int).tolist(),
                   per_class={"precision": [nan] * K, "recall": [nan] * K, "f1": [nan] * K, "support": [0] * K})
        if binary:
            out["threshold"] = float(threshold)
        return out
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, average=None, zero_division=0)
    out["accuracy"] = float(np.mean(pred == y))
    if binary:
        out["precision"], out["recall"], out["f1"] = float(p[1]), float(r[1]), float(f[1])
    else:
        out["precision"], out["recall"], out["f1"] = float(p.mean()), float(r.mean()), float(f.mean())
    out["f1_macro"] = float(f.mean())
    out["per_class"] = {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
                        "support": [int(v) for v in s]}
    if binary:
        both = 0 < y.sum() < y.size
        out["auroc"] = float(roc_auc_score(y, prob[:, 1])) if both else nan
        out["average_precision"] = float(average_precision_score(y, prob[:, 1])) if y.sum() > 0 else nan
    else:
        aucs, aps = [], []
        for k in labels:  # one-vs-rest, as sklearn's multi_class="ovr", average="macro"
            yk = (y == k).astype(np.int64)
            if 0 < yk.sum() < yk.size:
                aucs.append(roc_auc_score(yk, prob[:, k]))
            if yk.sum() > 0:
                aps.append(average_precision_score(yk, prob[:, k]))
        out["auroc"] = float(np.mean(aucs)) if aucs else nan
        out["average_precision"] = float(np.mean(aps)) if aps else nan
    out["confusion_matrix"] = confusion_matrix(y, pred, labels=labels).tolist()
    out["ece"] = _ece(prob, y, n_bins)
    if binary:
        out["threshold"] = float(threshold)
    return out


def best_threshold(prob, y_true, metric: str = "f1", mask=None) -> tuple[float, float]:
    """Decision threshold for a binary event that maximises ``metric`` on (validation) data.

    Events are rare, so the default 0.5 is seldom the best cut-off; choose it on validation data, never
    on the test split. ``metric``: ``"f1"`` (of the positive class), ``"accuracy"`` or
    ``"balanced_accuracy"``. Every distinct cut between the sorted probabilities is tried (O(M log M));
    the returned threshold lies midway between the two probabilities the best cut separates, so
    ``p >= threshold`` reproduces the best split on these data and is not tied to one sample.
    Returns ``(threshold, best metric value)``; ties go to the highest threshold (fewest alarms).
    """
    prob, y, binary = _flatten_cls(prob, y_true, mask)
    if not binary:
        raise ValueError("best_threshold is for binary events (prob [M] or [M, 2])")
    if metric not in ("f1", "accuracy", "balanced_accuracy"):
        raise ValueError(f"metric {metric!r} is not one of f1, accuracy, balanced_accuracy")
    if y.size == 0:
        raise ValueError("best_threshold needs at least one sample")
    p = prob[:, 1]
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    last = np.r_[np.nonzero(np.diff(p_sorted))[0], p.size - 1]  # last index of each distinct value
    tp = np.r_[0, np.cumsum(y_sorted)[last]].astype(np.float64)  # cut c: predict positive the top c groups
    fp = np.r_[0, (last + 1)] - tp
    pos, neg = float(y.sum()), float(y.size - y.sum())
    fn, tn = pos - tp, neg - fp
    if metric == "f1":
        score = _nan_div(2 * tp, 2 * tp + fp + fn)
        score = np.nan_to_num(score, nan=0.0)
    elif metric == "accuracy":
        score = (tp + tn) / y.size
    else:
        tpr = tp / pos if pos else np.zeros_like(tp)
        tnr = tn / neg if neg else np.zeros_like(tn)
        score = 0.5 * (tpr + tnr) if pos and neg else tpr + tnr
    best = int(np.argmax(score))
    values = p_sorted[last]  # distinct probabilities, descending
    if best == 0:  # predict nothing positive
        threshold = float(np.nextafter(values[0], np.inf))
    elif best == len(values):  # everything positive
        threshold = float(values[-1])
    else:
        threshold = float(0.5 * (values[best - 1] + values[best]))
        if threshold <= values[best]:  # adjacent floats: the midpoint rounded down onto the negative side
            threshold = float(values[best - 1])
    return threshold, float(score[best])
