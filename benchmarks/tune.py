"""A small real search with ``stkd tune`` on the builtin Los-loop: how much a tuned student gains over the
config it started from, what pruning saves, and what a search costs in time.

    python benchmarks/tune.py                      # writes docs/results/tune-los-loop.json
    python benchmarks/tune.py --nodes 0 --trials 30 --epochs 20 --timeout 1h   # all 207 detectors, longer

Steps (on the first 60 detectors by default, so that it ends in minutes on a shared 2-core CPU): (1)
``stkd train`` a half-width Graph WaveNet teacher (and its soft-label cache) on Los-loop;
(2) ``stkd distill`` the base config's STID student from it (the untuned reference); (3) ``stkd tune`` over
the default forecast space (distill.alpha, distill.loss, train.lr, student width and depth) on the
validation split, its best configuration scored on the test split once at the end. Both students get the
same schedule, so the comparison is the settings alone. Every choice is made on validation; the test
column is shown to check it, never used to make it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import los_loop_data, los_loop_nodes, machine_line, save_result

SECTION = "tune-los-loop"
TEACHER = {"name": "gwnet", "params": {"residual_channels": 16, "dilation_channels": 16, "skip_channels": 64,
                                       "end_channels": 128}}


def base_config(args) -> dict:
    data = los_loop_data(nodes=los_loop_nodes(args.nodes)) if args.nodes else los_loop_data()
    return {"data": data, "teacher": [{**TEACHER, "epochs": args.teacher_epochs}],
            "student": {"name": "stid", "params": {}}, "distill": {"alpha": 0.5, "loss": "huber"},
            "train": {"epochs": args.epochs, "patience": 4, "batch_size": 64, "lr": 0.002, "seed": args.seed,
                      "threads": args.threads},
            "eval": {"baselines": ["last"], "latency_repeats": 20}}


def student_entry(metrics: dict) -> dict:
    return next(m for m in metrics["models"].values() if m["role"] == "student_kd")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--timeout", default="8min", help="cap on the search's wall time")
    ap.add_argument("--epochs", type=int, default=8, help="train.epochs of every student")
    ap.add_argument("--teacher-epochs", type=int, default=4)
    ap.add_argument("--nodes", type=int, default=60, help="the first N Los-loop detectors (0: all 207)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/bench-tune", help="folder for the teacher, base and search runs")
    args = ap.parse_args()

    from stkd.config import TuneConfig, parse_config
    from stkd.pipeline import distill_from, train_only
    from stkd.tuning.search import tune

    runs = Path(args.runs)
    cfg = parse_config(base_config(args))
    timings = {}
    t0 = time.perf_counter()
    teacher_run = runs / "teacher"
    train_only(cfg, teacher_run, overwrite=True)  # (teacher epochs and the cache: part of what a search costs)
    timings["teacher_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    base = student_entry(distill_from(cfg, teacher_run, runs / "base", overwrite=True, plain=False))
    timings["base_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tcfg = TuneConfig(trials=args.trials, timeout=args.timeout, workers=args.workers)
    res = tune(cfg, teacher_run, runs / "search", tcfg, overwrite=True)
    timings["tune_s"] = time.perf_counter() - t0
    print(res.table)

    s = res.summary
    best = s["best"]
    payload = {
        "setup": {"teacher": TEACHER, "teacher_epochs": args.teacher_epochs, "epochs": args.epochs,
                  "trials": args.trials, "timeout": args.timeout, "workers": args.workers, "threads": args.threads,
                  "seed": args.seed, "nodes": args.nodes or 207},
        "tune_command": (f"stkd tune --teacher-run {teacher_run} --out {runs / 'search'} --trials {args.trials} "
                         f"--timeout {args.timeout} --workers {args.workers}"),
        "base": {"val_mae": base["val_mae"], "test_mae": base["test"]["mae"], "params": base["params"],
                 "test_horizons": {h: base["test"]["horizons"][h]["mae"] for h in ("3", "6", "12")}},
        "best": {"trial": best["trial"], "params": best["params"], "val_mae": best["val"]["mae"],
                 "test_mae": best["test"]["mae"], "params_count": best["params_count"],
                 "test_horizons": {h: best["test"]["horizons"][h]["mae"] for h in ("3", "6", "12")}},
        "trials": s["trials"], "space": s["space"], "rows": res.rows, "timings": timings,
    }
    path = save_result(SECTION, "tune", payload, vars(args))
    print(f"wrote {path}")
    print(json.dumps({"base": payload["base"], "best": payload["best"], "timings": timings}, indent=1))


# ------------------------------------------------------------------------------------------ rendering
def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render(result: dict) -> str:
    base, best, c = result["base"], result["best"], result["trials"]
    keys = list(result["space"])
    rows = [r for r in result["rows"] if r.get("val_mae") is not None]
    rows.sort(key=lambda r: r["val_mae"])
    lines = ["| trial | state | val MAE | epochs | seconds | " + " | ".join(k.split(".", 1)[1] for k in keys) + " |",
             "| ---: | --- | ---: | ---: | ---: | " + " | ".join("---" for _ in keys) + " |"]
    for r in rows:
        lines.append(f"| {r['number']} | {r['state']}{' (' + r['stopped'] + ')' if r.get('stopped') not in (None, '', 'pruned') else ''} | "
                     f"{r['val_mae']:.3f} | {r['epochs']} | {r['seconds']:.0f} | "
                     + " | ".join(_fmt(r.get(k)) for k in keys) + " |")
    t = result["timings"]
    setup = result["setup"]
    h0, h1 = base["test_horizons"], best["test_horizons"]
    compare = ["| student | params | val MAE | test MAE | MAE @3 | MAE @6 | MAE @12 |",
               "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
               f"| base config (stid, alpha 0.5, huber, lr 0.002, width 16, 2 layers) | {base['params']:,} | "
               f"{base['val_mae']:.3f} | {base['test_mae']:.3f} | {h0['3']:.3f} | {h0['6']:.3f} | {h0['12']:.3f} |",
               f"| best of the search (trial {best['trial']}) | {best['params_count']:,} | {best['val_mae']:.3f} | "
               f"{best['test_mae']:.3f} | {h1['3']:.3f} | {h1['6']:.3f} | {h1['12']:.3f} |"]
    best_params = ", ".join(f"{k} = {_fmt(v)}" for k, v in best["params"].items())
    ran = sum(int(r["epochs"] or 0) for r in result["rows"])
    full = setup["epochs"] * len(result["rows"])
    return (f"### `stkd tune` on Los-loop ({setup['nodes']} detectors, {setup['trials']} trials, {setup['epochs']} "
            f"epochs each, seed {setup['seed']})\n\n"
            f"Command: `{result['command']}` (it runs `{result['tune_command']}` after training the teacher)  \n"
            f"{machine_line(result)}  \n"
            f"Teacher: Graph WaveNet at half width, {setup['teacher_epochs']} epochs ({t['teacher_s']:.0f} s with its "
            f"cache). Search: {t['tune_s']:.0f} s for {c['complete']} complete and {c['pruned']} pruned trials "
            f"plus the best's retraining and test scoring ({setup['workers']} process(es), {setup['threads']} "
            f"thread(s) each).\n\n" + "\n".join(compare) + "\n\n"
            f"Best settings (chosen on validation): {best_params}. Pruning stopped {c['pruned']} of "
            f"{len(result['rows'])} trials early: the search trained {ran} of the {full} epochs its trials would "
            f"have trained without it. A pruned trial's val MAE is its score at the epoch it stopped.\n\n"
            + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
