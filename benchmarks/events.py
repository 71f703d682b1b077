"""Event detection with soft-label distillation: teacher, distilled student and plain student with the same
tuning budget, paired over seeds.

    python benchmarks/events.py                        # both scenarios, seeds 0-4: docs/results/events-<scenario>.json
    python benchmarks/events.py --scenarios los-loop --seeds 5 6   # more seeds (the others' records are kept)
    python benchmarks/events.py --quick                # fewer epochs, a smaller simulator: printed, nothing saved

Scenarios (``task: classify``):

- ``simulator``: builtin synthetic-traffic with incidents; labels = the simulator's ground-truth
  incidents (``rule: given, source: simulator``); incident detection delay is scored too.
- ``los-loop``: the Los-loop speeds (207 detectors, 5-minute steps, 7 days) with a congestion rule:
  speed below 40 mph within the next 30 minutes (``rule: threshold, op: '<', value: 40, within: 6``).

Each seed trains an event teacher (a 2-class head; Graph WaveNet on the simulator, a wide STID reading its
neighbours on Los-loop) and caches its logits. Then the same small STID student (reading its 4 strongest
neighbours each way) is trained in two arms with the same budget, five runs each, from the same seed:

- plain: cross-entropy alone at each ``PLAIN_GRID`` point (learning rate, class weighting, focal loss: what
  matters for a classifier trained alone);
- distilled: the plain arm's chosen setting, plus ``alpha * CE + (1 - alpha) * T^2 * KL`` from the cached
  logits at each ``KD_GRID`` point (alpha, T).

Each arm keeps the run with the best validation F1 (the test split plays no part in a choice); the two chosen
runs of a seed are paired, and over seeds the script reports the mean relative test-F1 gain with a 95 %
bootstrap interval and the wins (:func:`stkd.paired.paired_gain`). The distilled arm trains with the plain
arm's choice so that the two differ by the teacher alone: until ``DESIGN`` 2 it trained at the first setting
(lr 0.003, class weights auto) while the plain arm also chose the learning rate, and on Los-loop the plain arm
chose lr 0.01 on every seed, so a learning rate was compared along with the teacher. Each chosen run's
``to_teacher`` (agreement with the teacher's decisions, distance of its probabilities) says whether
distillation brought the student nearer its teacher. Thresholds and checkpoints are chosen on the
validation split; F1 is the event class's, pooled over horizon steps and nodes (F1 @1: the next step only).
Every run folder lands in ``--runs`` and resumes; a seed's record is written to the result file as soon as it is
measured, so an interrupted invocation resumes at the next seed.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from common import RESULTS, command, los_loop_data, machine_line, mean_std, save_result

SCENARIOS = ("simulator", "los-loop")
TITLES = {"simulator": "Simulator with incidents (synthetic-traffic, labels = ground-truth incidents)",
          "los-loop": "Los-loop congestion: speed below 40 mph within the next 30 minutes"}

TEACHERS = {
    # Graph WaveNet (spatial: it sees the neighbours' queues) on the simulator's incidents
    "simulator": {"name": "gwnet", "params": {"residual_channels": 16, "dilation_channels": 16, "skip_channels": 64,
                                              "end_channels": 64, "blocks": 2, "layers": 3}},
    # On Los-loop (207 sensors) Graph WaveNet cannot be trained to convergence within a CPU budget of minutes
    # (100 steps: F1 0.69, below the plain student); a wide STID reading its 8 strongest neighbours each way
    # is the teacher there.
    "los-loop": {"name": "stid", "params": {"embed_dim": 64, "node_dim": 32, "tod_dim": 32, "dow_dim": 16,
                                            "layers": 3, "neighbours": 8, "neighbour_dim": 32}},
}
# a small STID that reads its 4 strongest downstream and upstream neighbours (an incident or a queue is only
# visible against the neighbours; without them the student's F1 on the simulator was 0.34 against 0.42)
STUDENT = {"name": "stid", "params": {"embed_dim": 8, "node_dim": 4, "tod_dim": 4, "dow_dim": 4, "layers": 2,
                                      "neighbours": 4, "neighbour_dim": 8}}
LR = 0.003
# The distilled arm: (alpha, T), chosen per seed on validation F1, at the plain arm's chosen setting.
KD_GRID = [(0.5, 2.0), (0.1, 2.0), (0.5, 4.0), (0.1, 4.0), (0.9, 2.0)]
# The plain arm gets as many runs: label -> config overrides, chosen per seed on validation F1. The first is the
# scenario's own setting (lr 0.003, class weights inverse to the training frequencies).
PLAIN_GRID: dict[str, dict] = {
    "lr 0.003, class weights auto": {},
    "lr 0.001": {"train": {"lr": 0.001}},
    "lr 0.01": {"train": {"lr": 0.01}},
    "no class weights": {"events": {"class_weights": "none"}},
    "focal loss, gamma 2": {"events": {"focal_gamma": 2.0}},
}


# The records' design: 2 since the distilled arm trains at the plain arm's choice (records without it: 1).
DESIGN = 2


def scenario_config(name: str, seed: int, quick: bool) -> dict:
    """The raw config of one scenario and seed (quick: fewer epochs and batches, a smaller simulator)."""
    if name == "simulator":
        data = {"source": "builtin", "name": "synthetic-traffic",
                "simulator": {"nodes": 40 if quick else 80, "days": 14, "incidents_per_day": 40, "seed": 7}}
        events = {"rule": "given", "source": "simulator"}
        teacher_epochs = 5 if quick else 10
    else:
        data = los_loop_data(target=["speed"])
        events = {"rule": "threshold", "target": "speed", "op": "<", "value": 40, "within": 6}
        teacher_epochs = 8 if quick else 15
    teacher = {**copy.deepcopy(TEACHERS[name]), "epochs": teacher_epochs}
    student = {**copy.deepcopy(STUDENT), "epochs": 20 if quick else 30}  # students are cheap: train to convergence
    train = {"epochs": 15, "patience": 5, "batch_size": 32, "lr": LR, "max_batches": 25 if quick else 40,
             "seed": seed, "threads": 1}
    return {"task": "classify", "data": data, "teacher": teacher, "student": student,
            "distill": {"alpha": KD_GRID[0][0], "temperature": KD_GRID[0][1]}, "train": train,
            "eval": {"horizons": [3, 6, 12], "latency_repeats": 20}, "events": events}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def slug(label: str) -> str:
    return "".join(c if c.isalnum() or c == "." else "-" for c in label).strip("-")


def entry(model: dict) -> dict:
    """The numbers of one model from its metrics.json entry."""
    t = model["test"]
    det = t.get("detection") or {}
    return {"f1": t["f1"], "f1_1": t["horizons"]["1"]["f1"], "auroc": t["auroc"], "ap": t["average_precision"],
            "val_f1": model.get("val_f1"), "params": model.get("params"),
            "latency_ms": model.get("latency_ms_batch1"), "train_seconds": model.get("train_seconds"),
            "share_detected": det.get("share_detected"), "median_delay_steps": det.get("median_delay_steps"),
            "to_teacher": model.get("to_teacher")}


def by_role(metrics: dict, role: str) -> dict:
    return next(v for v in metrics["models"].values() if v["role"] == role)


def plain_run(cfg, teacher_dir: Path, out: Path) -> dict:
    """The plain student alone at ``cfg`` in its own run folder (linked to the teacher run); metrics.json, where
    it is scored beside the teacher so that its ``to_teacher`` is measured as the distilled student's is."""
    from stkd.pipeline import prepare_task, saved_teachers, train_student
    from stkd.runs import open_run_dir, run_lock

    task = prepare_task(cfg)
    with run_lock(out):
        run_dir = open_run_dir(cfg, task.wd, out, overwrite=False, resume=True, summary_extra=task.summary_extra(),
                               teacher_run=teacher_dir)
        trained = train_student(task, run_dir, resume=True, progress=False)
        return task.score(run_dir, [*saved_teachers(task, teacher_dir), trained])


