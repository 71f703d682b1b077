"""Run directory -> ``report.md`` + ``plots/*.png``: the side-by-side view of every model of a run.

The report reads only files the pipeline wrote (see ``shared/DESIGN.md`` and ``docs/internals.md``):

```
run_dir/metrics.json          every model's test metrics, parameters, latency, throughput, train time
run_dir/data.json             data set, frequency, first timestamp, window lengths, splits
run_dir/models/<name>/log.csv one row per epoch: epoch,train_loss,val_mae,val_rmse,lr,seconds
run_dir/predictions/*.npy     test predictions [W, H, N, F_out], truth, mask and window starts
```

Anything optional that is missing (a model's predictions, coordinates, a plain student, a metric that
is NaN) is skipped with a note or shown as "n/a"; the report never fails because a piece is absent.

Public API: :func:`write_report`, :func:`format_table`, :func:`format_horizon_table`,
:func:`student_summary`.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from stkd import names
from stkd.errors import STKDError
from stkd.io import atomic_write, write_text
from stkd.report_html import markdown_to_html

ROLE_ORDER = names.ROLES
ROLE_LABEL = {
    "teacher": "teacher",
    "student_kd": "distilled student",
    "student_plain": "student, no distillation",
    "baseline": "baseline",
}
# One palette per role, so a model keeps its colour in every plot and roles read at a glance.
ROLE_PALETTE = {
    "teacher": ["#1f5fa8", "#6a3d9a", "#17becf", "#4c72b0"],
    "student_kd": ["#d62728", "#ff7f0e", "#e377c2", "#b8860b"],
    "student_plain": ["#2ca02c", "#8fbc3f", "#006d5b", "#98df8a"],
    "baseline": ["#7f7f7f", "#8c564b", "#bcbd22", "#525252", "#c49c94"],
}
ROLE_STYLE = {"teacher": "-", "student_kd": "-", "student_plain": "--", "baseline": ":"}

FORECAST_METRICS = ("mae", "rmse", "mape")
CLASSIFY_METRICS = ("accuracy", "precision", "recall", "f1", "auroc", "ap", "ece")
# The metric the "what the student kept" summary compares, and whether lower is better.
PRIMARY_METRIC = {"forecast": ("mae", True), "classify": ("f1", False)}

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


# ----------------------------------------------------------------------------- small helpers
def _num(x: Any) -> float | None:
    """``x`` as a finite float, or None when it is missing, not a number, NaN or infinite."""
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _float_array(values: list) -> np.ndarray:
    """A float array of ``values`` with NaN for anything that is not a finite number."""
    return np.array([np.nan if _num(v) is None else _num(v) for v in values], dtype=float)


def _fmt(x: Any, spec: str = ".3f", suffix: str = "") -> str:
    """Format a number with ``spec`` (and a suffix such as ``%``), or ``n/a`` when it is not one."""
    v = _num(x)
    return "n/a" if v is None else f"{v:{spec}}{suffix}"


def _fmt_params(x: Any) -> str:
    """Parameter count with thousands separators (``1,234,567``)."""
    v = _num(x)
    return "n/a" if v is None else f"{int(round(v)):,}"


def _fmt_latency(x: Any) -> str:
    """Milliseconds: three decimals below 10 ms, one above."""
    v = _num(x)
    if v is None:
        return "n/a"
    return f"{v:.3f}" if v < 10 else f"{v:,.1f}"


def _fmt_metric(name: str, x: Any) -> str:
    """A test metric: MAPE as a percentage, everything else with three decimals."""
    return _fmt(x, ".2f", "%") if name == "mape" else _fmt(x, ".3f")


def _md_cell(text: Any) -> str:
    """Text safe inside a markdown table cell (pipes escaped, newlines flattened)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]], right_from: int = 0) -> str:
    """A markdown table; columns from ``right_from`` on are right-aligned (numbers)."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- models and roles
def _task(metrics: dict) -> str:
    """The run's task: ``forecast`` unless metrics.json says ``classify``."""
    return "classify" if metrics.get("task") == "classify" else "forecast"


def _ordered_models(metrics: dict) -> list[tuple[str, dict]]:
    """Models in report order: teachers, distilled students, plain students, baselines, then others.

    Within a role the order of metrics.json is kept.
    """
    models = list((metrics.get("models") or {}).items())
    rank = {r: i for i, r in enumerate(ROLE_ORDER)}
    return sorted(models, key=lambda kv: rank.get(kv[1].get("role"), len(ROLE_ORDER)))


