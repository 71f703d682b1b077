"""Spatial autocorrelation: global Moran's I at every time step, and local Moran's I (LISA) hot and
cold spots.

Weights: the data set's adjacency (self loops dropped, negative weights set to 0) or, without one, the
``k`` nearest neighbours by great-circle distance (binary); then row-standardised, so each node's
neighbour weights sum to 1 (Anselin 1988; the convention of PySAL/esda).

Global Moran's I (Moran 1950) of values ``x`` over N nodes, ``z = x - mean(x)``:

    I = (N / S0) * (z^T W z) / (z^T z),        S0 = sum of all weights,

positive when neighbours have similar values (a smooth field), negative when they differ (a
checkerboard), and ``E[I] = -1 / (N - 1)`` under no spatial autocorrelation. It is computed for every
time step at once with two sparse products (``W @ Z^T``). A node missing at a step is left out of that
step: the mean and ``z^T z`` run over the observed nodes, and each observed node's weights are
re-standardised over its *observed* neighbours (a node with none does not count in ``S0``).

Significance: a z-score under the normality assumption (Cliff and Ord 1981) with the variance from the
full weight matrix (``S0``, ``S1``, ``S2``), and, with ``permutations > 0``, a pseudo p-value from
random relabellings of the nodes, ``(1 + #{I_perm at least as extreme, on the observed side of
E[I]}) / (1 + permutations)`` (one-sided in the direction of the observed I, as esda's ``p_sim``).

Local Moran's I (Anselin 1995) of node i: ``I_i = (z_i / m2) * sum_j w_ij z_j`` with
``m2 = sum z^2 / N``, on the time-mean of each node. Conditional permutations (node i's value fixed,
its neighbours drawn at random from the other nodes, the same draws for every node as in esda) give a
pseudo p-value per node. A hot spot is a node in the high-high quadrant (``z_i > 0`` and its
neighbours' weighted mean above average) with ``p < alpha``; a cold spot is low-low with ``p < alpha``.

Public API: :func:`weights_matrix`, :func:`row_standardize`, :func:`morans_i`,
:func:`global_moran`, :func:`local_morans_i`, :func:`plot_moran`, :func:`plot_lisa_map`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stkd.analysis import _plotting
from stkd.analysis._series import quiet
from stkd.progress import bar as progress_bar


# ------------------------------------------------------------------------------------- weights
def _clean(W) -> sp.csr_array:
    W = sp.csr_array(W if sp.issparse(W) else np.asarray(W), dtype=np.float64)
    W.setdiag(0)
    W.data = np.where(np.isfinite(W.data) & (W.data > 0), W.data, 0.0)
    W.eliminate_zeros()
    W.sort_indices()
    return W


def knn_weights(coords: np.ndarray, k: int) -> sp.csr_array:
    """Binary ``k``-nearest-neighbour weights by great-circle distance (no self loops)."""
    from sklearn.neighbors import BallTree

    c = np.radians(np.asarray(coords, dtype=np.float64))
    n = len(c)
    k = int(min(k, n - 1))
    _, idx = BallTree(c, metric="haversine").query(c, k=min(n, k + 1))
    rows, cols = [], []
    for i in range(n):
        nb = [j for j in idx[i] if j != i][:k]
        rows.extend([i] * len(nb))
        cols.extend(nb)
    return sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def weights_matrix(adjacency=None, coords=None, k: int = 6) -> tuple[sp.csr_array | None, str]:
    """The spatial weights (not yet standardised) and where they came from."""
    if adjacency is not None:
        W = _clean(adjacency)
        if W.nnz:
            return W, "the data set's adjacency (self loops dropped)"
    if coords is not None and len(coords) >= 3 and np.isfinite(np.asarray(coords, dtype=float)).all():
        kk = int(min(k, len(coords) - 1))
        return _clean(knn_weights(coords, kk)), f"{kk} nearest neighbours by great-circle distance"
    return None, "no adjacency and no coordinates"


def row_standardize(W) -> sp.csr_array:
    """Rows scaled to sum to 1; rows without neighbours stay zero."""
    W = _clean(W)
    rs = np.asarray(W.sum(axis=1)).ravel()
    inv = np.divide(1.0, rs, out=np.zeros_like(rs), where=rs > 0)
    return sp.csr_array(sp.diags_array(inv) @ W)


# ------------------------------------------------------------------------------------ global I
def _moran_prep(X: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deviations ``Z [T, N]`` from each step's observed mean (0 where missing), ``n [T]``, ``z^T z [T]``."""
    n = M.sum(axis=1)  # (T,)
    mean = np.where(M, X, 0.0).sum(axis=1) / np.maximum(n, 1)
    Z = np.where(M, X - mean[:, None], 0.0)
    return Z, n, (Z * Z).sum(axis=1)


