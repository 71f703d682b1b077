"""Every plot of a run's report: one PNG per ``_plot_*`` function, drawn from the run directory's
files on pyplot-free figures and written atomically. Which plots a run gets, and their captions, is
decided in :mod:`stkd.report` (report.md assembly); this module only draws."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from stkd.io import atomic_write
from stkd.report.run import _Run, _step_delta, _timestamps
from stkd.report.tables import (
    ROLE_LABEL,
    ROLE_STYLE,
    _best_of_role,
    _float_array,
    _key_models,
    _num,
    _ordered_models,
    _ratio,
    _role,
    _role_label,
    _test_value,
)

PLOT_FILES = {
    "horizon": "error_by_horizon.png",
    "forecast": "forecast_vs_truth.png",
    "map": "sensor_map.png",
    "curves": "training_curves.png",
    "gain": "distillation_gain.png",
    "pr": "precision_recall.png",
    "confusion": "confusion_matrix.png",
    "calibration": "calibration.png",
}
DPI = 110


# ----------------------------------------------------------------------------- plots
# Each _plot_* function draws one PNG and returns None or a note for the report (e.g. a model left out),
# or raises _Skip with the reason when the run's files do not allow the plot.
class _Skip(Exception):
    """A plot cannot be drawn from this run's files; the message says why (it goes into report.md)."""


def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (8, 4.5),
            layout: Literal["constrained", "compressed", "tight"] | None = "constrained", **kw):
    """A pyplot-free figure (Agg canvas, no global state) with its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout=layout)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _save(fig, path: Path) -> None:
    """Save ``fig`` as PNG to ``path`` atomically."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))


def _unit_label(run: _Run) -> str:
    """Human label of the forecast target and its units, e.g. ``speed, original units``."""
    targets = run.data.get("targets") or []
    return f"{targets[0]}, original units" if targets else "original units"


def _plot_error_by_horizon(run: _Run, colors: dict, path: Path) -> str | None:
    """MAE per horizon step (1..H) of every model with ``test.per_step``."""
    fig, axes = _figure(size=(8, 4.8))
    ax = axes[0, 0]
    drawn = 0
    for name, m in _ordered_models(run.metrics):
        per_step = (m.get("test") or {}).get("per_step") or []
        y = _float_array([s.get("mae") if isinstance(s, dict) else None for s in per_step])
        if y.size == 0 or np.all(np.isnan(y)):
            continue
        role = _role(m)
        ax.plot(np.arange(1, y.size + 1), y, ROLE_STYLE.get(role, ":"), marker="o", ms=3.5,
                lw=2.2 if role in ("teacher", "student_kd") else 1.6, color=colors[name],
                label=f"{name} ({ROLE_LABEL.get(role, role)})")
        drawn += 1
    if not drawn:
        raise _Skip("no model reports per-step errors (`test.per_step`)")
    freq = run.data.get("freq") or run.metrics.get("dataset", {}).get("freq")
    ax.set_xlabel(f"Horizon (steps ahead{f', 1 step = {freq}' if freq else ''})")
    ax.set_ylabel(f"Test MAE ({_unit_label(run)})")
    ax.set_title("Error by horizon: test MAE at each step ahead")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncols=2 if drawn > 4 else 1)
    _save(fig, path)
    return None


def _series_by_step(values: np.ndarray, starts: np.ndarray, offset: int, lo: int, hi: int) -> np.ndarray:
    """Place one value per window at data step ``starts + offset``, on the step grid [lo, hi); NaN elsewhere."""
    out = np.full(hi - lo, np.nan)
    idx = starts + offset - lo
    ok = (idx >= 0) & (idx < hi - lo)
    out[idx[ok]] = values[ok]
    return out


def _truth_by_step(truth: np.ndarray, mask: np.ndarray, starts: np.ndarray, P: int, lo: int, hi: int) -> np.ndarray:
    """Observed truth of one node on the step grid [lo, hi), gathered from every horizon; NaN = missing."""
    out = np.full(hi - lo, np.nan)
    for h in range(truth.shape[1]):
        t = np.where(mask[:, h], truth[:, h], np.nan)
        idx = starts + P + h - lo
        ok = (idx >= 0) & (idx < hi - lo) & ~np.isnan(t)
        out[idx[ok]] = t[ok]
    return out