def _model_colors(metrics: dict) -> dict[str, str]:
    """A fixed colour per model, taken from its role's palette in report order."""
    used: dict[str, int] = {}
    colors = {}
    for name, m in _ordered_models(metrics):
        role = m.get("role") if m.get("role") in ROLE_PALETTE else "baseline"
        palette = ROLE_PALETTE[role]
        colors[name] = palette[used.get(role, 0) % len(palette)]
        used[role] = used.get(role, 0) + 1
    return colors


def _test_value(m: dict, key: str) -> float | None:
    """A model's averaged test metric ``key`` as a finite float, or None."""
    return _num((m.get("test") or {}).get(key))


def _best_of_role(metrics: dict, role: str, prefer_params: Any = None) -> str | None:
    """The name of the best model with ``role`` by the task's primary metric.

    With ``prefer_params``, models with exactly that parameter count (the same architecture, e.g.
    the plain twin of the distilled student) are preferred. Models without a finite metric come last.
    """
    key, lower = PRIMARY_METRIC[_task(metrics)]
    cands = [(n, m) for n, m in _ordered_models(metrics) if m.get("role") == role]
    if not cands:
        return None
    if prefer_params is not None:
        same = [(n, m) for n, m in cands if m.get("params") == prefer_params]
        cands = same or cands

    def score(item: tuple[str, dict]) -> tuple[int, float]:
        v = _test_value(item[1], key)
        return (1, 0.0) if v is None else (0, v if lower else -v)

    return min(cands, key=score)[0]


def _key_models(metrics: dict) -> tuple[str | None, str | None, str | None]:
    """(best teacher, best distilled student, its plain twin or the best plain student)."""
    teacher = _best_of_role(metrics, "teacher")
    kd = _best_of_role(metrics, "student_kd")
    kd_params = (metrics["models"][kd].get("params") if kd else None)
    plain = _best_of_role(metrics, "student_plain", prefer_params=kd_params)
    return teacher, kd, plain


def _horizon_keys(metrics: dict) -> list[str]:
    """Every horizon key found under any model's ``test.horizons``, in numeric order."""
    keys: set[str] = set()
    for _, m in _ordered_models(metrics):
        keys.update(str(k) for k in ((m.get("test") or {}).get("horizons") or {}))

    def order(k: str) -> tuple[int, float, str]:
        v = _num(k)
        return (0, v, k) if v is not None else (1, 0.0, k)

    return sorted(keys, key=order)


_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def freq_words(freq: Any) -> str:
    """A pandas frequency in words: ``5min`` -> ``5 minutes``, ``h`` -> ``1 hour``; as given if not a fixed step."""
    if not freq:
        return "unknown frequency"
    import pandas as pd

    try:
        seconds = pd.Timedelta(pd.tseries.frequencies.to_offset(str(freq))).total_seconds()
    except (ValueError, TypeError):
        return str(freq)
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"


def speed_note(metrics: dict) -> str | None:
    """How the latencies were measured: repeats' spread and the machine's load while measuring."""
    ms = [m for _, m in _ordered_models(metrics) if _num(m.get("latency_ms_batch1")) is not None]
    loads = [v for v in (_num(m.get("load_avg_1m")) for m in ms) if v is not None]
    if not ms or not any(_num(m.get("latency_ms_batch1_p10")) is not None for m in ms):
        return None
    text = "Latency: median of the repeated batch-1 calls, (p10-p90) in brackets"
    if loads:
        cpus = next((m.get("cpus") for m in ms if m.get("cpus")), None)
        span = f"{min(loads):.2f}" if max(loads) - min(loads) < 0.005 else f"{min(loads):.2f}-{max(loads):.2f}"
        text += f"; 1-minute load average while measuring: {span}" + (f" on {cpus} CPUs" if cpus else "")
        if cpus and max(loads) > cpus:
            text += " (busier than its CPUs: latencies are inflated)"
    return text + "."


