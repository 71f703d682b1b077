"""Periodicity: the dominant periods of each node from its autocorrelation and its power spectrum.

Both estimators run on the node's gap-filled series (interior gaps interpolated linearly, leading and
trailing gaps left out; see ``_series``), with its mean removed.

Autocorrelation (``statsmodels.tsa.stattools.acf``, FFT):
  peaks of the ACF (``scipy.signal.find_peaks``, prominence >= 0.05, height >= 0.1 and above the
  white-noise band ``1.96 / sqrt(n)``) are candidate periods. A cycle also peaks at every multiple of
  its period (a daily cycle peaks at 24, 48, ..., 168 h), so a peak at a multiple ``m * B`` of an
  accepted shorter period ``B`` is only a period of its own when it stands above that lattice: its ACF
  must exceed the ACF at ``(m - 1) * B`` and ``(m + 1) * B`` by a margin (``max(0.02, 2 / sqrt(n))``).
  That is the test for a weekly cycle in hourly data: ``acf(168) > acf(144), acf(192)`` (the same
  weekday beats the day before and after). Periods are ranked by their ACF value.

Periodogram (``scipy.signal.welch``, Hann window, linear detrend per segment):
  the segment length is a multiple of the longest testable cycle L (6 L to 8 L when the series holds
  two such segments, else the whole series), so the daily and weekly frequencies fall exactly on
  frequency bins. Peaks are ranked by power; a peak at ``P / m`` of a stronger peak ``P`` is marked as
  its harmonic (a non-sinusoidal daily profile has power at 12 h, 8 h, ...), and the reported periods
  are the non-harmonic ones. A peak counts when its power is at least ``snr`` (5) times its background
  (the geometric mean of the median power over ``[f / 2, f)`` and over ``(f, 2 f]``) *and* above what
  noise reaches with a 0.1 % chance over all bins (an average of K segments of noise is
  Gamma(K)-distributed; one raw periodogram is exponential and needs a ratio of ~20), so white noise
  and the red spectrum of a random walk have (almost always) none. A weekly modulation of a daily
  cycle also puts power at ``1 / (1/24 h +- 1/168 h)`` = 21 h and 28 h: those peaks are marked
  ``sideband`` and left out of the periods. ``power_share`` is the peak's share of the total power. A
  period within 4 % of the daily or weekly cycle carries ``cycle: daily|weekly``.

Daily and weekly cycles are checked explicitly (``cycles``): testable when the node has at least
``min_cycles`` (2) whole cycles of data (a 7-day series is too short for a weekly period: the result
says so), found by the ACF when an accepted ACF period lies within 4 % of it, and by the periodogram
when the spectrum has a peak within one bin of it that is at least ``snr`` (5) times its background
and above the 0.1 % noise level of that one bin. ``found`` is either of the two. On short series (one
segment) the periodogram is rough and misses cycles the ACF finds; the counts per estimator show it.

Public API: :func:`node_periodicity`, :func:`periodicity`, :func:`plot_periodicity`.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import find_peaks, welch

from stkd.analysis import _plotting
from stkd.analysis._series import (
    cycle_steps,
    fill_gaps,
    fmt_hours,
    observed_span,
    step_hours,
)
from stkd.progress import bar as progress_bar

MIN_PROMINENCE = 0.05
MIN_ACF = 0.1  # an ACF peak lower than this is not reported as a period (noise makes many small ones)
TOL_FRAC = 0.04
MAX_SEGMENT_CYCLES = 8
MIN_SEGMENT_CYCLES = 6
MAX_CANDIDATES = 40  # the strongest spectral maxima whose background is checked


def _tol(period: float) -> int:
    return max(1, int(round(TOL_FRAC * period)))


def _acf(y: np.ndarray, nlags: int) -> np.ndarray:
    from statsmodels.tsa.stattools import acf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(acf(y, nlags=nlags, fft=True), dtype=np.float64)


def _near_max(a: np.ndarray, lag: int) -> float:
    t = _tol(lag)
    lo, hi = max(1, lag - t), min(len(a) - 1, lag + t)
    return float(np.max(a[lo: hi + 1])) if lo <= hi else float("nan")


def acf_periods(a: np.ndarray, n: int, top_k: int = 3) -> dict:
    """Periods from an ACF ``a[0..L]`` of a series of length ``n`` (see the module docstring).

    Returns ``{"periods": [{"steps", "acf"}...] (ranked, top_k), "accepted": [...all, by lag],
    "peaks": [lags of all ACF peaks]}``.
    """
    noise = max(MIN_ACF, 1.96 / np.sqrt(max(n, 1)))
    margin = max(0.02, 2.0 / np.sqrt(max(n, 1)))
    peaks, _ = find_peaks(a, prominence=MIN_PROMINENCE, height=noise)
    peaks = [int(p) for p in peaks if p >= 2]
    accepted: list[int] = []
    L = len(a) - 1
    for lag in peaks:
        bases = [b for b in accepted if round(lag / b) >= 2 and abs(lag - round(lag / b) * b) <= _tol(lag)]
        ok = True
        for b in bases:
            m = round(lag / b)
            lo_lag, hi_lag = (m - 1) * b, (m + 1) * b
            if hi_lag + _tol(hi_lag) > L:  # the lattice beyond cannot be seen: not testable
                ok = False
                break
            if not a[lag] >= max(_near_max(a, lo_lag), _near_max(a, hi_lag)) + margin:
                ok = False
                break
        if ok:
            accepted.append(lag)
    ranked = sorted(accepted, key=lambda p: -a[p])[:top_k]
    return {"periods": [{"steps": p, "acf": float(a[p])} for p in ranked], "accepted": accepted,
            "peaks": peaks}


def _segment(n: int, longest_cycle: int | None) -> int:
    """Welch segment length: a multiple of the longest testable cycle L between 6 L and 8 L when the
    series holds at least two such segments, else the whole series (fewer than 6 cycles per segment
    would put the cycle on one of the lowest frequency bins, with no background to compare it to)."""
    L = longest_cycle
    if L is None or n < 2 * MIN_SEGMENT_CYCLES * L:
        return n
    return min(MAX_SEGMENT_CYCLES * L, (n // 2) // L * L)


def spectrum(y: np.ndarray, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density of ``y`` (frequencies in cycles per step)."""
    nperseg = int(min(nperseg, len(y)))
    f, p = welch(y, fs=1.0, window="hann", nperseg=nperseg, noverlap=nperseg // 2, detrend="linear",
                 scaling="density")
    return f, p


