"""Distillation gain per method and per alpha, on the same split, 3 student seeds each.

    python benchmarks/distill_gain.py --teacher-run bench-runs/accuracy/los-loop/seed-0

The teachers of one accuracy run (trained once, their soft labels cached) are reused; only the STID
student is retrained, with each method below and with no teacher at all (the baseline the gain is
measured against). Single-teacher methods use the run's teacher with the lowest validation MAE; "several
teachers" uses all of them. Each (method, seed) keeps its ``result.json``, and a student whose training
finished is re-scored rather than retrained, so an interrupted invocation resumes (and invocations with
different ``--seeds`` can share ``--out``; the last one with every seed writes the table). Model selection
uses the validation split; the table reports test MAE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from common import command, machine, mean_std, write_section

METHODS = {
    # name: (distill overrides, teachers used: "best" = the run's teacher with the lowest validation MAE)
    "plain (no teacher)": (None, None),
    "response a=0.3": ({"alpha": 0.3}, "best"),
    "response a=0.5": ({"alpha": 0.5}, "best"),
    "response a=0.7": ({"alpha": 0.7}, "best"),
    "teacher-bounded": ({"alpha": 0.5, "bounded": True}, "best"),
    "response + feature (hint)": ({"alpha": 0.5, "feature_weight": 0.1}, "best"),
    "response + relation": ({"alpha": 0.5, "relation_weight": 1.0}, "best"),
    "several teachers (val-weighted)": ({"alpha": 0.5, "ensemble": "weighted"}, "all"),
}


def finished_student(model_dir: Path, wd):
    """The student a completed training left in ``model_dir`` (its best weights), or None."""
    from stkd.checkpoint import load_model
    from stkd.io import read_json

    last = model_dir / "last.json"
    if not (model_dir / "model.json").is_file() or not last.is_file() or not read_json(last).get("finished"):
        return None
    return load_model(model_dir, adjacency=wd.data.adjacency)[0]


def run(teacher_run: Path, out: Path, seeds: list[int], device: str, student: str, quick: bool) -> dict:
    from stkd.config import parse_config, to_dict
    from stkd.data.windows import load_windowed
    from stkd.evaluate import evaluate_forecaster, model_forecaster
    from stkd.pipeline import train_student
    from stkd.runs import load_run, load_trained
    from stkd.tasks.forecast import ForecastTask

    base, _ = load_run(teacher_run)
    wd = load_windowed(base.data)
    teachers = load_trained(teacher_run, wd, roles=("teacher",))
    chosen_by = {"best": [min(teachers, key=lambda t: t.val_mae)], "all": teachers}
    results: dict[str, list[float]] = {}
    for method, (overrides, names) in METHODS.items():
        results[method] = []
        for seed in seeds:
            raw = to_dict(base)
            raw["student"] = {"name": student, "params": {}, "epochs": None}
            raw["train"].update(seed=seed, device=device)
            if quick:
                raw["train"].update(epochs=2, max_batches=5)
            if overrides:
                raw["distill"].update(overrides)
            cfg = parse_config(raw)
            run_dir = out / f"{method.replace(' ', '_').replace('(', '').replace(')', '').replace('=', '')}" / f"seed-{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            result = run_dir / "result.json"
            if result.is_file():  # measured by an earlier (interrupted) invocation
                mae = json.loads(result.read_text())["test_mae"]
            else:
                model = finished_student(run_dir / "models" / f"{student}_{'kd' if names else 'plain'}", wd)
                if model is None:
                    task = ForecastTask(cfg, wd)
                    signal = task.teacher_signal(Path(teacher_run), chosen_by[names]) if names else None
                    model = train_student(task, run_dir, signal, progress=False).model
                model.cpu()
                mae = evaluate_forecaster(model_forecaster(model, wd), wd, "test", [3, 6, 12],
                                          keep_bytes=0).metrics["mae"]
                result.write_text(json.dumps({"method": method, "seed": seed, "test_mae": mae}))
            results[method].append(mae)
            print(f"{method:32s} seed {seed}: test MAE {mae:.4f}", flush=True)
    (out / "results.json").write_text(json.dumps({"results": results, "command": command(), "machine": machine(),
                                                  "teacher_run": str(teacher_run), "student": student,
                                                  "teachers": {k: [t.name for t in v] for k, v in chosen_by.items()}}))
    return results


def summarize(out: Path) -> str:
    blob = json.loads((out / "results.json").read_text())
    results = blob["results"]
    plain = float(np.mean(results["plain (no teacher)"]))
    rows = ["| method | test MAE (mean ± std) | gain vs plain |", "| --- | ---: | ---: |"]
    for method, maes in results.items():
        gain = (plain - float(np.mean(maes))) / plain * 100
        rows.append(f"| {method} | {mean_std(maes)} | {gain:+.1f}% |")
    per_seed = {m: np.asarray(v) for m, v in results.items()}
    base = per_seed["plain (no teacher)"]
    wins = {m: int((v < base).sum()) for m, v in per_seed.items() if m != "plain (no teacher)" and len(v) == len(base)}
    best = min(wins, key=lambda m: float(np.mean(per_seed[m])))
    reading = (f"Reading: the best method here is {best} ({float(np.mean(per_seed[best])):.3f} vs plain {plain:.3f}). "
               "Seeds beating the plain student with the same seed: "
               + ", ".join(f"{m} {w}/{len(base)}" for m, w in wins.items())
               + ". The spread across seeds is as large as the gains, so differences between methods are not "
               "established by 3 seeds; distillation mostly removes the plain student's bad seed. Selection "
               "(early stopping, ensemble weights) used the validation split only.")
    used = blob.get("teachers")
    teachers = (f"Teachers: {', '.join(used['best'])} (the run's best on validation) for the single-teacher methods; "
                f"{', '.join(used['all'])} for several teachers.  \n" if used else "")
    return (f"### Distillation gain per method ({blob['student']} student, {len(next(iter(results.values())))} seeds; "
            f"teachers from `{blob['teacher_run']}`)\n\nCommand: `{blob['command']}`  \nTrained on: {blob['machine']}  \n"
            f"{teachers}\n"
            + "\n".join(rows) + "\n\n" + reading + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher-run", type=Path, default=Path("bench-runs/accuracy/los-loop/seed-0"))
    ap.add_argument("--out", type=Path, default=Path("bench-runs/distill_gain"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--student", default="stid")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        run(args.teacher_run, args.out, args.seeds, args.device, args.student, args.quick)
    section = summarize(args.out)
    if not args.quick:
        write_section("distill-gain", section)
    print(section)


if __name__ == "__main__":
    main()
