"""``analyze(data, out_dir)``: every analysis of one data set, written as a report.

```
out_dir/analysis.md     the report: tables, findings, embedded plots
out_dir/analysis.json   all the numbers (NaN -> null)
out_dir/plots/*.png     missing.png, periodicity.png, stl_<node>.png, trend_slopes.png, morans_i.png,
                        lisa_map.png, lag_map.png, lag_hist.png (those the data allow)
```

What each section computes is in the docstrings of ``missing``, ``periodicity``, ``trend``,
``spatial``, ``lags`` and ``anomalies``, and for users in ``docs/analysis.md``. Budgets keep it fast on
big data: the MSTL/STL decomposition runs on at most ``stl_budget`` node-steps (the most recent steps of
each node, but never fewer than six of the shortest and three of the longest period; slopes then come
from daily means over the whole span), the per-step Moran's I permutation test on at most 500 evenly
spaced steps, and the cross-correlations on the last 20,000 steps. Every budget that cuts is stated in
the report's notes.

Public API: :func:`analyze`, :func:`headline`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from stkd.analysis import anomalies as _anom
from stkd.analysis import lags as _lags
from stkd.analysis import missing as _missing
from stkd.analysis import periodicity as _per
from stkd.analysis import spatial as _spatial
from stkd.analysis import trend as _trend
from stkd.analysis._series import (
    cycle_steps,
    feature_matrix,
    fmt_hours,
    period_words,
    quiet,
    resolve_nodes,
    step_hours,
    step_of,
)
from stkd.errors import STKDError

REPORT = "analysis.md"
NUMBERS = "analysis.json"
PLOTS = "plots"
PLOT_DAYS = 28  # an STL plot of a long series shows its last 4 weeks


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise STKDError(f"--out {out_dir} exists and is a file; name a directory")
        if any(out_dir.iterdir()) and not overwrite:
            raise STKDError(f"--out {out_dir} exists and is not empty; pass --overwrite to write the analysis "
                            f"into it (files of the same names are replaced, others are kept) or choose a new "
                            f"directory")


def _strip(obj):
    """Drop underscore keys (arrays kept for plots) recursively."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _fmt(v, spec: str = ".3g") -> str:
    if v is None:
        return "n/a"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "n/a" if not np.isfinite(f) else format(f, spec)


def _pct(v) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    if 0 < abs(v) < 0.001:
        return f"{100 * v:.3f}%"
    return f"{100 * v:.1f}%"


def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"


def _table(headers: list[str], rows: list[list]) -> str:
    def esc(s) -> str:
        return str(s).replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _median_strengths(per_node: dict, keys: list[str]) -> dict[str, float | None]:
    """The median over nodes of each component's strength (``trend``, ``1 day``, ...); None where no node
    has a finite value for it."""
    out: dict[str, float | None] = {}
    for k in keys:
        vals = [v["strength"][k] for v in per_node.values() if np.isfinite(v["strength"].get(k, np.nan))]
        out[k] = float(np.median(vals)) if vals else None
    return out


def _default_nodes(missing: dict, nodes: list[str], k: int = 3) -> list[int]:
    shares = [missing["per_node"][n]["share"] for n in nodes]
    order = sorted(range(len(nodes)), key=lambda i: (shares[i], i))
    return [i for i in order if shares[i] < 1.0][:k]