def _background(f: np.ndarray, p: np.ndarray, k: int) -> float:
    """Background power at bin ``k``: the geometric mean of the median power of ``[f_k / 2, f_k)`` and of
    ``(f_k, 2 f_k]``, without the bins ``k - 2 .. k + 2``.

    Taking the two sides separately keeps a red (falling) spectrum from looking like a peak at every
    low frequency: a one-sided band median would sit on the many lower-power bins above ``f_k``.
    """
    df = f[1] - f[0]
    lo = max(1, int(np.ceil(f[k] / 2 / df)))
    hi = min(len(p) - 1, int(np.floor(2 * f[k] / df)))
    left, right = p[lo: max(lo, k - 2)], p[k + 3: hi + 1]
    if left.size and right.size:
        return float(np.sqrt(_median(left) * _median(right)))
    side = left if left.size else right
    return _median(side) if side.size else float("nan")


def _median(a: np.ndarray) -> float:
    """``np.median`` of a small 1-D array without its per-call overhead (called thousands of times)."""
    n = a.size
    h = n // 2
    part = np.partition(a, (h - 1, h) if n % 2 == 0 else h)
    return float(part[h]) if n % 2 else float(0.5 * (part[h - 1] + part[h]))


def _ratio(peak: float, bg: float) -> float:
    return float(peak / bg) if np.isfinite(bg) and bg > 0 else float("inf")


@lru_cache(maxsize=256)
def noise_ratio(segments: float, tail: float) -> float:
    """Peak-to-median ratio that noise exceeds with probability ``tail`` in one frequency bin.

    A Welch average of ``segments`` (effective) periodograms of noise is Gamma-distributed with shape
    ``segments`` (an exponential for one segment), so a single raw periodogram needs a far higher
    ratio than an average of many before a peak means anything.
    """
    from scipy.stats import gamma

    k = max(1.0, float(segments))
    return float(gamma.ppf(1.0 - tail, k, scale=1.0 / k) / gamma.median(k, scale=1.0 / k))