def _moran_stat(Z: np.ndarray, M: np.ndarray, W: sp.csr_array, n: np.ndarray, den: np.ndarray,
                complete: bool) -> np.ndarray:
    """Moran's I of each row of ``Z`` (weights re-standardised over each row's observed nodes)."""
    L = (W @ Z.T).T  # (T, N) weighted sum of the neighbours' deviations
    if complete:  # nothing missing: every node's observed-neighbour weight is its row sum
        rs = np.asarray(W.sum(axis=1)).ravel()
        inv = np.divide(1.0, rs, out=np.zeros_like(rs), where=rs > 0)
        num = (Z * L) @ inv
        s0 = np.full(Z.shape[0], int((rs > 0).sum()))
    else:
        R = (W @ M.T.astype(np.float64)).T  # (T, N) weight of each node's observed neighbours
        has = M & (R > 0)
        lag = np.where(has, L / np.where(R > 0, R, 1.0), 0.0)
        num = (Z * lag).sum(axis=1)
        s0 = has.sum(axis=1)
    ok = (s0 > 0) & (den > 0) & (n >= 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, n / np.maximum(s0, 1) * num / np.where(den > 0, den, 1.0), np.nan)


def _moran_core(X: np.ndarray, M: np.ndarray, W: sp.csr_array) -> np.ndarray:
    """Moran's I of each row of ``X [T, N]`` (observed where ``M``)."""
    Z, n, den = _moran_prep(X, M)
    return _moran_stat(Z, M, W, n, den, bool(M.all()))


def _normal_moments(W: sp.csr_array, n: int) -> tuple[float, float]:
    """``(E[I], Var[I])`` under the normality assumption for row-standardised ``W`` over ``n`` nodes."""
    Ws = row_standardize(W)
    s0 = float(Ws.sum())
    s1 = 0.5 * float(((Ws + Ws.T) ** 2).sum())
    s2 = float(((np.asarray(Ws.sum(axis=1)).ravel() + np.asarray(Ws.sum(axis=0)).ravel()) ** 2).sum())
    e = -1.0 / (n - 1)
    if s0 == 0:
        return e, float("nan")
    var = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n * n - 1) * s0 * s0) - e * e
    return e, float(var)


def _p_sim(obs: np.ndarray, perms: np.ndarray, expected: float) -> np.ndarray:
    """esda-style pseudo p-values: ``perms [P, T]``, ``obs [T]``."""
    P = perms.shape[0]
    above = (perms >= obs[None, :]).sum(axis=0)
    below = (perms <= obs[None, :]).sum(axis=0)
    larger = np.where(obs >= expected, above, below)
    p = (larger + 1.0) / (P + 1.0)
    return np.where(np.isfinite(obs), p, np.nan)


