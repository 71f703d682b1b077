"""The numbers of a run's report as text: model roles and colours, the markdown tables and the
"what the student kept" summary, all read from ``metrics.json`` alone.

Kept apart from the plots (:mod:`stkd.report.plots`) and the run directory
(:mod:`stkd.report.run`) so that code that only prints a table (``stkd`` commands, the API, the
benchmarks) does not read prediction files or import matplotlib.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stkd import names
from stkd.config import INPUTS_CARD_EXTRAS
from stkd.fidelity import edge_share_pct, nearer_words
from stkd.paired import signed
from stkd.report.privileged import privileged_lags_line, privileged_nodes_line

ROLE_ORDER = names.ROLES
ROLE_LABEL = {
    "teacher": "teacher",
    "teacher_ensemble": "teachers' ensemble",
    "student_kd": "distilled student",
    "student_plain": "student, no distillation",
    "baseline": "baseline",
}
# One palette per role, so a model keeps its colour in every plot and roles read at a glance.
ROLE_PALETTE = {
    "teacher": ["#1f5fa8", "#6a3d9a", "#17becf", "#4c72b0"],
    "teacher_ensemble": ["#08306b"],
    "student_kd": ["#d62728", "#ff7f0e", "#e377c2", "#b8860b"],
    "student_plain": ["#2ca02c", "#8fbc3f", "#006d5b", "#98df8a"],
    "baseline": ["#7f7f7f", "#8c564b", "#bcbd22", "#525252", "#c49c94"],
}
ROLE_STYLE = {"teacher": "-", "teacher_ensemble": "-.", "student_kd": "-", "student_plain": "--", "baseline": ":"}

FORECAST_METRICS = ("mae", "rmse", "mape")
CLASSIFY_METRICS = ("accuracy", "precision", "recall", "f1", "auroc", "ap", "ece")
# The metric the "what the student kept" summary compares, and whether lower is better.
PRIMARY_METRIC = {"forecast": ("mae", True), "classify": ("f1", False)}


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


def _role(m: dict) -> str:
    """A model's role in metrics.json as text (``"None"`` when it names none): the role tables' key, shown as
    it is where the report does not know it."""
    return str(m.get("role"))


def _role_label(m: dict) -> str:
    """A model's role as the tables name it."""
    return ROLE_LABEL.get(_role(m), _role(m))


def _model_colors(metrics: dict) -> dict[str, str]:
    """A fixed colour per model, taken from its role's palette in report order."""
    used: dict[str, int] = {}
    colors = {}
    for name, m in _ordered_models(metrics):
        role = _role(m) if _role(m) in ROLE_PALETTE else "baseline"
        palette = ROLE_PALETTE[role]
        colors[name] = palette[used.get(role, 0) % len(palette)]
        used[role] = used.get(role, 0) + 1
    return colors


def split_value(m: dict, key: str, split: str = "test") -> float | None:
    """A model's metric ``key`` (``mae``, ``f1``) on ``split`` as a finite float, or None: a metrics.json entry
    keeps the averaged test scores under ``test`` and the validation score of the kept epoch as ``val_<key>``."""
    return _num((m.get("test") or {}).get(key) if split == "test" else m.get(f"val_{key}"))


def _test_value(m: dict, key: str) -> float | None:
    """A model's averaged test metric ``key`` as a finite float, or None."""
    return split_value(m, key, "test")


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
    if not ms or not any(_num(m.get("latency_ms_batch1_p90")) is not None for m in ms):
        return None
    rounds = next((m.get("latency_rounds") for m in ms if m.get("latency_rounds")), None)
    text = ("Latency: median of the repeated batch-1 calls, (p10-p90) in brackets" if rounds is None else
            f"Latency: batch-1 calls of all models measured together in {rounds} rounds, each model in turn; "
            "the 10th percentile of a model's calls (what it takes when the machine's other work leaves it "
            "alone), their median-p90 in brackets")
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
    # in rounds (since 2026-12-07): the latency is the calls' 10th percentile, median-p90 beside it; before,
    # the median with p10-p90
    lo = _num(m.get("latency_ms_batch1_median", m.get("latency_ms_batch1_p10")))
    hi = _num(m.get("latency_ms_batch1_p90"))
    if lat != "n/a" and lo is not None and hi is not None:
        lat += f" ({_fmt_latency(lo)}-{_fmt_latency(hi)})"
    return [
        lat,
        _fmt(m.get("throughput_windows_per_s"), ",.0f"),
        _fmt(m.get("train_seconds"), ",.1f"),
    ]


COST_HEADER = ["latency b=1 (ms)", "throughput (windows/s)", "train time (s)"]


