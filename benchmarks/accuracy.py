"""Accuracy: every teacher, student (distilled and plain) and baseline, 3 seeds, mean ± std.

    python benchmarks/accuracy.py --dataset los-loop --seeds 0 1 2
    python benchmarks/accuracy.py --dataset akl-pedestrians --seeds 0 1 2

Each seed trains the teachers (Graph WaveNet, STAEformer), caches their soft labels once, then trains
every student twice: distilled from the teachers (validation-weighted ensemble) and plain. Runs land
in ``--runs``; the table goes to docs/benchmarks.md. Nothing is tuned on the test split: early
stopping and the ensemble weights use the validation split only. ``--report-only`` rebuilds the
table from existing runs (e.g. runs trained on a GPU machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from common import command, los_loop_data, los_loop_nodes, machine, mean_std, write_section

STUDENTS = ("stid", "mlp", "linear")
TEACHERS = ("gwnet", "staeformer")


def base_config(dataset: str, seed: int, device: str, quick: bool, teachers=TEACHERS,
                teacher_epochs: int | None = None) -> dict:
    teacher_cfgs = [{"name": t} for t in teachers]
    if dataset == "los-loop":
        data = los_loop_data()
        train = {"epochs": 60, "patience": 10, "batch_size": 64, "lr": 0.002, "max_batches": None}
    else:
        from stkd.presets import default_preset_dict

        preset = default_preset_dict()
        data = preset["data"]
        sized = {t["name"]: t for t in preset["teacher"]}  # the preset's teacher sizes where it has them
        teacher_cfgs = [sized.get(t, {"name": t}) for t in teachers]
        train = {"epochs": 30, "patience": 6, "batch_size": 64, "lr": 0.002, "max_batches": 150}
    if teacher_epochs:  # a shorter schedule for the teachers only (a slow teacher on a CPU)
        teacher_cfgs = [{**t, "epochs": teacher_epochs} for t in teacher_cfgs]
    if quick:  # a smoke test of the script: 2 epochs x 5 batches on the first 20 sensors
        train.update(epochs=2, max_batches=5)
        if dataset == "los-loop":
            data["nodes"] = los_loop_nodes(20)
    return {"data": data, "teacher": teacher_cfgs, "student": {"name": "stid"},
            "distill": {"alpha": 0.5, "loss": "huber", "ensemble": "weighted"},
            "train": {**train, "seed": seed, "device": device}, "eval": {"latency_repeats": 20}}


def run_seed(dataset: str, seed: int, device: str, runs: Path, quick: bool, teachers=TEACHERS,
             students=STUDENTS, resume: bool = False, teacher_epochs: int | None = None) -> Path:
    from stkd.config import ModelConfig, parse_config
    from stkd.pipeline import check_models, prepare_task, train_student, train_teachers
    from stkd.report import write_report
    from stkd.runs import open_run_dir
    from stkd.tasks.forecast import ForecastTask

    cfg = parse_config(base_config(dataset, seed, device, quick, teachers, teacher_epochs))
    out = runs / dataset / f"seed-{seed}"
    task = prepare_task(cfg)
    check_models(task)
    run_dir = open_run_dir(cfg, task.wd, out, overwrite=not resume, resume=resume)
    t0 = time.perf_counter()
    trained_teachers = train_teachers(task, run_dir, progress=False, resume=resume)
    signal = task.teacher_signal(run_dir, trained_teachers)
    trained_students = []
    for name in students:
        stask = ForecastTask(dataclasses.replace(cfg, student=ModelConfig(name=name)), task.wd)
        trained_students.append(train_student(stask, run_dir, signal, progress=False, resume=resume))
        trained_students.append(train_student(stask, run_dir, progress=False, resume=resume))
    for m in [*trained_teachers, *trained_students]:
        m.model.cpu()
    task.score(run_dir, [*trained_teachers, *trained_students])
    write_report(run_dir)
    print(f"{dataset} seed {seed}: {time.perf_counter() - t0:.0f} s -> {run_dir}", flush=True)
    return run_dir


def schedule(runs: Path) -> str:
    """The training schedule of the first seed's run, as its config.yaml recorded it."""
    import yaml

    cfg = yaml.safe_load((sorted(runs.glob("seed-*"))[0] / "config.yaml").read_text())
    tr = cfg["train"]
    per_epoch = f"at most {tr['max_batches']} per epoch" if tr.get("max_batches") else "every window each epoch"
    teachers = ", ".join(f"{t['name']} {t.get('epochs') or tr['epochs']} epochs" for t in cfg["teacher"])
    student = cfg["student"].get("epochs") or tr["epochs"]
    return (f"batches of {tr['batch_size']}, {per_epoch}, early-stopping patience {tr['patience']}; teachers: "
            f"{teachers}; students: {student} epochs")