def baseline_losses(metrics: dict) -> list[tuple[str, float, str, float]]:
    """Trained models whose test MAE is worse than a baseline's: ``(model, its MAE, baseline, its MAE)``
    against the best baseline (forecast runs; an empty list when every model beats every baseline)."""
    if _task(metrics) != "forecast":
        return []
    models = _ordered_models(metrics)
    base: list[tuple[str, float]] = []
    for n, m in models:
        bv = _test_value(m, "mae")
        if m.get("role") == "baseline" and bv is not None:
            base.append((n, bv))
    if not base:
        return []
    bname, bmae = min(base, key=lambda kv: kv[1])
    out: list[tuple[str, float, str, float]] = []
    for name, m in models:
        v = _test_value(m, "mae")
        if m.get("role") != "baseline" and v is not None and v > bmae:
            out.append((name, v, bname, bmae))
    return out


# ----------------------------------------------------------------------------- tables
def _cost_cells(m: dict) -> list[str]:
    """Latency, throughput and training-time cells of a model's row."""
    lat = _fmt_latency(m.get("latency_ms_batch1"))
    lo, hi = _num(m.get("latency_ms_batch1_p10")), _num(m.get("latency_ms_batch1_p90"))
    if lat != "n/a" and lo is not None and hi is not None:
        lat += f" ({_fmt_latency(lo)}-{_fmt_latency(hi)})"  # p10-p90 over the repeats
    return [
        lat,
        _fmt(m.get("throughput_windows_per_s"), ",.0f"),
        _fmt(m.get("train_seconds"), ",.1f"),
    ]


COST_HEADER = ["latency b=1 (ms)", "throughput (windows/s)", "train time (s)"]


def _role_cell(m: dict) -> str:
    """The role column: ``baseline, period 1 day`` for a seasonal baseline (which profile it used)."""
    label = ROLE_LABEL.get(m.get("role"), str(m.get("role")))
    return f"{label}, period {m['period']}" if m.get("period") else label


def format_table(metrics: dict) -> str:
    """The one markdown table of every model of a run (the CLI prints it as is).

    Forecast: model, role, params, MAE/RMSE/MAPE averaged over the horizon, MAE at every horizon
    under ``test.horizons`` (e.g. 3, 6, 12 steps), batch-1 latency, throughput and training time.
    Classify (``metrics["task"] == "classify"``): accuracy, precision, recall, F1, AUROC (and AP when
    a model reports it) instead of the error columns. Missing or NaN values read ``n/a``.
    """
    models = _ordered_models(metrics)
    if _task(metrics) == "classify":
        optional = {"ap": any(_cls_value(m.get("test") or {}, "ap") is not None or "ap" in (m.get("test") or {})
                              or "average_precision" in (m.get("test") or {}) for _, m in models),
                    "ece": any("ece" in (m.get("test") or {}) for _, m in models)}
        cols = [c for c in CLASSIFY_METRICS if optional.get(c, True)]
        names = {"f1": "F1", "auroc": "AUROC", "ap": "AP", "ece": "ECE"}
        header = ["model", "role", "params"] + [names.get(c, c) for c in cols]
        rows = [
            [name, ROLE_LABEL.get(m.get("role"), str(m.get("role"))), _fmt_params(m.get("params"))]
            + [_fmt(_cls_value(m.get("test") or {}, c), ".3f") for c in cols]
            + _cost_cells(m)
            for name, m in models
        ]
        return _md_table(header + COST_HEADER, rows, right_from=2)

    hkeys = _horizon_keys(metrics)
    header = ["model", "role", "params", "MAE", "RMSE", "MAPE"] + [f"MAE @{k}" for k in hkeys]
    rows = []
    for name, m in models:
        test = m.get("test") or {}
        horizons = test.get("horizons") or {}
        row = [name, _role_cell(m), _fmt_params(m.get("params"))]
        row += [_fmt_metric(k, test.get(k)) for k in FORECAST_METRICS]
        row += [_fmt_metric("mae", (horizons.get(k) or {}).get("mae")) for k in hkeys]
        rows.append(row + _cost_cells(m))
    return _md_table(header + COST_HEADER, rows, right_from=2)


def _cls_value(test: dict, key: str) -> Any:
    """A classification metric of a ``test`` block; ``ap`` reads ``average_precision`` (or ``ap``)."""
    if key == "ap":
        return test.get("average_precision", test.get("ap"))
    return test.get(key)


