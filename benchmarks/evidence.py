"""Evidence that distillation pays: paired seeds, bootstrap intervals, win counts.

    python benchmarks/evidence.py --datasets los-loop --seeds 0 1 2 3 4
    python benchmarks/evidence.py --datasets los-loop akl-pedestrians synthetic-traffic --students stid mlp linear
    python benchmarks/evidence.py --datasets akl-pedestrians --teacher-seed 0 --teacher-lags 1D 7D
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --students stid-nb
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --extra-teachers stid-32
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --students stid-nb \
        --extra-teachers stid-nb:100 stid-nb:101 stid-nb:102 stid-nb:103 [--without-main-teacher]
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --history 1d
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --outages 0.5
    python benchmarks/evidence.py --datasets los-loop --teacher-seed 0 --teacher-epochs 40 --teacher-lags 1D \
        [--extra-teachers stid-64-nb] [--student-lags 1D]
    python benchmarks/evidence.py --datasets akl-pedestrians --teacher-seed 0 --teacher-lags 1D 7D \
        --augment mask mixup [--augment-labels online] [--augment-weight 1]
    python benchmarks/evidence.py --datasets akl-pedestrians --teacher-seed 0 --teacher-lags 1D 7D --precision bf16 \
        --student-schedule 30 6 --student-lags 1D 7D --extra-teachers stid-64 --without-main-teacher \
        --augment mask mixup --student-init teacher --students stid-8 stid-32   # students of other sizes
    python benchmarks/evidence.py --datasets akl-pedestrians --teacher-seed 0 --teacher-lags 1D 2D 3D 7D 14D 21D 28D \
        --precision bf16 --student-schedule 30 6 --student-lags 1D 2D 3D 7D --extra-teachers stid-64 \
        --without-main-teacher --augment mask mixup --student-init teacher \
        --student-lr 0.008   # the preset pair of 2026-12-06 (its students now: 60 epochs, no augmented windows)
    python benchmarks/evidence.py --datasets akl-pedestrians --students stid --teacher-seed 0 \
        --teacher-lags 1D 2D 3D 7D 14D 21D 28D --precision bf16 --student-schedule 60 12 --student-min-epochs 40 \
        --student-lags 1D 2D 3D 7D --extra-teachers stid-64 --without-main-teacher --student-init teacher \
        --student-lr 0.008   # today's preset pair, no early stop before epoch 40

For every data set and seed the teacher(s) train once and cache their soft labels (``--teacher-seed S``:
one teacher, trained with seed S, serves every seed; cheaper, and the spread then holds the students'
randomness only); then every student trains twice from the same seed (so from the same initial weights
and batch order): distilled and alone, one after the other at this process's threads, or both at once in
processes of their own with ``--workers 2`` (one thread each on 2 cores; the same threads give the same numbers
either way, and the command that measured a row says which it was: the rows before it trained in turn). ``akl-pedestrians`` is the default preset of ``stkd run`` as it was
until 2026-12-04 (its data, Graph WaveNet teacher, student width and schedule: ``common.akl_gwnet_preset``,
pinned so that the rows measured from it keep their meaning); the rows whose student reads the lags 1D, 2D,
3D, 7D at ``--student-lr 0.008``, taught by ``stid-64`` alone reading ``--teacher-lags 1D 2D 3D 7D 14D 21D 28D``,
are today's preset (at ``--student-schedule 60 12 --student-min-epochs 40`` its schedule; those whose student reads
1D, 7D were it from 2026-12-04 to 2026-12-06). A teacher that
reads other lags than the data set's usual one (``--teacher-lags``; :data:`USUAL_TEACHER_LAGS`) has rows, run
folders and a teacher cache of its own.
Per data set and student the script reports the teacher's, the plain and the distilled test MAE (mean over
seeds), the mean relative gain with a 95 % bootstrap interval over seeds and the wins
(:func:`stkd.paired.paired_gain`); a gain is "established" only when the interval excludes zero. Choices
(early stopping) use the validation split only. Results: ``docs/results/evidence-<dataset>.json``, one
record per (seed, student), written as soon as it is measured (an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from common import (
    RESULTS,
    commands_line,
    machine_line,
    merged_records,
    save_result,
)
from evidence_compare import row_summary, rows_by_student, teacher_bar
from evidence_gaps import (
    alpha_gap,
    augment_gap,
    calendar_gap,
    copies_gap,
    edge_kept,
    held_out_gap,
    history_gap,
    init_gap,
    lags_gap,
    loss_gap,
    lr_gap,
    min_epochs_gap,
    privileged_gap,
    schedule_gap,
    scope_gap,
    size_gap,
    splits_disagree,
    teacher_epochs_gap,
)
from evidence_rows import (
    DATASETS,
    DISTILL,
    EXTRA_TEACHERS,
    HELD_OUT,
    STUDENTS,
    USUAL_TEACHER_EPOCHS,
    USUAL_TEACHER_LAGS,
    min_epochs_problem,
    teacher_epochs_label,
    teacher_lags_label,
)
from evidence_train import extra_teacher, learning_rate, run_seed, teacher_epochs_problem
from fidelity import fidelity_gap
from stkd.names import AUGMENT_LABELS, AUGMENTATIONS, LOSSES, STUDENT_INITS, TEACHER_SCOPES

SCOPE_WORDS = {"all": "everywhere", "observed-inputs": "where inputs were observed"}  # for the table's header
assert set(SCOPE_WORDS) == set(TEACHER_SCOPES), "a teacher scope without words for the table"


def recipe_comparison(dataset: str, teacher_val: float, records: list[dict]) -> list[str]:
    """On Los-loop, the teacher against the best plain student of the recipe ablation (chosen there on
    validation, ``docs/results/recipe-los-loop.json``) and against the last value: the issue's teacher bar."""
    path = RESULTS / "recipe-los-loop.json"
    if dataset != "los-loop" or not path.is_file():
        return []
    from recipe import best_student

    best = best_student(json.loads(path.read_text()))
    t_test = float(np.mean([r["teacher_mae"] for r in records]))
    last = float(np.mean([r["last_value_mae"] for r in records]))
    below = 100 * (1 - t_test / best["test_mae"])
    ratio = t_test / last
    met = below >= 5 and ratio <= 0.80
    return [f"- against the recipe's best plain student ({best['variant']}, val {best['val_mae']:.3f}, test "
            f"{best['test_mae']:.3f}): the teacher's validation MAE is {100 * abs(1 - teacher_val / best['val_mae']):.1f} % "
            f"{'below' if teacher_val <= best['val_mae'] else 'above'} and its test MAE ({t_test:.3f}) "
            f"{abs(below):.1f} % {'below' if below >= 0 else 'above'}; it is {ratio:.2f}x the last value ({last:.3f}); "
            f"the bar (at least 5 % below the best plain student and at most 0.80x the last value) is "
            f"{'met' if met else 'not met'}"]


