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

This module assembles report.md (and report.html) and is the one place callers import from; the work
is split by job: :mod:`stkd.report.tables` (numbers as text: roles, tables, the student summary, from
metrics.json alone), :mod:`stkd.report.run` (reading the run directory) and :mod:`stkd.report.plots`
(drawing every PNG).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from stkd.io import write_text
from stkd.machine import machine_note
from stkd.report.plots import (
    DPI,
    PLOT_FILES,
    _plot_calibration,
    _plot_confusion,
    _plot_distillation_gain,
    _plot_error_by_horizon,
    _plot_forecast_vs_truth,
    _plot_precision_recall,
    _plot_sensor_map,
    _plot_training_curves,
    _Skip,
    label_offsets,
    short_labels,
)
from stkd.report.run import _load_run, _Run
from stkd.report.tables import (
    CLASSIFY_METRICS,
    COST_HEADER,
    FORECAST_METRICS,
    PRIMARY_METRIC,
    ROLE_LABEL,
    ROLE_ORDER,
    ROLE_PALETTE,
    ROLE_STYLE,
    _fmt_params,
    _model_colors,
    _ordered_models,
    _summary_lines,
    baseline_losses,
    format_detection_table,
    format_event_horizon_table,
    format_horizon_table,
    format_table,
    freq_words,
    speed_note,
    student_summary,
)
from stkd.report_html import markdown_to_html

# The names ``stkd.report`` has always offered (commands, the API, benchmarks and tests import them
# from here); the code behind them lives in the submodules above.
__all__ = [
    "CLASSIFY_METRICS", "COST_HEADER", "DPI", "FORECAST_METRICS", "PLOT_FILES", "PRIMARY_METRIC", "ROLE_LABEL",
    "ROLE_ORDER", "ROLE_PALETTE", "ROLE_STYLE", "baseline_losses", "format_detection_table",
    "format_event_horizon_table", "format_horizon_table", "format_table", "freq_words", "label_offsets", "machine_note",
    "short_labels", "speed_note", "student_summary", "write_report",
]

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
    note = machine_note(run.metrics)
    return lines + ([note] if note else [])


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