def format_event_horizon_table(metrics: dict) -> str:
    """Classify runs: F1, AUROC and AP of every model at each horizon under ``test.horizons``, or ``""``."""
    hkeys = _horizon_keys(metrics)
    if _task(metrics) != "classify" or not hkeys:
        return ""
    cols = (("f1", "F1"), ("auroc", "AUROC"), ("ap", "AP"))
    header = ["model"] + [f"{label} @{h}" for h in hkeys for _, label in cols]
    rows = []
    for name, m in _ordered_models(metrics):
        horizons = (m.get("test") or {}).get("horizons") or {}
        rows.append([name] + [_fmt(_cls_value(horizons.get(h) or {}, k), ".3f") for h in hkeys for k, _ in cols])
    return _md_table(header, rows, right_from=1)


def format_detection_table(metrics: dict) -> str:
    """Classify runs on data with ground-truth incidents: detection share, delays and false alarms, or ``""``."""
    rows = []
    for name, m in _ordered_models(metrics):
        d = (m.get("test") or {}).get("detection")
        if not isinstance(d, dict):
            continue
        rows.append([name, ROLE_LABEL.get(m.get("role"), str(m.get("role"))),
                     f"{d.get('detected', 'n/a')} / {d.get('incidents', 'n/a')}",
                     _fmt(d.get("share_detected"), ".3f"), _fmt(d.get("mean_delay_steps"), ".2f"),
                     _fmt(d.get("median_delay_steps"), ".1f"), _fmt(d.get("median_delay_minutes"), ".0f"),
                     _fmt(d.get("false_alarm_rate"), ".4f")])
    if not rows:
        return ""
    header = ["model", "role", "detected / incidents", "share detected", "mean delay (steps)",
              "median delay (steps)", "median delay (min)", "false-alarm rate"]
    return _md_table(header, rows, right_from=2)


def format_horizon_table(metrics: dict) -> str:
    """Markdown table of MAE, RMSE and MAPE at every reported horizon (forecast runs), or ``""``."""
    hkeys = _horizon_keys(metrics)
    if _task(metrics) == "classify" or not hkeys:
        return ""
    header = ["model"] + [f"{k.upper()} @{h}" for h in hkeys for k in FORECAST_METRICS]
    rows = []
    for name, m in _ordered_models(metrics):
        horizons = (m.get("test") or {}).get("horizons") or {}
        rows.append([name] + [_fmt_metric(k, (horizons.get(h) or {}).get(k)) for h in hkeys for k in FORECAST_METRICS])
    return _md_table(header, rows, right_from=1)


# ----------------------------------------------------------------------------- "what the student kept"
def _ratio(a: Any, b: Any) -> float | None:
    """``a / b`` for finite numbers with ``b != 0``, else None."""
    a, b = _num(a), _num(b)
    return None if a is None or b is None or b == 0 else a / b


def student_summary(metrics: dict) -> dict[str, Any]:
    """What the distilled student kept, as numbers (None where a role or value is missing).

    Keys: ``teacher``, ``student_kd``, ``student_plain`` (model names: the best teacher and distilled
    student by the primary metric, the plain student with the distilled one's parameter count if any),
    ``metric`` (``mae`` or ``f1``), ``ratio_to_teacher`` (student / teacher metric), ``gain_vs_plain_pct``
    (improvement over the plain student in %, positive = distillation helped), ``param_ratio``
    (teacher params / student params) and ``latency_speedup`` (teacher / student batch-1 latency).
    """
    key, lower = PRIMARY_METRIC[_task(metrics)]
    teacher, kd, plain = _key_models(metrics)
    models = metrics.get("models") or {}
    t, s, p = (models.get(n, {}) if n else {} for n in (teacher, kd, plain))
    out: dict[str, Any] = {"teacher": teacher, "student_kd": kd, "student_plain": plain, "metric": key,
                           "ratio_to_teacher": None, "gain_vs_plain_pct": None,
                           "param_ratio": None, "latency_speedup": None}
    if kd is None:
        return out
    sv = _test_value(s, key)
    if teacher is not None:
        out["ratio_to_teacher"] = _ratio(sv, _test_value(t, key))
        out["param_ratio"] = _ratio(t.get("params"), s.get("params"))
        out["latency_speedup"] = _ratio(t.get("latency_ms_batch1"), s.get("latency_ms_batch1"))
    pv = _test_value(p, key) if plain is not None else None
    if sv is not None and pv is not None and pv != 0:
        out["gain_vs_plain_pct"] = 100.0 * ((pv - sv) if lower else (sv - pv)) / abs(pv)
    return out