def summarize(dataset: str, runs: Path, info: dict) -> str:
    metrics = [json.loads(p.read_text()) for p in sorted((runs / dataset).glob("seed-*/metrics.json"))]
    if not metrics:
        raise SystemExit(f"no runs under {runs / dataset}")
    names = list(metrics[0]["models"])
    rows = ["| model | role | params | MAE | RMSE | MAPE % | MAE @3 | MAE @6 | MAE @12 | val MAE |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    mean = {}
    for name in names:
        entries = [m["models"][name] for m in metrics if name in m["models"]]
        col = lambda f: [f(e) for e in entries]  # noqa: E731
        mean[name] = float(np.mean(col(lambda e: e["test"]["mae"])))
        rows.append(f"| {name} | {entries[0]['role']} | {entries[0]['params'] or 'n/a'} | "
                    f"{mean_std(col(lambda e: e['test']['mae']))} | {mean_std(col(lambda e: e['test']['rmse']))} | "
                    f"{mean_std(col(lambda e: e['test']['mape']))} | "
                    + " | ".join(mean_std(col(lambda e, h=h: e["test"]["horizons"][h]["mae"])) for h in ("3", "6", "12"))
                    + f" | {mean_std(col(lambda e: e.get('val_mae')))} |")
    m0 = metrics[0]["models"]
    teachers = [n for n in names if m0[n]["role"] == "teacher"]
    best_t = min(teachers, key=lambda n: mean[n])
    lines = [f"Best teacher ({best_t}) MAE / last value MAE: **{mean[best_t] / mean['last_value']:.3f}** (target <= 0.80)."]
    for s in STUDENTS:
        kd, plain = f"{s}_kd", f"{s}_plain"
        if kd in mean and plain in mean:
            lines.append(f"{s}: distilled / plain MAE **{mean[kd] / mean[plain]:.3f}** (target <= 0.97), "
                         f"distilled / best teacher **{mean[kd] / mean[best_t]:.3f}** (target <= 1.05), "
                         f"parameters {m0[best_t]['params'] / m0[kd]['params']:.1f}x fewer.")
    ds = metrics[0]["dataset"]
    head = (f"### Accuracy on {dataset} ({ds['nodes']} nodes, {ds['steps']} steps of {ds['freq']}; "
            f"12 in, 12 out, 70/10/20), {len(metrics)} seeds, mean ± std\n\n"
            f"Command: `{info.get('command', command())}`  \nTrained on: {info.get('machine', machine())}  \n"
            f"Schedule: {schedule(runs / dataset)}\n\n")
    return head + "\n".join(rows) + "\n\n" + "\n\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("los-loop", "akl-pedestrians"), default="los-loop")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", type=Path, default=Path("bench-runs/accuracy"))
    ap.add_argument("--quick", action="store_true", help="2 epochs x 5 batches: checks the script, not the models")
    ap.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=("gwnet", "staeformer", "agcrn"),
                    help="teachers to train (on a CPU, staeformer on Los-loop's 207 nodes takes about an hour)")
    ap.add_argument("--students", nargs="+", default=list(STUDENTS), choices=STUDENTS,
                    help="students to train, each distilled and plain")
    ap.add_argument("--teacher-epochs", type=int,
                    help="epochs for the teachers only (default: the schedule's; the students keep theirs)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the runs in --runs from their checkpoints (finished models are not retrained)")
    ap.add_argument("--section", help="docs/benchmarks.md section name (default: accuracy-<dataset>)")
    ap.add_argument("--report-only", action="store_true", help="rebuild the table from existing runs")
    args = ap.parse_args()
    info_path = args.runs / args.dataset / "bench.json"
    if not args.report_only:
        for seed in args.seeds:
            run_seed(args.dataset, seed, args.device, args.runs, args.quick, args.teachers, args.students,
                     args.resume, args.teacher_epochs)
        info_path.parent.mkdir(parents=True, exist_ok=True)
        info_path.write_text(json.dumps({"command": command(), "machine": machine()}))
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    section = summarize(args.dataset, args.runs, info)
    if not args.quick:
        write_section(args.section or f"accuracy-{args.dataset}", section)
    print(section)


if __name__ == "__main__":
    main()