def morans_i(x: np.ndarray, W, permutations: int = 0, seed: int = 0, progress: bool = False) -> dict:
    """Global Moran's I of ``x`` (``[N]`` or ``[T, N]``, NaN = missing) with weights ``W [N, N]``
    (``progress``: a bar over the permutations).

    Returns ``{"I": [T], "expected", "z": [T], "p_norm": [T], "p_sim": [T] or None, "n": [T]}``
    (scalars instead of ``[T]`` arrays when ``x`` is 1-D).
    """
    from scipy.stats import norm

    x = np.asarray(x, dtype=np.float64)
    one = x.ndim == 1
    X = x[None, :] if one else x
    N = X.shape[1]
    M = ~np.isnan(X)
    Wc = _clean(W)
    I = _moran_core(X, M, Wc)
    e, var = _normal_moments(Wc, N)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (I - e) / np.sqrt(var) if var > 0 else np.full_like(I, np.nan)
    p_norm = np.where(np.isfinite(z), 2 * norm.sf(np.abs(z)), np.nan)
    p_sim = None
    if permutations:
        rng = np.random.default_rng(seed)
        Z, n, den = _moran_prep(X, M)  # a relabelling leaves each step's mean and z^T z unchanged
        complete = bool(M.all())
        perms = np.empty((permutations, X.shape[0]))
        for k in progress_bar(range(permutations), desc="moran's i", unit="permutation", progress=progress):
            order = rng.permutation(N)
            perms[k] = _moran_stat(Z[:, order], M[:, order], Wc, n, den, complete)
        p_sim = _p_sim(I, perms, e)
    out = {"I": I, "expected": e, "z": z, "p_norm": p_norm, "p_sim": p_sim, "n": M.sum(axis=1)}
    if one:
        out = {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in out.items()}
        out["n"] = int(out["n"])
    return out


def global_moran(x: np.ndarray, index: pd.DatetimeIndex, W, permutations: int = 99, seed: int = 0,
                 alpha: float = 0.05, max_perm_steps: int = 500, progress: bool = False) -> dict:
    """Moran's I at every step of ``x [T, N]``, summarised, plus Moran's I of the node means.

    Permutation p-values are computed on at most ``max_perm_steps`` evenly spaced steps (the normal
    approximation is used for the share of significant steps when ``permutations == 0``).
    """
    T = x.shape[0]
    res = morans_i(x, W, permutations=0)
    I = res["I"]
    steps = np.arange(T)
    sub = None
    if permutations:
        if T > max_perm_steps:
            sub = np.unique(np.linspace(0, T - 1, max_perm_steps).round().astype(int))
            steps = sub
        p = morans_i(x[steps], W, permutations=permutations, seed=seed, progress=progress)["p_sim"]
        method = f"permutation ({permutations} relabellings)"
    else:
        p = res["p_norm"]
        method = "normal approximation"
    Is = I[steps]
    ok = np.isfinite(Is) & np.isfinite(p)
    with quiet():
        mean_x = np.nanmean(x, axis=0)
    of_means = morans_i(mean_x, W, permutations=max(permutations, 99), seed=seed)
    finite = I[np.isfinite(I)]
    return {
        "expected": res["expected"],
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "median": float(np.median(finite)) if finite.size else float("nan"),
        "std": float(finite.std()) if finite.size else float("nan"),
        "min": float(finite.min()) if finite.size else float("nan"),
        "max": float(finite.max()) if finite.size else float("nan"),
        "steps": int(T), "steps_with_value": int(finite.size),
        "significance": method, "alpha": alpha,
        "steps_tested": int(ok.sum()), "subsampled_steps": None if sub is None else int(len(sub)),
        "share_significant_positive": float(((Is > res["expected"]) & (p < alpha) & ok).sum() / max(ok.sum(), 1)),
        "share_significant_negative": float(((Is < res["expected"]) & (p < alpha) & ok).sum() / max(ok.sum(), 1)),
        "of_node_means": {"I": of_means["I"], "p_sim": of_means["p_sim"], "z": of_means["z"]},
        "_curves": {"I": I, "index": index},
    }


# ------------------------------------------------------------------------------------- local I
QUADRANTS = {1: "high-high", 2: "low-high", 3: "low-low", 4: "high-low"}


