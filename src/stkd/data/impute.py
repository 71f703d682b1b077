"""Filling missing *inputs* so a model never sees NaN; targets are never imputed (the mask says what to score).

All filling happens in ORIGINAL units, before scaling, and every statistic comes from the train part
``[0, train_end)`` only, so nothing of the validation or test period leaks into the inputs:

- ``"ffill"``: the last observed value of the same node and feature (causal: it only looks back).
  Leading gaps (before the first observation) get the seasonal mean of their slot when ``period`` is
  given, else the train mean.
- ``"seasonal"``: the train mean of the same slot ``t % period`` (``period`` = steps per week gives
  the time-of-week profile). Without a period this is the train mean.
- ``"none"``: no model of the gap at all: the train mean of that node and feature. After a per-node
  z-score that is exactly 0, the usual "NaN -> 0 after scaling".

Whatever is left after the method (a slot never observed in train, a node with no train data) gets
the node's train mean, then the feature's train mean over all nodes, then 0. The result is float32
with no NaN. Work is vectorised over nodes and chunked over time (gathers touch only the gaps), so a
year of 20,000 sensors needs only chunk-sized scratch memory next to the output (none with
``inplace=True``) plus, for seasonal means, ``[period, N, F]`` accumulators.
"""

from __future__ import annotations

import numpy as np

from stkd import names
from stkd.data.scalers import _CHUNK_ELEMS, observed_stats, pool_nodes
from stkd.errors import ConfigError, DataError

METHODS = names.IMPUTE_METHODS


def train_means(values: np.ndarray, mask: np.ndarray, train_end: int) -> np.ndarray:
    """``[N, F]`` float32 mean of observed train values per node and feature, with the fallbacks.

    A node never observed in train gets the feature's mean over all nodes; a feature never observed
    at all gets 0 (which is what a scaler fitted on the same slice maps to its center too).
    """
    stats = observed_stats(values[:train_end], mask[:train_end], extremes=False)
    pooled = pool_nodes(stats)
    g = np.where(pooled["count"] > 0, pooled["mean"], 0.0)  # [1, F]
    return np.where(stats["count"] > 0, stats["mean"], g).astype(np.float32)


def seasonal_means(values: np.ndarray, mask: np.ndarray, period: int, train_end: int,
                   fallback: np.ndarray) -> np.ndarray:
    """``[period, N, F]`` float32 train mean per slot ``t % period``; unseen slots take ``fallback [N, F]``.

    Sums are accumulated one period (e.g. one week) at a time: a loop over weeks, not over nodes.
    """
    shape = (period,) + values.shape[1:]
    total = np.zeros(shape, np.float64)
    count = np.zeros(shape, np.int32)
    for t0 in range(0, train_end, period):
        t1 = min(t0 + period, train_end)
        m = mask[t0:t1]
        total[: t1 - t0] += np.where(m, values[t0:t1], 0.0)
        count[: t1 - t0] += m
    means = np.divide(total, count, out=np.zeros(shape), where=count > 0)
    return np.where(count > 0, means, fallback[None]).astype(np.float32)


def _ffill_chunk(blk: np.ndarray, mb: np.ndarray, gaps: np.ndarray, carry: np.ndarray) -> np.ndarray:
    """Forward fill the ``gaps`` (flat indices) of one time chunk ``blk [t, W]`` in place.

    The last observed row of each column is a running maximum of ``where(mb, row, -1)``; only the
    gaps are gathered (O(missing)), and a gap with no observation earlier in the chunk takes
    ``carry [W]``, the filled last row of the previous chunk (NaN while a column has not been observed
    yet). Returns the gaps still NaN: the leading ones.
    """
    t, W = blk.shape
    last = np.where(mb, np.arange(t, dtype=np.int32)[:, None], np.int32(-1))  # [t, W]
    np.maximum.accumulate(last, axis=0, out=last)
    src = last.reshape(-1)[gaps]
    del last
    col = gaps % W
    flat = blk.reshape(-1)  # a view: blk is a contiguous row range
    vals = np.where(src >= 0, flat[np.maximum(src, 0).astype(np.int64) * W + col], carry[col])
    flat[gaps] = vals
    return gaps[np.isnan(vals)]