def _pick_sensors(truth: np.ndarray, mask: np.ndarray, k: int) -> list[int]:
    """The ``k`` nodes whose observed horizon-1 truth varies most (ties: lower index), mostly observed ones."""
    t = np.where(mask[:, 0], truth[:, 0], np.nan)  # (W, N)
    observed = mask[:, 0].mean(axis=0)
    with warnings.catch_warnings():  # all-missing sensors: NaN variance, ranked last below
        warnings.simplefilter("ignore", RuntimeWarning)
        var = np.nanvar(t, axis=0) if t.size else np.zeros(truth.shape[2])
    var = np.where((observed >= 0.5) & np.isfinite(var), var, -1.0)
    order = np.argsort(-var, kind="stable")
    return [int(i) for i in order[:k]]


def _plot_forecast_vs_truth(run: _Run, colors: dict, path: Path, days: float = 3.0, n_sensors: int = 4) -> str | None:
    """Truth vs the best teacher's and distilled student's forecasts at a few sensors, at horizon 1 and 12.

    Rows are sensors (largest variance of the observed test truth), columns the two horizons; the first
    ``days`` days of the test period are shown. Missing truth is drawn as gaps.
    """
    pdir = run.root / "predictions"
    try:
        truth = np.load(pdir / "truth.npy", allow_pickle=False)
        mask = np.load(pdir / "mask.npy", allow_pickle=False).astype(bool)
        starts = np.load(pdir / "starts.npy", allow_pickle=False).astype(np.int64)
    except (OSError, ValueError):
        raise _Skip("the test truth (`predictions/truth.npy`, `mask.npy`, `starts.npy`) is missing")
    if truth.ndim != 4 or truth.shape != mask.shape or truth.shape[0] != starts.size or starts.size == 0:
        raise _Skip("the test truth arrays do not have matching shapes [W, H, N, F]")
    teacher, kd, _ = _key_models(run.metrics)
    preds = {}
    for name in (teacher, kd):
        pred = run.prediction(name) if name else None
        if pred is not None and pred.shape == truth.shape:
            preds[name] = pred
    W, H, N, _ = truth.shape
    P = int(run.data.get("input_len") or 0)
    horizons = sorted({1, min(12, H)})
    delta = _step_delta(run.data.get("freq"))
    step_s = delta.total_seconds() if delta is not None else 0.0
    steps_per_day = int(round(86400 / step_s)) if step_s > 0 else 288  # unknown step: assume 5 minutes
    lo = int(starts.min()) + P
    hi = min(int(starts.max()) + P + H, lo + int(days * steps_per_day))
    grid = np.arange(lo, hi)
    x = _timestamps(run, grid)
    nodes = run.data.get("nodes") or [str(i) for i in range(N)]
    sensors = _pick_sensors(truth[..., 0], mask[..., 0], min(n_sensors, N))

    height = 2.2 * len(sensors) + 1.3
    # Fixed margins (in inches) instead of constrained layout: half the drawing time for this many panels.
    fig, axes = _figure(len(sensors), len(horizons), size=(6.2 * len(horizons), height), layout=None,
                        sharex=True, sharey="row")
    fig.subplots_adjust(left=0.06, right=0.99, top=1 - 0.95 / height, bottom=0.55 / height, hspace=0.38, wspace=0.06)
    for r, node in enumerate(sensors):
        y_true = _truth_by_step(truth[:, :, node, 0], mask[:, :, node, 0], starts, P, lo, hi)
        for c, h in enumerate(horizons):
            ax = axes[r, c]
            ax.plot(x if x is not None else grid, y_true, color="black", lw=1.0, zorder=3, label="truth")
            for name, pred in preds.items():
                y_hat = _series_by_step(pred[:, h - 1, node, 0].astype(float), starts, P + h - 1, lo, hi)
                y_hat[np.isnan(y_true)] = np.nan  # not scored where the truth is missing: drawn as a gap too
                ax.plot(x if x is not None else grid, y_hat, color=colors[name], lw=1.0, alpha=0.9,
                        label=f"{name} ({_role_label(run.metrics['models'][name])})")
            ax.set_title(f"sensor {nodes[node]}, {h} step{'s' if h > 1 else ''} ahead", fontsize=10)
            ax.grid(alpha=0.3)
            if c == 0:
                ax.set_ylabel(_unit_label(run).split(",")[0])
    if x is not None:
        import matplotlib.dates as mdates

        for ax in axes[-1]:
            loc = mdates.AutoDateLocator()
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
            ax.set_xlabel("time (test period)")
    else:
        for ax in axes[-1]:
            ax.set_xlabel("data step (test period)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(f"Forecast vs truth at the {len(sensors)} most variable sensors ({_unit_label(run)})",
                 y=1 - 0.08 / height, va="top")
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.35 / height), ncols=len(labels),
               fontsize=9, frameon=False)
    _save(fig, path)
    missing = [n for n in (teacher, kd) if n and n not in preds]
    return f"no predictions for {', '.join(missing)}; not drawn" if missing else None