# ------------------------------------------------------------------------------------------ analyze
def analyze(data, out_dir: Path, nodes=None, max_pairs: int = 200, seed: int = 0, *, overwrite: bool = False,
            feature: str | None = None, top_k: int = 3, permutations: int = 99, lisa_permutations: int = 999,
            max_lag: int | None = None, anomaly_threshold: float = 5.0, max_anomalies: int = 100,
            stl_budget: int = 600_000, plots: bool = True,
            progress: Callable[[str], None] | bool | None = None) -> dict:
    """Analyse ``data`` (an :class:`~stkd.data.container.STData`) and write the report to ``out_dir``.

    Args:
        data: the data set; the first target is analysed unless ``feature`` names another feature.
        out_dir: the report directory; refused when it exists and is not empty, unless ``overwrite``.
        nodes: node ids (a list or ``"a,b"``) whose STL decomposition is plotted; default: the 3 most
            complete nodes.
        max_pairs: neighbour pairs whose lagged cross-correlation is computed (a seeded sample).
        seed: seeds every permutation test and the pair sample.
        permutations: relabellings for the per-step Moran's I test (0: normal approximation only).
        lisa_permutations: conditional permutations for local Moran's I.
        max_lag: largest cross-correlation lag in steps (default: one hour, at least 3 steps).
        anomaly_threshold: robust |z| of the STL residual above which a point is an anomaly.
        max_anomalies: anomalies listed (the most extreme; counts cover all).
        stl_budget: most node-steps decomposed by MSTL/STL (the most recent steps of each node; at least
            six of the shortest and three of the longest period per node).
        plots: draw the PNGs (False: numbers and report text only, several times faster).
        progress: a callable is called with the name of each section as it starts; a callable or True
            also draws a progress bar on stderr over the sensors (or pairs, permutations) of the long
            sections (:mod:`stkd.progress`); None or False: silent.
    Returns:
        The numbers written to ``analysis.json`` (a dict; NaN stays NaN here).
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    say = progress if callable(progress) else (lambda _msg: None)
    bars = bool(progress)  # per-sensor bars in the long sections
    x, observed, fname = feature_matrix(data, feature)
    index, all_nodes = data.index, list(data.nodes)
    T, N = x.shape
    hps = step_hours(index)
    cycles = cycle_steps(index)
    chosen = resolve_nodes(nodes, all_nodes) if nodes else None
    notes: list[str] = []
    timing: dict[str, float] = {}
    drawn: dict[str, str] = {}
    plot_dir = out_dir / PLOTS
    if not plots:
        notes.append("plots not drawn (plots=False / --no-plots)")
    title = data.name

    def timed(name):
        class _T:
            def __enter__(self):
                say(name)
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                timing[name] = round(time.perf_counter() - self.t, 3)
        return _T()

    def plot(key, fn, *args, **kw):
        if not plots:
            return
        try:
            p = fn(*args, **kw)
        except Exception as e:  # a plot must never lose the numbers
            notes.append(f"plot {key} failed: {type(e).__name__}: {e}")
            return
        if p is not None:
            drawn[key] = Path(p).relative_to(out_dir).as_posix()

    # ---------------------------------------------------------------- missing
    with timed("missing"):
        missing = _missing.missing_summary(observed, index, all_nodes)
        plot("missing", _missing.plot_missing, missing, plot_dir / "missing.png", title)

    # ------------------------------------------------------------ periodicity
    with timed("periodicity"):
        per = _per.periodicity(x, index, all_nodes, top_k=top_k, progress=bars)
        plot("periodicity", _per.plot_periodicity, per, plot_dir / "periodicity.png", title)

    # ------------------------------------------------------- trend + anomalies
    with timed("trend"):
        step = step_of(index)
        periods, why = _trend.choose_periods(per["cycles"])
        period = periods[0] if periods else None  # the shortest: despiking, plots
        stl: dict[str, Any] = {"method": None, "periods": [], "period_steps": period,
                               "period_hours": None if period is None else period * hps}
        decomps: dict[int, dict] = {}
        long_series = False
        if not periods:
            notes.append(f"{why}: trend decomposition, trend slopes and anomalies skipped")
            stl["reason"] = why
        else:
            if why:
                notes.append(why)
            method = "MSTL" if len(periods) > 1 else "STL"
            cap = max(stl_budget // max(N, 1), 6 * periods[0], 3 * periods[-1])
            long_series = T > cap
            if long_series:
                notes.append(f"long series: {method} and anomalies use the last {cap} of {T} steps of each node "
                             f"({index[T - cap].date()} .. {index[-1].date()}; budget {stl_budget} node-steps); "
                             f"trend slopes are OLS slopes of the daily means over the whole span")
            decomps = _trend.decompose_nodes(x, periods, max_steps=cap if long_series else None, progress=bars,
                                             desc=f"trend ({method})")
            stl.update(method=method, steps_decomposed=int(min(T, cap)),
                       periods=[{"steps": p, "hours": p * hps, "name": period_words(p, step)} for p in periods])
            fewer = [j for j, d in decomps.items() if "skipped" not in d and len(d["periods"]) < len(periods)]
            if fewer:
                notes.append(f"{_nodes(len(fewer))} too short for two cycles of every period: decomposed with the "
                             "periods that fit (analysis.json: stl.per_node)")
        slopes = (_trend.trend_slopes(x, index, all_nodes, decomps, method="daily_means" if long_series else "stl")
                  if periods else {"method": None, "per_node": {}})
        skipped = {all_nodes[j]: d["skipped"] for j, d in decomps.items() if "skipped" in d}
        stl["nodes_decomposed"] = sum(1 for d in decomps.values() if "skipped" not in d)
        stl["nodes_skipped"] = skipped
        stl["per_node"] = {all_nodes[j]: {"periods": [period_words(p, step) for p in d["periods"]],
                                          "strength": _trend.strengths(d, step)}
                           for j, d in decomps.items() if "skipped" not in d}
        stl["median_strength"] = _median_strengths(stl["per_node"], ["trend", *(q["name"] for q in stl["periods"])])
        if chosen is None:
            chosen = _default_nodes(missing, all_nodes)
        stl["plotted_nodes"] = [all_nodes[j] for j in chosen]
    with timed("anomalies"):
        anom = _anom.find_anomalies(decomps, x, index, all_nodes, anomaly_threshold, max_anomalies, progress=bars)
    with timed("trend plots"):
        unit = fname
        for j in chosen:
            d = decomps.get(j)
            if d is None or "skipped" in d:
                notes.append(f"decomposition of node {all_nodes[j]} not plotted: "
                             f"{(d or {}).get('skipped', 'not decomposed')}")
                continue
            last = None
            if period is not None and (d["hi"] - d["lo"]) * hps > PLOT_DAYS * 24 * 1.5:
                last = int(round(PLOT_DAYS * 24 / hps))
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in all_nodes[j])
            plot(f"stl_{all_nodes[j]}", _trend.plot_stl, index, x[:, j], d, all_nodes[j],
                 plot_dir / f"stl_{safe}.png", unit=unit, period=period, last_steps=last,
                 threshold=anomaly_threshold, hours_per_step=hps)
        plot("trend_slopes", _trend.plot_slopes, slopes, plot_dir / "trend_slopes.png", unit=unit)

    # ---------------------------------------------------------------- spatial
    W, wsrc = _spatial.weights_matrix(data.adjacency, data.coords)
    spatial: dict = {"weights": wsrc}
    lag_res: dict | None = None
    if W is None or N < 3:
        notes.append("spatial analyses skipped: " + ("fewer than 3 nodes" if N < 3 else wsrc))
    else:
        with timed("spatial"):
            gm = _spatial.global_moran(x, index, W, permutations=permutations, seed=seed, progress=bars)
            if gm.get("subsampled_steps"):
                notes.append(f"Moran's I permutation test on {gm['subsampled_steps']} evenly spaced of {T} steps")
            with quiet():
                means = np.nanmean(x, axis=0)
            lisa = _spatial.local_morans_i(means, W, permutations=lisa_permutations, seed=seed, nodes=all_nodes,
                                           progress=bars)
            spatial.update(global_moran=gm, lisa=lisa)
            plot("morans_i", _spatial.plot_moran, gm, plot_dir / "morans_i.png", title)
            if data.coords is not None:
                plot("lisa_map", _spatial.plot_lisa_map, lisa, data.coords, W, plot_dir / "lisa_map.png",
                     title, unit=fname, nodes=all_nodes)
        with timed("lags"):
            lag_res = _lags.pair_lags(x, index, all_nodes, W, data.coords, max_lag=max_lag, max_pairs=max_pairs,
                                      seed=seed, progress=bars)
            if lag_res.get("note"):
                notes.append(lag_res["note"])
            if data.coords is not None:
                plot("lag_map", _lags.plot_lag_map, lag_res, data.coords, plot_dir / "lag_map.png", title)
            plot("lag_hist", _lags.plot_lag_hist, lag_res, plot_dir / "lag_hist.png")

    result = {
        "dataset": data.describe(),
        "feature": fname,
        "step_hours": hps,
        "cycles_steps": cycles,
        "notes": notes,
        "missing": missing,
        "periodicity": per,
        "stl": stl,
        "trend": slopes,
        "anomalies": anom,
        "spatial": spatial,
        "lags": lag_res,
        "plots": drawn,
        "timing_seconds": timing,
    }
    result = _strip(result)
    if "lisa" in spatial:  # per-node LISA arrays keyed by node for the JSON
        lisa = result["spatial"]["lisa"]
        result["spatial"]["lisa"] = {
            "permutations": lisa["permutations"], "alpha": lisa["alpha"],
            "hot_spots": lisa["hot_spots"], "cold_spots": lisa["cold_spots"], "outliers": lisa["outliers"],
            "per_node": {n: {"I": float(lisa["I"][i]), "p": float(lisa["p_sim"][i]),
                             "quadrant": _spatial.QUADRANTS.get(int(lisa["quadrant"][i]))}
                         for i, n in enumerate(all_nodes)}}
    result["headline"] = headline(result)
    from stkd.io import write_json, write_text

    write_json(out_dir / NUMBERS, result)
    write_text(out_dir / REPORT, _markdown(result))
    return result


# ----------------------------------------------------------------------------------------- findings
def headline(result: dict) -> list[str]:
    """The main findings in one line each (printed by ``stkd analyze`` and at the top of the report)."""
    lines = []
    per = result["periodicity"]
    for name, c in per["cycles"].items():
        label = f"{name.capitalize()} cycle ({fmt_hours(c['hours'])}, {c['steps']} steps)"
        if not c["testable"]:
            lines.append(f"{label}: not testable - {c.get('reason', 'series too short')}")
        else:
            lines.append(f"{label}: found in {c['nodes_found']}/{c['nodes_tested']} nodes "
                         f"(autocorrelation {c['nodes_acf']}, periodogram {c['nodes_periodogram']})")
    for key, what in (("dominant_acf", "autocorrelation"), ("dominant_periodogram", "periodogram")):
        counts = {k: v for k, v in (per.get(key) or {}).items() if k != "none"}
        if counts:
            top = list(counts.items())[:2]
            lines.append(f"Dominant period by {what}: " + ", ".join(f"{k} ({_nodes(v)})" for k, v in top))
    stl = result.get("stl") or {}
    if stl.get("method") and stl.get("nodes_decomposed"):
        med = stl.get("median_strength") or {}
        parts = ", ".join(f"{q['name']} {_fmt(med.get(q['name']), '.2f')}" for q in stl["periods"])
        lines.append(f"Seasonal strength ({stl['method']}, median over {_nodes(stl['nodes_decomposed'])}): {parts}; "
                     f"trend {_fmt(med.get('trend'), '.2f')} (0: no larger than the noise, 1: dominant)")
    sp_ = result.get("spatial") or {}
    gm = sp_.get("global_moran")
    if gm:
        lisa = sp_.get("lisa", {})
        lines.append(f"Global Moran's I: mean {gm['mean']:.3f} (E[I] = {gm['expected']:.3f}), significantly "
                     f"positive at {_pct(gm['share_significant_positive'])} of steps; "
                     f"{len(lisa.get('hot_spots', []))} hot spots, {len(lisa.get('cold_spots', []))} cold spots")
    lg = result.get("lags")
    if lg and lg["summary"]["pairs_clear"]:
        s = lg["summary"]
        speed = f", median implied speed {s['median_speed_kmh']:.3g} km/h" if s.get("median_speed_kmh") else ""
        lines.append(f"Neighbour lags: {s['pairs_clear']} of {s['pairs_analysed']} pairs have a clear peak; "
                     f"{_pct(s['share_lag0'])} of them at lag 0, median |lag| {s['median_abs_lag_minutes']:.0f} min"
                     f"{speed}")
    an = result.get("anomalies")
    if an is not None:
        lines.append(f"Anomalies: {an['total']} points with robust |z| > {an['threshold']:g} in "
                     f"{an['nodes_with_anomalies']} nodes")
    return lines


# ----------------------------------------------------------------------------------------- markdown
def _img(result: dict, key: str, alt: str) -> str:
    p = result["plots"].get(key)
    return f"![{alt}]({p})\n" if p else ""


def _markdown(r: dict) -> str:  # noqa: C901 - one section after the other
    ds = r["dataset"]
    hps = r["step_hours"]
    L = [f"# Spatio-temporal analysis: {ds['name']}", ""]
    L += [_table(["", ""], [
        ["feature", r["feature"]], ["nodes", ds["nodes"]], ["steps", ds["steps"]],
        ["time step", f"{ds['freq']} ({fmt_hours(hps)})"], ["time span", f"{ds['start']} .. {ds['end']}"],
        ["missing", _pct(r["missing"]["overall"])],
        ["spatial weights", (r["spatial"] or {}).get("weights", "n/a")],
    ]), ""]
    L += ["## Findings", ""] + [f"- {h}" for h in r["headline"]] + [""]
    if r["notes"]:
        L += ["Notes:", ""] + [f"- {n}" for n in r["notes"]] + [""]
    L += ["How to read each section: `docs/analysis.md` in the stkd repository.", ""]

    # missing
    m = r["missing"]
    L += ["## Missing data", "",
          f"{_pct(m['overall'])} of all entries are missing; {len(m['complete_nodes'])} of {ds['nodes']} nodes "
          f"are complete" + (f", {len(m['empty_nodes'])} have no data at all" if m["empty_nodes"] else "") + ".", ""]
    worst = sorted(m["per_node"].items(), key=lambda kv: -kv[1]["share"])[:10]
    worst = [kv for kv in worst if kv[1]["share"] > 0]
    if worst:
        L += ["Nodes with the most missing data:", "",
              _table(["node", "missing", "longest gap"],
                     [[n, _pct(v["share"]), f"{v['longest_gap_steps']} steps ({fmt_hours(v['longest_gap_hours'])})"]
                      for n, v in worst]), ""]
    L += [_img(r, "missing", "missing share per node and day")]

    # periodicity
    per = r["periodicity"]
    L += ["## Periodicity", "",
          "Dominant periods per node from the autocorrelation (ACF) and the Welch periodogram of the "
          "gap-filled series. A weekly period counts only when the ACF at one week stands above the ACF "
          "one day before and after it (otherwise every daily cycle would look weekly).", ""]
    rows = []
    for name, c in per["cycles"].items():
        if c["testable"]:
            rows.append([name, f"{c['steps']} ({fmt_hours(c['hours'])})", f"{c['nodes_found']}/{c['nodes_tested']}",
                         c["nodes_acf"], c["nodes_periodogram"]])
        else:
            rows.append([name, f"{c['steps']} ({fmt_hours(c['hours'])})", "not testable: " + c.get("reason", ""),
                         "", ""])
    L += [_table(["cycle", "period (steps)", "nodes found", "by ACF", "by periodogram"], rows), ""]
    for key, what in (("dominant_acf", "ACF"), ("dominant_periodogram", "periodogram")):
        if per.get(key):
            L += [f"Dominant period by {what}: " + ", ".join(f"{k}: {_nodes(v)}" for k, v in per[key].items()), ""]
    pn = [(n, v) for n, v in per["per_node"].items()]
    shown = pn[:40]
    prow = []
    for n, v in shown:
        if "skipped" in v:
            prow.append([n, "skipped: " + v["skipped"], "", ""])
            continue
        acf = ", ".join(f"{fmt_hours(p['hours'])} ({p['acf']:.2f})" for p in v["acf"]["periods"]) or "none"
        psd = ", ".join(f"{fmt_hours(p['hours'])} ({100 * p['power_share']:.1f}%)"
                        for p in v["periodogram"]["periods"]) or "none"
        cyc = ", ".join(f"{c}: {'yes' if e['found'] else ('n/a' if e['found'] is None else 'no')}"
                        for c, e in v["cycles"].items())
        prow.append([n, acf, psd, cyc])
    L += ["Per node (ACF value / share of spectral power in brackets)"
          + (f", first {len(shown)} of {len(pn)} nodes (all in analysis.json)" if len(pn) > len(shown) else "") + ":",
          "", _table(["node", "ACF periods", "periodogram periods", "cycles found"], prow), ""]
    L += [_img(r, "periodicity", "mean autocorrelation and periodogram")]

    # trend
    stl, tr = r["stl"], r["trend"]
    L += ["## Trend and seasonality", ""]
    if stl.get("method"):
        words = " and ".join(f"{q['name']} ({q['steps']} steps)" for q in stl["periods"])
        what = (f"MSTL decomposition with the periods {words}: one seasonal component per cycle the periodicity "
                "analysis found, so a weekly cycle does not end up in the trend" if stl["method"] == "MSTL"
                else f"STL decomposition with a period of {words}")
        L += [f"{what}; {stl['nodes_decomposed']} nodes decomposed"
              + (f" ({len(stl['nodes_skipped'])} skipped: too short or constant)" if stl["nodes_skipped"] else "")
              + ". Slopes: " + ("OLS slope of the trend component" if tr["method"] == "stl" else
                                "OLS slope of the daily means (long series)")
              + f", in {r['feature']} per day.", ""]
        keys = ["trend", *(q["name"] for q in stl["periods"])]
        med = stl.get("median_strength") or {}
        per_node = list(stl.get("per_node", {}).items())
        if per_node:
            L += ["Strength of each component, `max(0, 1 - Var(residual) / Var(component + residual))`: near 1 when "
                  "it stands far above the noise, near 0 when it is no larger than the noise.", "",
                  _table(["node", *keys],
                         [["median", *(_fmt(med.get(k), ".2f") for k in keys)]]
                         + [[n, *(_fmt(v["strength"].get(k), ".2f") for k in keys)] for n, v in per_node[:20]]), ""]
            if len(per_node) > 20:
                L += [f"First 20 of {len(per_node)} nodes; all in analysis.json (`stl.per_node`).", ""]
        vals = [(n, v) for n, v in tr["per_node"].items() if v.get("slope_per_day") is not None
                and np.isfinite(v["slope_per_day"])]
        vals.sort(key=lambda kv: kv[1]["slope_per_day"])
        if vals:
            pick = vals if len(vals) <= 10 else vals[:5] + vals[-5:]
            L += [("Steepest decreases and increases:" if len(vals) > 10 else "Slopes:"), "",
                  _table(["node", "slope per day", "mean", "change per year"],
                         [[n, _fmt(v["slope_per_day"], ".4g"), _fmt(v["mean"], ".4g"),
                           _pct(None if v["change_pct_per_year"] is None else v["change_pct_per_year"] / 100)]
                          for n, v in pick]), ""]
        L += [_img(r, "trend_slopes", "trend slope per node")]
        for n in stl["plotted_nodes"]:
            L += [_img(r, f"stl_{n}", f"{stl['method']} decomposition of {n}")]
    else:
        L += [f"Not computed: {stl.get('reason', 'no daily or weekly cycle in whole steps')}.", ""]

    # spatial
    sp_ = r["spatial"] or {}
    L += ["## Spatial autocorrelation", ""]
    gm = sp_.get("global_moran")
    if gm:
        om = gm["of_node_means"]
        L += [f"Weights: {sp_['weights']}, row-standardised. Moran's I > E[I] = {gm['expected']:.4f}: neighbours "
              "are more alike than chance (a smooth field); < E[I]: they differ (a checkerboard).", "",
              _table(["statistic", "value"], [
                  ["mean Moran's I over time steps", _fmt(gm["mean"], ".4f")],
                  ["median / min / max",
                   " / ".join(_fmt(gm[k], ".4f") for k in ("median", "min", "max"))],
                  ["steps significantly positive",
                   f"{_pct(gm['share_significant_positive'])} (p < {gm['alpha']}, {gm['significance']})"],
                  ["steps significantly negative", _pct(gm["share_significant_negative"])],
                  ["Moran's I of the node means",
                   f"{_fmt(om['I'], '.4f')} (permutation p = {_fmt(om['p_sim'], '.3g')})"],
              ]), ""]
        L += [_img(r, "morans_i", "Moran's I over time")]
        lisa = sp_["lisa"]
        L += [f"Local Moran's I of the node means ({lisa['permutations']} conditional permutations, "
              f"p < {lisa['alpha']}): "
              f"{len(lisa['hot_spots'])} hot spots (high values among high neighbours), {len(lisa['cold_spots'])} "
              "cold spots (low among low).", ""]
        spots = [["hot", s["node"], _fmt(s["value"], ".4g"), _fmt(s["I"], ".3f"), _fmt(s["p"], ".3g")]
                 for s in lisa["hot_spots"][:15]]
        spots += [["cold", s["node"], _fmt(s["value"], ".4g"), _fmt(s["I"], ".3f"), _fmt(s["p"], ".3g")]
                  for s in lisa["cold_spots"][:15]]
        if spots:
            L += [_table(["spot", "node", f"mean {r['feature']}", "local I", "p"], spots), ""]
        L += [_img(r, "lisa_map", "LISA hot and cold spots")]
    else:
        L += [f"Skipped: {sp_.get('weights', 'no weights')}.", ""]

    # lags
    lg = r.get("lags")
    L += ["## Spatio-temporal correlation between neighbours", ""]
    if lg and lg["summary"]["pairs_analysed"]:
        s = lg["summary"]
        period = lg["deseasonalized_period_steps"]
        profile = "weekly" if period and period * hps >= 168 else "daily"
        L += [f"Lagged cross-correlation of {s['pairs_analysed']} neighbour pairs (of {s['pairs_total']}), lags up "
              f"to {lg['max_lag_steps']} steps ({lg['max_lag_minutes']:.0f} min), after removing each node's mean "
              f"{profile} "
              f"profile. Sign: {lg['sign_convention']}.", "",
              _table(["statistic", "value"], [
                  ["pairs with a clear peak", f"{s['pairs_clear']} ({s['pairs_weak']} weak: peak r < 0.3; "
                                              f"{s['pairs_at_edge']} peak at the window's edge)"],
                  ["clear pairs peaking at lag 0", _pct(s["share_lag0"])],
                  ["median |peak lag|", f"{_fmt(s['median_abs_lag_minutes'], '.0f')} min"],
                  ["median implied speed (pairs with lag != 0)",
                   f"{_fmt(s['median_speed_kmh'], '.3g')} km/h" if s["median_speed_kmh"] else "n/a"],
                  ["median peak correlation", _fmt(s["median_peak_corr"], ".3f")],
              ]), ""]
        top = sorted((q for q in lg["pairs"] if q["clear"]), key=lambda q: (-abs(q["lag_steps"]), -q["peak_corr"]))[:12]
        L += ["Clear pairs, longest lags first:", "",
              _table(["a", "b", "peak lag (steps)", "minutes", "peak r", "r at lag 0", "distance (km)", "speed (km/h)"],
                     [[q["a"], q["b"], q["lag_steps"], _fmt(q["lag_minutes"], ".0f"), _fmt(q["peak_corr"], ".3f"),
                       _fmt(q["corr_lag0"], ".3f"), _fmt(q["distance_km"], ".3g"), _fmt(q["speed_kmh"], ".3g")]
                      for q in top]), ""]
        L += [_img(r, "lag_map", "peak lag between neighbours on the map"), _img(r, "lag_hist", "peak lag histogram")]
    else:
        L += ["Skipped: no neighbour pairs (no adjacency or coordinates).", ""]

    # anomalies
    an = r["anomalies"]
    L += ["## Anomalies", "",
          f"Points whose STL residual has a robust z-score (median / MAD) above {an['threshold']:g} in absolute value: "
          f"{an['total']} of {an['points_checked']} observed points, in {an['nodes_with_anomalies']} nodes"
          + (f" (the {len(an['listed'])} most extreme are listed in analysis.json)" if an["truncated"] else "")
          + ".", ""]
    if an["listed"]:
        L += [_table(["time", "node", r["feature"], "expected", "z"],
                     [[a["time"], a["node"], _fmt(a["value"], ".4g"), _fmt(a["expected"], ".4g"), _fmt(a["z"], ".1f")]
                      for a in an["listed"][:20]]), ""]
        busiest = sorted(((n, c) for n, c in an["per_node"].items() if c), key=lambda kv: -kv[1])[:10]
        if busiest:
            L += ["Nodes with the most anomalies: " + ", ".join(f"{n} ({c})" for n, c in busiest), ""]
    L += ["---", f"Computed in {sum(r['timing_seconds'].values()):.1f} s "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in r['timing_seconds'].items())}).", ""]
    return "\n".join(L)