def local_morans_i(values: np.ndarray, W, permutations: int = 999, seed: int = 0, alpha: float = 0.05,
                   nodes: list[str] | None = None, progress: bool = False) -> dict:
    """Local Moran's I of ``values [N]`` (NaN nodes left out) with conditional-permutation p-values
    (``progress``: a bar over the nodes).

    Returns ``{"I": [N], "p_sim": [N], "quadrant": [N] (1 HH, 2 LH, 3 LL, 4 HL, 0 none), "lag": [N],
    "hot_spots": [...], "cold_spots": [...], "outliers": {...}, "permutations", "alpha"}``
    (NaN / 0 for left-out nodes and nodes without neighbours).
    """
    v = np.asarray(values, dtype=np.float64)
    N = len(v)
    nodes = [str(i) for i in range(N)] if nodes is None else list(nodes)
    ok = np.flatnonzero(np.isfinite(v))
    Wc = _clean(W)
    Ws = row_standardize(Wc[ok][:, ok])
    n = len(ok)
    zf = v[ok] - v[ok].mean()
    m2 = float(zf @ zf) / n if n else 0.0
    I_full = np.full(N, np.nan)
    p_full = np.full(N, np.nan)
    q_full = np.zeros(N, dtype=int)
    lag_full = np.full(N, np.nan)
    if n >= 3 and m2 > 0:
        lag = Ws @ zf
        I = zf * lag / m2
        quad = np.where(zf > 0, np.where(lag > 0, 1, 4), np.where(lag > 0, 2, 3))
        k_nb = np.diff(Ws.indptr)
        quad = np.where(k_nb > 0, quad, 0)
        p = np.full(n, np.nan)
        P = int(permutations)
        if P > 0 and k_nb.max() > 0:
            P = int(min(P, max(99, 20_000_000 // max(n, 1))))  # bound the [P, n] draw matrix
            rng = np.random.default_rng(seed)
            kmax = int(k_nb.max())
            draws = np.argsort(rng.random((P, n - 1)), axis=1)[:, :kmax]  # (P, kmax) into "the others"
            for i in progress_bar(range(n), desc="local moran's i", unit="sensor", progress=progress):
                k = k_nb[i]
                if k == 0:
                    continue
                others = draws[:, :k]
                others = others + (others >= i)  # skip node i itself
                w = Ws.data[Ws.indptr[i]: Ws.indptr[i + 1]]
                Ip = zf[i] * (zf[others] @ w) / m2  # (P,)
                larger = int((Ip >= I[i]).sum())
                if P - larger < larger:
                    larger = P - larger
                p[i] = (larger + 1.0) / (P + 1.0)
        I_full[ok], p_full[ok], q_full[ok], lag_full[ok] = I, p, quad, lag
        permutations = P

    def spots(q):
        sel = [i for i in range(N) if q_full[i] == q and np.isfinite(p_full[i]) and p_full[i] < alpha]
        sel.sort(key=lambda i: p_full[i])
        return [{"node": nodes[i], "value": float(v[i]), "I": float(I_full[i]), "p": float(p_full[i])} for i in sel]

    return {"I": I_full, "p_sim": p_full, "quadrant": q_full, "lag": lag_full,
            "hot_spots": spots(1), "cold_spots": spots(3),
            "outliers": {"high_low": [s["node"] for s in spots(4)], "low_high": [s["node"] for s in spots(2)]},
            "permutations": int(permutations), "alpha": alpha}


# --------------------------------------------------------------------------------------- plots
def plot_moran(summary: dict, path: Path, title: str = "") -> Path | None:
    """Moran's I over time, with its daily mean and the expectation under no autocorrelation."""
    c = summary["_curves"]
    I, index = c["I"], c["index"]
    if not np.isfinite(I).any():
        return None
    fig, axes = _plotting.figure(1, 1, size=(11, 4))
    ax = axes[0, 0]
    s = pd.Series(I, index=index)
    thin = len(s) > 3000
    ax.plot(s.index, s.values, color="#9ecae1" if thin else "#1f5fa8", lw=0.5 if thin else 1.0,
            label="Moran's I per time step")
    span_days = (index[-1] - index[0]) / pd.Timedelta("1D") if len(index) > 1 else 0
    rule, label = ("7D", "weekly mean") if span_days > 90 else ("1D", "daily mean")
    agg = s.resample(rule).mean()
    if len(agg) >= 2 and len(agg) < len(s):
        ax.plot(agg.index + pd.Timedelta(rule) / 2, agg.values, color="#08519c", lw=1.4, label=label)
    ax.axhline(summary["expected"], color="#d62728", ls="--", lw=1,
               label=f"E[I] = {summary['expected']:.3f} (no autocorrelation)")
    ax.set_xlabel("time")
    ax.set_ylabel("global Moran's I")
    pos = summary["share_significant_positive"]
    ax.set_title(f"Spatial autocorrelation over time{' - ' + title if title else ''}: mean I = "
                 f"{summary['mean']:.3f}, significantly positive at {100 * pos:.0f}% of steps")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    _plotting.date_axis(ax)
    return _plotting.save(fig, path)


def map_size(coords: np.ndarray, longest: float = 8.5, extra_w: float = 1.5) -> tuple[float, float]:
    """A figure size that fits the sensors' bounding box (equal-distance axes) in ``longest`` inches."""
    c = np.asarray(coords, dtype=np.float64)
    lat0 = float(np.nanmean(c[:, 0]))
    w = max(float(np.ptp(c[:, 1])) * max(np.cos(np.radians(lat0)), 0.1), 1e-9)
    h = max(float(np.ptp(c[:, 0])), 1e-9)
    ratio = float(np.clip(h / w, 0.4, 2.2))
    if ratio >= 1:
        return max(7.5, longest / ratio + extra_w), longest
    return longest + extra_w, max(5.0, longest * ratio + 1.0)


def _map_axes(ax, coords: np.ndarray) -> None:
    from matplotlib.ticker import MaxNLocator

    lat0 = float(np.nanmean(coords[:, 0]))
    ax.set_aspect(1.0 / max(np.cos(np.radians(lat0)), 0.1))
    ax.set_xlabel("longitude (degrees)")
    ax.set_ylabel("latitude (degrees)")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.grid(alpha=0.2)


def plot_lisa_map(lisa: dict, coords: np.ndarray, W, path: Path, title: str = "", unit: str = "",
                  nodes: list[str] | None = None) -> Path:
    """Nodes on the map coloured by LISA class (significant hot/cold spots and outliers)."""
    coords = np.asarray(coords, dtype=np.float64)
    fig, axes = _plotting.figure(1, 1, size=map_size(coords, extra_w=0.5))
    ax = axes[0, 0]
    if W is not None:
        from matplotlib.collections import LineCollection

        Wc = _clean(W).tocoo()
        keep = Wc.row < Wc.col
        segs = np.stack([coords[Wc.row[keep]][:, ::-1], coords[Wc.col[keep]][:, ::-1]], axis=1)  # (E, 2, 2)
        ax.add_collection(LineCollection(segs, colors="#d9d9d9", linewidths=0.5, zorder=1))  # type: ignore[arg-type]
    p, q = lisa["p_sim"], lisa["quadrant"]
    sig = np.isfinite(p) & (p < lisa["alpha"])
    styles = [(1, "#d62728", "hot spot (high-high)"), (3, "#1f5fa8", "cold spot (low-low)"),
              (4, "#fb9a99", "high among low"), (2, "#a6cee3", "low among high")]
    ns = ~sig | (q == 0)
    ax.scatter(coords[ns, 1], coords[ns, 0], s=18, color="#969696", zorder=2, label="not significant")
    for code, color, label in styles:
        sel = sig & (q == code)
        if sel.any():
            ax.scatter(coords[sel, 1], coords[sel, 0], s=45, color=color, edgecolor="k", lw=0.4, zorder=3,
                       label=f"{label}: {int(sel.sum())}")
            if nodes is not None and len(coords) <= 60:
                for i in np.flatnonzero(sel):
                    ax.annotate(_plotting.short(nodes[i], 18), (coords[i, 1], coords[i, 0]), fontsize=7,
                                xytext=(4, 3), textcoords="offset points")
    _map_axes(ax, coords)
    what = f"mean {unit}" if unit else "node means"
    ax.set_title(f"Local Moran's I of the {what}\n(p < {lisa['alpha']}, {lisa['permutations']} permutations)"
                 + (f" - {title}" if title else ""))
    ax.legend(loc="best", fontsize=8)
    return _plotting.save(fig, path)