def run_seed(name: str, seed: int, quick: bool, runs: Path) -> dict:
    """One seed: the teacher once, then five plain students and five distilled ones at the plain arm's chosen
    setting; every run resumes."""
    from stkd.config import parse_config
    from stkd.io import read_json
    from stkd.pipeline import distill_from, train_only

    raw = scenario_config(name, seed, quick)
    cfg = parse_config(raw)
    out = runs / name / f"seed-{seed}"
    t0 = time.perf_counter()
    teacher_dir = train_only(cfg, out / "teacher", resume=True, progress=False)
    plain, first = {}, None
    for label, over in PLAIN_GRID.items():
        m = plain_run(parse_config(merge(raw, over)), teacher_dir, out / f"plain-{slug(label)}")
        plain[label] = entry(by_role(m, "student_plain"))
        first = first or m  # the teacher and the persistence baseline, scored beside the first student
    setting = chosen(plain)  # the distilled arm differs from the plain arm's choice by the teacher alone
    base = parse_config(merge(raw, PLAIN_GRID[setting]))
    kd = {}
    for alpha, temp in KD_GRID:
        point = dataclasses.replace(base, distill=dataclasses.replace(base.distill, alpha=alpha, temperature=temp))
        m = distill_from(point, teacher_dir, out / f"kd-{slug(setting)}-a{alpha}-T{temp}", resume=True,
                         progress=False, plain=False)
        kd[f"alpha {alpha}, T {temp}"] = entry(by_role(m, "student_kd"))
    ev = first["events"]
    dow = read_json(teacher_dir / "data.json").get("day_of_week")  # data.day_of_week: auto's choice here
    return {"seed": seed, "day_of_week": dow, "teacher": entry(by_role(first, "teacher")), "persistence": entry(by_role(first, "baseline")),
            "kd": kd, "plain": plain, "kd_setting": setting, "design": DESIGN,
            "test_class_counts": ev["test_class_counts"], "rule": ev["rule"],
            "seconds": time.perf_counter() - t0, "command": command()}


