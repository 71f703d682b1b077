"""Missing data: the share of unobserved steps per node and per calendar day, the longest gap per node,
and a nodes x days heat map.

Public API: :func:`missing_summary`, :func:`plot_missing`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stkd.analysis import _plotting
from stkd.analysis._series import step_hours

MAX_JSON_CELLS = 100_000  # node x day cells written to JSON; above this only the plot shows them


def _longest_run(missing_col: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D bool array."""
    if not missing_col.any():
        return 0
    padded = np.concatenate(([False], missing_col, [False])).astype(np.int8)
    d = np.diff(padded)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return int((ends - starts).max())


def missing_summary(observed: np.ndarray, index: pd.DatetimeIndex, nodes: list[str]) -> dict:
    """Missing shares of a ``[T, N]`` observed mask.

    Returns a dict with
      ``overall`` (share of all entries unobserved),
      ``per_node``: ``{node: {"share": s, "longest_gap_steps": g, "longest_gap_hours": h}}``,
      ``per_day``: ``{"dates": [...], "share": [...]}`` (share over all nodes of each calendar day),
      ``node_day`` (``[N, D]`` shares, only when N*D <= 100,000; the heat map always has them),
      ``complete_nodes`` / ``empty_nodes`` (ids of nodes never / always missing),
    and under ``_curves`` the ``[N, D]`` matrix for :func:`plot_missing`.
    """
    observed = np.asarray(observed, dtype=bool)
    missing = ~observed  # (T, N)
    T, N = missing.shape
    sh = step_hours(index)
    per_node = {}
    for j, node in enumerate(nodes):
        gap = _longest_run(missing[:, j])
        per_node[node] = {"share": float(missing[:, j].mean()) if T else float("nan"),
                          "longest_gap_steps": gap, "longest_gap_hours": gap * sh}
    days = index.normalize()
    frame = pd.DataFrame(missing, index=days)
    by_day = frame.groupby(level=0, sort=True).mean()  # (D, N)
    node_day = by_day.to_numpy().T  # (N, D)
    dates = [d.strftime("%Y-%m-%d") for d in by_day.index]
    out = {
        "overall": float(missing.mean()) if missing.size else float("nan"),
        "per_node": per_node,
        "per_day": {"dates": dates, "share": by_day.mean(axis=1).to_numpy()},
        "complete_nodes": [n for j, n in enumerate(nodes) if not missing[:, j].any()],
        "empty_nodes": [n for j, n in enumerate(nodes) if missing[:, j].all()],
        "_curves": {"node_day": node_day, "dates": by_day.index, "nodes": list(nodes)},
    }
    if node_day.size <= MAX_JSON_CELLS:
        out["node_day"] = {"nodes": list(nodes), "dates": dates, "share": node_day}
    return out


def plot_missing(summary: dict, path: Path, title: str = "") -> Path:
    """Heat map of the missing share per node and day, with the daily share over all nodes on top."""
    import matplotlib.dates as mdates

    c = summary["_curves"]
    mat, dates, nodes = c["node_day"], c["dates"], c["nodes"]
    N, D = mat.shape
    height = 3.0 + min(5.0, 0.16 * N)
    fig, axes = _plotting.figure(2, 1, size=(10, height), sharex=True,
                                 gridspec_kw={"height_ratios": [1, 3.5]})
    top, ax = axes[0, 0], axes[1, 0]
    x0 = mdates.date2num(dates[0]) if D else 0.0
    x1 = mdates.date2num(dates[-1]) + 1 if D else 1.0
    centers = mdates.date2num(dates) + 0.5
    top.plot(centers, 100 * np.asarray(summary["per_day"]["share"], dtype=float), color="#b2182b", lw=1)
    top.set_ylabel("missing (%)\nall nodes")
    peak = float(np.nanmax(100 * np.asarray(summary["per_day"]["share"], dtype=float))) if D else 0.0
    top.set_ylim(0, max(1.0, 1.1 * peak))
    top.grid(alpha=0.3)
    overall = summary["overall"]
    what = "no missing data" if overall == 0 else f"{100 * overall:.2f}% missing overall"
    top.set_title(f"Missing data per node and day{' - ' + title if title else ''} ({what})")
    im = ax.imshow(100 * mat, aspect="auto", interpolation="nearest", cmap="Reds", vmin=0, vmax=100,
                   extent=(x0, x1, N - 0.5, -0.5))
    ax.set_xlim(x0, x1)
    ax.set_ylabel("node")
    ax.set_xlabel("date")
    if N <= 45:
        ax.set_yticks(range(N))
        ax.set_yticklabels([_plotting.short(n) for n in nodes], fontsize=7 if N > 20 else 8)
    else:
        ax.set_ylabel("node (row = position in the data set)")
    _plotting.date_axis(ax)
    cb = fig.colorbar(im, ax=[top, ax], shrink=0.8, pad=0.01)
    cb.set_label("missing share of the day's steps (%)")
    return _plotting.save(fig, path)