def _segments(n: int, nperseg: int) -> float:
    """Effective number of independent segments of a Hann, 50 %-overlap Welch estimate."""
    count = 1 + max(0, (n - nperseg) // max(1, nperseg - nperseg // 2))
    # overlapping segments are not independent, and the background is itself estimated: count half
    return max(1.0, 0.5 * count)


def spectrum_periods(f: np.ndarray, p: np.ndarray, nperseg: int, top_k: int = 3, snr: float = 5.0,
                     cycles: dict[str, int] | None = None, segments: float = 1.0) -> dict:
    """Ranked spectral peaks that stand out of their local background, with harmonic and sideband marks
    (see the module docstring)."""
    total = float(p[1:].sum())
    valid = (f > 0) & (f <= 0.5) & (f >= 3.0 / nperseg)  # periods of >= 2 steps, >= 3 cycles per segment
    # any of the bins may peak by chance: a false-alarm rate of 0.1 % over all of them
    need = max(snr, noise_ratio(segments, 0.001 / max(1, int(valid.sum()))))
    peaks, _ = find_peaks(p)
    peaks = sorted((int(k) for k in peaks if valid[k]), key=lambda k: -p[k])[:MAX_CANDIDATES]
    df = 1.0 / nperseg
    sidebands = []
    if cycles and "daily" in cycles and "weekly" in cycles:
        fd, fw = 1.0 / cycles["daily"], 1.0 / cycles["weekly"]
        sidebands = [fd - fw, fd + fw]
    out: list[dict[str, Any]] = []
    kept: list[int] = []  # indices of the accepted peaks
    for k in peaks:
        if len(out) >= 4 * top_k + 8:
            break
        ratio = _ratio(p[k], _background(f, p, k))
        if ratio < need:
            continue
        period = 1.0 / f[k]
        harmonic_of = None
        for q in kept:
            P = 1.0 / f[q]
            m = round(P / period)
            # one frequency bin is period**2 / nperseg steps wide at this period
            if m >= 2 and abs(P / m - period) <= max(0.02 * period, period**2 / nperseg):
                harmonic_of = float(P)
                break
        item: dict[str, Any] = {"steps": float(period), "power_share": float(p[k] / total) if total > 0 else float("nan"),
                "snr": ratio, "harmonic_of": harmonic_of}
        if any(abs(f[k] - sb) <= 1.01 * df for sb in sidebands):
            item["sideband"] = "daily x weekly"
        out.append(item)
        if harmonic_of is None and "sideband" not in item:
            kept.append(k)
    periods = [o for o in out if o["harmonic_of"] is None and "sideband" not in o][:top_k]
    return {"periods": periods, "peaks": out[: 2 * top_k + 4]}


def _spectrum_cycle(f: np.ndarray, p: np.ndarray, period: int, snr: float, segments: float = 1.0) -> dict:
    k = int(np.argmin(np.abs(f - 1.0 / period)))
    lo, hi = max(1, k - 1), min(len(p) - 2, k + 1)
    if lo > hi:
        return {"found": False, "snr": float("nan")}
    best = lo + int(np.argmax(p[lo: hi + 1]))
    is_peak = p[best] >= p[best - 1] and p[best] >= p[best + 1]
    ratio = _ratio(p[best], _background(f, p, k))
    need = max(snr, noise_ratio(segments, 0.001))  # one bin tested: a 0.1 % false-alarm rate
    return {"found": bool(is_peak and ratio >= need), "snr": ratio}


def node_periodicity(y: np.ndarray, cycles: dict[str, int], hours_per_step: float, top_k: int = 3,
                     min_cycles: int = 2, snr: float = 5.0) -> dict:
    """Periodicity of one gap-filled series ``y`` (no NaN).

    Args:
        y: the series.
        cycles: named cycles to check, in steps (``{"daily": 24, "weekly": 168}``).
        hours_per_step: the step length in hours (periods are reported in steps and hours).
        top_k: periods to report per estimator.
        min_cycles: whole cycles of data needed to test a cycle.
        snr: peak-to-background power ratio for the periodogram's cycle check.
    Returns:
        ``{"n", "acf": {"periods", "dominant"}, "periodogram": {"periods", "peaks", "dominant",
        "nperseg"}, "cycles": {name: {...}}, "_acf", "_freq", "_psd"}`` (underscore keys: arrays).
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    testable = {c: P for c, P in cycles.items() if n >= min_cycles * P}
    longest = max(testable.values()) if testable else None
    if longest is not None:
        nlags = min(n - 1, int(2.2 * longest) + _tol(longest))
    else:
        nlags = max(1, n // 2)
    a = _acf(y - y.mean(), nlags)
    ap = acf_periods(a, n, top_k)
    nperseg = _segment(n, longest)
    f, p = spectrum(y - y.mean(), nperseg)
    segs = _segments(n, nperseg)
    sp_ = spectrum_periods(f, p, nperseg, top_k, snr, testable, segs)

    def hours(items):
        for it in items:
            it["hours"] = it["steps"] * hours_per_step
            it["cycle"] = next((c for c, P in cycles.items() if abs(it["steps"] - P) <= _tol(P)), None)
            if it.get("harmonic_of") is not None:
                it["harmonic_of_hours"] = it["harmonic_of"] * hours_per_step
        return items

    res_cycles = {}
    for c, P in cycles.items():
        entry: dict[str, Any] = {"steps": P, "hours": P * hours_per_step}
        if c not in testable:
            entry.update(testable=False, found=None, acf=None, periodogram=None,
                         reason=f"too short: {n} steps, a {c} period needs at least {min_cycles} cycles "
                                f"({min_cycles * P} steps)")
        else:
            by_acf = any(abs(L - P) <= _tol(P) for L in ap["accepted"])
            sc = _spectrum_cycle(f, p, P, snr, segs)
            entry.update(testable=True, acf=by_acf, periodogram=sc["found"], found=bool(by_acf or sc["found"]),
                         acf_value=float(_near_max(a, P)) if P < len(a) else float("nan"), snr=sc["snr"])
        res_cycles[c] = entry
    acf_list = hours(ap["periods"])
    psd_list = hours(sp_["periods"])
    return {
        "n": n,
        "acf": {"periods": acf_list, "dominant": acf_list[0] if acf_list else None, "nlags": nlags},
        "periodogram": {"periods": psd_list, "peaks": hours(sp_["peaks"]),
                        "dominant": psd_list[0] if psd_list else None, "nperseg": nperseg, "segments": segs},
        "cycles": res_cycles,
        "_acf": a, "_freq": f, "_psd": p,
    }


def period_label(item: dict, cycles: dict[str, int], hours_per_step: float) -> str:
    """``24 h (daily)`` for a period matched to a named cycle, else its length (``8 h``)."""
    if item.get("cycle"):
        return f"{fmt_hours(cycles[item['cycle']] * hours_per_step)} ({item['cycle']})"
    return fmt_hours(item["hours"])


def periodicity(x: np.ndarray, index: pd.DatetimeIndex, nodes: list[str], top_k: int = 3,
                min_cycles: int = 2, snr: float = 5.0, min_steps: int = 16, progress: bool = False) -> dict:
    """Periodicity of every node of ``x [T, N]`` (NaN = missing) and a summary over nodes (``progress``:
    a bar over the nodes).

    Returns ``{"cycles": {name: {"steps", "hours", "testable", "nodes_tested", "nodes_found",
    "share_found", "share_acf", "share_periodogram", "reason"?}}, "dominant_acf": {period_hours: count},
    "dominant_periodogram": {...}, "per_node": {node: result of node_periodicity or {"skipped": why}},
    "_curves": {...}}``.
    """
    hps = step_hours(index)
    cycles = cycle_steps(index)
    filled = fill_gaps(x)
    per_node: dict[str, dict] = {}
    acfs, psds = [], []
    for j, node in enumerate(progress_bar(nodes, desc="periodicity", unit="sensor", progress=progress)):
        lo, hi = observed_span(~np.isnan(filled[:, j]))
        y = filled[lo:hi, j]
        if hi - lo < min_steps:
            per_node[node] = {"skipped": f"only {hi - lo} observed steps"}
            continue
        if np.nanstd(y) == 0:
            per_node[node] = {"skipped": "constant series"}
            continue
        r = node_periodicity(y, cycles, hps, top_k, min_cycles, snr)
        acfs.append((r.pop("_acf")))
        psds.append((r.pop("_freq"), r.pop("_psd")))
        per_node[node] = r
    done = {k: v for k, v in per_node.items() if "skipped" not in v}
    summary = {}
    for c, P in cycles.items():
        tested = [v["cycles"][c] for v in done.values() if v["cycles"][c]["testable"]]
        s: dict[str, Any] = {"steps": P, "hours": P * hps, "testable": bool(tested), "nodes_tested": len(tested),
             "nodes_found": sum(bool(t["found"]) for t in tested),
             "nodes_acf": sum(bool(t["acf"]) for t in tested),
             "nodes_periodogram": sum(bool(t["periodogram"]) for t in tested)}
        n_t = max(len(tested), 1)
        s.update(share_found=s["nodes_found"] / n_t if tested else None,
                 share_acf=s["nodes_acf"] / n_t if tested else None,
                 share_periodogram=s["nodes_periodogram"] / n_t if tested else None)
        if not tested:
            longest = max((v["n"] for v in done.values()), default=0)
            s["reason"] = (f"series too short for a {c} period: the longest node has {longest} steps, "
                           f"{min_cycles} cycles need {min_cycles * P}")
        summary[c] = s

    def counts(key):
        labels = [period_label(v[key]["dominant"], cycles, hps) for v in done.values() if v[key]["dominant"]]
        labels.extend("none" for v in done.values() if not v[key]["dominant"])
        ser = pd.Series(labels, dtype=object)
        return {str(k): int(v) for k, v in ser.value_counts().items()} if len(ser) else {}

    # Mean curves over nodes for the plot (series of different lengths: common prefix / common grid).
    curves = {"hours_per_step": hps, "cycles": cycles}
    if acfs:
        L = min(len(a) for a in acfs)
        curves["acf"] = np.mean([a[:L] for a in acfs], axis=0)
        lens = {len(fp[0]) for fp in psds}
        if len(lens) == 1:
            f0 = psds[0][0]
            curves["freq"] = f0
            curves["psd"] = np.mean([p / p[1:].sum() for _, p in psds], axis=0)
    return {"cycles": summary, "dominant_acf": counts("acf"), "dominant_periodogram": counts("periodogram"),
            "nodes_analysed": len(done), "nodes_skipped": len(per_node) - len(done), "per_node": per_node,
            "_curves": curves}


def plot_periodicity(result: dict, path: Path, title: str = "") -> Path | None:
    """Mean autocorrelation (against lag in hours) and mean normalised spectrum (against period in
    hours, log axis) over the analysed nodes, with the daily and weekly cycles marked."""
    c = result["_curves"]
    if "acf" not in c:
        return None
    hps = c["hours_per_step"]
    fig, axes = _plotting.figure(1, 2, size=(12, 4.3))
    ax = axes[0, 0]
    a = c["acf"]
    lags_h = np.arange(len(a)) * hps
    ax.plot(lags_h, a, color="#1f5fa8", lw=1.2)
    ax.axhline(0, color="grey", lw=0.8)
    colors = {"daily": "#d62728", "weekly": "#2ca02c"}
    for name, P in c["cycles"].items():
        if P < len(a):
            ax.axvline(P * hps, color=colors.get(name, "k"), ls="--", lw=1,
                       label=f"{name} ({fmt_hours(P * hps)})")
    ax.set_xlabel("lag (hours)")
    ax.set_ylabel("autocorrelation (mean over nodes)")
    ax.set_title("Autocorrelation")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    ax = axes[0, 1]
    if "psd" in c:
        f, p = c["freq"], c["psd"]
        keep = f > 0
        per_h = 1.0 / f[keep] * hps
        ax.loglog(per_h, p[keep], color="#6a3d9a", lw=1)
        for name, P in c["cycles"].items():
            if P * hps <= per_h.max() and result["cycles"].get(name, {}).get("testable"):
                ax.axvline(P * hps, color=colors.get(name, "k"), ls="--", lw=1,
                           label=f"{name} ({fmt_hours(P * hps)})")
        ax.set_xlabel("period (hours, log scale)")
        ax.set_ylabel("share of power (mean over nodes, log)")
        ax.set_title("Periodogram (Welch)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "nodes have different lengths:\nsee analysis.json for per-node peaks",
                ha="center", va="center")
    fig.suptitle(f"Periodicity{' - ' + title if title else ''} ({result['nodes_analysed']} nodes)")
    return _plotting.save(fig, path)