def _role_cell(m: dict) -> str:
    """The role column: ``baseline, period 1 day`` for a seasonal baseline (which profile it used)."""
    label = _role_label(m)
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
            [name, _role_label(m), _fmt_params(m.get("params"))]
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
        rows.append([name, _role_label(m),
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
    With several teachers, ``teacher_ensemble`` names their ensemble's row (what the student learned
    from) and ``ratio_to_ensemble`` is the student's metric over the ensemble's. ``taught_by`` names the row
    the distilled student learned from: the ensemble where there is one, else the teacher.
    """
    key, lower = PRIMARY_METRIC[_task(metrics)]
    teacher, kd, plain = _key_models(metrics)
    ensemble = _best_of_role(metrics, "teacher_ensemble")
    models = metrics.get("models") or {}
    t, s, p = (models.get(n, {}) if n else {} for n in (teacher, kd, plain))
    out: dict[str, Any] = {"teacher": teacher, "student_kd": kd, "student_plain": plain, "metric": key,
                           "ratio_to_teacher": None, "gain_vs_plain_pct": None,
                           "param_ratio": None, "latency_speedup": None,
                           "teacher_ensemble": ensemble, "ratio_to_ensemble": None, "taught_by": ensemble or teacher}
    if kd is None:
        return out
    sv = _test_value(s, key)
    if ensemble is not None:
        out["ratio_to_ensemble"] = _ratio(sv, _test_value(models[ensemble], key))
    if teacher is not None:
        out["ratio_to_teacher"] = _ratio(sv, _test_value(t, key))
        out["param_ratio"] = _ratio(t.get("params"), s.get("params"))
        out["latency_speedup"] = _ratio(t.get("latency_ms_batch1"), s.get("latency_ms_batch1"))
    pv = _test_value(p, key) if plain is not None else None
    if sv is not None and pv is not None and pv != 0:
        out["gain_vs_plain_pct"] = 100.0 * ((pv - sv) if lower else (sv - pv)) / abs(pv)
    return out


VALIDATION_SCORES = {"val_mae": 1.0, "val_f1": -1.0}  # a model's validation score -> sign: lower signed is better


def validation_score(entry: dict) -> float | None:
    """A model's validation score (a model card's or metrics.json's entry), signed so that lower is better;
    None when it has none."""
    for key, sign in VALIDATION_SCORES.items():
        value = _num(entry.get(key))
        if value is not None and math.isfinite(value):
            return sign * value
    return None


def servable(entry: dict) -> bool:
    """Whether the serving path can feed a model (its metrics entry or its card): the run's window of every
    feature, with lagged channels at most (``inputs.lags``). A model that reads a longer history or some
    features only (``inputs.length``, ``inputs.features``), or whose card predates the ``servable`` mark,
    is trained and scored but not served."""
    inputs = entry.get("inputs")
    return not inputs or bool(inputs.get("servable"))


def servable_students(models: dict[str, dict]) -> dict[str, dict]:
    """The run's students the serving path can feed (``{name: entry}``)."""
    return {n: e for n, e in models.items() if e.get("role") in names.STUDENT_ROLES and servable(e)}


def unservable_students(models: dict[str, dict]) -> list[str]:
    """The run's students the serving path cannot feed: trained and scored, not served."""
    return [n for n, e in models.items() if e.get("role") in names.STUDENT_ROLES and not servable(e)]


def none_served_reason(models: dict[str, dict]) -> str | None:
    """Why the run serves no student, and what to do (report and CLI), when its students exist but the serving
    path can feed none of them; None otherwise."""
    names = unservable_students(models)
    if not names or servable_students(models):
        return None
    inputs = models[names[0]]["inputs"]
    what = "; ".join(f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in inputs.items() if k not in INPUTS_CARD_EXTRAS and v)
    return (f"{', '.join(f'`{n}`' for n in names)} read other inputs than the run's window ({what}: "
            "`student.inputs`), and the serving path (`stkd serve`, `stkd export`, `stkd.load`) gives a model the "
            "run's window of every feature, with lagged channels at most; train the student without "
            "`student.inputs.length` and `student.inputs.features` to serve it.")


def following_line(models: dict[str, dict], kd: str, plain: str | None) -> str | None:
    """How closely the distilled student follows what it learned from on the test split (its ``to_teacher``),
    beside the plain student: whether distillation brought it nearer (:func:`stkd.fidelity.nearer_pct`), and
    for forecasts the teacher's edge as a share of the plain student's distance to it
    (:func:`stkd.fidelity.edge_share_pct`), which says how much accuracy coming nearer can buy; for events the
    share of decisions it shares with the teacher, then how far its probabilities are from the teacher's (what
    it was taught: the decisions depend on each model's threshold too). None where the run has no such number
    (no teacher, or a run scored before it was recorded)."""
    mine = (models.get(kd) or {}).get("to_teacher")
    if not mine:
        return None
    other = (models.get(plain) or {}).get("to_teacher") if plain else None
    ref, metric = str(mine["teacher"]), str(mine["metric"])
    v, pv = _num(mine["value"]), _num(other["value"]) if other else None
    if v is None:
        return None
    if metric == "agreement":
        text = f"- **How closely it follows the teacher** (`{ref}`, test): `{kd}` decides its class on {100 * v:.1f} % of the scored targets"
        if pv is not None:
            text += f", `{plain}` on {100 * pv:.1f} %: {signed(100 * (v - pv))} points with distillation"
        gap = _num(mine.get("probability_gap"))
        if gap is None:  # a run scored before it was recorded
            return text + "."
        text += (f". Its probabilities differ from the teacher's by {gap:.3f} (mean total variation: what it was "
                 "taught, whatever threshold each decides at)")
        plain_gap = _num(other.get("probability_gap")) if other else None
        if plain_gap is not None and plain_gap > 0:
            text += f", `{plain}`'s by {plain_gap:.3f}: distillation brought them {nearer_words(gap, plain_gap)}"
        return text + "."
    text = (f"- **How closely it follows the teacher** (`{ref}`, test): `{kd}`'s forecasts differ from the "
            f"teacher's by {v:.3f} (mean absolute difference)")
    if pv is None or pv <= 0:
        return text + "."
    text += f", `{plain}`'s by {pv:.3f}: distillation brought the student {nearer_words(v, pv)}"
    plain_mae, ref_mae = (_test_value(models.get(n) or {}, metric) for n in (str(plain), ref))
    edge = None if plain_mae is None or ref_mae is None else edge_share_pct(plain_mae, ref_mae, pv)
    if edge is not None:
        text += (f". The teacher's MAE is below `{plain}`'s by {edge * pv / 100:.3f}, {edge:.0f} % of their difference: "
                 "a student that came all the way would gain that edge, one that comes a share of the way gains at "
                 "least that share of it")
    return text + "."


def served_student(models: dict[str, dict]) -> str | None:
    """The student a run serves by default (``stkd serve``, ``stkd export``, ``stkd.load``): the one with the
    best validation score among its distilled and plain students, the distilled one on a tie. Chosen on the
    validation split, never the test split: where distillation did not help on validation, the same student
    trained alone is the better one to deploy. None when a student has no validation score (older runs, or
    models saved without one): then the caller's role order decides. Only students the serving path can feed
    count (:func:`servable_students`)."""
    students = servable_students(models)
    scores = {n: validation_score(e) for n, e in students.items()}
    if not students or any(v is None for v in scores.values()):
        return None
    return min(students, key=lambda n: (scores[n], names.STUDENT_ROLES.index(students[n]["role"])))


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
    if s["ratio_to_ensemble"] is not None:
        e = s["teacher_ensemble"]
        lines.append(f"- **{label} vs the teachers' ensemble** (what the student learned from): `{kd}` {kv} vs "
                     f"`{e}` {_fmt(_test_value(models[e], key), '.3f')}: **{s['ratio_to_ensemble']:.2f} x** "
                     f"the ensemble's {label}.")
    if s["gain_vs_plain_pct"] is not None:
        pv = _fmt(_test_value(models[p], key), ".3f")
        gain = signed(s["gain_vs_plain_pct"])  # a gain that rounds to zero is +0.0, never -0.0
        word = "better" if float(gain) >= 0 else "worse"
        lines.append(f"- **Gain from distillation**: `{kd}` {kv} vs `{p}` (same student, no teacher) {pv}: "
                     f"**{gain} %** ({word} with distillation from this one seed; "
                     "`stkd distill --teacher-run RUN --seeds 0 1 2 3 4 --out DIR` says whether that holds "
                     "across seeds).")
    elif p is None:
        lines.append("- No plain student (same student without distillation) in this run: gain not measured.")
    if (follows := following_line(models, kd, p)) is not None:
        lines.append(follows)
    for hint in (privileged_lags_line(models, kd), privileged_nodes_line(models, kd)):
        if hint is not None:
            lines.append(hint)
    if s["param_ratio"] is not None:
        lines.append(f"- **Size**: {_fmt_params(models[kd].get('params'))} vs {_fmt_params(models[t].get('params'))} "
                     f"parameters: **{s['param_ratio']:.1f} x** fewer than the teacher.")
    if s["latency_speedup"] is not None:
        lines.append(f"- **Speed**: batch-1 latency {_fmt_latency(models[kd].get('latency_ms_batch1'))} ms vs "
                     f"{_fmt_latency(models[t].get('latency_ms_batch1'))} ms: **{s['latency_speedup']:.1f} x** faster "
                     "than the teacher.")
    served = served_student(models)
    if served is not None:
        others = [n for n in servable_students(models) if n != served]
        val_key = next(k for k in VALIDATION_SCORES if _num(models[served].get(k)) is not None)
        vs = "; ".join(f"`{n}` {_fmt(_num(models[n].get(val_key)), '.3f')}" for n in others)
        why = (" (distillation did not help on validation: the same student trained alone is served)"
               if models[served].get("role") == "student_plain" and others else "")
        lines.append(f"- **Served by default** (`stkd serve`, `stkd export`, `stkd.load`; chosen on the validation "
                     f"split): `{served}`, validation {val_key.removeprefix('val_').upper()} "
                     f"{_fmt(_num(models[served].get(val_key)), '.3f')}" + (f" against {vs}" if vs else "") + why + ".")
    elif (reason := none_served_reason(models)) is not None:
        lines.append(f"- **Served by default**: none. {reason}")
    if t is None:
        lines.append("- No teacher in this run: ratios to the teacher not computed.")
    return lines or [f"- Not enough finite metrics to compare `{kd}` with other models."]


