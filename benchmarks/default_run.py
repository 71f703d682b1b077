"""The README's first command, measured: ``stkd run`` with the default preset on the embedded data.

    python benchmarks/default_run.py     # writes docs/results/default-run.json

Runs the default preset exactly as ``stkd run --out DIR`` does (the CLI entry point, in this process),
records the wall time and the run's metrics.json, and renders the side-by-side table the command prints.
Before the run it makes the plan ``stkd run`` prints (``stkd.plan``), so that the page can set the plan's
estimate of the training time beside the time the models took.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from common import save_result
from stkd.names import STUDENT_ROLES

SECTION = "default-run"
#: The rows of a run that trained (or mix what trained): what the run one at a time is compared on.
TRAINED_ROLES = ("teacher", "teacher_ensemble", *STUDENT_ROLES)


def wall_time(result: dict) -> str:
    """The run's wall time in words: ``3 min 48 s``."""
    minutes, seconds = divmod(round(result["wall_seconds"]), 60)
    return f"{minutes} min {seconds} s"


def plan_line(result: dict) -> str:
    """The plan's estimate beside the models' measured training time (results that recorded the plan)."""
    from stkd.plan import trained_at_once, wall_seconds
    from stkd.train import format_duration

    plan = result.get("plan")
    if not plan:
        return ""
    estimate = sum(r["estimate_seconds"] for r in plan)
    trained = sum(m["train_seconds"] for m in result["metrics"]["models"].values()
                  if m["role"] == "teacher" or m["role"] in STUDENT_ROLES)
    line = (f"The plan printed before training estimated {format_duration(estimate)} of training; the "
            f"{len(plan)} models trained for {format_duration(trained)} (the estimate is "
            f"{estimate / trained:.2f}x the time taken)")
    apart = trained_at_once(plan)
    if apart:  # train.workers: the sums above add up models that trained at the same time
        how = " and ".join(f"the {role}s {n} at once at {threads} thread(s) each" for role, n, threads in apart)
        line += (f". Those are sums over models; {how} (`train.workers`), the plan's estimate of the training's "
                 f"wall time was {format_duration(wall_seconds(plan))}")
    return line + ".\n\n"


def one_at_a_time_line(result: dict) -> str:
    """The run made again with the models one after the other (``--one-at-a-time``), set beside this one."""
    other = result.get("one_at_a_time")
    if not other:
        return ""
    from stkd.machine import listed

    models = result["metrics"]["models"]

    def seconds(ms: dict, roles: tuple[str, ...]) -> str:
        return " and ".join(f"{m['train_seconds']:.0f}" for m in ms.values() if m["role"] in roles)

    trained = {n: m for n, m in other["models"].items() if m["role"] in TRAINED_ROLES}
    same = [n for n, m in trained.items() if m["test_mae"] == models[n]["test"]["mae"]]
    differ = [f"`{n}` {m['test_mae']:.3f} against {models[n]['test']['mae']:.3f}" for n, m in trained.items()
              if n not in same]
    alike = f"the same test MAE to the last digit for {listed([f'`{n}`' for n in same])}" if same else ""
    unlike = f"another for {', '.join(differ)}" if differ else ""
    return (f"The same run again, right after, with the models one after the other (`--one-at-a-time`: "
            f"`--set train.workers=1`, torch's own threads): **{wall_time(other)}** at load average "
            f"{other['load_before']:.1f} (the teachers {seconds(other['models'], ('teacher',))} s, the students "
            f"{seconds(other['models'], STUDENT_ROLES)} s; side by side above: "
            f"{seconds(models, ('teacher',))} s and {seconds(models, STUDENT_ROLES)} s). Side by side took "
            f"{result['wall_seconds'] / other['wall_seconds']:.2f}x its wall time; "
            f"{'; '.join(x for x in (alike, unlike) if x)}.\n\n")


def render(result: dict) -> str:
    from stkd.report import format_table, machine_note

    trained = machine_note(result["metrics"])  # the precision the models trained at (metrics since 0d010e2)
    return (f"### `stkd run` with the default preset\n\nCommand: `{result['command']}` (it runs `stkd run --out DIR`)  \n"
            f"Machine: {result['machine']}, load average {result['load_before']:.1f} before the run; stkd "
            f"{result['versions']['stkd']} (commit {result['versions']['commit']}), {result['date']}  \n"
            f"Wall time: **{wall_time(result)}**\n\n" + (f"{trained}\n\n" if trained else "") + plan_line(result)
            + one_at_a_time_line(result) + format_table(result["metrics"]) + "\n")


def headline(result: dict) -> str:
    from stkd.report import student_summary

    s = student_summary(result["metrics"])
    m = result["metrics"]["models"]
    kd, plain, teacher = s["student_kd"], s["student_plain"], s["taught_by"]
    who = (f"the teachers' ensemble ({' + '.join(f'`{n}`' for n in m[teacher]['members'])})"
           if s["teacher_ensemble"] else f"teacher `{teacher}`")  # what the student learned from
    line = (f"- **Default run** (`stkd run`, Auckland pedestrian counts, {wall_time(result)} on this 2-core "
            f"machine at load average {result['load_before']:.1f}): {who} MAE {m[teacher]['test']['mae']:.1f}, distilled student `{kd}` "
            f"{m[kd]['test']['mae']:.1f}, the same student alone {m[plain]['test']['mae']:.1f}")
    if s["param_ratio"] is not None and s["latency_speedup"] is not None:
        line += (f"; the student has {s['param_ratio']:.1f}x fewer parameters and {s['latency_speedup']:.1f}x lower "
                 "batch-1 latency")
    return line + " ([table](docs/benchmarks.md#the-default-run))."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one-at-a-time", action="store_true",
                    help="then run it again with the models one after the other (--set train.workers=1) and "
                         "record that run's times and MAEs beside it")
    args = ap.parse_args()
    from stkd.config import parse_config
    from stkd.pipeline import prepare_task
    from stkd.plan import training_plan
    from stkd.presets import default_preset_dict

    plan = training_plan(prepare_task(parse_config(default_preset_dict())))  # what `stkd run` prints first
    load_before, wall, metrics = _timed_run([])
    payload = {"wall_seconds": wall, "load_before": load_before, "metrics": metrics, "plan": plan}
    if args.one_at_a_time:
        load, seconds, again = _timed_run(["--set", "train.workers=1"])
        payload["one_at_a_time"] = {"wall_seconds": seconds, "load_before": load, "models": {
            name: {k: m.get(k) for k in ("role", "train_seconds", "val_mae")} | {"test_mae": m["test"]["mae"]}
            for name, m in again["models"].items() if m["role"] in TRAINED_ROLES}}
    save_result(SECTION, "default_run", payload, args=vars(args))
    print(f"{wall:.0f} s")


def _timed_run(extra: list[str]) -> tuple[float, float, dict]:
    """``stkd run`` of the default preset with ``extra`` arguments, in a temporary folder: the load average
    before it, its wall time and its metrics.json."""
    from stkd.cli import main as stkd_main

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        rc = stkd_main(["run", "--out", str(out), "--quiet", *extra])
        wall = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(f"stkd run {' '.join(extra)} failed with exit status {rc}")
        return load_before, wall, json.loads((out / "metrics.json").read_text())

if __name__ == "__main__":
    main()
