"""What a transfer found: per history and route the test error over seeds, the gain of each route over the
student trained on the target alone (paired by seed, :func:`stkd.paired.paired_gain`), a table and the
curve of error against history. Every sentence is computed from the numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stkd import names
from stkd.io import atomic_write, write_text
from stkd.paired import MIN_SEEDS, gain_cell, paired_gain, signed, verdict

BASE = "target_only"
LABELS = {"target_only": "student, target only", "source_zero_shot": "source teacher, zero-shot",
          "finetuned": "source teacher, fine-tuned", "kd_source": "student distilled from the source teacher",
          "kd_finetuned": "student distilled from the fine-tuned teacher"}
CURVE = "plots/transfer_curve.png"


def route_scores(result: dict, history: str, route: str, metric: str = "mae") -> list[float]:
    """The route's test ``metric`` per finished seed of ``history``, in seed order."""
    seeds = result["runs"].get(history, {}).get("seeds", {})
    return [float(seeds[str(s)]["routes"][route][metric]) for s in result["seeds"] if str(s) in seeds]


def summarise(result: dict) -> dict:
    """``{history: {route: paired gain over target_only}}`` on ``result["metric"]`` (MAE), with
    :func:`stkd.paired.paired_gain`'s rule for an established gain (enough seeds, an interval clear of zero,
    at least the seed spread)."""
    metric = result.get("metric", "mae")
    gains: dict = {}
    for h in result["runs"]:
        base = route_scores(result, h, BASE, metric)
        if not base:
            continue
        gains[h] = {}
        for route in names.TRANSFER_ROUTES:
            if route == BASE:
                continue
            gains[h][route] = paired_gain(base, route_scores(result, h, route, metric))
    return gains


def schedule_hint(result: dict, min_batches: int | None) -> str | None:
    """A note when the kept histories train on different numbers of batches an epoch (without
    ``train.min_batches``): the same epochs then mean fewer optimiser steps for a shorter history, whose
    models may stop far from trained."""
    batches = {run["batches_per_epoch"] for run in result["runs"].values() if "batches_per_epoch" in run}
    if len(batches) < 2 or min_batches:
        return None
    return (f"the histories train on {min(batches)} to {max(batches)} batches an epoch, so the shorter ones get "
            f"fewer optimiser steps; train.min_batches: {max(batches)} gives each the same")


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    sd = f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else ""
    return f"{np.mean(values):.3f}{sd}"