# ------------------------------------------------------------------------------------------ rendering
def chosen(arm: dict) -> str:
    """The grid point with the best validation F1 (None counts as the worst)."""
    return max(arm, key=lambda k: arm[k]["val_f1"] if arm[k]["val_f1"] is not None else -1.0)


def latency_words(ratio: float) -> str:
    """The teacher's batch-1 latency over the student's, said the way it goes."""
    return (f"{ratio:.1f}x lower batch-1 latency" if ratio >= 1
            else f"{1 / ratio:.1f}x higher batch-1 latency (a noisy measurement on a shared machine)")


def budget(recs: list[dict], arm: str) -> str:
    """How many runs each seed's arm chose from (one number when every seed had the same)."""
    sizes = sorted({len(r[arm]) for r in recs})
    return str(sizes[0]) if len(sizes) == 1 else "-".join(str(s) for s in (sizes[0], sizes[-1]))


def arms(recs: list[dict]) -> dict[str, list[dict]]:
    """Per seed, each arm's scores: the teacher, the distilled and the plain run chosen on validation F1, and
    persistence."""
    return {"teacher": [r["teacher"] for r in recs], "kd": [r["kd"][chosen(r["kd"])] for r in recs],
            "plain": [r["plain"][chosen(r["plain"])] for r in recs], "persistence": [r["persistence"] for r in recs]}


def f1_by_arm(recs: list[dict]) -> tuple[dict[str, list[float]], dict]:
    """Each arm's test F1 per seed (:func:`arms`) and the paired gain of the distilled arm over the plain one."""
    from stkd.paired import paired_gain

    f1 = {k: [e["f1"] for e in es] for k, es in arms(recs).items()}
    return f1, paired_gain(f1["plain"], f1["kd"], lower_is_better=False)