def _summary_lines(metrics: dict) -> list[str]:
    """The bullet lines of the "what the student kept" section (lines whose inputs are missing are skipped)."""
    s = student_summary(metrics)
    models = metrics.get("models") or {}
    if s["student_kd"] is None:
        return ["- No distilled student in this run: nothing to summarise."]
    key = s["metric"]
    label = key.upper() if key in ("mae", "f1") else key
    kd, t, p = s["student_kd"], s["teacher"], s["student_plain"]
    kv = _fmt(_test_value(models[kd], key), ".3f")
    lines = []
    if s["ratio_to_teacher"] is not None:
        tv = _fmt(_test_value(models[t], key), ".3f")
        lines.append(f"- **{label} vs the teacher**: `{kd}` {kv} vs `{t}` {tv}: "
                     f"**{s['ratio_to_teacher']:.2f} x** the teacher's {label}.")
    if s["gain_vs_plain_pct"] is not None:
        pv = _fmt(_test_value(models[p], key), ".3f")
        word = "better" if s["gain_vs_plain_pct"] >= 0 else "worse"
        lines.append(f"- **Gain from distillation**: `{kd}` {kv} vs `{p}` (same student, no teacher) {pv}: "
                     f"**{s['gain_vs_plain_pct']:+.1f} %** ({word} with distillation).")
    elif p is None:
        lines.append("- No plain student (same student without distillation) in this run: gain not measured.")
    if s["param_ratio"] is not None:
        lines.append(f"- **Size**: {_fmt_params(models[kd].get('params'))} vs {_fmt_params(models[t].get('params'))} "
                     f"parameters: **{s['param_ratio']:.1f} x** fewer than the teacher.")
    if s["latency_speedup"] is not None:
        lines.append(f"- **Speed**: batch-1 latency {_fmt_latency(models[kd].get('latency_ms_batch1'))} ms vs "
                     f"{_fmt_latency(models[t].get('latency_ms_batch1'))} ms: **{s['latency_speedup']:.1f} x** faster "
                     "than the teacher.")
    if t is None:
        lines.append("- No teacher in this run: ratios to the teacher not computed.")
    return lines or [f"- Not enough finite metrics to compare `{kd}` with other models."]


# ----------------------------------------------------------------------------- run directory
@dataclass
class _Run:
    """What the report reads from a run directory."""

    root: Path
    metrics: dict
    data: dict

    @property
    def task(self) -> str:
        """``forecast`` or ``classify``."""
        return _task(self.metrics)

    def prediction(self, name: str) -> np.ndarray | None:
        """``predictions/<name>.npy`` as an array, or None when absent or unreadable."""
        path = self.root / "predictions" / f"{name}.npy"
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None


def _read_json(path: Path) -> dict:
    """A JSON object from ``path``, or ``{}`` when the file is absent."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _load_run(run_dir: Path) -> _Run:
    """Read metrics.json (required) and data.json (optional) of ``run_dir``."""
    run_dir = Path(run_dir)
    mpath = run_dir / "metrics.json"
    if not mpath.is_file():
        raise STKDError(f"{mpath} not found: is {run_dir} a run directory written by `stkd run`?")
    return _Run(run_dir, _read_json(mpath), _read_json(run_dir / "data.json"))


def _step_delta(freq: Any):
    """The data's step as a ``pandas.Timedelta``, or None when ``freq`` is not a fixed frequency."""
    if not freq:
        return None
    try:
        import pandas as pd
        from pandas.tseries.frequencies import to_offset

        return pd.Timedelta(to_offset(str(freq)))
    except (ValueError, TypeError):
        return None


def _timestamps(run: _Run, steps: np.ndarray) -> np.ndarray | None:
    """Timestamps (``datetime64``) of data ``steps``: start + step * freq, or None if unknown."""
    delta = _step_delta(run.data.get("freq"))
    start = run.data.get("start")
    if delta is None or not start:
        return None
    import pandas as pd

    try:
        t0 = pd.Timestamp(start)
    except (ValueError, TypeError):
        return None
    if t0.tzinfo is not None:
        t0 = t0.tz_localize(None)
    return (t0 + pd.to_timedelta(steps * delta.value, unit="ns")).to_numpy()


# ----------------------------------------------------------------------------- plots
# Each _plot_* function draws one PNG and returns None or a note for the report (e.g. a model left out),
# or raises _Skip with the reason when the run's files do not allow the plot.
class _Skip(Exception):
    """A plot cannot be drawn from this run's files; the message says why (it goes into report.md)."""