def fill_inputs(values: np.ndarray, mask: np.ndarray, method: str = "ffill", period: int | None = None,
                train_end: int | None = None, inplace: bool = False) -> np.ndarray:
    """Fill entries where ``mask`` is False; return float32 ``[T, N, F]`` without NaN.

    Args:
        values: ``[T, N, F]`` in original units (NaN or anything where missing; the mask decides).
        mask: ``[T, N, F]`` bool, True where observed. Observed entries are never changed.
        method: ``"ffill"``, ``"seasonal"`` or ``"none"`` (see the module docstring).
        period: steps per season (per week for a time-of-week profile); ``None`` disables the
            seasonal means (then ``"seasonal"`` falls back to the train mean).
        train_end: the end of the train part; statistics use ``[0, train_end)`` only. ``None`` means
            the whole series; pass the split boundary whenever a split exists, or the fill leaks.
        inplace: fill ``values`` itself (it must be a C-contiguous float32 array) instead of a copy,
            to save a full copy of the data.
    """
    if method not in METHODS:
        raise ConfigError(f"data.impute: {method!r} is not one of {', '.join(METHODS)}")
    values = values if inplace else np.asarray(values)
    mask = np.asarray(mask, dtype=bool)
    if values.ndim != 3 or mask.shape != values.shape:
        raise DataError(f"fill_inputs: values and mask must both be [T, N, F], got {values.shape} and {mask.shape}")
    T = values.shape[0]
    train_end = T if train_end is None else int(train_end)
    if not 0 <= train_end <= T:
        raise DataError(f"fill_inputs: train_end must lie in [0, {T}], got {train_end}")
    if period is not None and period < 1:
        raise ConfigError(f"fill_inputs: period must be >= 1 step, got {period}")
    if inplace:
        if values.dtype != np.float32 or not values.flags.c_contiguous or not values.flags.writeable:
            raise DataError("fill_inputs(inplace=True): values must be a writeable C-contiguous float32 array")
        out = values
    else:
        out = np.array(values, dtype=np.float32, order="C", copy=True)
    if mask.all():
        return out

    means = train_means(out, mask, train_end).reshape(-1)  # [N*F]; before any filling touches out
    slots = None
    # ffill needs slot means only for leading gaps, and there are some iff a column is missing at t = 0
    if period is not None and (method == "seasonal" or (method == "ffill" and not mask[0].all())):
        slots = seasonal_means(out, mask, period, train_end, means.reshape(out.shape[1:]))
        slots = slots.reshape(period, -1)  # [period, N*F]

    W = int(np.prod(out.shape[1:]))
    flat2 = out.reshape(T, W)  # [T, N*F] view (out is C-contiguous)
    mask2 = mask.reshape(T, W)
    carry = np.full(W, np.nan, np.float32)  # ffill state between chunks: the last filled row
    rows = max(1, _CHUNK_ELEMS // max(W, 1))
    for t0 in range(0, T, rows):
        blk, mb = flat2[t0:t0 + rows], mask2[t0:t0 + rows]
        gaps = np.flatnonzero(~mb)  # flat indices into blk of the entries to fill
        if method == "ffill":
            if gaps.size:
                gaps = _ffill_chunk(blk, mb, gaps, carry)  # only leading gaps remain
            carry = blk[-1].copy()  # taken before the leading gaps are filled: they stay NaN here
        if gaps.size:
            col = gaps % W
            fill = slots[(t0 + gaps // W) % len(slots), col] if slots is not None else means[col]
            blk.reshape(-1)[gaps] = fill
    return out