def render(result: dict) -> str:
    from stkd.paired import describe_gain

    recs = sorted(result["records"], key=lambda r: r["seed"])
    if not recs:
        return f"### {TITLES[result['scenario']]}\n\nNo seed measured yet.\n"
    arm = arms(recs)
    kd, plain = arm["kd"], arm["plain"]
    rows = {f"teacher ({TEACHERS[result['scenario']]['name']})": arm["teacher"],
            "distilled student (stid, small, neighbours)": kd, "plain student (stid, small, neighbours)": plain,
            "persistence baseline": arm["persistence"]}
    detect = result["scenario"] == "simulator"
    header = ["model", "F1 (mean ± std)", "F1 @1", "AUROC", "AP", "params", "latency b=1 (ms)"]
    if detect:
        header += ["incidents detected", "median delay (steps)"]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for label, es in rows.items():
        col = lambda k, es=es: [e[k] for e in es]  # noqa: E731
        lat = [x for x in col("latency_ms") if x is not None]
        params = es[0]["params"]
        row = [label, mean_std(col("f1")), mean_std(col("f1_1")), mean_std(col("auroc")), mean_std(col("ap")),
               f"{params:,}" if params else "n/a", f"{np.median(lat):.2f}" if lat else "n/a"]
        if detect:
            row += [mean_std(col("share_detected")), mean_std(col("median_delay_steps"))]
        lines.append("| " + " | ".join(row) + " |")
    _, g = f1_by_arm(recs)
    teacher = arm["teacher"]
    t_f1, kd_f1 = float(np.mean([e["f1"] for e in teacher])), float(np.mean([e["f1"] for e in kd]))
    size = teacher[0]["params"] / kd[0]["params"] if teacher[0]["params"] and kd[0]["params"] else None
    t_lat = [e["latency_ms"] for e in teacher if e["latency_ms"]]
    s_lat = [e["latency_ms"] for e in kd if e["latency_ms"]]
    text = [f"Paired over {g['n']} seed{'s' if g['n'] > 1 else ''} (each arm's run chosen on validation F1): "
            + describe_gain(g, "distillation", score="test F1")
            + f" Relative gain per seed: {', '.join(f'{x:+.1f} %' for x in g['gains'])}.",
            f"Distilled student F1 {kd_f1:.3f} against the teacher's {t_f1:.3f} (gap {t_f1 - kd_f1:+.3f})"
            + (f"; the student has {size:.1f}x fewer parameters" if size else "")
            + (f" and {latency_words(float(np.median(t_lat) / np.median(s_lat)))}" if t_lat and s_lat else "")
            + "."]
    if (follows := following(arm)) is not None:
        text.append(follows)
    counts = recs[0]["test_class_counts"]
    kd_choice = "; ".join(f"seed {r['seed']}: {chosen(r['kd'])}" for r in recs)
    plain_choice = "; ".join(f"seed {r['seed']}: {chosen(r['plain'])}" for r in recs)
    if all(r.get("design") == DESIGN for r in recs):
        runs = (f"Training runs per seed: {budget(recs, 'plain')} plain, then {budget(recs, 'kd')} distilled at the plain "
                f"arm's chosen setting. Plain setting chosen on validation F1: {plain_choice}. Distilled (alpha, T) "
                f"chosen on validation F1: {kd_choice}.")
    else:  # the first design: the distilled arm at the first plain setting
        first = next(iter(PLAIN_GRID))
        runs = (f"Training runs per seed: {budget(recs, 'kd')} distilled, {budget(recs, 'plain')} plain. Distilled "
                f"(alpha, T) chosen on validation F1: {kd_choice}. Plain setting chosen on validation F1: {plain_choice}. "
                f"Measured with the benchmark's first design: the distilled arm trained at the plain arm's first "
                f"setting ({first}) whatever the plain arm chose, so where the plain arm chose another, the two arms "
                "differ by that setting as well as by the teacher.")
    commands = sorted({r.get("command", result["command"]) for r in recs})
    return (f"### {TITLES[result['scenario']]}\n\n"
            f"Command{'s' if len(commands) > 1 else ''}: {'; '.join(f'`{c}`' for c in commands)}  \n"
            f"{machine_line(result)}; {sum(r['seconds'] for r in recs) / 60:.0f} min in all  \n"
            f"Rule: `{recs[0]['rule']}`; test labels: {counts[1]:,} events of {sum(counts):,} "
            f"({counts[1] / max(sum(counts), 1):.1%}){day_of_week_line(recs)}\n\n" + "\n".join(lines) + "\n\n" + "\n\n".join(text) + "\n\n"
            f"{runs}\n")


def following(arm: dict[str, list[dict]]) -> str | None:
    """How closely the chosen distilled and plain students follow the teacher on test (each run's ``to_teacher``,
    means over seeds): the share of decisions they share with it, and the distance of their probabilities to its
    (:func:`stkd.metrics.probability_gap`), with the seeds where distillation brought the student nearer. None for
    records without them (measured before they were recorded)."""
    from stkd.fidelity import nearer_words

    pairs = [(k.get("to_teacher"), p.get("to_teacher")) for k, p in zip(arm["kd"], arm["plain"])]
    if not pairs or any(k is None or p is None or "probability_gap" not in k or "probability_gap" not in p
                        for k, p in pairs):
        return None
    mean = lambda i, key: float(np.mean([pair[i][key] for pair in pairs]))  # noqa: E731
    nearer = sum(k["probability_gap"] < p["probability_gap"] for k, p in pairs)
    return (f"How closely each follows the teacher on test (means over seeds): the distilled student decides the "
            f"teacher's class on {100 * mean(0, 'value'):.1f} % of the scored targets, the plain one on "
            f"{100 * mean(1, 'value'):.1f} %; their probabilities are {mean(0, 'probability_gap'):.3f} and "
            f"{mean(1, 'probability_gap'):.3f} from the teacher's (mean total variation): distillation brought them "
            f"{nearer_words(mean(0, 'probability_gap'), mean(1, 'probability_gap'))} ({nearer} of {len(pairs)} seeds "
            "nearer).")


