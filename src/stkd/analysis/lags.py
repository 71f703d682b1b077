"""Spatio-temporal correlation: lagged cross-correlation between neighbouring nodes.

For each pair ``(a, b)`` of neighbours (an edge of the adjacency in either direction, each unordered
pair once, at most ``max_pairs`` of them drawn at random with a seed), the Pearson correlation

    r_ab(k) = corr(x_a(t), x_b(t + k)),     k = -max_lag .. max_lag steps,

over the steps where both values are observed. **Sign convention**: a peak at ``k > 0`` means ``b``
follows ``a`` by ``k`` steps (what happens at ``a`` shows up at ``b`` ``k`` steps later: ``a`` is
upstream); ``k < 0`` means ``a`` follows ``b``. If ``x_b(t) = x_a(t - 3)``, the peak is at ``k = +3``.

Before correlating, each node's mean daily profile (its mean at each time of day; of the week, for
series of at least two weeks) is subtracted: otherwise the shared daily cycle dominates and every pair
peaks at lag 0 with a broad maximum. What is left are the deviations from the usual day - a jam, a
pollution episode - whose travel the lag measures. The peak is the lag of the largest correlation
(ties: the smaller ``|k|``). With the great-circle distance between the two sensors, ``|k|`` gives an
implied speed ``distance / (|k| * step)`` in km/h (none at lag 0: faster than one step resolves).
A pair has a *clear* lag when its peak correlation is at least ``min_corr`` (0.3) and the peak is not
at the edge of the window (``|k| = max_lag``: the correlation was still rising, the true peak may lie
beyond); the summary (share at lag 0, median lag, median speed) covers the clear pairs only, so weakly
related neighbours (two directions of a freeway, say) do not blur it.

Public API: :func:`neighbour_pairs`, :func:`lagged_correlation`, :func:`pair_lags`,
:func:`plot_lag_map`, :func:`plot_lag_hist`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stkd.analysis import _plotting
from stkd.analysis._series import cycle_steps, phase_profile, quiet, step_hours
from stkd.progress import bar as progress_bar

MIN_OVERLAP = 10


def neighbour_pairs(W, max_pairs: int | None = 200, seed: int = 0) -> np.ndarray:
    """Unordered neighbour pairs ``[P, 2]`` (``a < b``) of the weights ``W`` (self loops ignored),
    a seeded random sample of ``max_pairs`` of them when there are more."""
    A = sp.coo_array(W if sp.issparse(W) else np.asarray(W))
    keep = (A.row != A.col) & (A.data != 0) & np.isfinite(A.data)
    a, b = np.minimum(A.row[keep], A.col[keep]), np.maximum(A.row[keep], A.col[keep])
    pairs = np.unique(np.stack([a, b], axis=1), axis=0) if a.size else np.zeros((0, 2), dtype=int)
    if max_pairs is not None and len(pairs) > max_pairs:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(pairs), size=max_pairs, replace=False))
        pairs = pairs[pick]
    return pairs.astype(np.int64)


def deseasonalize(x: np.ndarray, period: int | None) -> np.ndarray:
    """``x [T, N]`` minus each node's mean profile over ``period`` steps, then standardised per node."""
    x = np.asarray(x, dtype=np.float64)
    if period and period >= 2 and x.shape[0] >= 2 * period:
        prof = phase_profile(x, period)  # (period, N)
        reps = -(-x.shape[0] // period)
        x = x - np.tile(prof, (reps, 1))[: x.shape[0]]
    with quiet():
        mu, sd = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x - mu) / sd