def per_row_line(by_student: dict[str, list[dict]], key: str, title: str, show=str) -> str:
    """A line under the table's header: the value of ``key`` in each row (``show`` names it), as recorded;
    empty for records older than the field."""
    state = {s: show(rows[0][key]) for s, rows in by_student.items() if key in rows[0]}
    if not state:
        return ""
    values = list(dict.fromkeys(state.values()))
    if len(values) == 1:
        return f"{title}: {values[0]} in every row  \n"
    parts = [f"{v} in {'the rows ' if i == 0 else ''}{', '.join(f'`{s}`' for s, w in state.items() if w == v)}"
             for i, v in enumerate(values)]
    return f"{title}: {'; '.join(parts)}  \n"


def day_of_week_line(by_student: dict[str, list[dict]]) -> str:
    """Which rows had the day-of-week embedding (``data.day_of_week: auto`` decides from the training part's
    calendar, teacher and students alike) and where the teacher counted for the distilled students
    (``distill.teacher_scope``)."""
    return (per_row_line(by_student, "day_of_week", "Day-of-week embedding", lambda on: "on" if on else "off")
            + per_row_line(by_student, "teacher_scope", "The teacher counts (`distill.teacher_scope`)",
                           lambda scope: SCOPE_WORDS[scope]))


def held_out_source(dataset: str) -> tuple[str, list[dict]] | None:
    """For a held-out data set (:data:`HELD_OUT`): the data set its settings were chosen on and that one's evidence
    records, read once for all of its rows; None for any other data set, or where that file was never written."""
    tuned = HELD_OUT.get(dataset, {}).get("of")
    path = RESULTS / f"evidence-{tuned}.json"
    return (tuned, json.loads(path.read_text())["records"]) if tuned is not None and path.is_file() else None