def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (8, 4.5), layout: str | None = "constrained",
            **kw):
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
        role = m.get("role")
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
                        label=f"{name} ({ROLE_LABEL.get(run.metrics['models'][name].get('role'))})")
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
            mats.append((name, m.get("role"), np.asarray(cm, dtype=float)))
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


# ----------------------------------------------------------------------------- report.md
def _header_lines(run: _Run) -> list[str]:
    """Title and the data set / task / files paragraph."""
    ds = {**(run.metrics.get("dataset") or {}), **{k: v for k, v in run.data.items() if v is not None}}
    nodes = ds.get("nodes")
    n_nodes = len(nodes) if isinstance(nodes, list) else nodes
    name = ds.get("name", "unnamed data set")
    lines = [f"# stkd report: {name}", ""]
    lines.append(f"- **Data set**: `{name}`, {_fmt_params(n_nodes)} nodes, {_fmt_params(ds.get('steps'))} steps "
                 f"every {freq_words(ds.get('freq'))}" + (f", from {ds['start']}" if ds.get("start") else "")
                 + (f"; targets: {', '.join(ds['targets'])}" if ds.get("targets") else "") + ".")
    if ds.get("input_len") or ds.get("horizon"):
        lines.append(f"- **Windows**: {ds.get('input_len', '?')} steps in, {ds.get('horizon', '?')} steps out.")
    splits = ds.get("splits") or {}
    if splits:
        parts = [f"{k} steps [{v[0]}, {v[1]})" for k, v in splits.items()
                 if isinstance(v, (list, tuple)) and len(v) == 2]
        lines.append("- **Splits** (chronological): " + "; ".join(parts) + ".")
    task = "forecast (regression, metrics in original units, masked)" if run.task == "forecast" else \
        "classify (event labels per node and horizon step; see below)"
    lines.append(f"- **Task**: {task}.")
    lines.append(f"- **Files** (in `{run.root}`): `metrics.json` (all numbers below), `config.yaml` (re-runs this), "
                 "`models/<name>/` (weights, config, `log.csv`), `predictions/` (test forecasts), `plots/`.")
    return lines


def _table_section(run: _Run) -> list[str]:
    """The model table, the per-horizon table and how to read them."""
    lines = ["", "## Models", "", format_table(run.metrics), ""]
    if run.task == "forecast":
        freq = run.data.get("freq") or (run.metrics.get("dataset") or {}).get("freq")
        lines.append("MAE, RMSE and MAPE are averaged over every horizon step of every test window (masked: "
                     "missing truth is not scored; MAPE skips zero targets). `MAE @h` is the error h steps "
                     f"ahead{f' (1 step = {freq_words(freq)})' if freq else ''}, 1-indexed. Latency: one window per "
                     "call.")
        note = speed_note(run.metrics)
        if note:
            lines += ["", note]
        losses = baseline_losses(run.metrics)
        if losses:
            lines += ["", "**Warning: models that lose to a baseline** (test MAE; a trained model should beat them):", ""]
            lines += [f"- `{n}` MAE {v:.3f} is worse than baseline `{b}` MAE {bv:.3f}." for n, v, b, bv in losses]
        htable = format_horizon_table(run.metrics)
        if htable:
            lines += ["", "### Error at each reported horizon", "", htable]
    else:
        ev = run.metrics.get("events") or {}
        if ev.get("rule"):
            lines.append(f"Events: **{ev['rule']}** ({ev.get('classes', '?')} classes"
                         + (f": {', '.join(map(str, ev['class_names']))}" if ev.get("class_names") else "") + ").")
            lines.append("")
        lines.append("Classification metrics on the test split, pooled over every horizon step and node (known labels "
                     "only). Two classes: precision, recall and F1 of the event class at the decision threshold "
                     "chosen on validation data; more classes: macro averages at the arg-max. AUROC and AP "
                     "(average precision) rank by probability; ECE is the expected calibration error (10 bins).")
        htable = format_event_horizon_table(run.metrics)
        if htable:
            lines += ["", "### At each reported horizon", "", htable]
        dtable = format_detection_table(run.metrics)
        if dtable:
            h = next((((m.get("test") or {}).get("detection") or {}).get("horizon") for _, m in
                      _ordered_models(run.metrics) if (m.get("test") or {}).get("detection")), 1)
            lines += ["", "### Incident detection", "",
                      f"Ground-truth incidents whose onset lies in the test period; an incident is detected at the "
                      f"first step from its onset to its end at which the model raises an alarm at its node "
                      f"(horizon {h}: decided from the data up to the step before). Delay = detection step - onset. "
                      "False-alarm rate: share of alarmed node-steps outside every incident.", "", dtable]
    return lines