def table(result: dict, gains: dict | None = None) -> list[str]:
    """Markdown rows: history, route, test MAE/RMSE (mean ± sd over seeds), gain over target_only.
    ``gains``: :func:`summarise` of ``result``, computed here when not given (a stored ``result["gains"]``
    is not read: it may predate the current rule)."""
    gains = summarise(result) if gains is None else gains
    batches = all("batches_per_epoch" in run for run in result["runs"].values())  # older results lack them
    rows = [f"| history (train days, windows{', batches an epoch' if batches else ''}) | route | MAE | RMSE "
            "| gain in MAE vs target only (95 % interval) | better on | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for h, run in result["runs"].items():
        where = (f"{h} ({run['train_days']:.2f} d, {run['windows']['train']}"
                 f"{', ' + str(run['batches_per_epoch']) if batches else ''})")
        for route in names.TRANSFER_ROUTES:
            mae, rmse = route_scores(result, h, route), route_scores(result, h, route, "rmse")
            g = gains.get(h, {}).get(route)
            gain = ("(reference)" if route == BASE else "n/a" if g is None else
                    f"{signed(g['mean'])} % (one seed: no interval)" if g["n"] < 2 else
                    f"{gain_cell(g)}")
            wins = "" if g is None else f"{g['wins']}/{g['n']}"
            rows.append(f"| {where} | {route} | {_mean_sd(mae)} | {_mean_sd(rmse)} | {gain} | {wins} | "
                        f"{'' if g is None else verdict(g)} |")
    return rows


def source_weights_kept(result: dict, history: str) -> str | None:
    """``"k of n seeds"`` where the fine-tuned teacher's best epoch is 0 (its source weights, scored before
    fine-tuning, were never beaten on validation); None where none was, or for results without the record."""
    epochs = [run["finetuned_epoch"] for run in result["runs"].get(history, {}).get("seeds", {}).values()
              if "finetuned_epoch" in run]
    kept = sum(e == 0 for e in epochs)
    return f"{kept} of {len(epochs)} seeds" if kept else None


def _listed(routes: list[str], gains: dict) -> str:
    return ", ".join(f"{r} ({signed(gains[r]['mean'])} %)" for r in routes)


def findings(result: dict, gains: dict | None = None) -> list[str]:
    """One sentence per history: the best route by mean MAE, and which routes beat target_only
    (``gains`` as for :func:`table`)."""
    gains = summarise(result) if gains is None else gains
    lines = []
    for h in result["runs"]:
        means = {r: float(np.mean(v)) for r in names.TRANSFER_ROUTES if (v := route_scores(result, h, r))}
        if not means:
            continue
        best = min(means, key=lambda r: means[r])
        g = gains.get(h, {})
        better = [r for r in g if verdict(g[r]) == "better"]
        worse = [r for r in g if verdict(g[r]) == "worse"]
        parts = [f"lowest mean MAE: {best} ({means[best]:.3f})"]
        parts.append(f"better than target only: {_listed(better, g) if better else 'none established'}")
        if worse:
            parts.append(f"worse than target only: {_listed(worse, g)}")
        if kept := source_weights_kept(result, h):
            parts.append(f"fine-tuning kept the source weights (no epoch beat them on validation) on {kept}")
        lines.append(f"- **{h}** of history: " + "; ".join(parts) + ".")
    return lines


def plot_curve(result: dict, path: Path) -> bool:
    """MAE (mean over seeds, bars: sd) against kept history in days, one line per route; False when fewer
    than one finished history."""
    from matplotlib.figure import Figure

    hs = [h for h in result["runs"] if route_scores(result, h, BASE)]
    if not hs:
        return False
    days = [result["runs"][h]["train_days"] for h in hs]
    order = np.argsort(days)
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for route in names.TRANSFER_ROUTES:
        vals = [route_scores(result, hs[i], route) for i in order]
        ax.errorbar([days[i] for i in order], [np.mean(v) for v in vals],
                    yerr=[float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in vals], marker="o", capsize=3,
                    label=LABELS[route])
    ax.set_xscale("log", base=2)
    ax.set_xticks([days[i] for i in order], [f"{hs[i]}\n{days[i]:.2g} d" for i in order])
    ax.set_xlabel("target history kept for training")
    ax.set_ylabel("test MAE (original units)")
    ax.set_title(f"{result['source']['data']} -> {result['target']['data']}: error vs history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    return True


def write_transfer_report(out: Path, result: dict) -> Path:
    """``out/transfer.md`` (and the curve beside it under plots/)."""
    out = Path(out)
    s, t = result["source"], result["target"]
    has_plot = plot_curve(result, out / CURVE)
    gains = summarise(result)
    lines = [f"# Transfer: {s['data']} ({s['nodes']} sensors) -> {t['data']} ({t['nodes']} sensors)", "",
             f"Source teacher `{s['teacher']}` ({s['model']}, params {s['params']}) from `{s['run']}`; student "
             f"`{t['student']['name']}` (params {t['student']['params']}); seeds {result['seeds']}"
             + (f"; the finetuned route at learning rate {result['finetune_lr']:g}" if "finetune_lr" in result else "")
             + ". Every route "
             "trains on the same kept target history and is scored on the same target test windows "
             f"({next(iter(result['runs'].values()))['windows']['test'] if result['runs'] else 0}).", "",
             "Gain: the relative MAE reduction over the student trained on the target alone, paired by seed, "
             f"with a 95 % bootstrap interval over seeds; a gain is established with {MIN_SEEDS} seeds or more, an "
             "interval that excludes 0, and a gain at least the seed spread (the target-only student's standard "
             "deviation over seeds); otherwise \"not established\".", "", *findings(result, gains), "",
             *table(result, gains), ""]
    if has_plot:
        lines += [f"![test MAE against kept history]({CURVE})", ""]
    return write_text(out / "transfer.md", "\n".join(lines))
