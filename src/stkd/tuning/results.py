"""What a search leaves in its folder besides the study: ``trials.csv`` (every trial's settings, state and
validation score), ``tune.json`` (the best settings, their validation score, trial counts and the best
configuration's test result) and the short table printed at the end."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from stkd.io import write_json, write_text
from stkd.tuning import require_optuna
from stkd.tuning.trial import SURPLUS

STATES = ("complete", "pruned", "failed", "running")
SHOWN = ("mae", "rmse", "mape", "f1", "precision", "recall", "auroc")  # test scores the table prints (if present)


def trial_rows(study, label: str, sign: int) -> list[dict[str, Any]]:
    """One row per trial: number, state, validation score (``val_<label>``: a pruned trial's last reported
    epoch), epochs, seconds, why it stopped, then each searched key."""
    keys: list[str] = []
    ran = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS)]  # a surplus one never trained
    for t in ran:
        keys += [k for k in t.params if k not in keys]
    rows = []
    for t in ran:
        value = t.value
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        attrs = t.user_attrs
        rows.append({"number": t.number, "state": t.state.name.lower(),
                     f"val_{label}": None if value is None or not math.isfinite(value) else sign * value,
                     "epochs": attrs.get("epochs"), "seconds": attrs.get("seconds"), "stopped": attrs.get("stopped"),
                     **{k: t.params.get(k) for k in keys}})
    return rows


def write_trials_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["number", "state"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def state_counts(study) -> dict[str, int]:
    optuna = require_optuna()
    counts = dict.fromkeys(STATES, 0)
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(SURPLUS):
            continue
        name = t.state.name.lower()
        if t.state == optuna.trial.TrialState.FAIL:
            name = "failed"
        if name in counts:
            counts[name] += 1
    return counts


def write_summary(path: Path, summary: dict) -> None:
    write_json(path, summary)


def format_summary(summary: dict, rows: list[dict[str, Any]], top: int = 5) -> str:
    """The printed table: the best trials by validation score, the counts, the best configuration's test
    result."""
    label, sign = summary["monitor"], -1 if summary["monitor_sign"] < 0 else 1
    col = f"val_{label}"
    scored = [r for r in rows if r.get(col) is not None and r["state"] == "complete"]
    scored.sort(key=lambda r: sign * r[col])
    keys = [k for k in (rows[0] if rows else {}) if "." in k]
    head = ["trial", col, "epochs", *[k.split(".", 1)[1] for k in keys]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in scored[:top]:
        cells = [str(r["number"]), f"{r[col]:.4g}", str(r.get("epochs")),
                 *[f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys]]
        lines.append("| " + " | ".join(cells) + " |")
    c = summary["trials"]
    lines.append("")
    lines.append(f"trials: {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed"
                 + (f", {c['running']} running elsewhere" if c["running"] else ""))
    best = summary.get("best")
    if best:
        test = best.get("test") or {}
        shown = ", ".join(f"{k} {test[k]:.4g}" for k in SHOWN if isinstance(test.get(k), (int, float)))
        lines.append(f"best: trial {best['trial']}, val {label} {best['val'][label]:.4g}; test (once, "
                     f"retrained from best.yaml): {shown}")
    return "\n".join(lines)
