"""Helpers shared by the analyses: one feature as a ``[T, N]`` matrix, gap filling, cycle lengths.

Every analysis works on one feature (the first target unless told otherwise) as a float64 ``[T, N]``
matrix with NaN where nothing was observed. Gap filling is *linear interpolation over interior gaps
only*: the leading and trailing unobserved stretch of a node (a sensor installed late, or removed) is
left out of that node's analysis instead of being invented, and nothing is ever filled with 0.
Linear filling cannot create a cycle that is not in the data, so a period found on a filled series
was in the observations (a long filled gap only weakens it).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd

from stkd.errors import ConfigError, DataError

HOUR = pd.Timedelta("1h")
DAY = pd.Timedelta("1D")


def feature_matrix(data, feature: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """One feature of ``data`` as ``(x, observed, name)``.

    Returns:
        x: ``[T, N]`` float64, NaN where not observed.
        observed: ``[T, N]`` bool.
        name: the feature's name.
    """
    name = data.targets[0] if feature is None else str(feature)
    if name not in data.features:
        raise ConfigError(f"feature {name!r} is not in the data set; its features are {data.features}")
    k = data.features.index(name)
    observed = np.array(data.mask[..., k], dtype=bool)
    x = np.array(data.values[..., k], dtype=np.float64)
    x[~observed] = np.nan
    return x, observed, name


def step_of(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The regular step of ``index`` (the difference of its first two stamps)."""
    if len(index) < 2:
        raise DataError("the analysis needs at least two time steps")
    return pd.Timedelta(index[1] - index[0])


def step_hours(index: pd.DatetimeIndex) -> float:
    return step_of(index) / HOUR


def cycle_steps(index: pd.DatetimeIndex) -> dict[str, int]:
    """The daily and weekly cycles in steps, for the steps that divide a day or a week.

    Hourly data: ``{"daily": 24, "weekly": 168}``; 5-minute data: ``{"daily": 288, "weekly": 2016}``;
    daily data: ``{"weekly": 7}``. A cycle shorter than 2 steps, or not a whole number of steps, is
    left out.
    """
    step = step_of(index)
    out: dict[str, int] = {}
    for name, span in (("daily", DAY), ("weekly", 7 * DAY)):
        ratio = span / step
        if ratio >= 2 and abs(ratio - round(ratio)) < 1e-9:
            out[name] = int(round(ratio))
    return out


def observed_span(observed_col: np.ndarray) -> tuple[int, int]:
    """``(first, last + 1)`` of the observed entries of one node; ``(0, 0)`` when nothing is observed."""
    idx = np.flatnonzero(observed_col)
    if idx.size == 0:
        return 0, 0
    return int(idx[0]), int(idx[-1]) + 1


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """Linear interpolation of interior gaps, per column of ``x [T, N]``.

    Values before a node's first and after its last observation stay NaN (see :func:`observed_span`).
    """
    out = np.array(x, dtype=np.float64, copy=True)
    t = np.arange(out.shape[0])
    for j in range(out.shape[1]):
        col = out[:, j]
        ok = ~np.isnan(col)
        if ok.all() or not ok.any():
            continue
        lo, hi = observed_span(ok)
        gap = ~ok[lo:hi]
        if gap.any():
            seg = col[lo:hi]
            seg[gap] = np.interp(t[lo:hi][gap], t[lo:hi][~gap], seg[~gap])
    return out


def phase_profile(x: np.ndarray, period: int) -> np.ndarray:
    """Mean of each phase of a cycle, per column: ``[period, N]`` (NaN-aware; NaN where never observed)."""
    T, N = x.shape
    n_cyc = -(-T // period)
    pad = np.full((n_cyc * period, N), np.nan)
    pad[:T] = x
    with quiet():
        return np.nanmean(pad.reshape(n_cyc, period, N), axis=0)


@contextmanager
def quiet():
    """Silence RuntimeWarnings of NaN reductions over all-NaN slices (expected for unobserved phases)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def resolve_nodes(nodes, all_nodes: list[str]) -> list[int]:
    """Positions of the node ids ``nodes`` (ids, or a comma-separated string) in ``all_nodes``."""
    if isinstance(nodes, str):
        nodes = [n.strip() for n in nodes.split(",") if n.strip()]
    pos = {n: i for i, n in enumerate(all_nodes)}
    out = []
    for n in nodes:
        key = str(n)
        if key not in pos:
            preview = ", ".join(all_nodes[:8]) + (", ..." if len(all_nodes) > 8 else "")
            raise ConfigError(f"node {key!r} is not in the data set (nodes: {preview})")
        out.append(pos[key])
    return out


def period_words(steps: int, step: pd.Timedelta) -> str:
    """A period of ``steps`` time steps of length ``step`` in words: ``1 day``, ``1 week``, ``12 hours``
    (the project's :func:`stkd.report.freq_words`, so the analysis and the run report say it alike)."""
    from stkd.report import freq_words

    return freq_words(f"{int(round(steps * pd.Timedelta(step).total_seconds()))}s")


def fmt_hours(hours: float) -> str:
    """``24 h``, ``7 d``, ``30 min``: a period or lag in words."""
    if hours is None or not np.isfinite(hours):
        return "n/a"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours >= 48 and abs(hours / 24 - round(hours / 24)) < 1e-6:
        return f"{hours / 24:.0f} d"
    return f"{hours:.4g} h"