def same_lag_rows(records: list[dict]) -> list[str]:
    """The rows whose student reads every lag its teachers read (``--student-lags`` covering the teachers' lags):
    their teachers know no input the student lacks (their edge is width, depth or their ensemble), though a row is
    marked ``privileged teacher (lags ...)`` for lags beyond the data set's usual teacher's."""
    return sorted({r["student"] for r in records
                   if r.get("teacher_lags") and set(r["teacher_lags"]) <= set(r.get("student_lags") or [])})


def render(result: dict) -> str:
    from stkd.paired import describe_gain, gain_cell, paired_gain

    by_student = rows_by_student(result)
    source = held_out_source(result["dataset"])  # the tuned-on rows a held-out data set's rows are set beside
    lines = ["| student | seeds | teacher MAE | plain MAE | distilled MAE | mean gain (95 % interval) | wins | "
             "gain on validation | distilled / teacher |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    verdicts = []
    for student, rows in by_student.items():
        row = row_summary(result, rows)
        g, t, kd = row["gain"], row["teacher"], row["kd"]  # t: what the student learns from
        g_val = paired_gain([r["plain_val"] for r in rows], [r["kd_val"] for r in rows])  # where early stopping reads
        lines.append(f"| {student} | {g['n']} | {t:.3f} | {row['plain']:.3f} | {kd:.3f} | "
                     f"{gain_cell(g)} | {g['wins']}/{g['n']} | {gain_cell(g_val)}, {g_val['wins']}/{g_val['n']} | "
                     f"{kd / t:.3f} |")
        line = f"- {student}: " + describe_gain(g, "distillation") + splits_disagree(g, g_val)
        if "ensemble_mae" in rows[0]:  # how much of the ensemble's edge over the plain student it keeps
            plain = row["plain"]
            edge = plain - t
            kept = edge_kept(plain, kd, t)
            line += (f" The ensemble teacher's test MAE is {t:.3f}, {100 * abs(edge) / plain:.1f} % "
                     f"{'below' if edge >= 0 else 'above'} the plain student's"
                     + (f"; the distilled student keeps {kept:.0f} % of that edge." if kept >= 0 else
                        "; the distilled student is further from it than the plain one." if edge > 0 else "."))
            if "ensemble_train" in rows[0]:  # soft labels as close to the truth as the members' own fit add little
                tr, va = rows[0]["ensemble_train"], rows[0]["ensemble_val"]
                closer = 100 * (va - tr) / va
                line += (f" Its soft labels are {tr:.3f} from the truth on the training windows the student learns "
                         f"from, against {va:.3f} on validation ({abs(closer):.0f} % "
                         f"{'closer' if closer >= 0 else 'further'} where it trained).")
        elif len(rows[0].get("teachers", [])) > 1:
            line += " (Teacher MAE: its best member; the ensemble's own MAE was not recorded for this row.)"
        line += (history_gap(rows, by_student) + scope_gap(rows, by_student) + schedule_gap(rows, by_student)
                 + augment_gap(rows, by_student) + lags_gap(rows, by_student) + calendar_gap(rows, by_student)
                 + size_gap(rows, by_student)
                 + privileged_gap(rows, by_student, result["dataset"])
                 + teacher_epochs_gap(rows, by_student, result["dataset"]) + alpha_gap(rows, by_student)
                 + loss_gap(rows, by_student) + copies_gap(rows, by_student)
                 + init_gap(rows, by_student) + lr_gap(rows, by_student, result["dataset"])
                 + min_epochs_gap(rows, by_student)
                 + held_out_gap(source, rows, g)
                 + fidelity_gap(rows, row["plain"], t))
        if row["target"] is not None:
            line += (f" Distilled / plain {row['ratio']:.3f}: the issue's target (at most {row['target']:.2f}, the gain "
                     f"established) is {'met' if row['met'] else 'not met'}.")
        verdicts.append(line)
    bar = teacher_bar(result, by_student)
    if bar is not None:  # the bar: a teacher at least 5 % below the best plain student
        rel = bar["below"]
        verdicts.append(f"- the teacher's validation MAE is {bar['teacher_val']:.3f}, {abs(rel):.1f} % "
                        f"{'below' if rel >= 0 else 'above'} the best plain student's here ({bar['best']}, "
                        f"{bar['best_val']:.3f}): the 5 % margin the issue asks for is {'met' if rel >= 5 else 'not met'}")
        verdicts += recipe_comparison(result["dataset"], bar["teacher_val"], bar["records"])
    first = result["records"][0] if result["records"] else {}
    teacher = ("one teacher per seed" if first.get("teacher_seed") is None
               else f"one teacher (seed {first['teacher_seed']}) for every seed")
    epochs = USUAL_TEACHER_EPOCHS.get(result["dataset"], first.get("teacher_epochs"))
    if epochs:
        teacher += f", {epochs} epochs"
    if first.get("precision") == "bf16":
        teacher += ", every model trained under bf16"
    usual = USUAL_TEACHER_LAGS.get(result["dataset"], [])
    if usual:
        teacher += f", reading also the lags {', '.join(usual)} (a privileged teacher)"
    # rows whose teacher reads other inputs, or trained for longer or shorter, say so in their label
    for label_of, key, what in ((teacher_lags_label, "teacher_lags", "it reads what the mark names"),
                                (teacher_epochs_label, "teacher_epochs", "it trains for those epochs")):
        marked = sorted({lab for r in result["records"] if (lab := label_of(result["dataset"], r.get(key)))})
        if marked:
            teacher += "; in the rows marked " + ", ".join(f"`{m.removeprefix(', ')}`" for m in marked) + f" {what}"
    if same := same_lag_rows(result["records"]):
        teacher += ("; in the rows " + ", ".join(f"`{r}`" for r in same) + " the student reads every lag its teachers "
                    "read (`reading lags`): its teachers know no input it lacks, whatever their mark says")
    return (f"### Distillation evidence on {result['dataset']} (paired seeds)\n\n{commands_line(result)}  \n"
            f"Teacher: {teacher}; each seed trains the student twice from the same initial weights and batches  \n"
            f"{day_of_week_line(by_student)}{machine_line(result)}\n\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["los-loop"], choices=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    ap.add_argument("--runs", type=Path, default=Path("bench-runs/evidence"))
    ap.add_argument("--teacher-seed", type=int, default=None,
                    help="train one teacher with this seed for every seed (default: a teacher per seed)")
    ap.add_argument("--teacher-lags", nargs="+", default=None,
                    help="the teacher also reads these lags, e.g. 1D 7D (a privileged teacher)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                    help="train.precision of every model (default: the data set's setting)")
    ap.add_argument("--teacher-epochs", type=int, default=None,
                    help="the teacher's epochs (default: the data set's schedule, as the students')")
    ap.add_argument("--extra-teachers", nargs="+", type=extra_teacher, default=None, metavar="LABEL[:SEED]",
                    help=f"also train these teachers (once, with --teacher-seed or their own SEED) and distil from "
                         f"the weighted ensemble; LABEL is one of {', '.join(EXTRA_TEACHERS)}")
    ap.add_argument("--extra-teacher-epochs", type=int, default=None, metavar="EPOCHS",
                    help="every extra teacher trains for these epochs (default: the data set's schedule, or "
                         "--teacher-epochs for copies of the main teacher's model): e.g. two teachers of fewer "
                         "epochs in the time of one")
    ap.add_argument("--without-main-teacher", action="store_true",
                    help="the ensemble is the extra teachers alone (the main teacher is not trained)")
    ap.add_argument("--history", default=None, metavar="DURATION",
                    help="teacher and students train on only the last DURATION of the train period, e.g. 1d "
                         "(data.history; validation and test unchanged): a place with little history")
    ap.add_argument("--outages", type=float, default=None, metavar="RATE",
                    help="knock RATE (e.g. 0.5) of every sensor's training readings out, in outages of 1 to 8 hours "
                         "(benchmarks/outages.py); the distilled student gets the teacher's forecast in their place")
    ap.add_argument("--teacher-scope", choices=TEACHER_SCOPES, default=None,
                    help="distill.teacher_scope of the distilled students (default: the config's); rows measured with "
                         "observed-inputs given here are labelled so (they were measured before it was the default)")
    ap.add_argument("--student-schedule", nargs=2, type=int, default=None, metavar=("EPOCHS", "PATIENCE"),
                    help="the students' epochs and early-stopping patience (default: the data set's schedule); "
                         "needs --teacher-seed, so the teacher keeps its own")
    ap.add_argument("--student-min-epochs", type=int, default=None, metavar="EPOCH",
                    help="no early stop of the students before this epoch (train.min_epochs; the row's name says "
                         "so); needs --student-schedule")
    ap.add_argument("--augment", nargs="+", choices=AUGMENTATIONS, default=None,
                    help="the distilled students also learn the teacher's forecasts of these augmented inputs "
                         "(distill.augment)")
    ap.add_argument("--augment-labels", choices=AUGMENT_LABELS, default="online",
                    help="with --augment: the cached forecast of the clean window, or the teacher run on the "
                         "augmented input itself (distill.augment_labels; default here: online)")
    ap.add_argument("--augment-weight", type=float, default=1.0, help="with --augment: distill.augment_weight")
    ap.add_argument("--student-lags", nargs="+", default=None, metavar="LAG",
                    help="the students read these lagged channels too (student.inputs.lags, e.g. 1D 7D: what a "
                         "privileged teacher reads); such a student is served from a history back to its lag")
    ap.add_argument("--alpha", type=float, default=None,
                    help=f"distill.alpha of the distilled students: the ground truth's weight, the rest the "
                         f"teacher's (default {DISTILL['alpha']:g}; 0: the teacher's forecasts alone)")
    ap.add_argument("--loss", choices=LOSSES, default=None,
                    help="train.loss and distill.loss of both students, the plain and the distilled (default: the "
                         "data set's); needs --teacher-seed, so the teacher keeps its own")
    ap.add_argument("--student-init", choices=STUDENT_INITS, default=None,
                    help="distill.init of the distilled students: teacher starts them from the first teacher's weights "
                         "cut to their size (the first teacher must be of the student's kind and read what it reads)")
    ap.add_argument("--student-lr", type=learning_rate, default=None,
                    help="train.lr of both students, the plain and the distilled (default: the data set's); needs "
                         "--teacher-seed, so the teacher keeps its own")
    ap.add_argument("--distances-only", action="store_true",
                    help="train nothing: add what the records of the rows these arguments name lack, from their teachers "
                         "and students saved under --runs: the students' distances to the teacher (fidelity.py) "
                         "and how their schedules ended (epochs run, best epoch, early stop)")
    ap.add_argument("--workers", type=int, default=1, metavar="N",
                    help="with 2: train each row's distilled and plain student at once, one process each at a share "
                         "of the cores (default 1: one after the other in this process, at its threads, as every row "
                         "measured before this option; other threads round differently)")
    ap.add_argument("--quick", action="store_true", help="2 epochs of 3 batches: a smoke test, nothing is saved")
    args = ap.parse_args()
    if args.workers < 1:
        ap.error("--workers: at least 1")
    if args.extra_teachers and args.teacher_seed is None:
        ap.error("--extra-teachers needs --teacher-seed (the extra teachers are trained once)")
    if args.student_schedule and args.teacher_seed is None:
        ap.error("--student-schedule needs --teacher-seed (the teacher trains apart, on its own schedule)")
    if problem := min_epochs_problem(args.student_min_epochs, args.student_schedule):
        ap.error(problem)
    if args.loss is not None and args.teacher_seed is None:
        ap.error("--loss needs --teacher-seed (the teacher trains apart, under its own loss)")
    if args.student_lr is not None and args.teacher_seed is None:
        ap.error("--student-lr needs --teacher-seed (the teacher trains apart, at its own learning rate)")
    if args.outages is not None and not 0 < args.outages < 1:
        ap.error("--outages: a rate strictly between 0 and 1")
    if args.outages and args.history:
        ap.error("--outages and --history: one kind of missing data at a time")
    augment = ({"augment": args.augment, "augment_labels": args.augment_labels,
                "augment_weight": args.augment_weight} if args.augment else None)
    if augment and args.augment_weight <= 0:
        ap.error("--augment-weight: must be > 0")
    if args.alpha is not None and not 0 <= args.alpha <= 1:
        ap.error("--alpha: a weight between 0 and 1")
    if args.without_main_teacher and not args.extra_teachers:
        ap.error("--without-main-teacher needs --extra-teachers (an ensemble to distil from)")
    problem = teacher_epochs_problem(args.teacher_epochs, args.extra_teachers, args.without_main_teacher)
    if problem:
        ap.error(problem)
    if args.extra_teacher_epochs is not None and (not args.extra_teachers or args.extra_teacher_epochs < 1):
        ap.error("--extra-teacher-epochs needs --extra-teachers, and a number of epochs of at least 1")
    if args.extra_teacher_epochs is not None and args.teacher_epochs is not None:
        ap.error("--extra-teacher-epochs and --teacher-epochs: give one (both would set the epochs of a copy of "
                 "the main teacher's model)")
    row = {"teacher_seed": args.teacher_seed, "teacher_lags": args.teacher_lags, "precision": args.precision,
           "teacher_epochs": args.teacher_epochs, "extra_teachers": args.extra_teachers,
           "without_main": args.without_main_teacher, "history": args.history,
           "student_schedule": args.student_schedule, "outages": args.outages, "teacher_scope": args.teacher_scope,
           "augment": augment, "student_lags": args.student_lags, "alpha": args.alpha,
           "student_init": args.student_init, "student_lr": args.student_lr,
           "student_min_epochs": args.student_min_epochs, "loss": args.loss, "extra_epochs": args.extra_teacher_epochs}
    for dataset in args.datasets:
        section = f"evidence-{dataset}"
        path = RESULTS / f"{section}.json"
        old = json.loads(path.read_text()) if path.is_file() and not args.quick else {"records": []}
        records = old["records"]
        for seed in args.seeds:
            done = {(r["seed"], r["student"]): r for r in records}
            new = run_seed(dataset, seed, args.students, args.runs, args.quick, done,
                           distances_only=args.distances_only, workers=args.workers, **row)
            records += new
            if not args.quick:  # another invocation (other students) may have saved meanwhile
                records = merged_records(path, new, lambda r: (r["seed"], r["student"]))
                save_result(section, "evidence", {"dataset": dataset, "records": records}, vars(args) | {"runs": None})
        if args.quick:
            print(json.dumps(records, indent=1))
        else:
            print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