def short_labels(nodes: list[str], width: int = 22) -> list[str]:
    """Readable map labels that stay unique: ids longer than ``width`` keep their start and end around
    an ellipsis (two sensors on one street differ at the end); any label still shared gets its ``#index``."""
    def cut(n: str, w: int) -> str:
        if len(n) <= w:
            return n
        head = (w - 1) // 2
        return n[:head] + "…" + n[-(w - 1 - head):]

    labels = [cut(n, width) for n in nodes]
    seen: dict[str, int] = {}
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
    return [lab if seen[lab] == 1 else f"{lab} #{i}" for i, lab in enumerate(labels)]


def label_offsets(lon: np.ndarray, lat: np.ndarray, idx: list[int]) -> list[tuple[int, int, str, str]]:
    """Text offsets (points) and alignment for labelling sensors ``idx``: labels point inwards (no label
    cut at the plot's edge) and a label near an already placed one goes to the other side of its dot."""
    def norm(v: np.ndarray) -> np.ndarray:
        span = np.nanmax(v) - np.nanmin(v)
        return (v - np.nanmin(v)) / span if span > 0 else np.full_like(v, 0.5)

    x, y = norm(np.asarray(lon, float)), norm(np.asarray(lat, float))
    out: list[tuple[int, int, str, str]] = []
    placed: list[tuple[float, float, int]] = []  # (x, y, vertical side) of labels so far
    for i in idx:
        ha = "right" if x[i] > 0.6 else "left"
        dx = -5 if ha == "right" else 5
        side = -1 if y[i] > 0.85 else 1  # below the dot near the top edge
        if any(abs(x[i] - px) < 0.3 and abs(y[i] - py) < 0.12 and s == side for px, py, s in placed):
            side = -side  # a neighbour's label is on this side: use the other
        placed.append((x[i], y[i], side))
        out.append((dx, 5 * side, ha, "bottom" if side > 0 else "top"))
    return out