def day_of_week_line(recs: list[dict]) -> str:
    """Whether the models embedded the day of the week (``data.day_of_week: auto`` decides from the training
    part's calendar), as each seed's record says; empty for records older than the field."""
    seen = {r["day_of_week"] for r in recs if r.get("day_of_week") is not None}
    if not seen:
        return ""
    return "  \nDay-of-week embedding: " + ("on" if seen == {True} else "off" if seen == {False} else "on for some seeds")


SHORT = {"simulator": "simulator incidents", "los-loop": "Los-loop congestion"}


def headline(result: dict) -> str:
    """The README line: each arm's mean test F1 and the paired verdict, from the result file."""
    from stkd.paired import verdict

    recs = result["records"]
    if not recs:
        return f"- **Events, {SHORT[result['scenario']]}**: no seed measured yet."
    f1, g = f1_by_arm(recs)
    mean = {k: float(np.mean(v)) for k, v in f1.items()}
    at_choice = ", the distilled one at the plain one's choice" if all(r.get("design") == DESIGN for r in recs) else ""
    return (f"- **Events, {SHORT[result['scenario']]}** ({g['n']} seeds, test F1, both arms tuned with the same budget "
            f"on validation{at_choice}): teacher {mean['teacher']:.3f}, distilled student {mean['kd']:.3f}, the same student "
            f"alone {mean['plain']:.3f}, persistence {mean['persistence']:.3f}; distillation: {verdict(g)} "
            f"({g['mean']:+.1f} % F1) ([benchmarks](docs/benchmarks.md#event-detection)).")


def current_design(result: dict) -> tuple[list[dict], list[dict]]:
    """A result file's records of this ``DESIGN`` and those of earlier designs (kept apart in the file, never
    rendered beside them: the two arms were not set up alike)."""
    records = result.get("records", [])
    earlier = [*result.get("earlier_design_records", []), *(r for r in records if r.get("design") != DESIGN)]
    return [r for r in records if r.get("design") == DESIGN], earlier


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--quick", action="store_true",
                   help="smaller simulator, fewer epochs and batches: a smoke test, printed, nothing saved")
    p.add_argument("--runs", type=Path, default=Path("bench-runs/events"))
    args = p.parse_args(argv)
    for name in args.scenarios:
        section = f"events-{name}"
        path = RESULTS / f"{section}.json"
        old = json.loads(path.read_text()) if path.is_file() and not args.quick else {"records": []}
        records, earlier = current_design(old)
        if earlier and len(earlier) > len(old.get("earlier_design_records", [])):
            print(f"{path.name}: {len(earlier)} records of an earlier design (the distilled arm at the first plain "
                  "setting) are kept apart, under earlier_design_records; the seeds are measured again", flush=True)
        runs = args.runs / "quick" if args.quick else args.runs
        for seed in args.seeds:
            if any(r["seed"] == seed for r in records):
                continue
            records.append(run_seed(name, seed, args.quick, runs))
            r = records[-1]
            print(f"{name} seed {seed}: kd {chosen(r['kd'])} F1 {r['kd'][chosen(r['kd'])]['f1']:.3f}, plain "
                  f"{chosen(r['plain'])} F1 {r['plain'][chosen(r['plain'])]['f1']:.3f} ({r['seconds']:.0f} s)",
                  flush=True)
            if not args.quick:
                save_result(section, "events", {"scenario": name, "records": records,
                                                **({"earlier_design_records": earlier} if earlier else {})},
                            vars(args) | {"runs": None})
        if args.quick:
            print(render({"scenario": name, "records": records, "command": command(), "machine": "this machine",
                          "versions": {"stkd": "", "commit": ""}, "date": "today"}))
        else:
            print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
