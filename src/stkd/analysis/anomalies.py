"""Anomalies: observed points whose decomposition (MSTL or STL) residual is extreme by a robust z-score.

For each node, ``z = (r - median(r)) / (1.4826 * MAD(r))`` over the residuals ``r`` of its
observed points (the MAD falls back to the mean absolute deviation when more than half of the residuals
are equal). A point with ``|z| > threshold`` (5 by default: about one in 3.5 million for Gaussian
noise) is an anomaly; it is listed with its node, time, observed value, expected value
(``trend + seasonal``) and z, most extreme first, capped at ``max_listed``. Interpolated points are
never listed: only observed values can be anomalous.

The decompositions come from :func:`stkd.analysis.trend.decompose_nodes`, whose despiking keeps a
large spike out of the seasonal component (see that module).

Public API: :func:`robust_z`, :func:`find_anomalies`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stkd.analysis.trend import robust_scale
from stkd.progress import bar as progress_bar


def robust_z(r: np.ndarray) -> np.ndarray:
    """Robust z-scores of ``r`` (NaN stays NaN; all zeros when the spread is 0)."""
    r = np.asarray(r, dtype=np.float64)
    med, s = robust_scale(r)
    if not np.isfinite(s) or s == 0:
        return np.where(np.isnan(r), np.nan, 0.0)
    return (r - med) / s


def find_anomalies(decomps: dict[int, dict], x: np.ndarray, index: pd.DatetimeIndex, nodes: list[str],
                   threshold: float = 5.0, max_listed: int = 100, progress: bool = False) -> dict:
    """Anomalies of every decomposed node (``progress``: a bar over the nodes).

    Args:
        decomps: ``{node position: decomposition}`` from ``trend.decompose_nodes``.
        x: ``[T, N]`` values (NaN = missing).
        threshold: ``|z|`` above which a point is an anomaly.
        max_listed: most anomalies listed (the most extreme); counts cover all of them.
    Returns:
        ``{"threshold", "total", "nodes_with_anomalies", "points_checked", "per_node": {node: count},
        "listed": [{"node", "time", "value", "expected", "residual", "z"}], "truncated"}``.
    """
    rows = []
    per_node: dict[str, int] = {}
    checked = 0
    for j, d in progress_bar(decomps.items(), desc="anomalies", total=len(decomps), unit="sensor", progress=progress):
        if "skipped" in d:
            continue
        lo = d["lo"]
        r = d["resid"]
        z = robust_z(r)
        ok = np.isfinite(z)
        checked += int(ok.sum())
        hit = np.flatnonzero(ok & (np.abs(np.nan_to_num(z)) > threshold))
        per_node[nodes[j]] = int(hit.size)
        expected = d["trend"] + d["seasonal"]
        for i in hit:
            rows.append((abs(z[i]), j, lo + i, float(x[lo + i, j]), float(expected[i]), float(r[i]), float(z[i])))
    rows.sort(key=lambda t: -t[0])
    listed = [{"node": nodes[j], "time": str(index[t]), "step": int(t), "value": v, "expected": e,
               "residual": res, "z": z} for _, j, t, v, e, res, z in rows[:max_listed]]
    return {"threshold": threshold, "total": len(rows), "points_checked": checked,
            "nodes_with_anomalies": sum(1 for c in per_node.values() if c),
            "per_node": per_node, "listed": listed, "truncated": len(rows) > max_listed}