def _plot_sensor_map(run: _Run, path: Path) -> str | None:
    """Sensors at their lon/lat, coloured by the distilled student's test MAE per node."""
    coords = run.data.get("coords")
    if not coords:
        raise _Skip("the data set has no coordinates (`coords` is null)")
    _, kd, _ = _key_models(run.metrics)
    name = kd or _best_of_role(run.metrics, "teacher")
    per_node = ((run.metrics["models"].get(name) or {}).get("test") or {}).get("per_node_mae") if name else None
    if not per_node:
        raise _Skip("no per-node errors (`test.per_node_mae`) for the distilled student")
    err = _float_array(per_node)
    if len(coords) != err.size:
        raise _Skip("`coords` and `per_node_mae` have different lengths")
    lat = _float_array([(c or [None, None])[0] for c in coords])
    lon = _float_array([(c or [None, None])[1] for c in coords])
    located = np.isfinite(lat) & np.isfinite(lon)
    if not located.any():
        raise _Skip("no sensor has coordinates")
    lat, lon, err = lat[located], lon[located], err[located]
    nodes = [n for n, ok in zip(run.data.get("nodes") or [str(i) for i in range(located.size)], located) if ok]
    fig, axes = _figure(size=(7.5, 6))
    ax = axes[0, 0]
    bad = np.isnan(err)
    if bad.any():
        ax.scatter(lon[bad], lat[bad], s=30, facecolors="none", edgecolors="grey", label="no error (unobserved)")
    sc = ax.scatter(lon[~bad], lat[~bad], c=err[~bad], s=42, cmap="plasma", edgecolors="black", linewidths=0.4)
    fig.colorbar(sc, ax=ax, label=f"test MAE of {name} ({_unit_label(run)})")
    worst = [int(i) for i in np.argsort(-np.nan_to_num(err, nan=-np.inf), kind="stable")[:3] if not bad[i]]
    labels = short_labels([str(n) for n in nodes])
    for i, (dx, dy, ha, va) in zip(worst, label_offsets(lon, lat, worst)):
        ax.annotate(labels[i], (lon[i], lat[i]), xytext=(dx, dy), textcoords="offset points", fontsize=8, ha=ha,
                    va=va, annotation_clip=False,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    mid = np.nanmean(lat)
    if np.isfinite(mid) and abs(mid) < 85:
        ax.set_aspect(1 / math.cos(math.radians(mid)), adjustable="datalim")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(f"Sensors coloured by {name}'s test MAE (3 worst labelled)")
    ax.grid(alpha=0.3)
    if bad.any():
        ax.legend(fontsize=8)
    _save(fig, path)
    return None


def _read_log(path: Path) -> dict[str, np.ndarray]:
    """Columns of a ``log.csv`` as float arrays (unparsable cells become NaN)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cols = rows[0].keys() if rows else []
    return {c: _float_array([r.get(c) for r in rows]) for c in cols}


def _plot_training_curves(run: _Run, colors: dict, path: Path) -> str | None:
    """Training loss and validation MAE per epoch of every model with ``models/<name>/log.csv``."""
    logs = {}
    for name, _ in _ordered_models(run.metrics):
        p = run.root / "models" / name / "log.csv"
        if p.is_file():
            log = _read_log(p)
            if "epoch" in log and log["epoch"].size:
                logs[name] = log
    if not logs:
        raise _Skip("no training logs (`models/<name>/log.csv`)")
    val_key = "val_mae" if run.task == "forecast" else next(
        (k for k in ("val_f1", "val_loss", "val_mae") if any(k in lg for lg in logs.values())), "val_mae")
    fig, axes = _figure(1, 2, size=(11, 4.5))
    for name, log in logs.items():
        role = run.metrics["models"][name].get("role")
        style = dict(color=colors[name], ls=ROLE_STYLE.get(role, ":"), lw=1.8, marker="o", ms=2.5,
                     label=f"{name} ({ROLE_LABEL.get(role, role)})")
        if "train_loss" in log:
            axes[0, 0].plot(log["epoch"], log["train_loss"], **style)
        if val_key in log:
            axes[0, 1].plot(log["epoch"], log[val_key], **style)
    losses = np.concatenate([lg["train_loss"] for lg in logs.values() if "train_loss" in lg] or [np.array([])])
    if losses.size and np.nanmin(losses) > 0 and np.nanmax(losses) / np.nanmin(losses) > 20:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax = axes[0, 0]
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.1, 0.2, 0.5, 1, 2, 5, ...
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    axes[0, 0].set_title("Training loss (each model's own objective)")
    axes[0, 0].set_ylabel("train loss (objective, training units)")
    vlabel = val_key.replace("val_", "validation ").replace("mae", "MAE").replace("f1", "F1")
    axes[0, 1].set_title(f"{vlabel[0].upper() + vlabel[1:]} per epoch")
    axes[0, 1].set_ylabel(f"{vlabel}" + (f" ({_unit_label(run)})" if val_key == "val_mae" else ""))
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0, 1].legend(fontsize=8)
    _save(fig, path)
    return None


def _plot_distillation_gain(run: _Run, path: Path) -> str | None:
    """Bars of (plain MAE - distilled MAE) / plain MAE per horizon step, in %."""
    _, kd, plain = _key_models(run.metrics)
    if kd is None or plain is None:
        missing = "distilled student" if kd is None else "plain student (same student without distillation)"
        raise _Skip(f"the run has no {missing}")

    def per_step(name: str) -> np.ndarray:
        steps = (run.metrics["models"][name].get("test") or {}).get("per_step") or []
        return _float_array([s.get("mae") if isinstance(s, dict) else None for s in steps])

    a, b = per_step(kd), per_step(plain)
    n = min(a.size, b.size)
    if n == 0:
        raise _Skip("the students report no per-step errors (`test.per_step`)")
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = 100.0 * (b[:n] - a[:n]) / b[:n]
    gain = np.where(np.isfinite(gain), gain, np.nan)
    fig, axes = _figure(size=(8, 4.5))
    ax = axes[0, 0]
    steps = np.arange(1, n + 1)
    ax.bar(steps, np.nan_to_num(gain), color=np.where(gain >= 0, "#2ca02c", "#d62728"), edgecolor="black", lw=0.5)
    ax.axhline(0, color="black", lw=0.8)
    for s, g in zip(steps, gain):
        if np.isfinite(g):
            ax.annotate(f"{g:+.1f}", (s, g), xytext=(0, 3 if g >= 0 else -11), textcoords="offset points",
                        ha="center", fontsize=7)
    kd_mae, plain_mae = (_test_value(run.metrics["models"][n], "mae") for n in (kd, plain))
    mean_gain = None if kd_mae is None else _ratio(None if plain_mae is None else plain_mae - kd_mae, plain_mae)
    if mean_gain is not None:
        ax.axhline(100 * mean_gain, color="#555555", ls="--", lw=1,
                   label=f"averaged over horizon: {100 * mean_gain:+.1f} %")
        ax.legend(fontsize=8, loc="best")
    freq = run.data.get("freq")
    ax.set_xlabel(f"Horizon (steps ahead{f', 1 step = {freq}' if freq else ''})")
    ax.set_ylabel("MAE reduction vs plain student (%)")
    ax.set_title(f"Distillation gain per horizon: {kd} vs {plain}\n(positive: the teacher helped)", fontsize=11)
    ax.set_xticks(steps)
    ax.grid(alpha=0.3, axis="y")
    ax.margins(y=0.15)
    _save(fig, path)
    return None


def _event_arrays(run: _Run) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Test labels ``[W, H, N]``, their mask and each model's saved probabilities (classify runs)."""
    pdir = run.root / "predictions"
    try:
        labels = np.load(pdir / "labels.npy", allow_pickle=False).astype(np.int64)
        mask = np.load(pdir / "label_mask.npy", allow_pickle=False).astype(bool)
    except (OSError, ValueError):
        raise _Skip("the test labels (`predictions/labels.npy`, `label_mask.npy`) are missing")
    probs = {}
    for name, _ in _ordered_models(run.metrics):
        p = run.prediction(name)
        if p is not None and p.shape[: labels.ndim] == labels.shape:
            probs[name] = p.astype(np.float64)
    if not probs:
        raise _Skip("no model's test probabilities (`predictions/<model>.npy`) were saved")
    return labels, mask, probs


def _event_score(p: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P(event), is event) per entry: binary probabilities as they are; K classes: 1 - P(class 0), label > 0."""
    if p.ndim == labels.ndim + 1:
        return 1.0 - p[..., 0], labels > 0
    return p, labels > 0


def _plot_precision_recall(run: _Run, colors: dict, path: Path) -> str | None:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    labels, mask, probs = _event_arrays(run)
    fig, axes = _figure(size=(7, 5.5))
    ax = axes[0, 0]
    drawn = 0
    for name, p in probs.items():
        score, truth = _event_score(p, labels)
        score, truth = score[mask], truth[mask]
        if truth.sum() == 0 or truth.sum() == truth.size:
            continue
        prec, rec, _ = precision_recall_curve(truth, score)
        ap = average_precision_score(truth, score)
        m = run.metrics["models"][name]
        role = m.get("role")
        ax.step(rec, prec, where="post", color=colors[name], ls=ROLE_STYLE.get(role, ":"),
                lw=2.0 if role in ("teacher", "student_kd") else 1.5,
                label=f"{name} ({ROLE_LABEL.get(role, role)}), AP {ap:.3f}")
        test = m.get("test") or {}
        if p.ndim == labels.ndim and _num(test.get("precision")) is not None and _num(test.get("recall")) is not None:
            ax.plot([test["recall"]], [test["precision"]], "o", color=colors[name], ms=6, mec="black", mew=0.6)
        drawn += 1
    if not drawn:
        raise _Skip("the test labels hold a single class: no precision-recall curve")
    base = float(_event_score(next(iter(probs.values())), labels)[1][mask].mean())
    ax.axhline(base, color="#999999", lw=0.8, ls=":", label=f"no skill (event share {base:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (share of events caught)")
    ax.set_ylabel("precision (share of alarms that are events)")
    ax.set_title("Precision-recall on the test split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    _save(fig, path)
    return None


def _plot_confusion(run: _Run, path: Path) -> str | None:
    mats = []
    for name, m in _ordered_models(run.metrics):
        cm = (m.get("test") or {}).get("confusion_matrix")
        if isinstance(cm, list) and cm and all(isinstance(r, list) for r in cm):
            mats.append((name, _role(m), np.asarray(cm, dtype=float)))
    if not mats:
        raise _Skip("no model reports a confusion matrix (`test.confusion_matrix`)")
    names = (run.metrics.get("events") or {}).get("class_names") or [str(k) for k in range(mats[0][2].shape[0])]
    n = len(mats)
    ncols = min(n, 4)
    nrows = (n + ncols - 1) // ncols
    K = mats[0][2].shape[0]
    fig, axes = _figure(nrows, ncols, size=(3.4 * ncols + 0.6, 3.2 * nrows + 0.4))
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.set_axis_off()
            continue
        name, role, cm = mats[i]
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for r in range(cm.shape[0]):
            for c in range(cm.shape[1]):
                ax.text(c, r, f"{norm[r, c]:.2f}\n({int(cm[r, c]):,})", ha="center", va="center", fontsize=7,
                        color="white" if norm[r, c] > 0.6 else "black")
        short = [str(x)[:12] for x in names[:cm.shape[0]]]
        ax.set_xticks(range(cm.shape[1]), short, fontsize=7, rotation=30 if K > 2 else 0)
        ax.set_yticks(range(cm.shape[0]), short, fontsize=7)
        ax.set_xlabel("decision", fontsize=8)
        ax.set_ylabel("label", fontsize=8)
        ax.set_title(f"{name}\n({ROLE_LABEL.get(role, role)})", fontsize=9)
    _save(fig, path)
    return None


def _plot_calibration(run: _Run, colors: dict, path: Path, bins: int = 10) -> str | None:
    labels, mask, probs = _event_arrays(run)
    fig, axes = _figure(size=(6.5, 5.5))
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=":", label="perfect calibration")
    edges = np.linspace(0, 1, bins + 1)
    for name, p in probs.items():
        if p.ndim == labels.ndim + 1:  # top-label confidence vs accuracy
            conf = p.max(axis=-1)[mask]
            hit = (p.argmax(axis=-1) == labels)[mask]
        else:
            conf, hit = p[mask], (labels > 0)[mask]
        b = np.clip(np.searchsorted(edges[1:], conf, side="left"), 0, bins - 1)
        n = np.bincount(b, minlength=bins)
        ok = n > 0
        mean_p = np.bincount(b, conf, bins)[ok] / n[ok]
        freq = np.bincount(b, hit.astype(float), bins)[ok] / n[ok]
        role = run.metrics["models"][name].get("role")
        ece = _num((run.metrics["models"][name].get("test") or {}).get("ece"))
        ax.plot(mean_p, freq, ROLE_STYLE.get(role, ":"), marker="o", ms=3.5, color=colors[name],
                label=f"{name}" + (f", ECE {ece:.3f}" if ece is not None else ""))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed frequency")
    ax.set_title("Calibration on the test split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, path)
    return None


