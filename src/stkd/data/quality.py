"""Data that would train into garbage: nodes that never report, targets with no observation, extreme
outliers (a 1e30 cell makes every MAE ~1e27). Found here before anything trains.

Outliers are values beyond a robust bound per feature, ``median +- k * IQR`` of the observed values (the
interquartile range ignores the outliers it looks for, unlike a standard deviation). ``stkd data inspect``
reports them (bounds over the whole data); ``data.clip_outliers: k`` clips them to the bound, inputs and
targets alike, with the bound taken from the train part only (no leakage).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from stkd.data.container import STData
from stkd.errors import DataError

log = logging.getLogger(__name__)

OUTLIER_IQR_K = 20.0  # the bound `stkd data inspect` reports with when data.clip_outliers is not set


def outlier_bounds(values: np.ndarray, mask: np.ndarray, k: float) -> list[tuple[float, float] | None]:
    """Per feature, ``(median - k * IQR, median + k * IQR)`` of the observed values ``[T, N, F]`` (None when
    the feature has no observed value or no spread: IQR 0)."""
    bounds: list[tuple[float, float] | None] = []
    for f in range(values.shape[-1]):
        v = values[..., f][mask[..., f]].astype(np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            bounds.append(None)
            continue
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        iqr = q3 - q1
        bounds.append(None if iqr <= 0 else (float(med - k * iqr), float(med + k * iqr)))
    return bounds


def find_outliers(data: STData, k: float = OUTLIER_IQR_K, examples: int = 5) -> list[dict]:
    """Per feature with outliers: how many observed values lie beyond ``median +- k * IQR``, their share, the
    bound, and the most extreme ones with node and timestamp (for ``stkd data inspect``)."""
    found = []
    for f, b in enumerate(outlier_bounds(data.values, data.mask, k)):
        if b is None:
            continue
        v, m = data.values[..., f], data.mask[..., f]
        out = m & ((v < b[0]) | (v > b[1]))
        count = int(out.sum())
        if not count:
            continue
        t, n = np.nonzero(out)
        dist = np.maximum(b[0] - v[t, n], v[t, n] - b[1])
        worst = np.argsort(-dist, kind="stable")[:examples]
        found.append({"feature": data.features[f], "count": count, "share": count / max(1, int(m.sum())),
                      "low": b[0], "high": b[1],
                      "examples": [{"node": data.nodes[n[i]], "time": str(data.index[t[i]]), "value": float(v[t[i], n[i]])}
                                   for i in worst]})
    return found


def clip_outliers(data: STData, k: float, train_end: int) -> STData:
    """``data`` with every observed value clipped to ``median +- k * IQR`` of its feature's train part (a
    copy of the values; the source is untouched); logs how many values per feature were clipped."""
    values = np.array(data.values, dtype=np.float32, copy=True)
    for f, b in enumerate(outlier_bounds(data.values[:train_end], data.mask[:train_end], k)):
        if b is None:
            continue
        v = values[..., f]
        out = data.mask[..., f] & ((v < b[0]) | (v > b[1]))
        if out.any():
            log.warning("%s: %d value(s) of %s beyond median +- %g x IQR of the train part [%.6g, %.6g] clipped "
                        "(data.clip_outliers)", data.name, int(out.sum()), data.features[f], k, b[0], b[1])
            np.clip(v, b[0], b[1], out=v, where=out)
    return replace(data, values=values)


def unusable_nodes(data: STData, train_end: int) -> dict[str, list[dict]]:
    """The nodes :func:`check_observed` drops, before anything trains: ``silent`` (no observed target in the first
    ``train_end`` steps) and ``stuck`` (every target keeps one value there; each with its ``value``), as
    ``{"node": id}`` dicts in the data's order (``stkd data inspect`` shows them)."""
    nt = data.num_targets
    train = data.mask[:train_end, :, :nt]  # [T_train, N, F_out]
    reporting = train.any(axis=(0, 2))  # [N]
    values = data.values[:train_end, :, :nt]
    low = np.where(train, values, np.inf).min(axis=0)  # [N, F_out]
    high = np.where(train, values, -np.inf).max(axis=0)
    stuck = reporting & ~(high > low).any(axis=1)  # [N]: reports, but every target keeps one value
    return {"silent": [{"node": data.nodes[i]} for i in np.flatnonzero(~reporting)],
            "stuck": [{"node": data.nodes[i], "value": float(low[i][np.isfinite(low[i])][0])}  # a target it reports
                      for i in np.flatnonzero(stuck)]}


def check_observed(data: STData, train_end: int) -> STData:
    """Refuse a target with no observed value in the train part; drop (with a warning naming them) the
    nodes whose targets never report there, and those whose targets take one value only there (a stuck
    sensor, or one not yet in service that sends a placeholder such as 0): a model would give them
    confident forecasts learnt from nothing, their scaler has no spread to fit (a reading after the train
    part then enters the models far outside anything they saw), and their test scores would be noise."""
    per_target = data.mask[:train_end, :, :data.num_targets].any(axis=(0, 1))
    if not per_target.all():
        missing = [data.targets[i] for i in np.flatnonzero(~per_target)]
        raise DataError(f"{data.name}: target {', '.join(map(repr, missing))} has no observed value in the train "
                        f"part (the first {train_end} steps): every value is missing (NaN, or data.null_value); "
                        "check the file's target column, data.null_value and data.time_range")
    found = unusable_nodes(data, train_end)
    silent, stuck = found["silent"], found["stuck"]
    if len(stuck) == data.num_nodes:
        raise DataError(f"{data.name}: every node's target keeps one value in the train part (the first "
                        f"{train_end} steps): there is nothing to learn; check the file's target column and "
                        "data.time_range")
    if not silent and not stuck:
        return data
    if silent:
        log.warning("%s: dropped %d node(s) with no observed target in the train part (the first %d steps): %s",
                    data.name, len(silent), train_end, shown(silent))
    if stuck:
        log.warning("%s: dropped %d node(s) whose target keeps one value in the train part (the first %d steps; "
                    "a stuck sensor, or one not yet in service): %s", data.name, len(stuck), train_end, shown(stuck))
    dropped = {d["node"] for d in silent + stuck}
    return data.subset(np.array([i for i, n in enumerate(data.nodes) if n not in dropped], dtype=np.int64), None)


def shown(nodes: list[dict], at_most: int = 10) -> str:
    """The first ``at_most`` of :func:`unusable_nodes`' ``nodes`` by name (a stuck one with its value), and how
    many more."""
    names = [repr(d["node"]) + (f" (always {d['value']:g})" if "value" in d else "") for d in nodes[:at_most]]
    return ", ".join(names) + (f" and {len(nodes) - at_most} more" if len(nodes) > at_most else "")