def _remove_stale(plots_dir: Path, keep: set[str]) -> None:
    """Delete plot files of this module that this call did not write (a rerun regenerates, never mixes)."""
    for fname in PLOT_FILES.values():
        if fname not in keep:
            (plots_dir / fname).unlink(missing_ok=True)


def _plots_section(run: _Run) -> list[str]:
    """Draw every plot the run's files allow, and return their markdown (or the reason one is skipped)."""
    plots_dir = run.root / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    colors = _model_colors(run.metrics)
    specs: list[tuple[str, str, str, Callable[[Path], str | None]]] = []
    if run.task == "forecast":
        specs += [
            ("horizon", "Error by horizon", "Test MAE at each step ahead, every model.",
             lambda p: _plot_error_by_horizon(run, colors, p)),
            ("forecast", "Forecast vs truth", "Best teacher and distilled student vs the truth at the most "
             "variable sensors, 1 and 12 steps ahead (or the longest horizon), over the first days of the test "
             "period (gaps = missing truth, not scored).",
             lambda p: _plot_forecast_vs_truth(run, colors, p)),
            ("map", "Sensor map", "Sensors at their coordinates, coloured by the distilled student's test MAE.",
             lambda p: _plot_sensor_map(run, p)),
        ]
    if run.task == "classify":
        specs += [
            ("pr", "Precision-recall", "Precision against recall of the event class on the test split as the "
             "decision threshold varies, every model (dots: the threshold chosen on validation data; AP in the "
             "legend). More than two classes: any event (class > 0) against none.",
             lambda p: _plot_precision_recall(run, colors, p)),
            ("confusion", "Confusion matrices", "Test labels (rows) against decisions (columns), normalised per "
             "row, with counts.", lambda p: _plot_confusion(run, p)),
            ("calibration", "Calibration", "Reliability diagram on the test split: predicted probability of the "
             "event (more classes: of the predicted class) against how often it happened, in 10 bins.",
             lambda p: _plot_calibration(run, colors, p)),
        ]
    specs.append(("curves", "Training curves", "Training loss and validation error per epoch of every trained model.",
                  lambda p: _plot_training_curves(run, colors, p)))
    if run.task == "forecast":
        specs.append(("gain", "Distillation gain per horizon", "MAE reduction of the distilled student over the same "
                      "student trained without the teacher, at each step ahead.",
                      lambda p: _plot_distillation_gain(run, p)))
    lines = ["", "## Plots"]
    written = set()
    for key, title, caption, draw in specs:
        fname = PLOT_FILES[key]
        lines += ["", f"### {title}", ""]
        try:
            note = draw(plots_dir / fname)
        except _Skip as skip:
            lines.append(f"_Skipped: {skip}._")
            continue
        written.add(fname)
        lines += [caption, "", f"![{title}](plots/{fname})"]
        if note:
            lines += ["", f"_Note: {note}._"]
    _remove_stale(plots_dir, written)
    return lines


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.md``, ``run_dir/report.html`` (the same, self-contained) and
    ``run_dir/plots/*.png`` from the run's files; return the path of report.md.

    Every file is written atomically (temp file in the same folder, then ``os.replace``), so a reader
    never sees half a report; calling it again regenerates everything (plots that can no longer be
    drawn are removed). Raises :class:`stkd.errors.STKDError` when ``metrics.json`` is missing.
    """
    run = _load_run(Path(run_dir))
    lines = _header_lines(run) + _table_section(run)
    lines += ["", "## What the student kept", ""] + _summary_lines(run.metrics)
    lines += _plots_section(run)
    missing = [n for n, _ in _ordered_models(run.metrics)
               if run.task == "forecast" and not (run.root / "predictions" / f"{n}.npy").is_file()]
    if missing:
        lines += ["", f"_Models without saved test predictions: {', '.join(f'`{n}`' for n in missing)}._"]
    path = run.root / "report.md"
    text = "\n".join(lines) + "\n"
    write_text(path, text)
    # the same report as one offline page, plots embedded (report_html: nothing outside the file)
    write_text(run.root / "report.html", markdown_to_html(text, run.root, title=lines[0].lstrip("# ")))
    return path
