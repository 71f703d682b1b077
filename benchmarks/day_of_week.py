"""The day-of-week embedding on the simulator: off (what ``data.day_of_week: auto`` chose there until its rule
changed from "every weekday twice" to "once", on this measurement) or on.

    python benchmarks/day_of_week.py --seeds 0 1 2      # writes docs/results/day-of-week-synthetic-traffic.json

The simulator's 14 days (evidence.py's setting: 200 sensors) put one weekend in the training part and the
next one in the test part only; validation (Wednesday evening to Friday's first hour) has none. ``auto``
turned the embedding on only when the training part held every weekday twice, so it was off there, and a
student must forecast the test weekend's midday peak from a time-of-day embedding trained mostly on weekday
rush hours. This script trains the evidence benchmark's plain ``stid-nb`` student (same schedule) with the
embedding off and on, per seed, and scores both on validation and test: does the choice made on validation
agree with test, and how much of the Graph WaveNet teacher's test edge (evidence.py's table) does the
embedding alone close? Results: one record per (seed, setting), written as it is measured (resumes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import RESULTS, command, commands_line, machine_line, merged_records, save_result
from evidence_rows import config, student_config

DATASET = "synthetic-traffic"
SECTION = f"day-of-week-{DATASET}"
SETTINGS = ("off", "on")


def run_one(seed: int, setting: str, runs: Path, quick: bool) -> dict:
    from stkd.config import parse_config
    from stkd.pipeline import prepare_task, train_student
    from stkd.runs import open_run_dir

    raw = config(DATASET, seed, quick)
    raw["data"]["day_of_week"] = setting
    cfg = parse_config(raw)
    task = prepare_task(cfg)
    task.cfg.student = student_config(DATASET, "stid-nb", cfg)
    run_dir = open_run_dir(cfg, task.wd, runs / f"seed-{seed}-dow-{setting}", overwrite=False, resume=True)
    t0 = time.perf_counter()
    plain = train_student(task, run_dir, resume=True, progress=False, label="stid_nb_plain")
    test = task.score(run_dir / "scores", [plain])["models"][plain.name]["test"]
    return {"seed": seed, "day_of_week": setting, "val_mae": plain.val_mae, "test_mae": test["mae"],
            "seconds": time.perf_counter() - t0, "command": command()}


def render(result: dict) -> str:
    rows = {s: sorted((r for r in result["records"] if r["day_of_week"] == s), key=lambda r: r["seed"])
            for s in SETTINGS}
    seeds = sorted({r["seed"] for r in rows["off"]} & {r["seed"] for r in rows["on"]})
    lines = ["| day-of-week embedding | seeds | val MAE (mean ± std) | test MAE (mean ± std) |",
             "| --- | ---: | ---: | ---: |"]
    means = {}
    for s in SETTINGS:
        val = [r["val_mae"] for r in rows[s] if r["seed"] in seeds]
        test = [r["test_mae"] for r in rows[s] if r["seed"] in seeds]
        means[s] = (float(np.mean(val)), float(np.mean(test)))
        note = " (auto's earlier rule: every weekday twice)" if s == "off" else " (auto now: every weekday once)"
        lines.append(f"| {s}{note} | {len(val)} | {np.mean(val):.3f} ± {np.std(val, ddof=1) if len(val) > 1 else 0:.3f} "
                     f"| {np.mean(test):.3f} ± {np.std(test, ddof=1) if len(test) > 1 else 0:.3f} |")
    (v_off, t_off), (v_on, t_on) = means["off"], means["on"]
    pick = "on" if v_on < v_off else "off"
    agree = (t_on < t_off) == (v_on < v_off)
    text = [f"- Validation prefers the embedding **{pick}** ({v_on:.3f} on against {v_off:.3f} off); test "
            f"{'agrees' if agree else 'disagrees'} ({t_on:.3f} on against {t_off:.3f} off, "
            f"{100 * (t_on - t_off) / t_off:+.1f} %)."]
    evidence = RESULTS / f"evidence-{DATASET}.json"
    records = json.loads(evidence.read_text())["records"] if evidence.is_file() else []

    def teacher_mae(label: str) -> float | None:  # the evidence table's Graph WaveNet, over the seeds here
        ev = [r["teacher_mae"] for r in records if r["student"] == label and r["seed"] in seeds]
        return float(np.mean(ev)) if ev else None

    # its rows measured under auto's earlier rule (embedding off, teacher too) and under today's (on)
    teacher_off, teacher_on = teacher_mae("stid-nb, day-of-week off (earlier rule)"), teacher_mae("stid-nb")
    if teacher_off is not None:
        edge = t_off - teacher_off
        text.append(f"- The evidence table's Graph WaveNet teacher, trained with the embedding off as well, has test MAE "
                    f"{teacher_off:.3f}; with the embedding on the plain student is "
                    f"{100 * (t_on - teacher_off) / teacher_off:+.1f} % from it, against {100 * edge / teacher_off:+.1f} % off"
                    + (f": the embedding alone closes {100 * (t_off - t_on) / edge:.0f} % of that teacher's edge."
                       if edge > 0 else "."))
    if teacher_on is not None:
        text.append(f"- Trained with the embedding on too, the teacher's test MAE is {teacher_on:.3f}, "
                    f"{100 * abs(t_on - teacher_on) / t_on:.1f} % {'below' if teacher_on <= t_on else 'above'} the plain "
                    "student with it on.")
    return (f"### The day-of-week embedding on the simulator (plain stid-nb, paired seeds)\n\n"
            f"{commands_line(result)}  \n{machine_line(result)}\n\n" + "\n".join(lines) + "\n\n" + "\n".join(text) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--runs", type=Path, default=Path("bench-runs/day-of-week"))
    ap.add_argument("--quick", action="store_true", help="2 epochs of 3 batches: a smoke test, nothing is saved")
    args = ap.parse_args()
    path = RESULTS / f"{SECTION}.json"
    records = json.loads(path.read_text())["records"] if path.is_file() and not args.quick else []
    for seed in args.seeds:
        for setting in SETTINGS:
            if any(r["seed"] == seed and r["day_of_week"] == setting for r in records):
                continue
            new = run_one(seed, setting, args.runs, args.quick)
            print(json.dumps(new), flush=True)
            records.append(new)
            if not args.quick:
                records = merged_records(path, [new], lambda r: (r["seed"], r["day_of_week"]))
                save_result(SECTION, "day_of_week", {"dataset": DATASET, "records": records},
                            vars(args) | {"runs": None})
    if not args.quick:
        print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