def lagged_correlation(x: np.ndarray, pairs: np.ndarray, max_lag: int, chunk: int = 64,
                       progress: bool = False) -> np.ndarray:
    """``r [P, 2 * max_lag + 1]``: ``r[p, max_lag + k] = corr(x_a(t), x_b(t + k))`` for pair
    ``p = (a, b)``, over the steps where both are observed (NaN = missing; NaN with fewer than 10).
    ``progress``: a bar over the pairs."""
    T = x.shape[0]
    lags = np.arange(-max_lag, max_lag + 1)
    out = np.full((len(pairs), len(lags)), np.nan)
    bar = progress_bar(desc="lags", total=len(pairs), unit="pair", progress=progress)
    for c0 in range(0, len(pairs), chunk):
        pc = pairs[c0: c0 + chunk]
        A_all, B_all = x[:, pc[:, 0]], x[:, pc[:, 1]]  # (T, P)
        for li, k in enumerate(lags):
            if abs(k) >= T - 1:
                continue
            if k >= 0:
                A, B = A_all[: T - k], B_all[k:]
            else:
                A, B = A_all[-k:], B_all[: T + k]
            ok = ~(np.isnan(A) | np.isnan(B))
            n = ok.sum(axis=0)
            a, b = np.where(ok, A, 0.0), np.where(ok, B, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                ma, mb = a.sum(0) / n, b.sum(0) / n
                cov = (a * b).sum(0) / n - ma * mb
                va = (a * a).sum(0) / n - ma * ma
                vb = (b * b).sum(0) / n - mb * mb
                r = cov / np.sqrt(va * vb)
            out[c0: c0 + len(pc), li] = np.where((n >= MIN_OVERLAP) & (va > 0) & (vb > 0), r, np.nan)
        bar.update(len(pc))
    bar.close()
    return out


def _haversine_km(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    from stkd.data.graph import EARTH_RADIUS_KM

    a, b = np.radians(c1), np.radians(c2)
    h = (np.sin((b[:, 0] - a[:, 0]) / 2) ** 2
         + np.cos(a[:, 0]) * np.cos(b[:, 0]) * np.sin((b[:, 1] - a[:, 1]) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def pair_lags(x: np.ndarray, index: pd.DatetimeIndex, nodes: list[str], W, coords=None, max_lag: int | None = None,
              max_pairs: int | None = 200, seed: int = 0, max_steps: int | None = 20_000,
              deseason: bool = True, min_corr: float = 0.3, progress: bool = False) -> dict:
    """Peak lags of neighbouring pairs (see the module docstring); ``progress``: a bar over the pairs.

    Args:
        x: ``[T, N]``, NaN = missing.
        W: the adjacency (its nonzero off-diagonal entries are the neighbour pairs).
        coords: ``[N, 2]`` (lat, lon) for distances and speeds, optional.
        max_lag: in steps; default one hour of steps, at least 3.
        max_steps: only the last ``max_steps`` steps are used (``None``: all).
        min_corr: a pair whose peak correlation is below this has no clear lag.
    Returns:
        ``{"pairs": [{"a", "b", "lag_steps", "lag_minutes", "peak_corr", "corr_lag0", "distance_km",
        "speed_kmh", "at_edge", "clear"}], "summary": {...}, "max_lag_steps", "sign_convention", ...}``.
        The summary's lag statistics and speeds cover the *clear* pairs only.
    """
    T = x.shape[0]
    hps = step_hours(index)
    if max_lag is None:
        max_lag = max(3, int(round(1.0 / hps)))
    used = T if max_steps is None else min(T, int(max_steps))
    xs = x[T - used:]
    cyc = cycle_steps(index)
    period = None
    if deseason:
        period = cyc.get("weekly") if "weekly" in cyc and used >= 2 * cyc["weekly"] else cyc.get("daily")
    z = deseasonalize(xs, period)
    pairs = neighbour_pairs(W, max_pairs, seed)
    n_all = len(neighbour_pairs(W, None))
    r = lagged_correlation(z, pairs, max_lag, progress=progress)
    lags = np.arange(-max_lag, max_lag + 1)
    order = np.argsort(np.abs(lags), kind="stable")  # ties go to the smaller |k|
    dist = None
    if coords is not None and len(pairs):
        c = np.asarray(coords, dtype=np.float64)
        dist = _haversine_km(c[pairs[:, 0]], c[pairs[:, 1]])
    rows = []
    for p, (a, b) in enumerate(pairs):
        rr = r[p]
        if not np.isfinite(rr).any():
            continue
        best = order[int(np.nanargmax(rr[order]))]
        k = int(lags[best])
        d = None if dist is None else float(dist[p])
        speed = d / (abs(k) * hps) if (d is not None and k != 0 and d > 0) else None
        at_edge = abs(k) == max_lag and max_lag > 0
        clear = bool(rr[best] >= min_corr and not at_edge)
        rows.append({"a": nodes[a], "b": nodes[b], "lag_steps": k, "lag_minutes": k * hps * 60.0,
                     "peak_corr": float(rr[best]), "corr_lag0": float(rr[max_lag]), "distance_km": d,
                     "speed_kmh": speed if clear else None, "at_edge": at_edge, "clear": clear,
                     "_ab": (int(a), int(b))})
    good = [q for q in rows if q["clear"]]
    lag_vals = np.array([q["lag_steps"] for q in good])
    speeds = np.array([q["speed_kmh"] for q in good if q["speed_kmh"] is not None])
    counts = {str(k): int((lag_vals == k).sum()) for k in lags} if len(good) else {}
    summary = {
        "pairs_total": int(n_all), "pairs_analysed": len(rows), "pairs_clear": len(good),
        "pairs_weak": sum(1 for q in rows if q["peak_corr"] < min_corr),
        "pairs_at_edge": sum(1 for q in rows if q["at_edge"] and q["peak_corr"] >= min_corr),
        "share_lag0": float((lag_vals == 0).mean()) if len(good) else None,
        "median_abs_lag_minutes": float(np.median(np.abs(lag_vals)) * hps * 60) if len(good) else None,
        "median_speed_kmh": float(np.median(speeds)) if speeds.size else None,
        "median_peak_corr": float(np.median([q["peak_corr"] for q in rows])) if rows else None,
        "lag_counts": counts,
    }
    note = None
    if used < T:
        note = f"cross-correlations use the last {used} of {T} steps"
    return {"pairs": rows, "summary": summary, "max_lag_steps": int(max_lag), "max_lag_minutes": max_lag * hps * 60,
            "step_minutes": hps * 60, "deseasonalized_period_steps": period, "steps_used": int(used), "note": note,
            "sign_convention": "lag k > 0: node b follows node a by k steps (a is upstream); "
                               "r(k) = corr(x_a(t), x_b(t + k))"}


# ------------------------------------------------------------------------------------------ plots
def plot_lag_map(result: dict, coords: np.ndarray, path: Path, title: str = "") -> Path | None:
    """The analysed pairs drawn on the map, coloured by their peak lag in minutes; an arrow points from
    the leading node to the following one when the lag is not 0."""
    import matplotlib as mpl
    from matplotlib.collections import LineCollection

    from stkd.analysis.spatial import _map_axes, map_size

    rows = result["pairs"]
    if not rows:
        return None
    c = np.asarray(coords, dtype=np.float64)
    fig, axes = _plotting.figure(1, 1, size=map_size(c))
    ax = axes[0, 0]
    ax.scatter(c[:, 1], c[:, 0], s=10, color="#636363", zorder=3, label="sensor")
    vmax = max(result["max_lag_minutes"], 1e-9)
    norm = mpl.colors.Normalize(vmin=0, vmax=vmax)
    # viridis without its palest yellow, which vanishes on white
    cmap = mpl.colors.ListedColormap(mpl.colormaps["viridis"](np.linspace(0.0, 0.85, 256)))

    def seg(q):
        a, b = q["_ab"]
        return [(c[a, 1], c[a, 0]), (c[b, 1], c[b, 0])]

    weak = [seg(q) for q in rows if not q["clear"]]
    if weak:
        ax.add_collection(LineCollection(weak, colors="#bdbdbd", linewidths=0.6, linestyles=":", zorder=1))
    zero = [seg(q) for q in rows if q["clear"] and q["lag_steps"] == 0]
    if zero:
        ax.add_collection(LineCollection(zero, colors=[cmap(norm(0.0))], linewidths=1.2, zorder=2))
    moving = [q for q in rows if q["clear"] and q["lag_steps"] != 0]
    if moving:
        lead = np.array([q["_ab"][0] if q["lag_steps"] > 0 else q["_ab"][1] for q in moving])
        follow = np.array([q["_ab"][1] if q["lag_steps"] > 0 else q["_ab"][0] for q in moving])
        ax.quiver(c[lead, 1], c[lead, 0], c[follow, 1] - c[lead, 1], c[follow, 0] - c[lead, 0],
                  [abs(q["lag_minutes"]) for q in moving], cmap=cmap, norm=norm, angles="xy",
                  scale_units="xy", scale=1, width=0.0025, headwidth=3.5, headlength=4, headaxislength=3.6,
                  zorder=2)
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, ax=ax, shrink=0.8)
    cb.set_label("|peak lag| (minutes); arrows: leading -> following node")
    _map_axes(ax, c)
    s = result["summary"]
    ax.plot([], [], color=cmap(norm(0.0)), lw=1.2, label="peak at lag 0 (no arrow)")
    ax.plot([], [], color="#bdbdbd", lw=0.6, ls=":", label="no clear peak (weak or at the window's edge)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"Lag of the peak cross-correlation between neighbours\n({s['pairs_clear']} clear of "
                 f"{s['pairs_analysed']} pairs)" + (f" - {title}" if title else ""))
    return _plotting.save(fig, path)


def plot_lag_hist(result: dict, path: Path) -> Path | None:
    """Histogram of the peak lags (minutes) over the analysed pairs."""
    counts = result["summary"]["lag_counts"]
    if not counts:
        return None
    step_min = result["step_minutes"]
    ks = np.array([int(k) for k in counts])
    vals = np.array([counts[str(k)] for k in ks])
    fig, axes = _plotting.figure(1, 1, size=(8, 4))
    ax = axes[0, 0]
    ax.bar(ks * step_min, vals, width=0.8 * step_min, color="#1f5fa8")
    ax.set_xlabel("peak lag (minutes; > 0: the second node of the pair follows the first)")
    ax.set_ylabel("neighbour pairs with a clear peak")
    ax.set_title("Lag at which the cross-correlation of neighbours peaks")
    ax.grid(alpha=0.3)
    return _plotting.save(fig, path)
