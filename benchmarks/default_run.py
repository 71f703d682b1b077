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

SECTION = "default-run"


def wall_time(result: dict) -> str:
    """The run's wall time in words: ``3 min 48 s``."""
    minutes, seconds = divmod(round(result["wall_seconds"]), 60)
    return f"{minutes} min {seconds} s"


def plan_line(result: dict) -> str:
    """The plan's estimate beside the models' measured training time (results that recorded the plan)."""
    from stkd.names import STUDENT_ROLES
    from stkd.train import format_duration

    plan = result.get("plan")
    if not plan:
        return ""
    estimate = sum(r["estimate_seconds"] for r in plan)
    trained = sum(m["train_seconds"] for m in result["metrics"]["models"].values()
                  if m["role"] == "teacher" or m["role"] in STUDENT_ROLES)
    return (f"The plan printed before training estimated {format_duration(estimate)} of training; the "
            f"{len(plan)} models trained for {format_duration(trained)} (the estimate is "
            f"{estimate / trained:.2f}x the time taken).\n\n")


def render(result: dict) -> str:
    from stkd.report import format_table, machine_note

    trained = machine_note(result["metrics"])  # the precision the models trained at (metrics since 0d010e2)
    return (f"### `stkd run` with the default preset\n\nCommand: `{result['command']}` (it runs `stkd run --out DIR`)  \n"
            f"Machine: {result['machine']}, load average {result['load_before']:.1f} before the run; stkd "
            f"{result['versions']['stkd']} (commit {result['versions']['commit']}), {result['date']}  \n"
            f"Wall time: **{wall_time(result)}**\n\n" + (f"{trained}\n\n" if trained else "") + plan_line(result)
            + format_table(result["metrics"]) + "\n")


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
    from stkd.cli import main as stkd_main

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    from stkd.config import parse_config
    from stkd.pipeline import prepare_task
    from stkd.plan import training_plan
    from stkd.presets import default_preset_dict

    plan = training_plan(prepare_task(parse_config(default_preset_dict())))  # what `stkd run` prints first
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        rc = stkd_main(["run", "--out", str(out), "--quiet"])
        wall = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(f"stkd run failed with exit status {rc}")
        metrics = json.loads((out / "metrics.json").read_text())
    save_result(SECTION, "default_run", {"wall_seconds": wall, "load_before": load_before, "metrics": metrics,
                                          "plan": plan})
    print(f"{wall:.0f} s")


if __name__ == "__main__":
    main()
